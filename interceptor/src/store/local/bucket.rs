// SPDX-License-Identifier: Apache-2.0
//! Bucket operations and store totals.
//!
//! Deleting a bucket aborts its open multipart uploads in the same transaction that removes
//! the bucket, and frees their part files after the commit; a bucket that still holds objects
//! is refused. Creation and deletion are committer requests (`committer/mod.rs`): checks first,
//! writes after.

use std::sync::Arc;
use std::time::SystemTime;

use redb::{ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::committer::{Applied, Commit};
use super::index::{
    self, BUCKETS, INLINE, OBJECTS, ObjectSizeOnly, PARTS, PartRecord, UPLOADS, decode, encode,
    index_err,
};
use super::{Inner, blocking};
use crate::store::{BucketInfo, StoreError, StoreUsage};

/// Creates a bucket.
pub(super) async fn create(inner: &Arc<Inner>, bucket: &str) -> Result<BucketInfo, StoreError> {
    let info = BucketInfo {
        name: bucket.to_owned(),
        created: SystemTime::now(),
    };
    let commit = Commit::new("commit bucket", move |txn: &WriteTransaction| {
        let mut buckets = txn.open_table(BUCKETS).map_err(index_err("open buckets"))?;
        if buckets
            .get(info.name.as_str())
            .map_err(index_err("read bucket"))?
            .is_some()
        {
            return Err(StoreError::BucketAlreadyExists { bucket: info.name });
        }
        let value = encode(&info)?;
        buckets
            .insert(info.name.as_str(), value.as_slice())
            .map_err(index_err("insert bucket"))?;
        Ok(Applied::wrote(info, []))
    });
    Ok(inner.committer.submit(commit).await?.free().await)
}

/// Deletes an empty bucket, aborting its uploads.
pub(super) async fn delete(inner: &Arc<Inner>, bucket: &str) -> Result<(), StoreError> {
    let bucket = bucket.to_owned();
    let commit = Commit::new("commit bucket deletion", move |txn: &WriteTransaction| {
        apply_delete(txn, &bucket)
    });
    inner.committer.submit(commit).await?.free().await;
    Ok(())
}

/// The DeleteBucket request inside a committer batch. Blocking.
fn apply_delete(txn: &WriteTransaction, bucket: &str) -> Result<Applied<()>, StoreError> {
    let mut buckets = txn.open_table(BUCKETS).map_err(index_err("open buckets"))?;
    index::require_bucket(&buckets, bucket)?;
    let objects = txn.open_table(OBJECTS).map_err(index_err("open objects"))?;
    let mut first = objects
        .range((bucket, &b""[..])..)
        .map_err(index_err("scan objects"))?;
    if let Some(entry) = first.next() {
        let (k, _) = entry.map_err(index_err("scan objects"))?;
        if k.value().0 == bucket {
            return Err(StoreError::BucketNotEmpty {
                bucket: bucket.to_owned(),
            });
        }
    }
    // The bucket is empty; from here on only index errors (see `committer/mod.rs`).
    let mut uploads = txn.open_table(UPLOADS).map_err(index_err("open uploads"))?;
    let mut parts = txn.open_table(PARTS).map_err(index_err("open parts"))?;
    // `bucket + "\0"` is the least string after `bucket`: the range holds exactly the
    // bucket's uploads.
    let next = format!("{bucket}\0");
    let open: Vec<String> = uploads
        .extract_from_if((bucket, "", "")..(next.as_str(), "", ""), |_, _| true)
        .map_err(index_err("remove uploads"))?
        .map(|entry| entry.map(|(k, _)| k.value().2.to_owned()))
        .collect::<Result<_, _>>()
        .map_err(index_err("remove uploads"))?;
    let mut freed = Vec::new();
    for upload_id in &open {
        freed.extend(
            remove_parts(&mut parts, upload_id)?
                .into_iter()
                .map(|p| p.file),
        );
    }
    // An empty bucket has no inline bytes (each belongs to an object record); clearing its
    // range anyway keeps a bug elsewhere from leaking bytes into a later bucket of that name.
    let mut inline = txn.open_table(INLINE).map_err(index_err("open inline"))?;
    inline
        .retain_in((bucket, &b""[..])..(next.as_str(), &b""[..]), |_, _| false)
        .map_err(index_err("remove inline bytes"))?;
    buckets.remove(bucket).map_err(index_err("remove bucket"))?;
    Ok(Applied::wrote((), freed))
}

/// Removes every part record of an upload (inside the caller's write transaction) and
/// returns them, so their files can be freed after the commit.
pub(super) fn remove_parts(
    parts: &mut redb::Table<'_, (&'static str, u32), &'static [u8]>,
    upload_id: &str,
) -> Result<Vec<PartRecord>, StoreError> {
    let removed = parts
        .extract_from_if((upload_id, 0)..=(upload_id, u32::MAX), |_, _| true)
        .map_err(index_err("remove parts"))?;
    let mut out = Vec::new();
    for entry in removed {
        let (_, value) = entry.map_err(index_err("remove parts"))?;
        out.push(decode(value.value())?);
    }
    Ok(out)
}

/// Returns a bucket's facts.
pub(super) async fn head(inner: &Arc<Inner>, bucket: &str) -> Result<BucketInfo, StoreError> {
    let inner = Arc::clone(inner);
    let bucket = bucket.to_owned();
    blocking(move || {
        let txn = inner.db.begin_read().map_err(index_err("begin read"))?;
        let buckets = txn.open_table(BUCKETS).map_err(index_err("open buckets"))?;
        match buckets
            .get(bucket.as_str())
            .map_err(index_err("read bucket"))?
        {
            Some(value) => decode(value.value()),
            None => Err(StoreError::NoSuchBucket { bucket }),
        }
    })
    .await
}

/// Lists every bucket by name.
pub(super) async fn list(inner: &Arc<Inner>) -> Result<Vec<BucketInfo>, StoreError> {
    let inner = Arc::clone(inner);
    blocking(move || {
        let txn = inner.db.begin_read().map_err(index_err("begin read"))?;
        let buckets = txn.open_table(BUCKETS).map_err(index_err("open buckets"))?;
        let mut out = Vec::new();
        for entry in buckets.iter().map_err(index_err("scan buckets"))? {
            let (_, value) = entry.map_err(index_err("scan buckets"))?;
            out.push(decode(value.value())?);
        }
        Ok(out)
    })
    .await
}

/// Store totals. Cost: one read transaction that visits every object record (decoding only
/// its size), so O(objects); table lengths are O(1). Fine for `quarry status` and periodic
/// metrics, not for a per-request path.
pub(super) async fn usage(inner: &Arc<Inner>) -> Result<StoreUsage, StoreError> {
    let inner = Arc::clone(inner);
    blocking(move || {
        let txn = inner.db.begin_read().map_err(index_err("begin read"))?;
        let buckets = txn.open_table(BUCKETS).map_err(index_err("open buckets"))?;
        let objects = txn.open_table(OBJECTS).map_err(index_err("open objects"))?;
        let uploads = txn.open_table(UPLOADS).map_err(index_err("open uploads"))?;
        let mut object_bytes = 0u64;
        for entry in objects.iter().map_err(index_err("scan objects"))? {
            let (_, value) = entry.map_err(index_err("scan objects"))?;
            let record: ObjectSizeOnly = decode(value.value())?;
            object_bytes = object_bytes.saturating_add(record.meta.size);
        }
        Ok(StoreUsage {
            buckets: buckets.len().map_err(index_err("count buckets"))?,
            objects: objects.len().map_err(index_err("count objects"))?,
            object_bytes,
            uploads: uploads.len().map_err(index_err("count uploads"))?,
        })
    })
    .await
}
