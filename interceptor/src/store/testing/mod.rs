// SPDX-License-Identifier: Apache-2.0
//! The store conformance suite, and body helpers that tests and benches share.
//!
//! Every [`ObjectStore`] implementation calls [`conformance`] from its tests; a new store is
//! done when it passes. The suite drives the seam only, through its documented behaviour:
//! buckets, whole-object writes and reads (ranges, overwrite, delete, snapshot reads), failed
//! writes that must leave nothing behind, preconditions, listing (prefix, delimiter, paging,
//! `start_after`), multipart uploads (the happy path and each error) and concurrent writers.
//!
//! The suite panics (through `assert!`) at the first behaviour that differs; it is test
//! tooling, compiled only for tests and with the `testing` feature.

mod listing;
mod multipart;
mod objects;

use std::io;

use bytes::Bytes;
use bytesize::ByteSize;
use futures::StreamExt;
use md5::{Digest, Md5};

use crate::config::StoreLimits;
use crate::store::{BodyStream, ObjectReader, ObjectStore, PutOptions};

/// The limits a store under [`conformance`] must be built with: small, so the limit checks
/// run on small bodies. Inline objects are off; a store that has them runs the suite again
/// with `inline_max` set (any value passes). Read buffers are one page, so every body over
/// 4 KiB is streamed in many chunks, and ranges and multipart segments cross chunk and block
/// boundaries.
pub fn conformance_limits() -> StoreLimits {
    StoreLimits {
        max_object_size: ByteSize::kib(100),
        min_part_size: ByteSize::kib(5),
        max_part_size: ByteSize::kib(64),
        inline_max: ByteSize::b(0),
        read_depth: 4,
        read_buffers: 16,
        read_buffer_size: ByteSize::kib(4),
        ..StoreLimits::default()
    }
}

/// Runs every behaviour check against `store`, which must be empty and built with
/// [`conformance_limits`]. Panics with a message naming the first check that fails.
pub async fn conformance(store: &dyn ObjectStore) {
    objects::buckets(store).await;
    objects::put_get_head(store).await;
    objects::ranges(store).await;
    objects::overwrite_and_delete(store).await;
    objects::failed_puts_store_nothing(store).await;
    objects::preconditions(store).await;
    objects::metadata_updates(store).await;
    objects::reads_see_the_version_they_opened(store).await;
    objects::concurrent_writers_leave_one_whole_winner(store).await;
    listing::prefix_and_delimiter(store).await;
    listing::pagination(store).await;
    listing::uploads(store).await;
    multipart::happy_path(store).await;
    multipart::errors(store).await;
    multipart::parts_and_aborts(store).await;
    objects::usage_counts(store).await;
}

/// A body of one chunk.
pub fn body_from(bytes: impl Into<Bytes>) -> BodyStream {
    let bytes: Bytes = bytes.into();
    Box::pin(futures::stream::iter([Ok(bytes)]))
}

/// A body of several chunks, as a client sending in pieces would.
pub fn body_from_chunks(chunks: Vec<Bytes>) -> BodyStream {
    Box::pin(futures::stream::iter(chunks.into_iter().map(Ok)))
}

/// A body that yields `prefix`, then fails as a dropped connection would.
pub fn failing_body(prefix: impl Into<Bytes>) -> BodyStream {
    let prefix: Bytes = prefix.into();
    let failure = io::Error::new(io::ErrorKind::ConnectionReset, "client went away");
    Box::pin(futures::stream::iter([Ok(prefix), Err(failure)]))
}

/// Reads a body to the end. A body of one chunk becomes the `Vec` without a copy (benches
/// compare this with `std::fs::read`).
pub async fn try_read_body(mut body: BodyStream) -> io::Result<Vec<u8>> {
    let Some(first) = body.next().await.transpose()? else {
        return Ok(Vec::new());
    };
    let Some(second) = body.next().await.transpose()? else {
        return Ok(Vec::from(first));
    };
    let mut out = Vec::with_capacity(first.len() + second.len());
    out.extend_from_slice(&first);
    out.extend_from_slice(&second);
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

/// Reads an open object to the end, checking it yields as many bytes as it announced.
///
/// # Panics
///
/// If the body fails or its length differs from [`ObjectReader::content_length`].
pub async fn read_all(reader: ObjectReader) -> Vec<u8> {
    let announced = reader.content_length();
    let bytes = try_read_body(reader.body)
        .await
        .expect("object body failed");
    assert_eq!(
        bytes.len() as u64,
        announced,
        "body length differs from content length"
    );
    bytes
}

/// `len` deterministic pseudo-random bytes derived from `seed` (xorshift), for test bodies.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Hex MD5 of `bytes`: the ETag of a single-part object.
pub fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// Raw MD5 of `bytes`, as `PutOptions::content_md5` takes it.
pub fn md5_raw(bytes: &[u8]) -> [u8; 16] {
    Md5::digest(bytes).into()
}

/// Stores `bytes` under `key`, declaring their length as the S3 front end does for a request
/// with a `Content-Length`, panicking on failure.
pub async fn put_bytes(store: &dyn ObjectStore, bucket: &str, key: &str, bytes: &[u8]) {
    let options = PutOptions {
        expected_len: Some(bytes.len() as u64),
        ..PutOptions::default()
    };
    store
        .put_object(bucket, key, body_from(bytes.to_vec()), options)
        .await
        .unwrap_or_else(|e| panic!("put {bucket}/{key} failed: {e}"));
}

/// Reads a whole object, panicking on failure.
pub async fn get_bytes(store: &dyn ObjectStore, bucket: &str, key: &str) -> Vec<u8> {
    let reader = store
        .get_object(bucket, key, None)
        .await
        .unwrap_or_else(|e| panic!("get {bucket}/{key} failed: {e}"));
    read_all(reader).await
}

/// Asserts that a result is the given error variant.
macro_rules! assert_err {
    ($result:expr, $pattern:pat $(,)?) => {
        match $result {
            Err($pattern) => {}
            other => panic!(
                "{}: expected Err({}), got {:?}",
                stringify!($result),
                stringify!($pattern),
                other
            ),
        }
    };
}
use assert_err;
