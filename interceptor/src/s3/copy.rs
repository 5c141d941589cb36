// SPDX-License-Identifier: Apache-2.0
//! CopyObject and UploadPartCopy: stream the source version into a new object or part.
//!
//! The source is opened once (its version is fixed from then on, even if overwritten) and its
//! bytes flow straight into the destination write; nothing is buffered whole.

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use super::S3Frontend;
use super::conditions::{ConditionTarget, ReadConditions};
use super::convert::{attrs_from_input, copy_source_range, etag, timestamp};
use crate::store::{ByteRange, ObjectReader, PutOptions, PutPrecondition};
use crate::triggers::Event;

/// Where the bytes of a copy come from.
struct Source<'a> {
    bucket: &'a str,
    key: &'a str,
}

fn parse_source(src: &CopySource) -> S3Result<Source<'_>> {
    match src {
        CopySource::Bucket {
            bucket,
            key,
            version_id: None,
        } => Ok(Source { bucket, key }),
        CopySource::Bucket {
            version_id: Some(_),
            ..
        } => Err(s3_error!(
            NotImplemented,
            "versioned copy sources are not supported"
        )),
        CopySource::AccessPoint { .. } | CopySource::Outpost { .. } => Err(s3_error!(
            NotImplemented,
            "access point and outpost copy sources are not supported"
        )),
    }
}

impl S3Frontend {
    /// Opens the copy source and checks its `x-amz-copy-source-if-*` conditions.
    async fn open_source(
        &self,
        src: &Source<'_>,
        range: Option<ByteRange>,
        conditions: ReadConditions,
    ) -> S3Result<ObjectReader> {
        let reader = self
            .store
            .get_object(src.bucket, src.key, range)
            .await
            .map_err(|e| self.store_err(e))?;
        conditions.check(&reader.meta, ConditionTarget::CopySource)?;
        Ok(reader)
    }

    pub(super) async fn op_copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let mut input = req.input;
        self.check_key(&input.key)?;
        self.refuse_bypassing_put_trigger(&input.bucket, &input.key, "copies")?;
        let copy_source = input.copy_source.clone();
        let src = parse_source(&copy_source)?;
        self.refuse_intercepted_copy_source(src.bucket, src.key)?;
        let replace = match input.metadata_directive.as_ref().map(|d| d.as_str()) {
            None | Some(MetadataDirective::COPY) => false,
            Some(MetadataDirective::REPLACE) => true,
            Some(other) => {
                return Err(s3_error!(
                    InvalidArgument,
                    "unknown metadata directive {other:?}"
                ));
            }
        };
        if !replace && src.bucket == input.bucket && src.key == input.key {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "This copy request is illegal because it is trying to copy an object to itself without changing \
                 the object's metadata; use the REPLACE metadata directive",
            ));
        }
        let conditions = ReadConditions {
            if_match: input.copy_source_if_match.take(),
            if_none_match: input.copy_source_if_none_match.take(),
            if_modified_since: input.copy_source_if_modified_since.take(),
            if_unmodified_since: input.copy_source_if_unmodified_since.take(),
        };
        let reader = self.open_source(&src, None, conditions).await?;
        let attrs = if replace {
            attrs_from_input!(input)
        } else {
            reader.meta.attrs.clone()
        };
        let options = PutOptions {
            attrs,
            expected_len: Some(reader.meta.size),
            content_md5: None,
            precondition: PutPrecondition::None,
            late_metadata: None,
        };
        let intents = self.event_intents(&input.bucket, &input.key, Event::Copy)?;
        let result = self
            .store
            .put_object(&input.bucket, &input.key, reader.body, options)
            .await;
        self.settle_events(&intents, result.is_ok());
        let meta = result.map_err(|e| self.store_err(e))?;
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(etag(&meta.etag)),
                last_modified: Some(timestamp(meta.last_modified)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    pub(super) async fn op_upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let mut input = req.input;
        let part_number = super::multipart::part_number(input.part_number)?;
        let src = parse_source(&input.copy_source)?;
        self.refuse_intercepted_copy_source(src.bucket, src.key)?;
        let range = input
            .copy_source_range
            .as_deref()
            .map(copy_source_range)
            .transpose()?;
        let conditions = ReadConditions {
            if_match: input.copy_source_if_match.take(),
            if_none_match: input.copy_source_if_none_match.take(),
            if_modified_since: input.copy_source_if_modified_since.take(),
            if_unmodified_since: input.copy_source_if_unmodified_since.take(),
        };
        let reader = self.open_source(&src, range, conditions).await?;
        let options = PutOptions {
            expected_len: Some(reader.content_length()),
            ..Default::default()
        };
        let part = self
            .store
            .upload_part(
                &input.bucket,
                &input.key,
                &input.upload_id,
                part_number,
                reader.body,
                options,
            )
            .await
            .map_err(|e| self.store_err(e))?;
        self.metrics.bytes_in.inc_by(part.size);
        Ok(S3Response::new(UploadPartCopyOutput {
            copy_part_result: Some(CopyPartResult {
                e_tag: Some(etag(&part.etag)),
                last_modified: Some(timestamp(part.last_modified)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }
}
