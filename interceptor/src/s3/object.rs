// SPDX-License-Identifier: Apache-2.0
//! Object operations: PutObject, GetObject (with Range), HeadObject, DeleteObject(s).

use http::StatusCode;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use super::S3Frontend;
use super::checksum::DeclaredChecksum;
use super::conditions::{ConditionTarget, ReadConditions};
use super::convert::{
    apply_response_overrides, attrs_from_input, byte_range, content_md5, declared_len, etag,
    fill_output_attrs, put_precondition, streaming_blob, timestamp, verified_body,
};
use super::error::hook_error;
use super::functions::apply_function_headers;
use super::params::Explicit;
use crate::hooks::Chain;
use crate::store::PutOptions;
use crate::triggers::Event;

impl S3Frontend {
    pub(super) async fn op_put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let declared = DeclaredChecksum::from_request(&req.headers, req.trailing_headers.as_ref())?;
        let explicit = Explicit::parse(&req.headers, &req.uri)?;
        let mut input = req.input;
        self.check_key(&input.key)?;
        let chain = self.chain_for(&input.bucket, &input.key, Event::Put, &explicit)?;
        let options = PutOptions {
            attrs: attrs_from_input!(input),
            expected_len: declared_len(input.body.as_ref()),
            content_md5: content_md5(input.content_md5.as_deref())?,
            precondition: put_precondition(input.if_match.take(), input.if_none_match.take())?,
            late_metadata: None,
        };
        let body = verified_body(input.body.take(), declared);
        let intents = self.event_intents(&input.bucket, &input.key, Event::PutDone)?;
        let result = match (chain, &self.hooks) {
            (Some(chain), Some(hooks)) => {
                self.transformed_put(hooks, chain, &input.bucket, &input.key, body, options)
                    .await
            }
            _ => {
                self.plain_put(&input.bucket, &input.key, body, options)
                    .await
            }
        };
        self.settle_events(&intents, result.is_ok());
        result
    }

    async fn plain_put(
        &self,
        bucket: &str,
        key: &str,
        body: crate::store::BodyStream,
        options: PutOptions,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let meta = self
            .store
            .put_object(bucket, key, body, options)
            .await
            .map_err(|e| self.store_err(e))?;
        self.metrics.bytes_in.inc_by(meta.size);
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(etag(&meta.etag)),
            size: i64::try_from(meta.size).ok(),
            ..Default::default()
        }))
    }

    /// The chain intercepting a GET (`after-get`) or PUT on `bucket`/`key`, with the request's
    /// explicit functions. Explicit invocation on a node without functions is refused.
    fn chain_for(
        &self,
        bucket: &str,
        key: &str,
        event: Event,
        explicit: &Explicit,
    ) -> S3Result<Option<Chain>> {
        let Some(hooks) = &self.hooks else {
            if explicit.functions.is_empty() {
                return Ok(None);
            }
            return Err(s3_error!(
                NotImplemented,
                "functions are not enabled on this node"
            ));
        };
        if let Some(text) = &explicit.backend_class {
            text.parse::<quarry_offload::Policy>().map_err(|e| {
                S3Error::with_message(
                    S3ErrorCode::InvalidArgument,
                    format!("{}: {e}", super::params::BACKEND_CLASS),
                )
            })?;
        }
        let chain = hooks
            .sync_chain(bucket, key, event, &explicit.functions, &explicit.params)
            .map_err(|e| hook_error(&e))?;
        Ok(chain.map(|mut chain| {
            chain.explicit_backend_class = explicit.backend_class.clone();
            chain
        }))
    }

    pub(super) async fn op_get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let explicit = Explicit::parse(&req.headers, &req.uri)?;
        let mut input = req.input;
        if input.part_number.is_some() {
            return Err(s3_error!(
                NotImplemented,
                "GetObject with partNumber is not supported; use Range"
            ));
        }
        let conditions = ReadConditions {
            if_match: input.if_match.take(),
            if_none_match: input.if_none_match.take(),
            if_modified_since: input.if_modified_since.take(),
            if_unmodified_since: input.if_unmodified_since.take(),
        };
        let range = input.range.take().map(byte_range);
        let mut hook_headers = Vec::new();
        if let Some(hooks) = self.hooks.clone() {
            let before = self.before_get(&hooks, &input.bucket, &input.key).await?;
            if let Some(key) = before.rewrite {
                self.check_key(&key)?;
                input.key = key;
            }
            hook_headers = before.headers;
        }
        if let (Some(chain), Some(hooks)) = (
            self.chain_for(&input.bucket, &input.key, Event::AfterGet, &explicit)?,
            self.hooks.clone(),
        ) {
            let mut resp = self
                .transformed_get(
                    &hooks,
                    chain,
                    &input.bucket,
                    &input.key,
                    conditions,
                    range,
                    hook_headers,
                )
                .await?;
            apply_response_overrides!(resp.output, input);
            return Ok(resp);
        }
        let reader = self
            .store
            .get_object(&input.bucket, &input.key, range)
            .await
            .map_err(|e| self.store_err(e))?;
        conditions.check(&reader.meta, ConditionTarget::Read)?;

        let content_length = reader.content_length();
        let meta = reader.meta;
        let mut out = GetObjectOutput {
            accept_ranges: Some("bytes".to_owned()),
            content_length: i64::try_from(content_length).ok(),
            e_tag: Some(etag(&meta.etag)),
            last_modified: Some(timestamp(meta.last_modified)),
            parts_count: meta.parts_count.and_then(|n| i32::try_from(n).ok()),
            body: Some(streaming_blob(reader.body)),
            ..Default::default()
        };
        fill_output_attrs!(out, meta.attrs);
        apply_response_overrides!(out, input);
        let status = reader.range.map(|r| {
            out.content_range = Some(format!(
                "bytes {}-{}/{}",
                r.start,
                r.start + r.len - 1,
                meta.size
            ));
            StatusCode::PARTIAL_CONTENT
        });
        self.metrics.bytes_out.inc_by(content_length);
        let mut resp = S3Response::new(out);
        resp.status = status;
        if !hook_headers.is_empty() {
            apply_function_headers(&mut resp.output, &mut resp.headers, &hook_headers);
            resp.output.content_length = i64::try_from(content_length).ok();
        }
        Ok(resp)
    }

    pub(super) async fn op_head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let mut input = req.input;
        if input.part_number.is_some() {
            return Err(s3_error!(
                NotImplemented,
                "HeadObject with partNumber is not supported"
            ));
        }
        let meta = self
            .store
            .head_object(&input.bucket, &input.key)
            .await
            .map_err(|e| self.store_err(e))?;
        let conditions = ReadConditions {
            if_match: input.if_match.take(),
            if_none_match: input.if_none_match.take(),
            if_modified_since: input.if_modified_since.take(),
            if_unmodified_since: input.if_unmodified_since.take(),
        };
        conditions.check(&meta, ConditionTarget::Read)?;
        let (content_length, content_range, status) = match input.range.take().map(byte_range) {
            None => (meta.size, None, None),
            Some(range) => {
                let r = range.resolve(meta.size).map_err(|e| self.store_err(e))?;
                let cr = format!("bytes {}-{}/{}", r.start, r.start + r.len - 1, meta.size);
                (r.len, Some(cr), Some(StatusCode::PARTIAL_CONTENT))
            }
        };
        let mut out = HeadObjectOutput {
            accept_ranges: Some("bytes".to_owned()),
            content_length: i64::try_from(content_length).ok(),
            content_range,
            e_tag: Some(etag(&meta.etag)),
            last_modified: Some(timestamp(meta.last_modified)),
            parts_count: meta.parts_count.and_then(|n| i32::try_from(n).ok()),
            ..Default::default()
        };
        fill_output_attrs!(out, meta.attrs);
        apply_response_overrides!(out, input);
        let mut resp = S3Response::new(out);
        resp.status = status;
        Ok(resp)
    }

    pub(super) async fn op_delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let input = req.input;
        if let Some(cond) = &input.if_match {
            self.check_delete_if_match(&input.bucket, &input.key, cond)
                .await?;
        }
        let intents = self.event_intents(&input.bucket, &input.key, Event::Delete)?;
        let result = self.store.delete_object(&input.bucket, &input.key).await;
        self.settle_events(&intents, result.is_ok());
        result.map_err(|e| self.store_err(e))?;
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    /// `If-Match` on DeleteObject: the current version must have that ETag. The check and the
    /// delete are two steps; a racing overwrite between them is deleted too.
    async fn check_delete_if_match(
        &self,
        bucket: &str,
        key: &str,
        cond: &ETagCondition,
    ) -> S3Result<()> {
        let meta = self
            .store
            .head_object(bucket, key)
            .await
            .map_err(|e| self.store_err(e))?;
        match cond {
            ETagCondition::Any => Ok(()),
            ETagCondition::ETag(tag) if tag.value() == meta.etag => Ok(()),
            ETagCondition::ETag(_) => Err(S3Error::with_message(
                S3ErrorCode::PreconditionFailed,
                "the object's ETag does not match If-Match",
            )),
        }
    }

    pub(super) async fn op_delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let input = req.input;
        let objects = input.delete.objects;
        if objects.len() > self.limits.max_delete_keys {
            return Err(s3_error!(
                MalformedXML,
                "DeleteObjects names {} keys; the limit is {}",
                objects.len(),
                self.limits.max_delete_keys
            ));
        }
        // Fail before deleting anything if the bucket is missing.
        self.store
            .head_bucket(&input.bucket)
            .await
            .map_err(|e| self.store_err(e))?;
        let quiet = input.delete.quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for object in objects {
            let result = match self
                .check_key(&object.key)
                .and_then(|()| self.event_intents(&input.bucket, &object.key, Event::Delete))
            {
                Ok(intents) => {
                    let result = self.store.delete_object(&input.bucket, &object.key).await;
                    self.settle_events(&intents, result.is_ok());
                    result.map_err(|e| self.store_err(e))
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(()) if quiet => {}
                Ok(()) => deleted.push(DeletedObject {
                    key: Some(object.key),
                    ..Default::default()
                }),
                Err(e) => errors.push(Error {
                    code: Some(e.code().as_str().to_owned()),
                    key: Some(object.key),
                    message: e.message().map(str::to_owned),
                    version_id: None,
                }),
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: Some(errors),
            ..Default::default()
        }))
    }
}
