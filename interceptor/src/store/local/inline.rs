// SPDX-License-Identifier: Apache-2.0
//! Inline objects: small whole-object PUTs whose bytes live in the index itself.
//!
//! A PUT that declares a length of at most `StoreLimits::inline_max` is collected in memory,
//! through the same [`BodyLimits`] checks as a streamed body (size limit, declared length,
//! `Content-MD5`), and its bytes are written raw to the `inline` table, under the object's
//! own (bucket, key), in the same write transaction as its record. Its record has one
//! [`Segment::Inline`] and owns no data file. So the PUT costs one index commit (shared with
//! other requests by the committer) and no file or directory fsync, and it is exactly as
//! durable and as atomic as its record: both commit together or not at all.
//!
//! Reads take the bytes in the same read transaction that read the record: a consistent
//! snapshot, with no file to open and so no retry under concurrent overwrites. Every write of
//! an object record goes through [`replace`], which keeps the `inline` row in step with the
//! record (see the invariant in `index.rs`). Recovery never sees inline bytes: they are not
//! files.

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use md5::{Digest, Md5};
use redb::{ReadTransaction, WriteTransaction};

use super::data::BodyLimits;
use super::index::{INLINE, ObjectRecord, Segment, index_err};
use crate::store::{BodyStream, ResolvedRange, StoreError};

/// A body collected in memory, checked, not yet in the index.
#[derive(Debug)]
pub(super) struct Collected {
    /// The bytes.
    pub(super) bytes: Bytes,
    /// MD5 of the bytes.
    pub(super) md5: [u8; 16],
}

/// Collects a whole body in memory, hashing it on the way, with the checks of a streamed body.
/// The caller only sends bodies that declared a length of at most `inline_max`, and a body
/// running past its declared length is refused at once, so memory is bounded by `inline_max`.
pub(super) async fn collect_body(
    mut body: BodyStream,
    limits: BodyLimits,
) -> Result<Collected, StoreError> {
    limits.check_declared()?;
    let capacity = limits
        .expected_len
        .and_then(|len| usize::try_from(len).ok())
        .unwrap_or(0);
    let mut md5 = Md5::new();
    // The common case, a body of one chunk, is kept as it is; more chunks are copied together.
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    let mut received: u64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|source| StoreError::Body { source })?;
        if chunk.is_empty() {
            continue;
        }
        received = received.saturating_add(chunk.len() as u64);
        limits.check_received(received)?;
        md5.update(&chunk);
        match (&mut joined, first.take()) {
            (Some(joined), _) => joined.extend_from_slice(&chunk),
            (None, None) => first = Some(chunk),
            (None, Some(earlier)) => {
                let mut buf = BytesMut::with_capacity(capacity.max(earlier.len() + chunk.len()));
                buf.extend_from_slice(&earlier);
                buf.extend_from_slice(&chunk);
                joined = Some(buf);
            }
        }
    }
    let bytes = match (joined, first) {
        (Some(joined), _) => joined.freeze(),
        (None, first) => first.unwrap_or_default(),
    };
    let md5: [u8; 16] = md5.finalize().into();
    limits.check_complete(bytes.len() as u64, &md5)?;
    Ok(Collected { bytes, md5 })
}

/// Keeps the `inline` row of a key in step with a new object record, inside the caller's
/// write transaction: stores `new` (the new version's inline bytes), or, when the new version
/// is not inline or the key is being removed, deletes the bytes of the `old` version if it was
/// inline. Only index errors; call it after every check of the request passed.
pub(super) fn replace(
    txn: &WriteTransaction,
    bucket: &str,
    key: &str,
    old: Option<&ObjectRecord>,
    new: Option<&[u8]>,
) -> Result<(), StoreError> {
    let stale = old.is_some_and(ObjectRecord::is_inline);
    if new.is_none() && !stale {
        return Ok(());
    }
    let mut table = txn.open_table(INLINE).map_err(index_err("open inline"))?;
    match new {
        Some(bytes) => {
            table
                .insert((bucket, key.as_bytes()), bytes)
                .map_err(index_err("insert inline bytes"))?;
        }
        None => {
            table
                .remove((bucket, key.as_bytes()))
                .map_err(index_err("remove inline bytes"))?;
        }
    }
    Ok(())
}

/// Reads the bytes of an inline object (the `range` of them, or all), in the read transaction
/// that read its `record`. A missing row, or one whose length differs from the record's, is
/// corrupt. Blocking.
pub(super) fn read(
    txn: &ReadTransaction,
    bucket: &str,
    key: &str,
    record: &ObjectRecord,
    range: Option<ResolvedRange>,
) -> Result<Bytes, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        detail,
    };
    if !matches!(record.segments[..], [Segment::Inline { .. }]) {
        return Err(corrupt("an inline segment among others".to_owned()));
    }
    let table = txn.open_table(INLINE).map_err(index_err("open inline"))?;
    let guard = table
        .get((bucket, key.as_bytes()))
        .map_err(index_err("read inline bytes"))?
        .ok_or_else(|| corrupt("its inline bytes are missing".to_owned()))?;
    let bytes = guard.value();
    let size = record.meta.size;
    if bytes.len() as u64 != size {
        return Err(corrupt(format!(
            "{} inline bytes, {size} recorded",
            bytes.len()
        )));
    }
    let (start, len) = range.map_or((0, size), |r| (r.start, r.len));
    // Both fit: the range was resolved against `size`, which is the slice's length.
    let start = usize::try_from(start).map_err(|e| StoreError::index("slice inline bytes", e))?;
    let len = usize::try_from(len).map_err(|e| StoreError::index("slice inline bytes", e))?;
    Ok(Bytes::copy_from_slice(&bytes[start..start + len]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{body_from, body_from_chunks, failing_body, md5_raw};

    fn limits(max_len: u64, expected_len: Option<u64>) -> BodyLimits {
        BodyLimits {
            max_len,
            expected_len,
            content_md5: None,
        }
    }

    #[tokio::test]
    async fn one_chunk_body_is_kept_without_copying() {
        let chunk = Bytes::from_static(b"hello");
        let got = collect_body(body_from(chunk.clone()), limits(10, Some(5)))
            .await
            .unwrap();
        assert_eq!(got.bytes.as_ptr(), chunk.as_ptr());
        assert_eq!(got.md5, md5_raw(b"hello"));
    }

    #[tokio::test]
    async fn chunks_are_joined_in_order() {
        let chunks = vec![
            Bytes::from_static(b"ab"),
            Bytes::new(),
            Bytes::from_static(b"cd"),
            Bytes::from_static(b"e"),
        ];
        let got = collect_body(body_from_chunks(chunks), limits(10, Some(5)))
            .await
            .unwrap();
        assert_eq!(&got.bytes[..], b"abcde");
        assert_eq!(got.md5, md5_raw(b"abcde"));
    }

    #[tokio::test]
    async fn collected_body_gets_the_checks_of_a_streamed_one() {
        let short = collect_body(body_from(&b"abc"[..]), limits(10, Some(5))).await;
        assert!(matches!(
            short,
            Err(StoreError::IncompleteBody {
                expected: 5,
                received: 3
            })
        ));
        let long = collect_body(body_from(&b"abcdef"[..]), limits(10, Some(5))).await;
        assert!(matches!(long, Err(StoreError::IncompleteBody { .. })));
        let big = collect_body(body_from(&b"abcdef"[..]), limits(4, Some(6))).await;
        assert!(matches!(big, Err(StoreError::EntityTooLarge { limit: 4 })));
        let broken = collect_body(failing_body(&b"ab"[..]), limits(10, Some(5))).await;
        assert!(matches!(broken, Err(StoreError::Body { .. })));
        let digest = BodyLimits {
            content_md5: Some(md5_raw(b"other")),
            ..limits(10, Some(5))
        };
        let bad = collect_body(body_from(&b"abcde"[..]), digest).await;
        assert!(matches!(bad, Err(StoreError::BadDigest)));
    }
}
