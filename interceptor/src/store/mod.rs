// SPDX-License-Identifier: Apache-2.0
//! The `ObjectStore` seam: the storage behind the S3 front end.
//!
//! Everything the front end needs from a store is here, in S3's own terms (buckets, keys,
//! ranges, multipart uploads) but without any wire format. `LocalStore` is the embedded default;
//! `MemStore` backs tests. Every implementation runs `testing::conformance` (feature `testing`).
//!
//! Invariants every implementation keeps:
//! - a successful `put_object` / `complete_multipart` is durable when it returns, and an object
//!   is either wholly visible or not visible at all;
//! - concurrent writers to one key end with exactly one whole winner;
//! - keys are data, never paths: no key ever becomes part of a filesystem name.

pub mod error;
pub mod local;
pub mod memory;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod types;

pub use self::error::StoreError;
pub use self::types::{
    BodyStream, BucketInfo, ByteRange, CompletedPart, ListPage, ListPartsRequest, ListRequest,
    ListUploadsRequest, ObjectAttrs, ObjectMeta, ObjectReader, PartInfo, PartsPage, PutOptions,
    PutPrecondition, ResolvedRange, StoreUsage, UploadInfo, UploadsPage,
};

use async_trait::async_trait;

/// The storage behind the S3 front end.
///
/// Bucket and key names arrive already validated by the front end (bucket naming rules, key
/// length limit); implementations still never turn them into filesystem paths.
#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Creates a bucket. Fails with [`StoreError::BucketAlreadyExists`] if it exists.
    async fn create_bucket(&self, bucket: &str) -> Result<BucketInfo, StoreError>;

    /// Deletes an empty bucket, aborting any multipart uploads still open in it.
    /// Fails with [`StoreError::BucketNotEmpty`] while it holds objects.
    async fn delete_bucket(&self, bucket: &str) -> Result<(), StoreError>;

    /// Returns the bucket's facts, or [`StoreError::NoSuchBucket`].
    async fn head_bucket(&self, bucket: &str) -> Result<BucketInfo, StoreError>;

    /// Lists every bucket, sorted by name.
    async fn list_buckets(&self) -> Result<Vec<BucketInfo>, StoreError>;

    /// Returns an object's metadata without its body.
    async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectMeta, StoreError>;

    /// Opens an object for reading, optionally a byte range of it. The reader sees the version
    /// that was current when this call ran, even if the key is overwritten meanwhile.
    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<ObjectReader, StoreError>;

    /// Stores a whole object from a stream. Returns once data and index entry are durable.
    /// On any error (body error, size limit, digest mismatch, failed precondition) nothing is
    /// stored and the previous version, if any, is untouched.
    async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: BodyStream,
        options: PutOptions,
    ) -> Result<ObjectMeta, StoreError>;

    /// Merges `metadata` into the user metadata of `key`, atomically, if its current version
    /// still has ETag `etag` ([`StoreError::PreconditionFailed`] otherwise). Data, ETag and the
    /// other headers stay as they are.
    async fn update_metadata(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
        metadata: std::collections::BTreeMap<String, String>,
    ) -> Result<ObjectMeta, StoreError>;

    /// Deletes an object. Deleting a missing key succeeds (S3 semantics); a missing bucket
    /// does not.
    async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), StoreError>;

    /// Lists objects in key order (bytewise, as S3 does).
    async fn list_objects(
        &self,
        bucket: &str,
        request: &ListRequest,
    ) -> Result<ListPage, StoreError>;

    /// Starts a multipart upload and returns its upload id.
    async fn create_multipart(
        &self,
        bucket: &str,
        key: &str,
        attrs: ObjectAttrs,
    ) -> Result<String, StoreError>;

    /// Stores one part durably, replacing an earlier part with the same number.
    /// `options.attrs` and `options.precondition` are ignored for parts.
    async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: BodyStream,
        options: PutOptions,
    ) -> Result<PartInfo, StoreError>;

    /// Assembles the listed parts into the object, atomically. Parts must be in ascending order,
    /// their ETags must match, and every part but the last must reach the minimum part size.
    /// The resulting ETag is S3's: hex(md5(concat(md5(part_i)))) + "-" + part count.
    async fn complete_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
        precondition: PutPrecondition,
    ) -> Result<ObjectMeta, StoreError>;

    /// Aborts an upload and frees its parts.
    async fn abort_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), StoreError>;

    /// Lists the parts stored so far for an upload, by part number.
    async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        request: &ListPartsRequest,
    ) -> Result<PartsPage, StoreError>;

    /// Lists the multipart uploads open in a bucket, by key then upload id.
    async fn list_uploads(
        &self,
        bucket: &str,
        request: &ListUploadsRequest,
    ) -> Result<UploadsPage, StoreError>;

    /// Totals for `quarry status` and metrics.
    async fn usage(&self) -> Result<StoreUsage, StoreError>;
}
