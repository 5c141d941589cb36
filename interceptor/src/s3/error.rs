// SPDX-License-Identifier: Apache-2.0
//! The one mapping from store errors to the S3 wire format.
//!
//! An exhaustive `match`: adding a `StoreError` variant fails to compile until it has a code.
//! Client errors keep the store's message (it names the bucket, key or part); internal errors
//! are logged with their cause chain and reach the client as `InternalError` without details
//! of the node's filesystem.

use s3s::{S3Error, S3ErrorCode};
use tracing::error;

use crate::store::StoreError;

/// Converts a store error into the S3 error the client sees.
pub fn to_s3_error(err: StoreError) -> S3Error {
    let code = match &err {
        StoreError::NoSuchBucket { .. } => S3ErrorCode::NoSuchBucket,
        StoreError::BucketAlreadyExists { .. } => S3ErrorCode::BucketAlreadyOwnedByYou,
        StoreError::BucketNotEmpty { .. } => S3ErrorCode::BucketNotEmpty,
        StoreError::NoSuchKey { .. } => S3ErrorCode::NoSuchKey,
        StoreError::NoSuchUpload { .. } => S3ErrorCode::NoSuchUpload,
        StoreError::InvalidRange { .. } => S3ErrorCode::InvalidRange,
        StoreError::EntityTooLarge { .. } => S3ErrorCode::EntityTooLarge,
        StoreError::EntityTooSmall { .. } => S3ErrorCode::EntityTooSmall,
        StoreError::IncompleteBody { .. } => S3ErrorCode::IncompleteBody,
        StoreError::BadDigest => S3ErrorCode::BadDigest,
        StoreError::InvalidPart { .. } => S3ErrorCode::InvalidPart,
        StoreError::InvalidPartOrder => S3ErrorCode::InvalidPartOrder,
        StoreError::InvalidPartList { .. } => S3ErrorCode::InvalidArgument,
        StoreError::PreconditionFailed { .. } => S3ErrorCode::PreconditionFailed,
        StoreError::Body { .. } => return body_error(err),
        StoreError::Io { .. } | StoreError::Index { .. } | StoreError::Corrupt { .. } => {
            error!(error = %ErrorChain(&err), "store failure");
            return S3Error::with_message(
                S3ErrorCode::InternalError,
                "the node's store failed; the error is in the node's log",
            );
        }
    };
    S3Error::with_message(code, err.to_string())
}

/// A failed request body keeps the S3 error s3s raised while decoding it (a bad chunk
/// signature, a checksum mismatch, a length mismatch); any other cause is an incomplete body.
fn body_error(err: StoreError) -> S3Error {
    let StoreError::Body { source } = err else {
        unreachable!("body_error is only called with StoreError::Body")
    };
    let message = source.to_string();
    match source.into_inner().map(|inner| inner.downcast::<S3Error>()) {
        Some(Ok(s3)) => *s3,
        _ => {
            let mut err = S3Error::with_message(
                decoder_error_code(&message),
                format!("failed to read the request body: {message}"),
            );
            if err.code().status_code().is_none() {
                err.set_status_code(http::StatusCode::BAD_REQUEST);
            }
            err
        }
    }
}

/// The S3 code for an error of s3s's body decoders (SigV4 payload hash, aws-chunked).
///
/// s3s keeps those error types in private modules, so they cannot be downcast; their
/// `Display` texts (`UploadStreamError: Sha256Mismatch`, `AwsChunkedStreamError:
/// SignatureMismatch`, ...) are the only stable handle. An unknown text is an incomplete body.
fn decoder_error_code(message: &str) -> S3ErrorCode {
    if message.contains("Sha256Mismatch") {
        // A code S3 uses that s3s has no variant for.
        S3ErrorCode::from_bytes(b"XAmzContentSHA256Mismatch").unwrap_or(S3ErrorCode::BadDigest)
    } else if message.contains("SignatureMismatch") {
        S3ErrorCode::SignatureDoesNotMatch
    } else if message.contains("FormatError")
        || message.contains("TooLarge")
        || message.contains("TooManyTrailerHeaders")
        || message.contains("InvalidChecksum")
    {
        S3ErrorCode::InvalidRequest
    } else {
        S3ErrorCode::IncompleteBody
    }
}

/// Displays an error with its `source()` chain, `a: b: c`.
pub(crate) struct ErrorChain<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// Converts a failed function job into the S3 error the client sees. The message names the
/// function (and the backend for failures); overload is `503 SlowDown`; a rejection carries the
/// function's own status and message.
pub fn function_error(err: &quarry_offload::BackendError) -> S3Error {
    use quarry_offload::BackendError;
    match err {
        BackendError::Overloaded { .. } => {
            S3Error::with_message(S3ErrorCode::SlowDown, format!("{err}; retry later"))
        }
        BackendError::Rejected {
            function,
            status,
            message,
        } => {
            let mut e = S3Error::with_message(
                S3ErrorCode::Custom("RejectedByFunction".into()),
                format!("function {function} rejected the request: {message}"),
            );
            e.set_status_code(
                http::StatusCode::from_u16(*status).unwrap_or(http::StatusCode::BAD_REQUEST),
            );
            e
        }
        BackendError::FunctionFailed { .. } => {
            let mut e = S3Error::with_message(
                S3ErrorCode::Custom("FunctionFailed".into()),
                err.to_string(),
            );
            e.set_status_code(http::StatusCode::INTERNAL_SERVER_ERROR);
            e
        }
        BackendError::BadParams { .. } => {
            S3Error::with_message(S3ErrorCode::InvalidArgument, err.to_string())
        }
        BackendError::NoBackend { .. } => {
            S3Error::with_message(S3ErrorCode::InvalidRequest, err.to_string())
        }
        BackendError::Unsupported { .. } | BackendError::Setup { .. } => {
            error!(error = %err, "function could not start");
            S3Error::with_message(S3ErrorCode::InternalError, err.to_string())
        }
    }
}

/// Converts a failure to resolve a request's functions.
pub fn hook_error(err: &crate::hooks::HookError) -> S3Error {
    use crate::hooks::HookError;
    match err {
        HookError::NoSuchFunction { .. } => {
            let mut e = S3Error::with_message(
                S3ErrorCode::Custom("NoSuchFunction".into()),
                err.to_string(),
            );
            e.set_status_code(http::StatusCode::NOT_FOUND);
            e
        }
        HookError::TooManyFunctions { .. } => {
            S3Error::with_message(S3ErrorCode::InvalidArgument, err.to_string())
        }
    }
}

/// An event-queue failure: the operation is refused before it runs, so nothing is lost.
pub fn event_error(err: &crate::events::EventError) -> S3Error {
    error!(error = %err, "cannot record trigger events");
    S3Error::with_message(
        S3ErrorCode::ServiceUnavailable,
        "the node cannot record trigger events right now; nothing was changed; retry later",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_keep_their_code_and_message() {
        let e = to_s3_error(StoreError::NoSuchKey {
            bucket: "b".into(),
            key: "k".into(),
        });
        assert_eq!(*e.code(), S3ErrorCode::NoSuchKey);
        assert!(e.message().unwrap().contains("k"));
    }

    #[test]
    fn internal_errors_hide_paths() {
        let e = to_s3_error(StoreError::Io {
            op: "open data file",
            path: "/secret/path".into(),
            source: std::io::Error::other("boom"),
        });
        assert_eq!(*e.code(), S3ErrorCode::InternalError);
        assert!(!e.message().unwrap().contains("/secret"));
    }

    #[test]
    fn decoder_errors_get_their_s3_codes() {
        let code = |m: &str| {
            to_s3_error(StoreError::Body {
                source: std::io::Error::other(m.to_owned()),
            })
            .code()
            .clone()
        };
        assert_eq!(
            code("UploadStreamError: Sha256Mismatch").as_str(),
            "XAmzContentSHA256Mismatch"
        );
        assert_eq!(
            code("AwsChunkedStreamError: SignatureMismatch"),
            S3ErrorCode::SignatureDoesNotMatch
        );
        assert_eq!(
            code("AwsChunkedStreamError: FormatError"),
            S3ErrorCode::InvalidRequest
        );
        assert_eq!(code("connection reset"), S3ErrorCode::IncompleteBody);
    }

    #[test]
    fn body_errors_keep_the_decoder_s3_error() {
        let inner = S3Error::new(S3ErrorCode::SignatureDoesNotMatch);
        let e = to_s3_error(StoreError::Body {
            source: std::io::Error::other(inner),
        });
        assert_eq!(*e.code(), S3ErrorCode::SignatureDoesNotMatch);
    }
}
