// SPDX-License-Identifier: Apache-2.0
//! The HTTP service: s3s configured with Quarry's auth, access policy and limits, wrapped so
//! every request is counted and timed.

use std::sync::Arc;

use futures::future::BoxFuture;
use hyper::body::Incoming;
use s3s::config::{S3Config, StaticConfigProvider};
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{HttpError, HttpResponse};
use tokio::time::Instant;

use super::{OperationSlot, QuarryAccess, RootAuth, S3Frontend};
use crate::metrics::S3Metrics;

/// What the S3 HTTP service needs besides the front end.
#[derive(Clone)]
pub struct S3ServiceConfig {
    /// Access key of the root identity.
    pub access_key: String,
    /// Secret key of the root identity.
    pub secret_key: String,
    /// Buckets anyone may read without signing.
    pub anonymous_read_buckets: Vec<String>,
    /// Largest XML request body, in bytes.
    pub max_xml_body_bytes: usize,
}

impl std::fmt::Debug for S3ServiceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3ServiceConfig")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("anonymous_read_buckets", &self.anonymous_read_buckets)
            .field("max_xml_body_bytes", &self.max_xml_body_bytes)
            .finish()
    }
}

/// Builds the metered S3 HTTP service over `frontend`.
pub fn build_service(
    frontend: S3Frontend,
    config: &S3ServiceConfig,
    metrics: S3Metrics,
) -> MeteredS3Service {
    let mut s3_config = S3Config::default();
    s3_config.xml_max_body_size = config.max_xml_body_bytes;
    let mut builder = S3ServiceBuilder::new(frontend);
    builder.set_auth(RootAuth::new(
        config.access_key.clone(),
        config.secret_key.clone(),
    ));
    builder.set_access(QuarryAccess::new(
        config.anonymous_read_buckets.iter().cloned(),
    ));
    builder.set_config(Arc::new(StaticConfigProvider::new(Arc::new(s3_config))));
    MeteredS3Service {
        inner: builder.build(),
        metrics,
    }
}

/// The s3s service with request metrics: count by operation and status, latency, in-flight.
#[derive(Debug, Clone)]
pub struct MeteredS3Service {
    inner: S3Service,
    metrics: S3Metrics,
}

/// Decrements the in-flight gauge when a request ends, however it ends (including a client
/// that disconnects and drops the future).
struct InFlight(prometheus::IntGauge);

impl InFlight {
    fn enter(gauge: &prometheus::IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl hyper::service::Service<http::Request<Incoming>> for MeteredS3Service {
    type Response = HttpResponse;
    type Error = HttpError;
    type Future = BoxFuture<'static, Result<HttpResponse, HttpError>>;

    fn call(&self, mut req: http::Request<Incoming>) -> Self::Future {
        let slot = OperationSlot::default();
        req.extensions_mut().insert(slot.clone());
        let fixups = ResponseFixups::for_request(&req);
        let inner = self.inner.clone();
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let _in_flight = InFlight::enter(&metrics.in_flight);
            let start = Instant::now();
            let mut result = hyper::service::Service::call(&inner, req).await;
            if let Ok(resp) = &mut result {
                fixups.apply(resp);
            }
            let op = slot.get().unwrap_or("Unauthenticated");
            let status = result.as_ref().map_or(500, |r| r.status().as_u16());
            metrics.observe_request(op, status, start.elapsed());
            result
        })
    }
}

/// Corrections s3s does not make to responses, decided from the request.
#[derive(Debug, Clone, Copy)]
struct ResponseFixups {
    /// HEAD: s3s always answers 200, but a HEAD with `Range` is `206` in S3.
    head: bool,
    /// `Expect: 100-continue` with an empty body: hyper answers without `100 Continue`
    /// (allowed by RFC 9110), which botocore misreads on the connection's next response
    /// (boto/botocore#3755). Closing the connection after such a response avoids that.
    close_after: bool,
}

impl ResponseFixups {
    fn for_request<B>(req: &http::Request<B>) -> Self {
        let headers = req.headers();
        let expects_continue = headers
            .get(http::header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let empty_body = headers
            .get(http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() == b"0");
        Self {
            head: req.method() == http::Method::HEAD,
            close_after: expects_continue && empty_body,
        }
    }

    fn apply<B>(self, resp: &mut http::Response<B>) {
        if self.head
            && resp.status() == http::StatusCode::OK
            && resp.headers().contains_key(http::header::CONTENT_RANGE)
        {
            *resp.status_mut() = http::StatusCode::PARTIAL_CONTENT;
        }
        if self.close_after {
            resp.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(req: http::Request<()>, mut resp: http::Response<()>) -> http::Response<()> {
        ResponseFixups::for_request(&req).apply(&mut resp);
        resp
    }

    #[test]
    fn ranged_head_answers_partial_content() {
        let req = http::Request::head("/b/k")
            .header("range", "bytes=1-2")
            .body(())
            .unwrap();
        let resp = http::Response::builder()
            .header("content-range", "bytes 1-2/10")
            .body(())
            .unwrap();
        assert_eq!(fixed(req, resp).status(), http::StatusCode::PARTIAL_CONTENT);
        let req = http::Request::head("/b/k").body(()).unwrap();
        assert_eq!(
            fixed(req, http::Response::new(())).status(),
            http::StatusCode::OK
        );
    }

    #[test]
    fn empty_body_with_expect_continue_closes_the_connection() {
        let req = http::Request::put("/b/k")
            .header("expect", "100-continue")
            .header("content-length", "0")
            .body(())
            .unwrap();
        let resp = fixed(req, http::Response::new(()));
        assert_eq!(resp.headers()["connection"], "close");
        let req = http::Request::put("/b/k")
            .header("content-length", "0")
            .body(())
            .unwrap();
        assert!(
            !fixed(req, http::Response::new(()))
                .headers()
                .contains_key("connection")
        );
    }
}
