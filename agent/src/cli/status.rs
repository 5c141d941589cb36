// SPDX-License-Identifier: Apache-2.0
//! `quarry status` and bucket listing, over the admin API.

use bytesize::ByteSize;

use super::s3::print_stdout;
use super::{Cli, CliError};
use crate::admin::NodeStatus;
use crate::credentials::stored_admin_token;

async fn admin_get(cli: &Cli, path: &str) -> Result<String, CliError> {
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
    let url = format!("{}{path}", cli.admin_url.trim_end_matches('/'));
    let http = |source| CliError::Http {
        url: url.clone(),
        source,
    };
    let resp = reqwest::Client::new()
        .get(&url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(http)?;
    let status = resp.status();
    let body = resp.text().await.map_err(http)?;
    if !status.is_success() {
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or(body);
        return Err(CliError::Server {
            code: status.to_string(),
            message,
        });
    }
    Ok(body)
}

/// `quarry status`.
pub(crate) async fn run(cli: &Cli, raw: bool) -> Result<(), CliError> {
    let body = admin_get(cli, "/v1/status").await?;
    if raw {
        print_stdout(&format!("{body}\n"));
        return Ok(());
    }
    let s: NodeStatus = serde_json::from_str(&body).map_err(|e| {
        CliError::Usage(format!(
            "the admin API sent a status this CLI cannot read: {e}"
        ))
    })?;
    let mut out = format!(
        "quarryd {}  up {}\nS3 endpoint     {}\nadmin endpoint  {}\ndata directory  {}\n",
        s.version,
        humantime::format_duration(std::time::Duration::from_secs(s.uptime_secs)),
        s.s3_endpoint,
        s.admin_endpoint,
        s.data_dir,
    );
    out.push_str(&format!(
        "store           {} buckets, {} objects, {}, {} open uploads\n",
        s.store.buckets,
        s.store.objects,
        ByteSize::b(s.store.object_bytes),
        s.store.uploads
    ));
    if let Some(d) = s.disk {
        out.push_str(&format!(
            "disk            {} free of {}\n",
            ByteSize::b(d.available_bytes),
            ByteSize::b(d.total_bytes)
        ));
    }
    print_stdout(&out);
    Ok(())
}

/// `quarry ls` with no bucket: every bucket, from the admin API.
pub(crate) async fn list_buckets(cli: &Cli) -> Result<(), CliError> {
    let body = admin_get(cli, "/v1/buckets").await?;
    let buckets: Vec<serde_json::Value> = serde_json::from_str(&body).map_err(|e| {
        CliError::Usage(format!(
            "the admin API sent a bucket list this CLI cannot read: {e}"
        ))
    })?;
    let mut out = String::new();
    for b in buckets {
        if let Some(name) = b.get("name").and_then(|n| n.as_str()) {
            out.push_str(name);
            out.push('\n');
        }
    }
    print_stdout(&out);
    Ok(())
}
