// SPDX-License-Identifier: Apache-2.0
//! Flexible checksums (`x-amz-checksum-*`): verified while the body streams into the store.
//!
//! A client declares one checksum of the body, either as a header (`x-amz-checksum-crc32: …`)
//! or as an aws-chunked trailer (named in `x-amz-trailer`). The body is hashed on its way to
//! the store; when it ends, a mismatch (or a promised trailer that never came) turns the end
//! of the stream into an error, so the store discards the data and nothing is stored.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures::Stream;
use http::HeaderMap;
use s3s::checksum::ChecksumHasher;
use s3s::crypto::{Checksum as _, Crc32, Crc32c, Crc64Nvme, Sha1, Sha256};
use s3s::dto::Checksum;
use s3s::{S3Error, S3ErrorCode, TrailingHeaders, s3_error};

use crate::store::BodyStream;

/// The checksum algorithms S3 defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

const ALGORITHMS: [Algorithm; 5] = [
    Algorithm::Crc32,
    Algorithm::Crc32c,
    Algorithm::Crc64Nvme,
    Algorithm::Sha1,
    Algorithm::Sha256,
];

impl Algorithm {
    fn header(self) -> &'static str {
        match self {
            Self::Crc32 => "x-amz-checksum-crc32",
            Self::Crc32c => "x-amz-checksum-crc32c",
            Self::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Self::Sha1 => "x-amz-checksum-sha1",
            Self::Sha256 => "x-amz-checksum-sha256",
        }
    }

    fn hasher(self) -> ChecksumHasher {
        let mut h = ChecksumHasher::default();
        match self {
            Self::Crc32 => h.crc32 = Some(Crc32::new()),
            Self::Crc32c => h.crc32c = Some(Crc32c::new()),
            Self::Crc64Nvme => h.crc64nvme = Some(Crc64Nvme::new()),
            Self::Sha1 => h.sha1 = Some(Sha1::new()),
            Self::Sha256 => h.sha256 = Some(Sha256::new()),
        }
        h
    }

    fn computed(self, sums: Checksum) -> Option<String> {
        match self {
            Self::Crc32 => sums.checksum_crc32,
            Self::Crc32c => sums.checksum_crc32c,
            Self::Crc64Nvme => sums.checksum_crc64nvme,
            Self::Sha1 => sums.checksum_sha1,
            Self::Sha256 => sums.checksum_sha256,
        }
    }
}

/// Where the expected value comes from.
enum Expected {
    Header(String),
    Trailer(TrailingHeaders),
}

/// The checksum a request declares, if any.
pub(crate) struct DeclaredChecksum {
    algorithm: Algorithm,
    expected: Expected,
}

impl DeclaredChecksum {
    /// Reads the declaration from the request headers. At most one checksum may be declared.
    pub(crate) fn from_request(
        headers: &HeaderMap,
        trailers: Option<&TrailingHeaders>,
    ) -> Result<Option<Self>, S3Error> {
        let mut declared = None;
        for algorithm in ALGORITHMS {
            if let Some(value) = headers.get(algorithm.header()) {
                let value = value.to_str().map_err(|_| {
                    s3_error!(InvalidArgument, "{} is not ASCII", algorithm.header())
                })?;
                if declared.is_some() {
                    return Err(s3_error!(
                        InvalidRequest,
                        "a request may declare only one x-amz-checksum-* value"
                    ));
                }
                declared = Some(Self {
                    algorithm,
                    expected: Expected::Header(value.trim().to_owned()),
                });
            }
        }
        let trailer = headers
            .get("x-amz-trailer")
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        if let Some(name) = trailer.filter(|n| !n.is_empty()) {
            let algorithm = ALGORITHMS
                .into_iter()
                .find(|a| a.header().eq_ignore_ascii_case(name))
                .ok_or_else(|| s3_error!(InvalidRequest, "unsupported x-amz-trailer {name:?}"))?;
            let trailers = trailers.ok_or_else(|| {
                s3_error!(
                    InvalidRequest,
                    "x-amz-trailer needs an aws-chunked body with trailers"
                )
            })?;
            if declared.is_some() {
                return Err(s3_error!(
                    InvalidRequest,
                    "a request may declare only one x-amz-checksum-* value"
                ));
            }
            declared = Some(Self {
                algorithm,
                expected: Expected::Trailer(trailers.clone()),
            });
        }
        Ok(declared)
    }

    /// Wraps `body` so that it ends in an error unless its checksum matches.
    pub(crate) fn verify(self, body: BodyStream) -> BodyStream {
        let hasher = Some(self.algorithm.hasher());
        Box::pin(Verified {
            inner: body,
            declared: self,
            hasher,
        })
    }

    fn expected_value(&self) -> Result<String, S3Error> {
        let name = self.algorithm.header();
        match &self.expected {
            Expected::Header(value) => Ok(value.clone()),
            Expected::Trailer(trailers) => trailers
                .read(|h| {
                    h.get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(|v| v.trim().to_owned())
                })
                .flatten()
                .ok_or_else(|| {
                    s3_error!(
                        InvalidRequest,
                        "the body ended without the promised {name} trailer"
                    )
                }),
        }
    }
}

/// A body stream that checks its checksum when it ends.
struct Verified {
    inner: BodyStream,
    declared: DeclaredChecksum,
    /// `None` once the end was checked.
    hasher: Option<ChecksumHasher>,
}

impl Stream for Verified {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match ready!(this.inner.as_mut().poll_next(cx)) {
            Some(Ok(chunk)) => {
                if let Some(h) = &mut this.hasher {
                    h.update(&chunk);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Some(Err(e)) => Poll::Ready(Some(Err(e))),
            None => {
                let Some(hasher) = this.hasher.take() else {
                    return Poll::Ready(None);
                };
                let computed = this.declared.algorithm.computed(hasher.finalize());
                let verdict = this.declared.expected_value().and_then(|expected| {
                    if computed.as_deref() == Some(expected.as_str()) {
                        Ok(())
                    } else {
                        Err(S3Error::with_message(
                            S3ErrorCode::BadDigest,
                            format!(
                                "the {} you specified did not match the calculated checksum",
                                this.declared.algorithm.header()
                            ),
                        ))
                    }
                });
                match verdict {
                    Ok(()) => Poll::Ready(None),
                    Err(e) => Poll::Ready(Some(Err(std::io::Error::other(e)))),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    fn body(parts: &[&'static [u8]]) -> BodyStream {
        Box::pin(futures::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        ))
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    async fn outcome(stream: BodyStream) -> Result<Vec<u8>, std::io::Error> {
        let mut out = Vec::new();
        let mut stream = stream;
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn matching_crc32_header_passes_the_body_through() {
        // CRC32 of "hello world" is 0x0d4a1185, base64 DUoRhQ==.
        let declared =
            DeclaredChecksum::from_request(&headers(&[("x-amz-checksum-crc32", "DUoRhQ==")]), None)
                .unwrap()
                .unwrap();
        let got = outcome(declared.verify(body(&[b"hello ", b"world"])))
            .await
            .unwrap();
        assert_eq!(got, b"hello world");
    }

    #[tokio::test]
    async fn wrong_checksum_ends_the_body_with_bad_digest() {
        let declared =
            DeclaredChecksum::from_request(&headers(&[("x-amz-checksum-crc32", "AAAAAA==")]), None)
                .unwrap()
                .unwrap();
        let err = outcome(declared.verify(body(&[b"hello world"])))
            .await
            .unwrap_err();
        let s3 = err.into_inner().unwrap().downcast::<S3Error>().unwrap();
        assert_eq!(*s3.code(), S3ErrorCode::BadDigest);
    }

    #[test]
    fn two_declared_checksums_are_refused() {
        let h = headers(&[
            ("x-amz-checksum-crc32", "DUoRhQ=="),
            ("x-amz-checksum-sha1", "x"),
        ]);
        assert!(DeclaredChecksum::from_request(&h, None).is_err());
        assert!(
            DeclaredChecksum::from_request(&HeaderMap::new(), None)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_trailer_needs_a_trailer_capable_body() {
        let h = headers(&[("x-amz-trailer", "x-amz-checksum-crc32")]);
        assert!(DeclaredChecksum::from_request(&h, None).is_err());
    }
}
