// SPDX-License-Identifier: Apache-2.0
//! Bucket operations: create, delete, head, location, list.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::S3Frontend;
use super::convert::timestamp;

/// The single owner every bucket and object reports (one root identity per node for now).
pub(crate) fn node_owner() -> Owner {
    Owner {
        display_name: Some("quarry".to_owned()),
        id: Some("quarry".to_owned()),
    }
}

impl S3Frontend {
    pub(super) async fn op_create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let bucket = req.input.bucket;
        self.store
            .create_bucket(&bucket)
            .await
            .map_err(|e| self.store_err(e))?;
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{bucket}")),
        }))
    }

    pub(super) async fn op_delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.store
            .delete_bucket(&req.input.bucket)
            .await
            .map_err(|e| self.store_err(e))?;
        Ok(S3Response::new(DeleteBucketOutput {}))
    }

    pub(super) async fn op_head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.store
            .head_bucket(&req.input.bucket)
            .await
            .map_err(|e| self.store_err(e))?;
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    pub(super) async fn op_get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.store
            .head_bucket(&req.input.bucket)
            .await
            .map_err(|e| self.store_err(e))?;
        // us-east-1 is reported as an empty constraint, as AWS does.
        Ok(S3Response::new(GetBucketLocationOutput::default()))
    }

    pub(super) async fn op_list_buckets(
        &self,
        _req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let buckets = self
            .store
            .list_buckets()
            .await
            .map_err(|e| self.store_err(e))?;
        let buckets = buckets
            .into_iter()
            .map(|b| Bucket {
                name: Some(b.name),
                creation_date: Some(timestamp(b.created)),
                bucket_region: None,
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(node_owner()),
            ..Default::default()
        }))
    }
}
