// SPDX-License-Identifier: Apache-2.0
//! `GET /v1/status`: endpoints, version, uptime, store usage and disk space.

use std::path::Path;

use http::StatusCode;
use quarry_interceptor::ObjectStore;
use quarry_interceptor::store::StoreUsage;
use quarry_interceptor::store::local::ReadEngineInfo;
use serde::{Deserialize, Serialize};

use super::{AdminResponse, NodeInfo, json, json_error};

/// What `quarry status` prints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeStatus {
    /// `quarryd` version.
    pub version: String,
    /// Seconds since the daemon started.
    pub uptime_secs: u64,
    /// S3 endpoint URL.
    pub s3_endpoint: String,
    /// Admin endpoint URL.
    pub admin_endpoint: String,
    /// Data directory.
    pub data_dir: String,
    /// Object store totals.
    pub store: StoreUsage,
    /// The engine that reads object bodies (absent from daemons that predate it).
    #[serde(default)]
    pub read_engine: Option<ReadEngineInfo>,
    /// The data directory's filesystem.
    pub disk: Option<DiskUsage>,
}

/// Space on the filesystem holding the data directory.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct DiskUsage {
    /// Total bytes.
    pub total_bytes: u64,
    /// Bytes available to the daemon.
    pub available_bytes: u64,
}

pub(super) async fn handle(
    store: &std::sync::Arc<dyn ObjectStore>,
    info: &NodeInfo,
    started: tokio::time::Instant,
) -> AdminResponse {
    let usage = match store.usage().await {
        Ok(usage) => usage,
        Err(e) => {
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("failed to read store usage: {e}"),
            );
        }
    };
    let data_dir = info.data_dir.clone();
    let disk = tokio::task::spawn_blocking(move || disk_usage(&data_dir))
        .await
        .ok()
        .flatten();
    let status = NodeStatus {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_secs: started.elapsed().as_secs(),
        s3_endpoint: info.s3_endpoint.clone(),
        admin_endpoint: info.admin_endpoint.clone(),
        data_dir: info.data_dir.display().to_string(),
        store: usage,
        read_engine: info.read_engine.clone(),
        disk,
    };
    json(StatusCode::OK, &status)
}

pub(super) async fn buckets(store: &std::sync::Arc<dyn ObjectStore>) -> AdminResponse {
    match store.list_buckets().await {
        Ok(buckets) => {
            let list: Vec<_> = buckets
                .into_iter()
                .map(|b| {
                    let created = b
                        .created
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs());
                    serde_json::json!({ "name": b.name, "created_unix": created })
                })
                .collect();
            json(StatusCode::OK, &list)
        }
        Err(e) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("failed to list buckets: {e}"),
        ),
    }
}

fn disk_usage(dir: &Path) -> Option<DiskUsage> {
    let st = nix::sys::statvfs::statvfs(dir).ok()?;
    let fragment = st.fragment_size();
    Some(DiskUsage {
        total_bytes: st.blocks().saturating_mul(fragment),
        available_bytes: st.blocks_available().saturating_mul(fragment),
    })
}
