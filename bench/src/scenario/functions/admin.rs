// SPDX-License-Identifier: Apache-2.0
//! The two calls of quarryd's admin API the scenario needs: deploy a function and add a
//! trigger (`/v1/`, bearer token).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use reqwest::{Client, Method, StatusCode};
use serde_json::Value;
use url::Url;

/// A client of one quarryd's admin listener.
#[derive(Debug)]
pub struct AdminClient {
    client: Client,
    base: Url,
    token: String,
}

impl AdminClient {
    /// A client for the admin listener at `addr`, authenticating with `token`.
    pub fn new(addr: SocketAddr, token: &str, timeout: Duration) -> Result<Self> {
        let client = Client::builder()
            .no_proxy()
            .timeout(timeout)
            .build()
            .context("failed to build the admin HTTP client")?;
        Ok(Self {
            client,
            base: format!("http://{addr}/v1/")
                .parse()
                .context("bad admin address")?,
            token: token.to_owned(),
        })
    }

    /// `PUT /v1/functions/{name}` with the module (binary or WAT text); returns the function
    /// record.
    pub async fn deploy(&self, name: &str, module: Vec<u8>) -> Result<Value> {
        let path = format!("functions/{name}");
        self.send(Method::PUT, &path, module, "application/wasm")
            .await
            .with_context(|| format!("deploying function {name}"))
    }

    /// `POST /v1/triggers` with `spec` as JSON; returns the trigger record.
    pub async fn add_trigger(&self, spec: &Value) -> Result<Value> {
        let body = serde_json::to_vec(spec).context("failed to encode the trigger")?;
        self.send(Method::POST, "triggers", body, "application/json")
            .await
            .context("adding the trigger")
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<Value> {
        let url = self.base.join(path).context("bad admin path")?;
        let response = self
            .client
            .request(method.clone(), url)
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .with_context(|| format!("{method} /v1/{path} failed"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status == StatusCode::NOT_FOUND && !text.contains("no such function") {
            bail!(
                "{method} /v1/{path} answered 404 ({}): this quarryd has no function admin \
                 API; rebuild it with `cargo build --release -p quarry-agent --bin quarryd`",
                text.trim()
            );
        }
        if !status.is_success() {
            bail!("{method} /v1/{path} answered {status}: {}", text.trim());
        }
        serde_json::from_str(&text)
            .with_context(|| format!("{method} /v1/{path} answered non-JSON: {text}"))
    }
}
