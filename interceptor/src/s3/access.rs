// SPDX-License-Identifier: Apache-2.0
//! Access control after authentication, and the operation name for metrics.
//!
//! s3s verifies signatures; this check decides what an identity may do. Signed requests by a
//! known key may do everything (one root identity per node for now). Anonymous requests are
//! refused with `AccessDenied` unless the bucket is configured for anonymous reads, and then
//! only reads (GetObject, HeadObject, HeadBucket, ListObjects, ListObjectsV2) are allowed.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use s3s::access::{S3Access, S3AccessContext};
use s3s::path::S3Path;
use s3s::{S3Result, s3_error};

/// Operations an anonymous reader may perform on a bucket configured for it.
const ANONYMOUS_READ_OPS: &[&str] = &[
    "GetObject",
    "HeadObject",
    "HeadBucket",
    "ListObjects",
    "ListObjectsV2",
];

/// A request extension in which the access check records the S3 operation's name, so the
/// HTTP layer can label metrics with it once the response is ready.
#[derive(Debug, Clone, Default)]
pub struct OperationSlot(Arc<OnceLock<String>>);

impl OperationSlot {
    /// The operation's name, if the request got as far as the access check.
    pub fn get(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }

    fn set(&self, name: &str) {
        // A request passes the access check once; a second set would be a no-op anyway.
        let _ = self.0.set(name.to_owned());
    }
}

/// The node's access policy.
#[derive(Debug, Clone, Default)]
pub struct QuarryAccess {
    anonymous_read_buckets: BTreeSet<String>,
}

impl QuarryAccess {
    /// A policy allowing anonymous reads on exactly these buckets.
    pub fn new(anonymous_read_buckets: impl IntoIterator<Item = String>) -> Self {
        Self {
            anonymous_read_buckets: anonymous_read_buckets.into_iter().collect(),
        }
    }

    fn allows_anonymous(&self, op: &str, path: &S3Path) -> bool {
        let bucket = match path {
            S3Path::Bucket { bucket } | S3Path::Object { bucket, .. } => bucket,
            S3Path::Root => return false,
        };
        ANONYMOUS_READ_OPS.contains(&op) && self.anonymous_read_buckets.contains(&**bucket)
    }
}

#[async_trait]
impl S3Access for QuarryAccess {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let op = cx.s3_op().name().to_owned();
        if let Some(slot) = cx.extensions_mut().get::<OperationSlot>() {
            slot.set(&op);
        }
        if cx.credentials().is_some() || self.allows_anonymous(&op, cx.s3_path()) {
            return Ok(());
        }
        Err(s3_error!(
            AccessDenied,
            "anonymous requests are not allowed; sign the request (SigV4)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_reads_only_on_configured_buckets() {
        let access = QuarryAccess::new(["public".to_owned()]);
        let public = S3Path::Object {
            bucket: "public".into(),
            key: "k".into(),
        };
        let private = S3Path::Object {
            bucket: "private".into(),
            key: "k".into(),
        };
        assert!(access.allows_anonymous("GetObject", &public));
        assert!(!access.allows_anonymous("PutObject", &public));
        assert!(!access.allows_anonymous("GetObject", &private));
        assert!(!access.allows_anonymous("ListBuckets", &S3Path::Root));
    }
}
