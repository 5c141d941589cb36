// SPDX-License-Identifier: Apache-2.0
//! Conversions between s3s DTOs and store values, parsed once per request.

use std::time::SystemTime;

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use futures::TryStreamExt;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use s3s::dto::{ETag, ETagCondition, StreamingBlob, Timestamp};
use s3s::{S3Error, S3ErrorCode, s3_error};

use super::checksum::DeclaredChecksum;
use crate::store::{BodyStream, ByteRange, PutPrecondition};

/// Builds [`ObjectAttrs`] from any input DTO that carries the standard object headers
/// (PutObject, CreateMultipartUpload, CopyObject with `REPLACE`).
macro_rules! attrs_from_input {
    ($input:expr) => {
        $crate::store::ObjectAttrs {
            content_type: $input.content_type.take(),
            content_encoding: $crate::s3::convert::stored_content_encoding(
                $input.content_encoding.take(),
            ),
            content_disposition: $input.content_disposition.take(),
            content_language: $input.content_language.take(),
            cache_control: $input.cache_control.take(),
            expires: $input
                .expires
                .take()
                .map(|t| std::time::SystemTime::from(time::OffsetDateTime::from(t))),
            user_metadata: $input
                .metadata
                .take()
                .map(|m| {
                    m.into_iter()
                        .map(|(k, v)| (k.to_ascii_lowercase(), v))
                        .collect()
                })
                .unwrap_or_default(),
        }
    };
}
pub(crate) use attrs_from_input;

/// `Content-Encoding` as stored: without the `aws-chunked` transfer token that SDKs add to
/// streaming uploads (it describes the upload, not the object).
pub(crate) fn stored_content_encoding(value: Option<String>) -> Option<String> {
    let value = value?;
    let kept: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("aws-chunked"))
        .collect();
    (!kept.is_empty()).then(|| kept.join(","))
}

/// Copies stored attributes into an output DTO with the standard object headers
/// (GetObject, HeadObject).
macro_rules! fill_output_attrs {
    ($out:expr, $attrs:expr) => {{
        let attrs: $crate::store::ObjectAttrs = $attrs;
        $out.content_type = attrs.content_type;
        $out.content_encoding = attrs.content_encoding;
        $out.content_disposition = attrs.content_disposition;
        $out.content_language = attrs.content_language;
        $out.cache_control = attrs.cache_control;
        $out.expires = attrs.expires.map(s3s::dto::Timestamp::from);
        if !attrs.user_metadata.is_empty() {
            $out.metadata = Some(attrs.user_metadata.into_iter().collect());
        }
    }};
}
pub(crate) use fill_output_attrs;

/// Applies the `response-*` query overrides of GetObject and HeadObject.
macro_rules! apply_response_overrides {
    ($out:expr, $input:expr) => {{
        if let Some(v) = $input.response_content_type.take() {
            $out.content_type = Some(v);
        }
        if let Some(v) = $input.response_content_encoding.take() {
            $out.content_encoding = Some(v);
        }
        if let Some(v) = $input.response_content_disposition.take() {
            $out.content_disposition = Some(v);
        }
        if let Some(v) = $input.response_content_language.take() {
            $out.content_language = Some(v);
        }
        if let Some(v) = $input.response_cache_control.take() {
            $out.cache_control = Some(v);
        }
        if let Some(v) = $input.response_expires.take() {
            $out.expires = Some(v);
        }
    }};
}
pub(crate) use apply_response_overrides;

/// The ETag value as the wire carries it.
pub(crate) fn etag(value: &str) -> ETag {
    ETag::Strong(value.to_owned())
}

/// A stored time as an s3s timestamp.
pub(crate) fn timestamp(t: SystemTime) -> Timestamp {
    Timestamp::from(t)
}

/// Converts an s3s request body into a store body stream.
pub(crate) fn body_stream(blob: Option<StreamingBlob>) -> BodyStream {
    match blob {
        Some(blob) => Box::pin(blob.map_err(std::io::Error::other)),
        None => Box::pin(futures::stream::empty()),
    }
}

/// The request body as a store stream, checked against its declared checksum if any.
pub(crate) fn verified_body(
    blob: Option<StreamingBlob>,
    declared: Option<DeclaredChecksum>,
) -> BodyStream {
    let body = body_stream(blob);
    match declared {
        Some(d) => d.verify(body),
        None => body,
    }
}

/// Converts a store body stream into an s3s response body.
pub(crate) fn streaming_blob(body: BodyStream) -> StreamingBlob {
    StreamingBlob::wrap(body)
}

/// The exact body length when the request declares one (after aws-chunked decoding).
pub(crate) fn declared_len(blob: Option<&StreamingBlob>) -> Option<u64> {
    use s3s::stream::ByteStream;
    blob.and_then(|b| b.remaining_length().exact())
        .map(|n| n as u64)
}

/// Decodes a `Content-MD5` header (base64 of 16 bytes).
pub(crate) fn content_md5(header: Option<&str>) -> Result<Option<[u8; 16]>, S3Error> {
    let Some(header) = header else {
        return Ok(None);
    };
    let invalid = || {
        S3Error::with_message(
            S3ErrorCode::InvalidDigest,
            "Content-MD5 is not base64 of 16 bytes",
        )
    };
    let bytes = BASE64_STANDARD
        .decode(header.trim())
        .map_err(|_| invalid())?;
    <[u8; 16]>::try_from(bytes.as_slice())
        .map(Some)
        .map_err(|_| invalid())
}

/// The write precondition of PutObject / CompleteMultipartUpload.
pub(crate) fn put_precondition(
    if_match: Option<ETagCondition>,
    if_none_match: Option<ETagCondition>,
) -> Result<PutPrecondition, S3Error> {
    match (if_match, if_none_match) {
        (None, None) => Ok(PutPrecondition::None),
        (None, Some(ETagCondition::Any)) => Ok(PutPrecondition::IfAbsent),
        (Some(ETagCondition::ETag(tag)), None) => Ok(PutPrecondition::IfMatch(tag.into_value())),
        (Some(ETagCondition::Any), None) => Err(s3_error!(
            NotImplemented,
            "If-Match: * is not supported on writes"
        )),
        (None, Some(ETagCondition::ETag(_))) => Err(s3_error!(
            NotImplemented,
            "If-None-Match on writes supports only *"
        )),
        (Some(_), Some(_)) => Err(s3_error!(
            InvalidArgument,
            "If-Match and If-None-Match cannot be combined on writes"
        )),
    }
}

/// Converts an s3s range into the store's.
pub(crate) fn byte_range(range: s3s::dto::Range) -> ByteRange {
    match range {
        s3s::dto::Range::Int { first, last } => ByteRange::FromTo { first, last },
        s3s::dto::Range::Suffix { length } => ByteRange::Suffix { length },
    }
}

/// Parses `x-amz-copy-source-range` (`bytes=first-last`).
pub(crate) fn copy_source_range(header: &str) -> Result<ByteRange, S3Error> {
    match s3s::dto::Range::parse(header) {
        Ok(s3s::dto::Range::Int {
            first,
            last: Some(last),
        }) => Ok(ByteRange::FromTo {
            first,
            last: Some(last),
        }),
        _ => Err(s3_error!(
            InvalidArgument,
            "x-amz-copy-source-range must be bytes=first-last"
        )),
    }
}

/// Characters S3 leaves unencoded in `encoding-type=url` listings: RFC 3986 unreserved and `/`.
const URL_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// Encodes listing output when the client asked for `encoding-type=url`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ListEncoding {
    url: bool,
}

impl ListEncoding {
    /// From the request's `encoding-type`; only `url` exists.
    pub(crate) fn from_request(
        encoding_type: Option<&s3s::dto::EncodingType>,
    ) -> Result<Self, S3Error> {
        match encoding_type.map(|e| e.as_str()) {
            None => Ok(Self { url: false }),
            Some("url") => Ok(Self { url: true }),
            Some(other) => Err(s3_error!(
                InvalidArgument,
                "unknown encoding-type {other:?}; only url exists"
            )),
        }
    }

    /// Encodes one key, prefix or marker.
    pub(crate) fn encode(self, s: String) -> String {
        if self.url {
            utf8_percent_encode(&s, URL_ENCODE_SET).to_string()
        } else {
            s
        }
    }

    /// Encodes an optional value.
    pub(crate) fn encode_opt(self, s: Option<String>) -> Option<String> {
        s.map(|s| self.encode(s))
    }
}

/// Continuation tokens are the hex of the marker: opaque to clients, exact for any key.
pub(crate) fn encode_token(marker: &str) -> String {
    hex::encode(marker.as_bytes())
}

/// Decodes a continuation token made by [`encode_token`].
pub(crate) fn decode_token(token: &str) -> Result<String, S3Error> {
    hex::decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            s3_error!(
                InvalidArgument,
                "the continuation token is not one this server issued"
            )
        })
}

/// Validates `max-keys`-style parameters: default when absent, clamped to `limit`.
pub(crate) fn page_size(value: Option<i32>, limit: usize, name: &str) -> Result<usize, S3Error> {
    match value {
        None => Ok(limit),
        Some(v) => usize::try_from(v)
            .map(|v| v.min(limit))
            .map_err(|_| s3_error!(InvalidArgument, "{name} must not be negative")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_md5_round_trips_known_digest() {
        // md5("") = d41d8cd98f00b204e9800998ecf8427e, base64 1B2M2Y8AsgTpgAmY7PhCfg==
        let d = content_md5(Some("1B2M2Y8AsgTpgAmY7PhCfg=="))
            .unwrap()
            .unwrap();
        assert_eq!(hex::encode(d), "d41d8cd98f00b204e9800998ecf8427e");
        assert!(content_md5(Some("not base64")).is_err());
        assert!(content_md5(Some("AAAA")).is_err());
    }

    #[test]
    fn url_encoding_keeps_slashes_and_unreserved() {
        let e = ListEncoding { url: true };
        assert_eq!(e.encode("a b/c+d~é".into()), "a%20b/c%2Bd~%C3%A9");
        assert_eq!(ListEncoding { url: false }.encode("a b".into()), "a b");
    }

    #[test]
    fn aws_chunked_is_not_stored_as_content_encoding() {
        assert_eq!(stored_content_encoding(Some("aws-chunked".into())), None);
        assert_eq!(
            stored_content_encoding(Some("gzip,aws-chunked".into())).as_deref(),
            Some("gzip")
        );
        assert_eq!(
            stored_content_encoding(Some("br".into())).as_deref(),
            Some("br")
        );
        assert_eq!(stored_content_encoding(None), None);
    }

    #[test]
    fn tokens_round_trip_any_key() {
        let key = "dir/ünï code\u{0}";
        assert_eq!(decode_token(&encode_token(key)).unwrap(), key);
        assert!(decode_token("zz").is_err());
    }

    #[test]
    fn negative_page_size_is_refused() {
        assert!(page_size(Some(-1), 1000, "max-keys").is_err());
        assert_eq!(page_size(Some(5000), 1000, "max-keys").unwrap(), 1000);
        assert_eq!(page_size(None, 1000, "max-keys").unwrap(), 1000);
    }
}
