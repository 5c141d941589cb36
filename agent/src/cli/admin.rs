// SPDX-License-Identifier: Apache-2.0
//! The admin API client: the URL from `--admin-url` / `QUARRY_ADMIN_URL`, the bearer token from
//! `--admin-token` / `QUARRY_ADMIN_TOKEN` or a local node's `DATA_DIR/admin-token`.
//!
//! An error answer (`{"error": "..."}`) becomes [`CliError::Admin`] with the server's message;
//! a node that cannot be reached becomes [`CliError::AdminUnreachable`], naming the URL.

use reqwest::{Method, RequestBuilder};
use serde::de::DeserializeOwned;

use super::{Cli, CliError};
use crate::credentials::stored_admin_token;

/// A node's admin API with its token.
#[derive(Debug)]
pub(crate) struct AdminClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl AdminClient {
    /// Builds a client from flags, environment, or a local node's generated token.
    pub(crate) fn from_cli(cli: &Cli) -> Result<Self, CliError> {
        let token = match &cli.admin_token {
            Some(t) => t.clone(),
            None => stored_admin_token(&cli.data_dir)
                .map_err(|e| CliError::Usage(e.to_string()))?
                .map(|s| s.expose().to_owned())
                .ok_or_else(|| {
                    CliError::Usage(format!(
                        "no admin token: set QUARRY_ADMIN_TOKEN, or run on the node with --data-dir pointing at \
                         quarryd's data directory (looked in {})",
                        cli.data_dir.display()
                    ))
                })?,
        };
        Ok(Self {
            http: reqwest::Client::new(),
            base: cli.admin_url.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// `GET path`, the body as text.
    pub(crate) async fn get_text(&self, path: &str) -> Result<String, CliError> {
        self.send(Method::GET, path, |r| r).await
    }

    /// `GET path`, the body decoded as `T`.
    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        decode(&self.get_text(path).await?)
    }

    /// Sends `method path` with whatever `build` adds (query, body) and returns the body of a
    /// success answer.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        build: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> Result<String, CliError> {
        let url = format!("{}{path}", self.base);
        let unreachable = |source| CliError::AdminUnreachable {
            url: self.base.clone(),
            source,
        };
        let req = build(self.http.request(method, &url).bearer_auth(&self.token));
        let resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        let body = resp.text().await.map_err(unreachable)?;
        if status.is_success() {
            return Ok(body);
        }
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or(body);
        Err(CliError::Admin {
            status: status.to_string(),
            message,
        })
    }
}

/// Decodes an admin API answer.
pub(crate) fn decode<T: DeserializeOwned>(body: &str) -> Result<T, CliError> {
    serde_json::from_str(body).map_err(|e| {
        CliError::Usage(format!(
            "the admin API sent an answer this CLI cannot read (is it the same version?): {e}"
        ))
    })
}
