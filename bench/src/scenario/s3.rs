// SPDX-License-Identifier: Apache-2.0
//! An S3 endpoint under load: presigned SigV4 URLs (rusty-s3) sent with reqwest.
//!
//! Each op signs its own URL inside its timed span: signing costs a few microseconds and every
//! S3 target pays it alike, as a real client would. Bodies are one
//! shared `Bytes` per size; GET bodies are read chunk by chunk and dropped, and their length
//! is checked, so a short read fails the cell instead of inflating its throughput.

use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::{Client, Response, StatusCode};
use rusty_s3::{Bucket, Credentials, S3Action as _, UrlStyle};
use url::Url;

use super::options::S3Options;

/// How long a presigned URL stays valid; far longer than any cell.
const URL_VALIDITY: Duration = Duration::from_secs(3600);

/// Where and as whom to reach an S3 endpoint.
#[derive(Clone)]
pub struct S3Endpoint {
    /// Base URL, e.g. `http://127.0.0.1:7480`.
    pub url: Url,
    /// SigV4 region.
    pub region: String,
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret_key: String,
}

impl std::fmt::Debug for S3Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Endpoint")
            .field("url", &self.url.as_str())
            .field("region", &self.region)
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

/// A client bound to one bucket of one endpoint.
#[derive(Debug)]
pub struct S3Target {
    client: Client,
    bucket: Bucket,
    credentials: Credentials,
}

impl S3Target {
    /// A client for `bucket` at `endpoint` (path-style), with a connection pool large enough
    /// for the most workers `options` asks for and its request timeout.
    pub fn new(endpoint: &S3Endpoint, bucket: &str, options: &S3Options) -> Result<Self> {
        let max_concurrency = options.concurrency.iter().copied().max().unwrap_or(1);
        Self::with_pool(endpoint, bucket, max_concurrency, options.request_timeout)
    }

    /// A client for `bucket` at `endpoint` (path-style) keeping up to `connections` idle
    /// connections, whose requests fail after `timeout`.
    pub fn with_pool(
        endpoint: &S3Endpoint,
        bucket: &str,
        connections: usize,
        timeout: Duration,
    ) -> Result<Self> {
        let client = Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(connections)
            .timeout(timeout)
            .build()
            .context("failed to build the HTTP client")?;
        Self::with_client(endpoint, bucket, client)
    }

    /// A client for another bucket of the same endpoint that shares this one's connections.
    pub fn for_bucket(&self, endpoint: &S3Endpoint, bucket: &str) -> Result<Self> {
        Self::with_client(endpoint, bucket, self.client.clone())
    }

    fn with_client(endpoint: &S3Endpoint, bucket: &str, client: Client) -> Result<Self> {
        let bucket = Bucket::new(
            endpoint.url.clone(),
            UrlStyle::Path,
            bucket.to_owned(),
            endpoint.region.clone(),
        )
        .map_err(|e| anyhow::anyhow!("invalid S3 endpoint {}: {e:?}", endpoint.url))?;
        let credentials =
            Credentials::new(endpoint.access_key.clone(), endpoint.secret_key.clone());
        Ok(Self {
            client,
            bucket,
            credentials,
        })
    }

    /// Creates the bucket; one that already exists (from an earlier run) is fine.
    pub async fn create_bucket(&self) -> Result<()> {
        let url = self
            .bucket
            .create_bucket(&self.credentials)
            .sign(URL_VALIDITY);
        let response = self
            .client
            .put(url)
            .send()
            .await
            .context("CreateBucket request failed")?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        if status == StatusCode::CONFLICT && body.contains("BucketAlreadyOwnedByYou") {
            return Ok(());
        }
        bail!(
            "CreateBucket {} answered {status}: {}",
            self.bucket.name(),
            snippet(&body)
        )
    }

    /// Opens `connections` pooled connections ahead of a cell, so that no op of the cell pays
    /// for a TCP handshake.
    pub async fn warm_up(&self, connections: usize) -> Result<()> {
        let heads = (0..connections).map(|_| async {
            let url = self
                .bucket
                .head_bucket(Some(&self.credentials))
                .sign(URL_VALIDITY);
            let response = self
                .client
                .head(url)
                .send()
                .await
                .context("HeadBucket request failed")?;
            ensure!(
                response.status().is_success(),
                "HeadBucket answered {}",
                response.status()
            );
            anyhow::Ok(())
        });
        futures::future::try_join_all(heads).await.map(drop)
    }

    /// PUTs `payload` to `key`; returns the bytes sent.
    pub async fn put(&self, key: &str, payload: Bytes) -> Result<u64> {
        let len = u64::try_from(payload.len()).context("payload length overflows u64")?;
        let url = self
            .bucket
            .put_object(Some(&self.credentials), key)
            .sign(URL_VALIDITY);
        let response = self
            .client
            .put(url)
            .body(payload)
            .send()
            .await
            .context("PUT request failed")?;
        expect_success(response, "PUT", key).await?;
        Ok(len)
    }

    /// GETs `key`, reading and dropping the body; fails unless it has `expected_len` bytes.
    pub async fn get(&self, key: &str, expected_len: u64) -> Result<u64> {
        let url = self
            .bucket
            .get_object(Some(&self.credentials), key)
            .sign(URL_VALIDITY);
        let response = self
            .client
            .get(url)
            .send()
            .await
            .context("GET request failed")?;
        let mut response = expect_success(response, "GET", key).await?;
        let mut received = 0u64;
        while let Some(chunk) = response.chunk().await.context("GET body failed")? {
            received += u64::try_from(chunk.len()).context("chunk length overflows u64")?;
        }
        ensure!(
            received == expected_len,
            "GET {key} returned {received} bytes, expected {expected_len}"
        );
        Ok(received)
    }

    /// GETs `key` whole: the body and the response headers.
    pub async fn get_full(&self, key: &str) -> Result<(HeaderMap, Bytes)> {
        let url = self
            .bucket
            .get_object(Some(&self.credentials), key)
            .sign(URL_VALIDITY);
        let response = self
            .client
            .get(url)
            .send()
            .await
            .context("GET request failed")?;
        let response = expect_success(response, "GET", key).await?;
        let headers = response.headers().clone();
        let body = response.bytes().await.context("GET body failed")?;
        Ok((headers, body))
    }

    /// Deletes `key` (cleanup; a missing key is fine).
    pub async fn delete(&self, key: &str) -> Result<()> {
        let url = self
            .bucket
            .delete_object(Some(&self.credentials), key)
            .sign(URL_VALIDITY);
        let response = self
            .client
            .delete(url)
            .send()
            .await
            .context("DELETE request failed")?;
        expect_success(response, "DELETE", key).await.map(drop)
    }
}

async fn expect_success(response: Response, op: &str, key: &str) -> Result<Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    bail!("{op} {key} answered {status}: {}", snippet(&body))
}

/// The start of an error body, enough to name the S3 error code.
fn snippet(body: &str) -> &str {
    let end = body.char_indices().nth(300).map_or(body.len(), |(i, _)| i);
    &body[..end]
}
