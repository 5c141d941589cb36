// SPDX-License-Identifier: Apache-2.0
//! `quarry status` and bucket listing, over the admin API.

use bytesize::ByteSize;

use super::admin::{AdminClient, decode};
use super::s3::print_stdout;
use super::{Cli, CliError};
use crate::admin::NodeStatus;

/// `quarry status`.
pub(crate) async fn run(cli: &Cli, raw: bool) -> Result<(), CliError> {
    let body = AdminClient::from_cli(cli)?.get_text("/v1/status").await?;
    if raw {
        print_stdout(&format!("{body}\n"));
        return Ok(());
    }
    let s: NodeStatus = decode(&body)?;
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
    if let Some(engine) = &s.read_engine {
        out.push_str(&format!("read engine     {engine}\n"));
    }
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
    let buckets: Vec<serde_json::Value> = AdminClient::from_cli(cli)?.get("/v1/buckets").await?;
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
