// SPDX-License-Identifier: Apache-2.0
//! Multipart uploads: create, upload a part, complete, abort, list parts.
//!
//! A part is written like a large PUT body (own data file, fsynced; parts are never inline)
//! and recorded in the `parts` table; replacing a part number frees the old file after the
//! commit. Completing an upload is O(1) in data: one committer request turns the listed parts'
//! files into the new object's segments, removes the upload and its part records (and the
//! inline bytes of the version it replaces), and the files of parts left out (and of the
//! version replaced) are deleted after the commit. No byte is copied.
//!
//! Like every committer request (see `committer/mod.rs`), completion and abort check everything
//! with reads first, and write only once the checks passed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use md5::{Digest, Md5};
use redb::WriteTransaction;

use super::bucket::remove_parts;
use super::committer::{Applied, Commit};
use super::data::{self, BodyLimits};
use super::index::{
    self, BUCKETS, OBJECTS, ObjectRecord, PARTS, PartRecord, Segment, UPLOADS, UploadRecord,
    decode, encode, index_err,
};
use super::object::check_precondition;
use super::{Inner, blocking, inline};
use crate::config::StoreLimits;
use crate::store::{
    BodyStream, CompletedPart, ListPartsRequest, ObjectAttrs, ObjectMeta, PartInfo, PartsPage,
    PutOptions, PutPrecondition, StoreError, UploadInfo,
};

/// Highest part number S3 allows.
const MAX_PART_NUMBER: u32 = 10_000;

/// Starts an upload and returns its id.
pub(super) async fn create(
    inner: &Arc<Inner>,
    bucket: &str,
    key: &str,
    attrs: ObjectAttrs,
) -> Result<String, StoreError> {
    let bucket = bucket.to_owned();
    let upload_id = uuid::Uuid::new_v4().simple().to_string();
    let record = UploadRecord {
        info: UploadInfo {
            key: key.to_owned(),
            upload_id: upload_id.clone(),
            initiated: SystemTime::now(),
        },
        attrs,
    };
    let commit = Commit::new("commit upload", move |txn: &WriteTransaction| {
        let buckets = txn.open_table(BUCKETS).map_err(index_err("open buckets"))?;
        index::require_bucket(&buckets, &bucket)?;
        let mut uploads = txn.open_table(UPLOADS).map_err(index_err("open uploads"))?;
        let value = encode(&record)?;
        let k = (
            bucket.as_str(),
            record.info.key.as_str(),
            record.info.upload_id.as_str(),
        );
        uploads
            .insert(k, value.as_slice())
            .map_err(index_err("insert upload"))?;
        Ok(Applied::wrote((), []))
    });
    inner.committer.submit(commit).await?.free().await;
    Ok(upload_id)
}

/// Fails unless the bucket and the upload exist (a read transaction).
async fn ensure_upload(
    inner: &Arc<Inner>,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> Result<UploadRecord, StoreError> {
    let inner = Arc::clone(inner);
    let (bucket, key, upload_id) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
    blocking(move || {
        let txn = inner.db.begin_read().map_err(index_err("begin read"))?;
        let buckets = txn.open_table(BUCKETS).map_err(index_err("open buckets"))?;
        index::require_bucket(&buckets, &bucket)?;
        let uploads = txn.open_table(UPLOADS).map_err(index_err("open uploads"))?;
        index::read_upload(&uploads, &bucket, &key, &upload_id)
    })
    .await
}

/// Stores one part.
pub(super) async fn upload_part(
    inner: &Arc<Inner>,
    bucket: &str,
    key: &str,
    upload_id: &str,
    part_number: u32,
    body: BodyStream,
    options: PutOptions,
) -> Result<PartInfo, StoreError> {
    if !(1..=MAX_PART_NUMBER).contains(&part_number) {
        return Err(StoreError::InvalidPartList {
            reason: "part numbers must be 1 to 10000",
        });
    }
    ensure_upload(inner, bucket, key, upload_id).await?;
    let limits = BodyLimits {
        max_len: inner
            .limits
            .max_part_size
            .as_u64()
            .min(inner.limits.max_object_size.as_u64()),
        expected_len: options.expected_len,
        content_md5: options.content_md5,
    };
    let written = data::write_body(&inner.data, &inner.read.write_path(), body, limits).await?;
    if let Err(e) = inner.failpoints.trigger("upload_part.after_data_fsync") {
        written.file.abandon();
        return Err(e);
    }
    let record = PartRecord {
        info: PartInfo {
            part_number,
            etag: hex::encode(written.md5),
            size: written.len,
            last_modified: SystemTime::now(),
        },
        md5: written.md5,
        file: written.file.id(),
    };
    let (bucket, key, upload_id) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
    let commit = Commit::new("commit part", move |txn: &WriteTransaction| {
        let uploads = txn.open_table(UPLOADS).map_err(index_err("open uploads"))?;
        index::read_upload(&uploads, &bucket, &key, &upload_id)?;
        let mut parts = txn.open_table(PARTS).map_err(index_err("open parts"))?;
        let value = encode(&record)?;
        // The upload exists; from here on only index errors (see `committer/mod.rs`).
        let replaced: Option<PartRecord> = parts
            .insert((upload_id.as_str(), part_number), value.as_slice())
            .map_err(index_err("insert part"))?
            .map(|v| decode(v.value()))
            .transpose()?;
        Ok(Applied::wrote(record.info, replaced.map(|p| p.file)))
    })
    .with_file(written.file)
    .with_failpoint("upload_part.before_index_commit");
    let done = inner.committer.submit(commit).await?;
    done.finish(&inner.failpoints, "upload_part.after_index_commit")
        .await
}

/// Checks what can be checked without the index: a non-empty list of part numbers in range,
/// strictly ascending.
fn validate_part_list(parts: &[CompletedPart]) -> Result<(), StoreError> {
    if parts.is_empty() {
        return Err(StoreError::InvalidPartList {
            reason: "the part list is empty",
        });
    }
    if parts
        .iter()
        .any(|p| !(1..=MAX_PART_NUMBER).contains(&p.part_number))
    {
        return Err(StoreError::InvalidPartList {
            reason: "part numbers must be 1 to 10000",
        });
    }
    if parts
        .windows(2)
        .any(|w| w[0].part_number >= w[1].part_number)
    {
        return Err(StoreError::InvalidPartOrder);
    }
    Ok(())
}

/// S3's multipart ETag: hex(md5(concat(md5(part)))) + "-" + part count.
pub(super) fn multipart_etag<'a>(md5s: impl Iterator<Item = &'a [u8; 16]>) -> String {
    let mut hasher = Md5::new();
    let mut count = 0usize;
    for md5 in md5s {
        hasher.update(md5);
        count += 1;
    }
    format!("{}-{count}", hex::encode(hasher.finalize()))
}

/// Assembles the listed parts into the object.
pub(super) async fn complete(
    inner: &Arc<Inner>,
    bucket: &str,
    key: &str,
    upload_id: &str,
    parts: &[CompletedPart],
    precondition: PutPrecondition,
) -> Result<ObjectMeta, StoreError> {
    validate_part_list(parts)?;
    let (bucket, key, upload_id) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
    let listed = parts.to_vec();
    let limits = inner.limits.clone();
    let commit = Commit::new(
        "commit multipart completion",
        move |txn: &WriteTransaction| {
            apply_complete(
                txn,
                &limits,
                &bucket,
                &key,
                &upload_id,
                &listed,
                &precondition,
            )
        },
    )
    .with_failpoint("complete.before_commit");
    let done = inner.committer.submit(commit).await?;
    done.finish(&inner.failpoints, "complete.after_commit")
        .await
}

/// The CompleteMultipartUpload request inside a committer batch: reads and checks the upload,
/// its parts and the precondition, then writes the object, removes the upload, its part
/// records and the replaced version's inline bytes. The files of unlisted parts and of the
/// replaced version are freed after the commit. Blocking.
fn apply_complete(
    txn: &WriteTransaction,
    limits: &StoreLimits,
    bucket: &str,
    key: &str,
    upload_id: &str,
    listed: &[CompletedPart],
    precondition: &PutPrecondition,
) -> Result<Applied<ObjectMeta>, StoreError> {
    let buckets = txn.open_table(BUCKETS).map_err(index_err("open buckets"))?;
    index::require_bucket(&buckets, bucket)?;
    let mut uploads = txn.open_table(UPLOADS).map_err(index_err("open uploads"))?;
    let upload = index::read_upload(&uploads, bucket, key, upload_id)?;
    let mut parts = txn.open_table(PARTS).map_err(index_err("open parts"))?;
    let mut stored: BTreeMap<u32, PartRecord> =
        index::read_parts(&parts, upload_id, 0, usize::MAX)?
            .into_iter()
            .map(|p| (p.info.part_number, p))
            .collect();
    let chosen = choose_parts(limits, listed, &mut stored)?;
    let mut objects = txn.open_table(OBJECTS).map_err(index_err("open objects"))?;
    let current = index::read_object(&objects, bucket, key)?;
    check_precondition(current.as_ref().map(|r| &r.meta), precondition, bucket, key)?;
    let record = ObjectRecord {
        meta: ObjectMeta {
            key: key.to_owned(),
            size: chosen.iter().map(|p| p.info.size).sum(),
            etag: multipart_etag(chosen.iter().map(|p| &p.md5)),
            last_modified: SystemTime::now(),
            parts_count: Some(u32::try_from(chosen.len()).unwrap_or(MAX_PART_NUMBER)),
            attrs: upload.attrs,
        },
        segments: chosen
            .iter()
            .map(|p| Segment::File {
                file: p.file,
                len: p.info.size,
            })
            .collect(),
    };
    let value = encode(&record)?;
    // Every check passed; from here on only index errors (see `committer/mod.rs`).
    remove_parts(&mut parts, upload_id)?;
    objects
        .insert((bucket, key.as_bytes()), value.as_slice())
        .map_err(index_err("insert object"))?;
    inline::replace(txn, bucket, key, current.as_ref(), None)?;
    uploads
        .remove((bucket, key, upload_id))
        .map_err(index_err("remove upload"))?;
    let mut freed: Vec<_> = stored.into_values().map(|p| p.file).collect();
    freed.extend(current.iter().flat_map(ObjectRecord::files));
    Ok(Applied::wrote(record.meta, freed))
}

/// Takes the listed parts out of `stored` (leaving the unlisted ones), checking ETags, the
/// minimum size of every part but the last, and the total size.
fn choose_parts(
    limits: &StoreLimits,
    listed: &[CompletedPart],
    stored: &mut BTreeMap<u32, PartRecord>,
) -> Result<Vec<PartRecord>, StoreError> {
    let mut chosen = Vec::with_capacity(listed.len());
    for want in listed {
        let invalid = || StoreError::InvalidPart {
            part_number: want.part_number,
        };
        // `stored` (a copy read from the index) is only used after success, so taking a part
        // out before the ETag check is harmless on the error path.
        let part = stored.remove(&want.part_number).ok_or_else(invalid)?;
        if part.info.etag != want.etag.trim().trim_matches('"') {
            return Err(invalid());
        }
        chosen.push(part);
    }
    let min = limits.min_part_size.as_u64();
    if let Some((_, but_last)) = chosen.split_last()
        && let Some(small) = but_last.iter().find(|p| p.info.size < min)
    {
        return Err(StoreError::EntityTooSmall {
            part_number: small.info.part_number,
            size: small.info.size,
            min,
        });
    }
    let limit = limits.max_object_size.as_u64();
    if chosen.iter().map(|p| p.info.size).sum::<u64>() > limit {
        return Err(StoreError::EntityTooLarge { limit });
    }
    Ok(chosen)
}

/// Aborts an upload and frees its parts.
pub(super) async fn abort(
    inner: &Arc<Inner>,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> Result<(), StoreError> {
    let (bucket, key, upload_id) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
    let commit = Commit::new("commit upload abort", move |txn: &WriteTransaction| {
        let buckets = txn.open_table(BUCKETS).map_err(index_err("open buckets"))?;
        index::require_bucket(&buckets, &bucket)?;
        let mut uploads = txn.open_table(UPLOADS).map_err(index_err("open uploads"))?;
        index::read_upload(&uploads, &bucket, &key, &upload_id)?;
        // The upload exists; from here on only index errors (see `committer/mod.rs`).
        uploads
            .remove((bucket.as_str(), key.as_str(), upload_id.as_str()))
            .map_err(index_err("remove upload"))?;
        let mut parts = txn.open_table(PARTS).map_err(index_err("open parts"))?;
        let freed = remove_parts(&mut parts, &upload_id)?;
        Ok(Applied::wrote((), freed.into_iter().map(|p| p.file)))
    });
    inner.committer.submit(commit).await?.free().await;
    Ok(())
}

/// Lists an upload's parts from `part_number_marker` on.
pub(super) async fn list_parts(
    inner: &Arc<Inner>,
    bucket: &str,
    key: &str,
    upload_id: &str,
    request: &ListPartsRequest,
) -> Result<PartsPage, StoreError> {
    let upload = ensure_upload(inner, bucket, key, upload_id).await?;
    if request.max_parts == 0 {
        return Ok(PartsPage {
            attrs: upload.attrs,
            ..PartsPage::default()
        });
    }
    let Some(from) = request.part_number_marker.checked_add(1) else {
        return Ok(PartsPage {
            attrs: upload.attrs,
            ..PartsPage::default()
        });
    };
    let max = request.max_parts;
    let task_inner = Arc::clone(inner);
    let upload_id = upload_id.to_owned();
    let mut found = blocking(move || {
        let txn = task_inner
            .db
            .begin_read()
            .map_err(index_err("begin read"))?;
        let parts = txn.open_table(PARTS).map_err(index_err("open parts"))?;
        index::read_parts(&parts, &upload_id, from, max.saturating_add(1))
    })
    .await?;
    let is_truncated = found.len() > max;
    found.truncate(max);
    let next_part_number_marker = if is_truncated {
        found.last().map(|p| p.info.part_number)
    } else {
        None
    };
    Ok(PartsPage {
        parts: found.into_iter().map(|p| p.info).collect(),
        is_truncated,
        next_part_number_marker,
        attrs: upload.attrs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_etag_hashes_the_part_digests() {
        let a: [u8; 16] = Md5::digest(b"a").into();
        let b: [u8; 16] = Md5::digest(b"b").into();
        let mut concat = Vec::new();
        concat.extend_from_slice(&a);
        concat.extend_from_slice(&b);
        let want = format!("{}-2", hex::encode(Md5::digest(&concat)));
        assert_eq!(multipart_etag([a, b].iter()), want);
    }

    #[test]
    fn part_list_must_be_non_empty_in_range_and_ascending() {
        let p = |n| CompletedPart {
            part_number: n,
            etag: String::new(),
        };
        assert!(matches!(
            validate_part_list(&[]),
            Err(StoreError::InvalidPartList { .. })
        ));
        assert!(matches!(
            validate_part_list(&[p(0)]),
            Err(StoreError::InvalidPartList { .. })
        ));
        assert!(matches!(
            validate_part_list(&[p(10_001)]),
            Err(StoreError::InvalidPartList { .. })
        ));
        assert!(matches!(
            validate_part_list(&[p(2), p(1)]),
            Err(StoreError::InvalidPartOrder)
        ));
        assert!(matches!(
            validate_part_list(&[p(1), p(1)]),
            Err(StoreError::InvalidPartOrder)
        ));
        assert!(validate_part_list(&[p(1), p(3), p(10_000)]).is_ok());
    }
}
