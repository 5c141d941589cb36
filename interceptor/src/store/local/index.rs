// SPDX-License-Identifier: Apache-2.0
//! The redb index: table layout, the records stored in it, and small typed accessors.
//!
//! Five tables; four are valued by serde_json records:
//! - `buckets`: bucket name → [`BucketInfo`];
//! - `objects`: (bucket, key bytes) → [`ObjectRecord`]; redb orders tuple keys element by element
//!   and byte slices bytewise, so a listing is one range scan in S3 key order, and a common
//!   prefix group can be skipped by seeking to the prefix's byte successor;
//! - `uploads`: (bucket, key, upload id) → [`UploadRecord`], so ListMultipartUploads is a scan
//!   in (key, upload id) order;
//! - `parts`: (upload id, part number) → [`PartRecord`];
//! - `inline`: (bucket, key bytes) → the raw bytes of an inline object (see `inline.rs`). They
//!   are kept out of the JSON record so that HEAD and listings never decode them.
//!
//! Invariants:
//! - every data file id appears in at most one record, either as a segment of one object or as
//!   the file of one part. Deleting the files of a record removed in a committed transaction is
//!   therefore always safe, and recovery finds orphans as "files no record names";
//! - an `inline` row exists exactly when the `objects` record under the same key has a
//!   [`Segment::Inline`]; every transaction that writes or removes an object record keeps
//!   this true.

use std::fmt;

use redb::{ReadableTable, TableDefinition};
use serde::de::{self, DeserializeOwned};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::store::{ObjectAttrs, ObjectMeta, PartInfo, StoreError, UploadInfo};

/// Bucket name → `BucketInfo`.
pub(super) const BUCKETS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("buckets");
/// (bucket, key bytes) → [`ObjectRecord`].
pub(super) const OBJECTS: TableDefinition<'static, (&str, &[u8]), &[u8]> =
    TableDefinition::new("objects");
/// (bucket, key, upload id) → [`UploadRecord`].
pub(super) const UPLOADS: TableDefinition<'static, (&str, &str, &str), &[u8]> =
    TableDefinition::new("uploads");
/// (upload id, part number) → [`PartRecord`].
pub(super) const PARTS: TableDefinition<'static, (&str, u32), &[u8]> =
    TableDefinition::new("parts");
/// (bucket, key bytes) → the bytes of an inline object.
pub(super) const INLINE: TableDefinition<'static, (&str, &[u8]), &[u8]> =
    TableDefinition::new("inline");

/// The name of a data file: 128 random bits, written as 32 lowercase hex digits.
///
/// Parsing accepts only that form, so a path built from a `FileId` never leaves the data
/// directory, whatever the index holds.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct FileId(u128);

impl FileId {
    /// A fresh random id (UUID v4 bits).
    pub(super) fn random() -> Self {
        Self(uuid::Uuid::new_v4().as_u128())
    }

    /// The file name: 32 lowercase hex digits.
    pub(super) fn name(self) -> String {
        format!("{:032x}", self.0)
    }

    /// The shard directory name: the first two hex digits of the name.
    pub(super) fn shard(self) -> String {
        format!("{:02x}", self.0 >> 120)
    }

    /// Parses a file name written by [`FileId::name`].
    pub(super) fn parse(name: &str) -> Option<Self> {
        let well_formed = name.len() == 32
            && name
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !well_formed {
            return None;
        }
        u128::from_str_radix(name, 16).ok().map(Self)
    }
}

impl fmt::Debug for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileId({:032x})", self.0)
    }
}

impl Serialize for FileId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for FileId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Self::parse(&name).ok_or_else(|| de::Error::custom(format!("bad data file id {name:?}")))
    }
}

/// A run of bytes of an object.
///
/// Serialized untagged: a file segment is `{"file": "<id>", "len": n}`, the only form records
/// had before inline objects, so those records still decode; an inline one is
/// `{"inline_len": n}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(super) enum Segment {
    /// The whole of one data file.
    File {
        /// The data file.
        file: FileId,
        /// Its length in bytes.
        len: u64,
    },
    /// The object's bytes, in the `inline` table under the object's own key. Only ever the
    /// single segment of a whole-object PUT.
    Inline {
        /// Their length.
        #[serde(rename = "inline_len")]
        len: u64,
    },
}

impl Segment {
    /// Length in bytes.
    pub(super) fn len(&self) -> u64 {
        match *self {
            Self::File { len, .. } | Self::Inline { len } => len,
        }
    }
}

/// One object version: its metadata and where its bytes are, in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ObjectRecord {
    /// What the seam returns.
    pub(super) meta: ObjectMeta,
    /// The object's bytes are the concatenation of these (one file for a PUT, one per part for
    /// a completed multipart upload, or one inline segment for a small PUT).
    pub(super) segments: Vec<Segment>,
}

impl ObjectRecord {
    /// The files this version owns (none for an inline object).
    pub(super) fn files(&self) -> impl Iterator<Item = FileId> + '_ {
        self.segments.iter().filter_map(|s| match *s {
            Segment::File { file, .. } => Some(file),
            Segment::Inline { .. } => None,
        })
    }

    /// Whether the bytes live in the `inline` table.
    pub(super) fn is_inline(&self) -> bool {
        self.segments
            .iter()
            .any(|s| matches!(s, Segment::Inline { .. }))
    }
}

/// An open multipart upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct UploadRecord {
    /// What ListMultipartUploads returns.
    pub(super) info: UploadInfo,
    /// Attributes the completed object will carry.
    pub(super) attrs: ObjectAttrs,
}

/// One stored part of an upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct PartRecord {
    /// What ListParts returns.
    pub(super) info: PartInfo,
    /// The raw MD5, input to the multipart ETag.
    pub(super) md5: [u8; 16],
    /// The part's data file.
    pub(super) file: FileId,
}

/// Only the size of an object record: what `usage` needs, without decoding the rest.
#[derive(Debug, Deserialize)]
pub(super) struct ObjectSizeOnly {
    /// The metadata's size field alone.
    pub(super) meta: SizeField,
}

/// See [`ObjectSizeOnly`].
#[derive(Debug, Deserialize)]
pub(super) struct SizeField {
    /// Object size.
    pub(super) size: u64,
}

/// Serializes a record.
pub(super) fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(record).map_err(|e| StoreError::index("encode record", e))
}

/// Deserializes a record.
pub(super) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::index("decode record", e))
}

/// Maps a redb error of any kind to [`StoreError::Index`], naming the operation.
pub(super) fn index_err<E: Into<redb::Error>>(op: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::index(op, e.into())
}

/// Fails with [`StoreError::NoSuchBucket`] unless the bucket exists.
pub(super) fn require_bucket(
    buckets: &impl ReadableTable<&'static str, &'static [u8]>,
    bucket: &str,
) -> Result<(), StoreError> {
    match buckets.get(bucket).map_err(index_err("read bucket"))? {
        Some(_) => Ok(()),
        None => Err(StoreError::NoSuchBucket {
            bucket: bucket.to_owned(),
        }),
    }
}

/// Reads an object record.
pub(super) fn read_object(
    objects: &impl ReadableTable<(&'static str, &'static [u8]), &'static [u8]>,
    bucket: &str,
    key: &str,
) -> Result<Option<ObjectRecord>, StoreError> {
    let guard = objects
        .get((bucket, key.as_bytes()))
        .map_err(index_err("read object"))?;
    guard.map(|g| decode(g.value())).transpose()
}

/// Reads an upload record, failing with [`StoreError::NoSuchUpload`] if it is absent.
pub(super) fn read_upload(
    uploads: &impl ReadableTable<(&'static str, &'static str, &'static str), &'static [u8]>,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> Result<UploadRecord, StoreError> {
    let guard = uploads
        .get((bucket, key, upload_id))
        .map_err(index_err("read upload"))?;
    match guard {
        Some(g) => decode(g.value()),
        None => Err(StoreError::NoSuchUpload {
            upload_id: upload_id.to_owned(),
        }),
    }
}

/// Reads the parts of an upload with numbers in `from..`, in order, at most `limit` of them.
pub(super) fn read_parts(
    parts: &impl ReadableTable<(&'static str, u32), &'static [u8]>,
    upload_id: &str,
    from: u32,
    limit: usize,
) -> Result<Vec<PartRecord>, StoreError> {
    let mut out = Vec::new();
    let range = parts
        .range((upload_id, from)..=(upload_id, u32::MAX))
        .map_err(index_err("scan parts"))?;
    for entry in range.take(limit) {
        let (_, value) = entry.map_err(index_err("scan parts"))?;
        out.push(decode(value.value())?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_id_round_trips_through_its_name() {
        let id = FileId::random();
        assert_eq!(FileId::parse(&id.name()), Some(id));
        assert_eq!(id.name().len(), 32);
        assert!(id.name().starts_with(&id.shard()));
    }

    #[test]
    fn file_id_rejects_anything_but_32_lowercase_hex_digits() {
        assert_eq!(FileId::parse("../../etc/passwd"), None);
        assert_eq!(FileId::parse(&"A".repeat(32)), None);
        assert_eq!(FileId::parse(&"0".repeat(31)), None);
        assert_eq!(FileId::parse(&format!("{}.tmp", "0".repeat(32))), None);
        assert!(FileId::parse(&"0".repeat(32)).is_some());
    }

    #[test]
    fn records_written_before_inline_objects_still_decode() {
        let file = "ab".repeat(16);
        let old = format!(
            r#"{{"meta":{{"key":"k","size":5,"etag":"e","last_modified":{{"secs_since_epoch":1,"nanos_since_epoch":0}},"parts_count":null,"attrs":{{}}}},"segments":[{{"file":"{file}","len":5}}]}}"#
        );
        let record: ObjectRecord = decode(old.as_bytes()).unwrap();
        let id = FileId::parse(&file).unwrap();
        assert_eq!(record.segments, vec![Segment::File { file: id, len: 5 }]);
        assert!(!record.is_inline());
        assert_eq!(record.files().collect::<Vec<_>>(), vec![id]);
        // And a file segment is still written in that form.
        let json = String::from_utf8(encode(&record).unwrap()).unwrap();
        assert!(
            json.contains(&format!(r#"{{"file":"{file}","len":5}}"#)),
            "{json}"
        );
    }

    #[test]
    fn inline_segment_round_trips_and_owns_no_file() {
        let segment = Segment::Inline { len: 42 };
        let json = serde_json::to_string(&segment).unwrap();
        assert_eq!(json, r#"{"inline_len":42}"#);
        assert_eq!(serde_json::from_str::<Segment>(&json).unwrap(), segment);
        assert_eq!(segment.len(), 42);
    }

    #[test]
    fn file_id_serializes_as_hex_string() {
        let id = FileId::parse(&"ab".repeat(16)).unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{}\"", "ab".repeat(16)));
        assert_eq!(serde_json::from_str::<FileId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<FileId>("\"../x\"").is_err());
    }
}
