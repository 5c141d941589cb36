// SPDX-License-Identifier: Apache-2.0
//! ListObjectsV2 and ListObjects (v1).
//!
//! Both map onto one store listing: v2's continuation token and v1's marker decode to the
//! store's exclusive `start_after`. With `encoding-type=url` every key, prefix and marker in
//! the response is percent-encoded, as the AWS CLI requests by default.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::S3Frontend;
use super::bucket::node_owner;
use super::convert::{ListEncoding, decode_token, encode_token, etag, page_size, timestamp};
use crate::store::{ListPage, ListRequest};

/// Store objects and prefixes as S3 DTOs.
fn contents(
    page: ListPage,
    enc: ListEncoding,
    with_owner: bool,
) -> (Vec<Object>, Vec<CommonPrefix>) {
    let objects = page
        .objects
        .into_iter()
        .map(|m| Object {
            key: Some(enc.encode(m.key)),
            size: i64::try_from(m.size).ok(),
            e_tag: Some(etag(&m.etag)),
            last_modified: Some(timestamp(m.last_modified)),
            storage_class: Some(ObjectStorageClass::from_static(
                ObjectStorageClass::STANDARD,
            )),
            owner: with_owner.then(node_owner),
            ..Default::default()
        })
        .collect();
    let prefixes = page
        .common_prefixes
        .into_iter()
        .map(|p| CommonPrefix {
            prefix: Some(enc.encode(p)),
        })
        .collect();
    (objects, prefixes)
}

impl S3Frontend {
    pub(super) async fn op_list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        let enc = ListEncoding::from_request(input.encoding_type.as_ref())?;
        let max_keys = page_size(input.max_keys, self.limits.max_list_keys, "max-keys")?;
        let start_after = match &input.continuation_token {
            Some(token) => Some(decode_token(token)?),
            None => input.start_after.clone(),
        };
        let request = ListRequest {
            prefix: input.prefix.clone().unwrap_or_default(),
            delimiter: input.delimiter.clone().filter(|d| !d.is_empty()),
            start_after,
            max_keys,
        };
        let page = self
            .store
            .list_objects(&input.bucket, &request)
            .await
            .map_err(|e| self.store_err(e))?;
        let is_truncated = page.is_truncated;
        let next = page
            .next_marker
            .as_deref()
            .filter(|_| is_truncated)
            .map(encode_token);
        let key_count = page.objects.len() + page.common_prefixes.len();
        let (objects, prefixes) = contents(page, enc, input.fetch_owner.unwrap_or(false));
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: Some(enc.encode(request.prefix)),
            delimiter: enc.encode_opt(input.delimiter),
            max_keys: i32::try_from(max_keys).ok(),
            key_count: i32::try_from(key_count).ok(),
            continuation_token: input.continuation_token,
            next_continuation_token: next,
            start_after: enc.encode_opt(input.start_after),
            is_truncated: Some(is_truncated),
            contents: Some(objects),
            common_prefixes: Some(prefixes),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    pub(super) async fn op_list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let input = req.input;
        let enc = ListEncoding::from_request(input.encoding_type.as_ref())?;
        let max_keys = page_size(input.max_keys, self.limits.max_list_keys, "max-keys")?;
        let request = ListRequest {
            prefix: input.prefix.clone().unwrap_or_default(),
            delimiter: input.delimiter.clone().filter(|d| !d.is_empty()),
            start_after: input.marker.clone().filter(|m| !m.is_empty()),
            max_keys,
        };
        let page = self
            .store
            .list_objects(&input.bucket, &request)
            .await
            .map_err(|e| self.store_err(e))?;
        let is_truncated = page.is_truncated;
        let next_marker = page.next_marker.clone().filter(|_| is_truncated);
        let (objects, prefixes) = contents(page, enc, true);
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(input.bucket),
            prefix: Some(enc.encode(request.prefix)),
            delimiter: enc.encode_opt(input.delimiter),
            marker: enc.encode_opt(input.marker),
            next_marker: enc.encode_opt(next_marker),
            max_keys: i32::try_from(max_keys).ok(),
            is_truncated: Some(is_truncated),
            contents: Some(objects),
            common_prefixes: Some(prefixes),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }
}
