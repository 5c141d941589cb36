// SPDX-License-Identifier: Apache-2.0
//! `StoreError`: what can go wrong behind the `ObjectStore` seam.
//!
//! Variants name the condition, not the wire code; `s3/error.rs` is the one place that maps
//! them to S3 error codes.

use std::path::PathBuf;

/// An error from an [`ObjectStore`](super::ObjectStore).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The bucket does not exist.
    #[error("bucket {bucket} does not exist")]
    NoSuchBucket {
        /// Bucket name.
        bucket: String,
    },
    /// `create_bucket` on an existing bucket.
    #[error("bucket {bucket} already exists")]
    BucketAlreadyExists {
        /// Bucket name.
        bucket: String,
    },
    /// `delete_bucket` on a bucket that still holds objects.
    #[error("bucket {bucket} is not empty")]
    BucketNotEmpty {
        /// Bucket name.
        bucket: String,
    },
    /// The key does not exist.
    #[error("key {key} does not exist in bucket {bucket}")]
    NoSuchKey {
        /// Bucket name.
        bucket: String,
        /// Key.
        key: String,
    },
    /// The multipart upload does not exist (never did, completed, or aborted).
    #[error("multipart upload {upload_id} does not exist")]
    NoSuchUpload {
        /// Upload id.
        upload_id: String,
    },
    /// The range cannot be satisfied for an object of this size.
    #[error("range not satisfiable for an object of {size} bytes")]
    InvalidRange {
        /// Object size.
        size: u64,
    },
    /// The body is larger than the configured limit.
    #[error("body exceeds the limit of {limit} bytes")]
    EntityTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// A non-last part is smaller than the minimum part size.
    #[error("part {part_number} has {size} bytes, less than the minimum part size of {min} bytes")]
    EntityTooSmall {
        /// Part number.
        part_number: u32,
        /// Its size.
        size: u64,
        /// The minimum.
        min: u64,
    },
    /// The body ended before the declared length, or ran past it.
    #[error("body length {received} does not match the declared length {expected}")]
    IncompleteBody {
        /// Declared length.
        expected: u64,
        /// Bytes received.
        received: u64,
    },
    /// `Content-MD5` does not match the body.
    #[error("Content-MD5 does not match the body")]
    BadDigest,
    /// A part named in CompleteMultipartUpload is missing or its ETag differs.
    #[error("part {part_number} was not uploaded or its ETag does not match")]
    InvalidPart {
        /// Part number.
        part_number: u32,
    },
    /// Parts in CompleteMultipartUpload are not in strictly ascending order.
    #[error("parts are not listed in ascending order")]
    InvalidPartOrder,
    /// A part number outside 1..=10000, or an empty part list.
    #[error("invalid part list: {reason}")]
    InvalidPartList {
        /// What is wrong.
        reason: &'static str,
    },
    /// A write precondition (`If-Match`, `If-None-Match`) failed.
    #[error("precondition failed for key {key}")]
    PreconditionFailed {
        /// Key.
        key: String,
    },
    /// Reading the client's body failed (disconnect, bad chunk encoding, checksum).
    #[error("failed to read the request body")]
    Body {
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A filesystem operation on a data file or directory failed.
    #[error("failed to {op} {path}")]
    Io {
        /// What was being done ("write data file", "fsync directory", ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The index database failed.
    #[error("index operation {op} failed")]
    Index {
        /// What was being done.
        op: &'static str,
        /// The cause (a redb error).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The store found data it cannot trust (an index entry whose data file is missing or
    /// shorter than recorded).
    #[error("corrupt object {bucket}/{key}: {detail}")]
    Corrupt {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// What is wrong.
        detail: String,
    },
}

impl StoreError {
    /// True for errors caused by the request (4xx), false for the store's own failures.
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            Self::Io { .. } | Self::Index { .. } | Self::Corrupt { .. }
        )
    }

    /// Wraps a redb (or other index) error.
    pub fn index(op: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Index {
            op,
            source: Box::new(source),
        }
    }
}
