// SPDX-License-Identifier: Apache-2.0
//! Whole-object operations: head, get, put, delete.
//!
//! PUT takes one of two paths, chosen by the declared length. Up to `StoreLimits::inline_max`
//! the body is collected in memory and committed with its record (`inline.rs`). Otherwise it is
//! written and fsynced into a new data file first, and the record referencing the file is
//! committed second. Either way the record commits in one committer request that also checks
//! the bucket and the precondition, and the version it replaces loses its bytes in the same
//! transaction (inline bytes) or right after the commit (files). Until the commit the new file
//! is owned by a [`NewFile`] guard that travels with the request, so that a request dropped
//! while its commit is queued or running cannot remove a file the index is about to reference.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use redb::WriteTransaction;

use super::committer::{Applied, Commit};
use super::data::{self, BodyLimits};
use super::index::{self, BUCKETS, OBJECTS, ObjectRecord, Segment, encode, index_err};
use super::read::{self, OpenedVersion};
use super::{Inner, blocking, inline};
use crate::store::{
    BodyStream, ByteRange, ObjectAttrs, ObjectMeta, ObjectReader, PutOptions, PutPrecondition,
    StoreError,
};

/// Returns an object's metadata.
pub(super) async fn head(
    inner: &Arc<Inner>,
    bucket: &str,
    key: &str,
) -> Result<ObjectMeta, StoreError> {
    let inner = Arc::clone(inner);
    let (bucket, key) = (bucket.to_owned(), key.to_owned());
    blocking(move || {
        let txn = inner.db.begin_read().map_err(index_err("begin read"))?;
        let buckets = txn.open_table(BUCKETS).map_err(index_err("open buckets"))?;
        index::require_bucket(&buckets, &bucket)?;
        let objects = txn.open_table(OBJECTS).map_err(index_err("open objects"))?;
        match index::read_object(&objects, &bucket, &key)? {
            Some(record) => Ok(record.meta),
            None => Err(StoreError::NoSuchKey { bucket, key }),
        }
    })
    .await
}

/// Opens an object (or a range of it) for reading.
pub(super) async fn get(
    inner: &Arc<Inner>,
    bucket: &str,
    key: &str,
    range: Option<ByteRange>,
) -> Result<ObjectReader, StoreError> {
    let task_inner = Arc::clone(inner);
    let (bucket, key) = (bucket.to_owned(), key.to_owned());
    let (meta, range, body) = blocking(move || {
        let OpenedVersion {
            meta,
            range,
            source,
        } = read::open_version(&task_inner, &bucket, &key, range)?;
        Ok((meta, range, read::prepare_body(source, &task_inner.read)?))
    })
    .await?;
    Ok(ObjectReader {
        meta,
        range,
        body: read::into_stream(body, &inner.read),
    })
}

/// Stores a whole object: inline when it declares a length of at most `inline_max`.
pub(super) async fn put(
    inner: &Arc<Inner>,
    bucket: &str,
    key: &str,
    body: BodyStream,
    options: PutOptions,
) -> Result<ObjectMeta, StoreError> {
    let inline_max = inner.limits.inline_max.as_u64();
    let limits = BodyLimits {
        max_len: inner.limits.max_object_size.as_u64(),
        expected_len: options.expected_len,
        content_md5: options.content_md5,
    };
    match options.expected_len {
        Some(len) if inline_max > 0 && len <= inline_max => {
            put_inline(inner, bucket, key, body, limits, options).await
        }
        _ => put_file(inner, bucket, key, body, limits, options).await,
    }
}

/// The PUT of a small object: body in memory, bytes committed with the record. No early
/// bucket check: the commit checks, and the body is at most `inline_max` bytes of memory.
async fn put_inline(
    inner: &Arc<Inner>,
    bucket: &str,
    key: &str,
    body: BodyStream,
    limits: BodyLimits,
    options: PutOptions,
) -> Result<ObjectMeta, StoreError> {
    let collected = inline::collect_body(body, limits).await?;
    let len = collected.bytes.len() as u64;
    let record = new_record(
        key,
        len,
        collected.md5,
        Segment::Inline { len },
        options.final_attrs(),
    );
    let bucket = bucket.to_owned();
    let precondition = options.precondition;
    let bytes = collected.bytes;
    let commit = Commit::new("commit object", move |txn: &WriteTransaction| {
        apply_put(txn, &bucket, record, Some(&bytes), &precondition)
    })
    .with_failpoint("put.before_index_commit");
    let done = inner.committer.submit(commit).await?;
    done.finish(&inner.failpoints, "put.after_index_commit")
        .await
}

/// The PUT of a streamed object: body into a durable data file, then the record.
async fn put_file(
    inner: &Arc<Inner>,
    bucket: &str,
    key: &str,
    body: BodyStream,
    limits: BodyLimits,
    options: PutOptions,
) -> Result<ObjectMeta, StoreError> {
    // Refuse early rather than stream a body into a bucket that does not exist; the commit
    // checks again.
    ensure_bucket(inner, bucket).await?;
    let written = data::write_body(&inner.data, &inner.read.write_path(), body, limits).await?;
    if let Err(e) = inner.failpoints.trigger("put.after_data_fsync") {
        written.file.abandon();
        return Err(e);
    }
    let segment = Segment::File {
        file: written.file.id(),
        len: written.len,
    };
    let record = new_record(
        key,
        written.len,
        written.md5,
        segment,
        options.final_attrs(),
    );
    let bucket = bucket.to_owned();
    let precondition = options.precondition;
    let commit = Commit::new("commit object", move |txn: &WriteTransaction| {
        apply_put(txn, &bucket, record, None, &precondition)
    })
    .with_file(written.file)
    .with_failpoint("put.before_index_commit");
    let done = inner.committer.submit(commit).await?;
    done.finish(&inner.failpoints, "put.after_index_commit")
        .await
}

/// The record of a new single-part version, stamped now.
fn new_record(
    key: &str,
    size: u64,
    md5: [u8; 16],
    segment: Segment,
    attrs: ObjectAttrs,
) -> ObjectRecord {
    ObjectRecord {
        meta: ObjectMeta {
            key: key.to_owned(),
            size,
            etag: hex::encode(md5),
            last_modified: SystemTime::now(),
            parts_count: None,
            attrs,
        },
        segments: vec![segment],
    }
}

/// The PUT request inside a committer batch: checks the bucket and the precondition, then
/// writes the record (and its inline `bytes`, if any) and drops the replaced version's inline
/// bytes. The replaced version's files are freed after the commit. Blocking.
fn apply_put(
    txn: &WriteTransaction,
    bucket: &str,
    record: ObjectRecord,
    bytes: Option<&Bytes>,
    precondition: &PutPrecondition,
) -> Result<Applied<ObjectMeta>, StoreError> {
    let key = record.meta.key.as_str();
    let buckets = txn.open_table(BUCKETS).map_err(index_err("open buckets"))?;
    index::require_bucket(&buckets, bucket)?;
    let mut objects = txn.open_table(OBJECTS).map_err(index_err("open objects"))?;
    let current = index::read_object(&objects, bucket, key)?;
    check_precondition(current.as_ref().map(|r| &r.meta), precondition, bucket, key)?;
    let value = encode(&record)?;
    // Every check passed; from here on only index errors (see `committer/mod.rs`).
    objects
        .insert((bucket, key.as_bytes()), value.as_slice())
        .map_err(index_err("insert object"))?;
    inline::replace(txn, bucket, key, current.as_ref(), bytes.map(|b| &b[..]))?;
    let freed: Vec<_> = current.iter().flat_map(ObjectRecord::files).collect();
    Ok(Applied::wrote(record.meta, freed))
}

/// Merges user metadata into the current version if its ETag is `etag`.
pub(super) async fn update_metadata(
    inner: &Arc<Inner>,
    bucket: &str,
    key: &str,
    etag: &str,
    metadata: std::collections::BTreeMap<String, String>,
) -> Result<ObjectMeta, StoreError> {
    let (bucket, key, etag) = (bucket.to_owned(), key.to_owned(), etag.to_owned());
    let commit = Commit::new("commit metadata update", move |txn: &WriteTransaction| {
        let buckets = txn.open_table(BUCKETS).map_err(index_err("open buckets"))?;
        index::require_bucket(&buckets, &bucket)?;
        let mut objects = txn.open_table(OBJECTS).map_err(index_err("open objects"))?;
        let Some(mut record) = index::read_object(&objects, &bucket, &key)? else {
            return Err(StoreError::NoSuchKey { bucket, key });
        };
        if record.meta.etag != etag {
            return Err(StoreError::PreconditionFailed { key });
        }
        record.meta.attrs.user_metadata.extend(metadata);
        let value = encode(&record)?;
        // Every check passed; from here on only index errors (see `committer/mod.rs`).
        objects
            .insert((bucket.as_str(), key.as_bytes()), value.as_slice())
            .map_err(index_err("update object"))?;
        Ok(Applied::wrote(record.meta, Vec::new()))
    });
    let done = inner.committer.submit(commit).await?;
    done.finish(&inner.failpoints, "update_metadata.after_commit")
        .await
}

/// Deletes an object; a missing key is fine.
pub(super) async fn delete(inner: &Arc<Inner>, bucket: &str, key: &str) -> Result<(), StoreError> {
    let (bucket, key) = (bucket.to_owned(), key.to_owned());
    let commit = Commit::new("commit object deletion", move |txn: &WriteTransaction| {
        let buckets = txn.open_table(BUCKETS).map_err(index_err("open buckets"))?;
        index::require_bucket(&buckets, &bucket)?;
        let mut objects = txn.open_table(OBJECTS).map_err(index_err("open objects"))?;
        let Some(current) = index::read_object(&objects, &bucket, &key)? else {
            return Ok(Applied::unchanged(()));
        };
        objects
            .remove((bucket.as_str(), key.as_bytes()))
            .map_err(index_err("remove object"))?;
        inline::replace(txn, &bucket, &key, Some(&current), None)?;
        Ok(Applied::wrote((), current.files()))
    });
    let done = inner.committer.submit(commit).await?;
    done.finish(&inner.failpoints, "delete.after_commit").await
}

/// Fails with [`StoreError::NoSuchBucket`] unless the bucket exists (a read transaction).
pub(super) async fn ensure_bucket(inner: &Arc<Inner>, bucket: &str) -> Result<(), StoreError> {
    let inner = Arc::clone(inner);
    let bucket = bucket.to_owned();
    blocking(move || {
        let txn = inner.db.begin_read().map_err(index_err("begin read"))?;
        let buckets = txn.open_table(BUCKETS).map_err(index_err("open buckets"))?;
        index::require_bucket(&buckets, &bucket)
    })
    .await
}

/// Checks a write precondition against the current version.
///
/// `If-Match` on a missing key fails with [`StoreError::NoSuchKey`], as S3 answers 404 there;
/// `If-Match: *` matches any existing version. ETags compare without quotes.
pub(super) fn check_precondition(
    current: Option<&ObjectMeta>,
    precondition: &PutPrecondition,
    bucket: &str,
    key: &str,
) -> Result<(), StoreError> {
    let failed = || StoreError::PreconditionFailed {
        key: key.to_owned(),
    };
    match (precondition, current) {
        (PutPrecondition::None, _) | (PutPrecondition::IfAbsent, None) => Ok(()),
        (PutPrecondition::IfAbsent, Some(_)) => Err(failed()),
        (PutPrecondition::IfMatch(_), None) => Err(StoreError::NoSuchKey {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        }),
        (PutPrecondition::IfMatch(want), Some(meta)) => {
            let want = want.trim().trim_matches('"');
            if want == "*" || want == meta.etag {
                Ok(())
            } else {
                Err(failed())
            }
        }
    }
}
