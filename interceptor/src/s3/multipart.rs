// SPDX-License-Identifier: Apache-2.0
//! Multipart uploads: create, upload part, complete, abort, list parts, list uploads.
//! (UploadPartCopy is in `copy`.)

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::S3Frontend;
use super::bucket::node_owner;
use super::checksum::DeclaredChecksum;
use super::convert::{
    attrs_from_input, content_md5, declared_len, etag, page_size, put_precondition, timestamp,
    verified_body,
};
use crate::store::{self, ListPartsRequest, ListUploadsRequest, PutOptions};
use crate::triggers::Event;

/// Highest part number S3 allows.
const MAX_PART_NUMBER: i32 = 10_000;

/// Validates a part number (1..=10000).
pub(super) fn part_number(n: i32) -> S3Result<u32> {
    if (1..=MAX_PART_NUMBER).contains(&n) {
        Ok(n.unsigned_abs())
    } else {
        Err(s3_error!(
            InvalidArgument,
            "part number {n} is outside 1..=10000"
        ))
    }
}

impl S3Frontend {
    pub(super) async fn op_create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let mut input = req.input;
        self.check_key(&input.key)?;
        self.refuse_bypassing_put_trigger(&input.bucket, &input.key, "multipart uploads")?;
        let attrs = attrs_from_input!(input);
        let upload_id = self
            .store
            .create_multipart(&input.bucket, &input.key, attrs)
            .await
            .map_err(|e| self.store_err(e))?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(upload_id),
            ..Default::default()
        }))
    }

    pub(super) async fn op_upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let declared = DeclaredChecksum::from_request(&req.headers, req.trailing_headers.as_ref())?;
        let mut input = req.input;
        let number = part_number(input.part_number)?;
        let options = PutOptions {
            expected_len: declared_len(input.body.as_ref()),
            content_md5: content_md5(input.content_md5.as_deref())?,
            ..Default::default()
        };
        let body = verified_body(input.body.take(), declared);
        let part = self
            .store
            .upload_part(
                &input.bucket,
                &input.key,
                &input.upload_id,
                number,
                body,
                options,
            )
            .await
            .map_err(|e| self.store_err(e))?;
        self.metrics.bytes_in.inc_by(part.size);
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(etag(&part.etag)),
            ..Default::default()
        }))
    }

    pub(super) async fn op_complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let mut input = req.input;
        let listed = input
            .multipart_upload
            .take()
            .and_then(|m| m.parts)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                s3_error!(
                    MalformedXML,
                    "CompleteMultipartUpload must list at least one part"
                )
            })?;
        let mut parts = Vec::with_capacity(listed.len());
        for p in listed {
            let (Some(number), Some(tag)) = (p.part_number, p.e_tag) else {
                return Err(s3_error!(
                    MalformedXML,
                    "every listed part needs a PartNumber and an ETag"
                ));
            };
            parts.push(store::CompletedPart {
                part_number: part_number(number)?,
                etag: tag.into_value(),
            });
        }
        let precondition = put_precondition(input.if_match.take(), input.if_none_match.take())?;
        let intents = self.event_intents(&input.bucket, &input.key, Event::PutDone)?;
        let result = self
            .store
            .complete_multipart(
                &input.bucket,
                &input.key,
                &input.upload_id,
                &parts,
                precondition,
            )
            .await;
        self.settle_events(&intents, result.is_ok());
        let meta = result.map_err(|e| self.store_err(e))?;
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            location: Some(format!("/{}/{}", input.bucket, input.key)),
            bucket: Some(input.bucket),
            key: Some(input.key),
            e_tag: Some(etag(&meta.etag)),
            ..Default::default()
        }))
    }

    pub(super) async fn op_abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let input = req.input;
        self.store
            .abort_multipart(&input.bucket, &input.key, &input.upload_id)
            .await
            .map_err(|e| self.store_err(e))?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    pub(super) async fn op_list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let input = req.input;
        let max_parts = page_size(input.max_parts, self.limits.max_list_keys, "max-parts")?;
        let marker = match input.part_number_marker {
            None => 0,
            Some(n) => u32::try_from(n).map_err(|_| {
                s3_error!(InvalidArgument, "part-number-marker must not be negative")
            })?,
        };
        let request = ListPartsRequest {
            part_number_marker: marker,
            max_parts,
        };
        let page = self
            .store
            .list_parts(&input.bucket, &input.key, &input.upload_id, &request)
            .await
            .map_err(|e| self.store_err(e))?;
        let parts = page
            .parts
            .into_iter()
            .map(|p| Part {
                part_number: i32::try_from(p.part_number).ok(),
                e_tag: Some(etag(&p.etag)),
                size: i64::try_from(p.size).ok(),
                last_modified: Some(timestamp(p.last_modified)),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            max_parts: i32::try_from(max_parts).ok(),
            part_number_marker: input.part_number_marker,
            next_part_number_marker: page
                .next_part_number_marker
                .and_then(|n| i32::try_from(n).ok()),
            is_truncated: Some(page.is_truncated),
            parts: Some(parts),
            owner: Some(node_owner()),
            storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
            ..Default::default()
        }))
    }

    pub(super) async fn op_list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let input = req.input;
        if input.delimiter.as_deref().is_some_and(|d| !d.is_empty()) {
            return Err(s3_error!(
                NotImplemented,
                "ListMultipartUploads with a delimiter is not supported"
            ));
        }
        let max_uploads = page_size(input.max_uploads, self.limits.max_list_keys, "max-uploads")?;
        let request = ListUploadsRequest {
            prefix: input.prefix.clone().unwrap_or_default(),
            key_marker: input.key_marker.clone().filter(|m| !m.is_empty()),
            upload_id_marker: input.upload_id_marker.clone().filter(|m| !m.is_empty()),
            max_uploads,
        };
        let page = self
            .store
            .list_uploads(&input.bucket, &request)
            .await
            .map_err(|e| self.store_err(e))?;
        let uploads = page
            .uploads
            .into_iter()
            .map(|u| MultipartUpload {
                key: Some(u.key),
                upload_id: Some(u.upload_id),
                initiated: Some(timestamp(u.initiated)),
                owner: Some(node_owner()),
                storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix,
            key_marker: input.key_marker,
            upload_id_marker: input.upload_id_marker,
            next_key_marker: page.next_key_marker,
            next_upload_id_marker: page.next_upload_id_marker,
            max_uploads: i32::try_from(max_uploads).ok(),
            is_truncated: Some(page.is_truncated),
            uploads: Some(uploads),
            ..Default::default()
        }))
    }
}
