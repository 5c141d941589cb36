// SPDX-License-Identifier: Apache-2.0
//! Whole-object operations: head, get, put, delete.
//!
//! PUT writes and fsyncs a new data file first, then commits the record in one redb write
//! transaction that also checks the bucket and the precondition; the version it replaces
//! loses its files only after that commit. Until the commit the new file is owned by a
//! [`NewFile`] guard, moved into the blocking commit task so that a request dropped while the
//! commit runs cannot remove a file the index is about to reference.

use std::sync::Arc;
use std::time::SystemTime;

use super::data::{self, BodyLimits, NewFile};
use super::index::{self, BUCKETS, OBJECTS, ObjectRecord, Segment, decode, encode, index_err};
use super::{Inner, blocking, read};
use crate::store::{
    BodyStream, ByteRange, ObjectMeta, ObjectReader, PutOptions, PutPrecondition, StoreError,
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
    let (opened, body) = blocking(move || {
        let mut opened = read::open_version(&task_inner, &bucket, &key, range)?;
        let body = read::prepare_body(std::mem::take(&mut opened.pieces))?;
        Ok((opened, body))
    })
    .await?;
    Ok(ObjectReader {
        meta: opened.meta,
        range: opened.range,
        body: read::into_stream(body),
    })
}

/// Stores a whole object.
pub(super) async fn put(
    inner: &Arc<Inner>,
    bucket: &str,
    key: &str,
    body: BodyStream,
    options: PutOptions,
) -> Result<ObjectMeta, StoreError> {
    // Refuse early rather than stream a body into a bucket that does not exist; the commit
    // checks again.
    ensure_bucket(inner, bucket).await?;
    let limits = BodyLimits {
        max_len: inner.limits.max_object_size.as_u64(),
        expected_len: options.expected_len,
        content_md5: options.content_md5,
    };
    let written = data::write_body(&inner.data, body, limits).await?;
    if let Err(e) = inner.failpoints.trigger("put.after_data_fsync") {
        written.file.abandon();
        return Err(e);
    }
    let record = ObjectRecord {
        meta: ObjectMeta {
            key: key.to_owned(),
            size: written.len,
            etag: hex::encode(written.md5),
            last_modified: SystemTime::now(),
            parts_count: None,
            attrs: options.attrs,
        },
        segments: vec![Segment {
            file: written.file.id(),
            len: written.len,
        }],
    };
    let task_inner = Arc::clone(inner);
    let bucket = bucket.to_owned();
    let precondition = options.precondition;
    blocking(move || commit_put(&task_inner, &bucket, record, written.file, &precondition)).await
}

/// The PUT transaction. Blocking.
fn commit_put(
    inner: &Inner,
    bucket: &str,
    record: ObjectRecord,
    file: NewFile,
    precondition: &PutPrecondition,
) -> Result<ObjectMeta, StoreError> {
    let key = record.meta.key.as_str();
    let txn = inner.db.begin_write().map_err(index_err("begin write"))?;
    let replaced = {
        let buckets = txn.open_table(BUCKETS).map_err(index_err("open buckets"))?;
        index::require_bucket(&buckets, bucket)?;
        let mut objects = txn.open_table(OBJECTS).map_err(index_err("open objects"))?;
        let current = index::read_object(&objects, bucket, key)?;
        check_precondition(current.as_ref().map(|r| &r.meta), precondition, bucket, key)?;
        let value = encode(&record)?;
        objects
            .insert((bucket, key.as_bytes()), value.as_slice())
            .map_err(index_err("insert object"))?;
        current
    };
    if let Err(e) = inner.failpoints.trigger("put.before_index_commit") {
        file.abandon();
        return Err(e);
    }
    commit_keeping(txn, file, "commit object")?;
    inner.failpoints.trigger("put.after_index_commit")?;
    if let Some(old) = replaced {
        inner.data.remove_files(old.files());
    }
    Ok(record.meta)
}

/// Commits a transaction that references `file`. If the commit fails the file is left in
/// place: a failed commit may still have reached the disk, and an orphan (removed by recovery
/// at the next open) is harmless where a dangling reference is not.
pub(super) fn commit_keeping(
    txn: redb::WriteTransaction,
    file: NewFile,
    op: &'static str,
) -> Result<(), StoreError> {
    match txn.commit() {
        Ok(()) => {
            file.keep();
            Ok(())
        }
        Err(e) => {
            file.abandon();
            Err(index_err(op)(e))
        }
    }
}

/// Deletes an object; a missing key is fine.
pub(super) async fn delete(inner: &Arc<Inner>, bucket: &str, key: &str) -> Result<(), StoreError> {
    let inner = Arc::clone(inner);
    let (bucket, key) = (bucket.to_owned(), key.to_owned());
    blocking(move || {
        let txn = inner.db.begin_write().map_err(index_err("begin write"))?;
        let removed: Option<ObjectRecord> = {
            let buckets = txn.open_table(BUCKETS).map_err(index_err("open buckets"))?;
            index::require_bucket(&buckets, &bucket)?;
            let mut objects = txn.open_table(OBJECTS).map_err(index_err("open objects"))?;
            let old = objects
                .remove((bucket.as_str(), key.as_bytes()))
                .map_err(index_err("remove object"))?;
            old.map(|v| decode(v.value())).transpose()?
        };
        let Some(removed) = removed else {
            return Ok(()); // nothing to commit
        };
        txn.commit().map_err(index_err("commit object deletion"))?;
        inner.failpoints.trigger("delete.after_commit")?;
        inner.data.remove_files(removed.files());
        Ok(())
    })
    .await
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
