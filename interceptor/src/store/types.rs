// SPDX-License-Identifier: Apache-2.0
//! Values that cross the `ObjectStore` seam.

use std::collections::BTreeMap;
use std::fmt;
use std::pin::Pin;
use std::time::SystemTime;

use bytes::Bytes;
use futures::Stream;
use serde::{Deserialize, Serialize};

use super::StoreError;

/// A request or response body: chunks of bytes, or the I/O error that ended the stream.
///
/// `Sync` because the HTTP layer (hyper, s3s) requires bodies to be; build one with
/// `Box::pin(stream)` (not `StreamExt::boxed`, which drops `Sync`).
pub type BodyStream =
    Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync + 'static>>;

/// The headers a client sets on an object and gets back on every read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObjectAttrs {
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Content-Encoding`.
    pub content_encoding: Option<String>,
    /// `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// `Content-Language`.
    pub content_language: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `Expires`.
    pub expires: Option<SystemTime>,
    /// `x-amz-meta-*` user metadata, names lowercased, without the prefix.
    pub user_metadata: BTreeMap<String, String>,
}

/// What the store knows about one object version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// The object's key.
    pub key: String,
    /// Length in bytes.
    pub size: u64,
    /// S3 ETag without quotes: hex MD5, or `hex-N` for an object from N multipart parts.
    pub etag: String,
    /// When the version was committed.
    pub last_modified: SystemTime,
    /// Number of parts when the object came from a multipart upload.
    pub parts_count: Option<u32>,
    /// Client-set headers and user metadata.
    pub attrs: ObjectAttrs,
}

/// A condition checked atomically with the write that it guards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PutPrecondition {
    /// Write unconditionally.
    #[default]
    None,
    /// `If-None-Match: *`: write only if the key does not exist.
    IfAbsent,
    /// `If-Match: "etag"`: write only if the current version has this ETag (unquoted).
    IfMatch(String),
}

/// Options of a whole-object or part upload.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// Headers and metadata to store (ignored for parts).
    pub attrs: ObjectAttrs,
    /// The length the client declared; a body of another length is refused as incomplete.
    pub expected_len: Option<u64>,
    /// `Content-MD5` the client sent; a mismatch is refused as a bad digest.
    pub content_md5: Option<[u8; 16]>,
    /// Condition on the current version (ignored for parts).
    pub precondition: PutPrecondition,
    /// User metadata decided while the body streams (by a function on a `put` trigger), merged
    /// into `attrs` after the body ended and before the commit (ignored for parts).
    pub late_metadata: Option<std::sync::Arc<quarry_offload::Effects>>,
}

impl PutOptions {
    /// `attrs` with the late metadata merged in; call once the body has ended.
    pub fn final_attrs(&self) -> ObjectAttrs {
        let mut attrs = self.attrs.clone();
        if let Some(effects) = &self.late_metadata {
            attrs.user_metadata.extend(effects.snapshot().metadata);
        }
        attrs
    }
}

/// A requested byte range, as HTTP `Range` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-last` or `bytes=first-` (inclusive bounds).
    FromTo {
        /// First byte.
        first: u64,
        /// Last byte, inclusive; `None` means to the end.
        last: Option<u64>,
    },
    /// `bytes=-length`: the last `length` bytes.
    Suffix {
        /// How many bytes from the end.
        length: u64,
    },
}

/// A range resolved against an object's size: `len` bytes from `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedRange {
    /// Offset of the first byte.
    pub start: u64,
    /// Number of bytes; at least one.
    pub len: u64,
}

impl ByteRange {
    /// Resolves the range against an object of `size` bytes, as RFC 9110 does: a `last` past
    /// the end is clamped; a `first` at or past the end, or an empty suffix, is unsatisfiable.
    pub fn resolve(self, size: u64) -> Result<ResolvedRange, StoreError> {
        let unsatisfiable = || StoreError::InvalidRange { size };
        match self {
            Self::FromTo { first, last } => {
                if first >= size || last.is_some_and(|last| last < first) {
                    return Err(unsatisfiable());
                }
                let last = last.map_or(size - 1, |last| last.min(size - 1));
                Ok(ResolvedRange {
                    start: first,
                    len: last - first + 1,
                })
            }
            Self::Suffix { length } => {
                if length == 0 || size == 0 {
                    return Err(unsatisfiable());
                }
                let len = length.min(size);
                Ok(ResolvedRange {
                    start: size - len,
                    len,
                })
            }
        }
    }
}

/// An open object: its metadata, the range being read, and the bytes.
pub struct ObjectReader {
    /// Metadata of the version being read.
    pub meta: ObjectMeta,
    /// The range served, when one was asked for.
    pub range: Option<ResolvedRange>,
    /// The bytes of the range (or the whole object).
    pub body: BodyStream,
}

impl fmt::Debug for ObjectReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectReader")
            .field("meta", &self.meta)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

impl ObjectReader {
    /// Number of bytes the body will yield.
    pub fn content_length(&self) -> u64 {
        self.range.map_or(self.meta.size, |r| r.len)
    }
}

/// Facts about a bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketInfo {
    /// The bucket's name.
    pub name: String,
    /// When it was created.
    pub created: SystemTime,
}

/// A listing request, after the front end decoded continuation tokens and markers.
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    /// Only keys starting with this.
    pub prefix: String,
    /// Group keys sharing the prefix up to this delimiter into common prefixes.
    pub delimiter: Option<String>,
    /// Only keys (and common prefixes) strictly after this one.
    pub start_after: Option<String>,
    /// At most this many keys plus common prefixes in the page.
    pub max_keys: usize,
}

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    /// Objects, in key order.
    pub objects: Vec<ObjectMeta>,
    /// Common prefixes (each ends with the delimiter), in order.
    pub common_prefixes: Vec<String>,
    /// Whether more entries follow.
    pub is_truncated: bool,
    /// When truncated: the last key or common prefix in this page; the next page starts
    /// strictly after it.
    pub next_marker: Option<String>,
}

/// One part named in CompleteMultipartUpload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    /// Part number, 1..=10000.
    pub part_number: u32,
    /// The ETag UploadPart returned (unquoted).
    pub etag: String,
}

/// A stored part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartInfo {
    /// Part number.
    pub part_number: u32,
    /// Hex MD5 of the part (unquoted).
    pub etag: String,
    /// Length in bytes.
    pub size: u64,
    /// When it was stored.
    pub last_modified: SystemTime,
}

/// ListParts request.
#[derive(Debug, Clone, Default)]
pub struct ListPartsRequest {
    /// Only parts with a number greater than this.
    pub part_number_marker: u32,
    /// At most this many parts.
    pub max_parts: usize,
}

/// A page of parts.
#[derive(Debug, Clone, Default)]
pub struct PartsPage {
    /// Parts in number order.
    pub parts: Vec<PartInfo>,
    /// Whether more parts follow.
    pub is_truncated: bool,
    /// The marker for the next page when truncated.
    pub next_part_number_marker: Option<u32>,
    /// The upload's object attributes (for ListParts' owner and storage-class fields' peers).
    pub attrs: ObjectAttrs,
}

/// ListMultipartUploads request.
#[derive(Debug, Clone, Default)]
pub struct ListUploadsRequest {
    /// Only uploads for keys starting with this.
    pub prefix: String,
    /// Only uploads after this key (or, with `upload_id_marker`, after that upload of it).
    pub key_marker: Option<String>,
    /// With `key_marker`: only uploads of that key with a greater id, then later keys.
    pub upload_id_marker: Option<String>,
    /// At most this many uploads.
    pub max_uploads: usize,
}

/// An open multipart upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadInfo {
    /// Key being uploaded.
    pub key: String,
    /// Upload id.
    pub upload_id: String,
    /// When it was started.
    pub initiated: SystemTime,
}

/// A page of uploads.
#[derive(Debug, Clone, Default)]
pub struct UploadsPage {
    /// Uploads by key, then upload id.
    pub uploads: Vec<UploadInfo>,
    /// Whether more follow.
    pub is_truncated: bool,
    /// Key marker for the next page.
    pub next_key_marker: Option<String>,
    /// Upload id marker for the next page.
    pub next_upload_id_marker: Option<String>,
}

/// Store totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreUsage {
    /// Number of buckets.
    pub buckets: u64,
    /// Number of objects.
    pub objects: u64,
    /// Bytes in visible objects.
    pub object_bytes: u64,
    /// Open multipart uploads.
    pub uploads: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_past_end_is_unsatisfiable() {
        let r = ByteRange::FromTo {
            first: 10,
            last: None,
        };
        assert!(matches!(
            r.resolve(10),
            Err(StoreError::InvalidRange { size: 10 })
        ));
    }

    #[test]
    fn range_last_is_clamped_to_size() {
        let r = ByteRange::FromTo {
            first: 2,
            last: Some(100),
        };
        assert_eq!(r.resolve(10).unwrap(), ResolvedRange { start: 2, len: 8 });
    }

    #[test]
    fn suffix_longer_than_object_is_whole_object() {
        let r = ByteRange::Suffix { length: 50 };
        assert_eq!(r.resolve(10).unwrap(), ResolvedRange { start: 0, len: 10 });
        assert!(ByteRange::Suffix { length: 0 }.resolve(10).is_err());
    }
}
