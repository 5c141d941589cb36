// SPDX-License-Identifier: Apache-2.0
//! The S3 front end: an `s3s::S3` implementation over any [`ObjectStore`].
//!
//! s3s parses and authenticates requests (SigV4 headers, presigned URLs, aws-chunked bodies)
//! and renders responses and error XML; this module turns each operation into store calls.
//! The operations live in one file per group (`bucket`, `object`, `copy`, `list`,
//! `multipart`); this file only routes the trait's methods to them, since s3s requires a single
//! `impl S3` block. Store errors become S3 errors in exactly one place, [`error`].

mod access;
mod auth;
mod bucket;
mod checksum;
mod conditions;
mod convert;
mod copy;
pub mod error;
mod functions;
mod list;
mod multipart;
mod object;
pub mod params;
mod service;

pub use self::access::{OperationSlot, QuarryAccess};
pub use self::auth::RootAuth;
pub use self::service::{MeteredS3Service, S3ServiceConfig, build_service};

use std::sync::Arc;

use async_trait::async_trait;
use s3s::dto::*;
use s3s::{S3, S3Error, S3Request, S3Response, S3Result};

use crate::config::S3Limits;
use crate::hooks::Hooks;
use crate::metrics::S3Metrics;
use crate::store::{ObjectStore, StoreError};

/// The S3 operations of a Quarry node, served from an [`ObjectStore`].
#[derive(Clone)]
pub struct S3Frontend {
    store: Arc<dyn ObjectStore>,
    limits: S3Limits,
    metrics: S3Metrics,
    hooks: Option<Arc<Hooks>>,
}

impl std::fmt::Debug for S3Frontend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Frontend")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl S3Frontend {
    /// A front end over `store`, enforcing `limits` and recording into `metrics`.
    pub fn new(store: Arc<dyn ObjectStore>, limits: S3Limits, metrics: S3Metrics) -> Self {
        Self {
            store,
            limits,
            metrics,
            hooks: None,
        }
    }

    /// Runs functions on requests: triggers and explicit invocation (`x-quarry-function`).
    pub fn with_hooks(mut self, hooks: Arc<Hooks>) -> Self {
        self.hooks = Some(hooks);
        self
    }

    /// Maps a store error to S3, counting it in the store-error metric.
    fn store_err(&self, err: StoreError) -> S3Error {
        self.metrics.record_store_error(&err);
        error::to_s3_error(err)
    }

    /// Refuses keys longer than the configured limit (s3s already refuses > 1024 bytes).
    fn check_key(&self, key: &str) -> S3Result<()> {
        if key.len() > self.limits.max_key_len {
            return Err(S3Error::with_message(
                s3s::S3ErrorCode::KeyTooLongError,
                format!(
                    "key has {} bytes; the limit is {}",
                    key.len(),
                    self.limits.max_key_len
                ),
            ));
        }
        Ok(())
    }
}

type Res<T> = S3Result<S3Response<T>>;

#[async_trait]
impl S3 for S3Frontend {
    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> Res<CreateBucketOutput> {
        self.op_create_bucket(req).await
    }
    async fn delete_bucket(&self, req: S3Request<DeleteBucketInput>) -> Res<DeleteBucketOutput> {
        self.op_delete_bucket(req).await
    }
    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> Res<HeadBucketOutput> {
        self.op_head_bucket(req).await
    }
    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> Res<GetBucketLocationOutput> {
        self.op_get_bucket_location(req).await
    }
    async fn list_buckets(&self, req: S3Request<ListBucketsInput>) -> Res<ListBucketsOutput> {
        self.op_list_buckets(req).await
    }
    async fn put_object(&self, req: S3Request<PutObjectInput>) -> Res<PutObjectOutput> {
        self.op_put_object(req).await
    }
    async fn get_object(&self, req: S3Request<GetObjectInput>) -> Res<GetObjectOutput> {
        self.op_get_object(req).await
    }
    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> Res<HeadObjectOutput> {
        self.op_head_object(req).await
    }
    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> Res<DeleteObjectOutput> {
        self.op_delete_object(req).await
    }
    async fn delete_objects(&self, req: S3Request<DeleteObjectsInput>) -> Res<DeleteObjectsOutput> {
        self.op_delete_objects(req).await
    }
    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> Res<CopyObjectOutput> {
        self.op_copy_object(req).await
    }
    async fn list_objects(&self, req: S3Request<ListObjectsInput>) -> Res<ListObjectsOutput> {
        self.op_list_objects(req).await
    }
    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> Res<ListObjectsV2Output> {
        self.op_list_objects_v2(req).await
    }
    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> Res<CreateMultipartUploadOutput> {
        self.op_create_multipart_upload(req).await
    }
    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> Res<UploadPartOutput> {
        self.op_upload_part(req).await
    }
    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> Res<UploadPartCopyOutput> {
        self.op_upload_part_copy(req).await
    }
    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> Res<CompleteMultipartUploadOutput> {
        self.op_complete_multipart_upload(req).await
    }
    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> Res<AbortMultipartUploadOutput> {
        self.op_abort_multipart_upload(req).await
    }
    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> Res<ListPartsOutput> {
        self.op_list_parts(req).await
    }
    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> Res<ListMultipartUploadsOutput> {
        self.op_list_multipart_uploads(req).await
    }
}
