// SPDX-License-Identifier: Apache-2.0
//! A Ceph RADOS Gateway peer: its endpoint and keys, from the env file `start.sh` writes.
//!
//! The harness never starts or stops a peer (it needs root and installs packages); it only
//! reads `$CEPH_PEER_DIR/env`, whose lines look like `export S3_ENDPOINT=http://...`, and the
//! `rgw frontends` line of the `ceph.conf` it names (whether beast runs with `tcp_nodelay`).
//!
//! The peer keeps objects in RAM (memstore, 4 GiB by default), and RGW frees the tails of
//! overwritten or deleted large objects only after its GC delay (2 hours). One run leaves
//! about 2.5 GiB of 64 MiB tails, so a second run within two hours would fill the store. After
//! its cells the harness therefore deletes its objects and runs the GC at once
//! (`radosgw-admin gc process --include-all`, as root on this machine, like `start.sh`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use tokio::process::Command;

use super::s3::S3Endpoint;

/// How long the peer's GC may take.
const GC_TIMEOUT: Duration = Duration::from_secs(120);

/// The running peer, as its env file describes it.
#[derive(Debug, Clone)]
pub struct CephPeer {
    /// The S3 endpoint and keys.
    pub endpoint: S3Endpoint,
    /// `CEPH_CONF`, for admin commands, when the env file names it.
    pub ceph_conf: Option<PathBuf>,
}

impl CephPeer {
    /// Reads the peer's endpoint and keys from its env file.
    pub fn from_env_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read the Ceph peer env file {}", path.display()))?;
        parse_env(&text).with_context(|| format!("bad Ceph peer env file {}", path.display()))
    }

    /// The `rgw frontends` value of the peer's `ceph.conf` (whether beast runs with
    /// `tcp_nodelay=1`), when the env file names the conf and the conf has the line.
    pub fn frontends(&self) -> Option<String> {
        let conf = std::fs::read_to_string(self.ceph_conf.as_ref()?).ok()?;
        frontends_line(&conf)
    }

    /// Frees the RAM that deleted and overwritten objects still hold, now rather than after
    /// RGW's GC delay.
    pub async fn collect_garbage(&self) -> Result<()> {
        let conf = self
            .ceph_conf
            .as_ref()
            .context("the env file names no CEPH_CONF")?;
        let run = Command::new("radosgw-admin")
            .arg("-c")
            .arg(conf)
            .args(["gc", "process", "--include-all"])
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(GC_TIMEOUT, run)
            .await
            .context("radosgw-admin gc process timed out")?
            .context("failed to run radosgw-admin")?;
        ensure!(
            output.status.success(),
            "radosgw-admin gc process failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Ok(())
    }
}

fn parse_env(text: &str) -> Result<CephPeer> {
    let vars: HashMap<&str, &str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.strip_prefix("export ").unwrap_or(line).split_once('='))
        .map(|(key, value)| (key.trim(), unquote(value.trim())))
        .collect();
    let get = |key: &str| {
        vars.get(key)
            .copied()
            .with_context(|| format!("{key} is not set"))
    };
    let url = get("S3_ENDPOINT")?;
    let endpoint = S3Endpoint {
        url: url
            .parse()
            .with_context(|| format!("S3_ENDPOINT `{url}` is not a URL"))?,
        region: vars
            .get("AWS_DEFAULT_REGION")
            .copied()
            .unwrap_or("us-east-1")
            .to_owned(),
        access_key: get("AWS_ACCESS_KEY_ID")?.to_owned(),
        secret_key: get("AWS_SECRET_ACCESS_KEY")?.to_owned(),
    };
    Ok(CephPeer {
        endpoint,
        ceph_conf: vars.get("CEPH_CONF").map(PathBuf::from),
    })
}

fn frontends_line(conf: &str) -> Option<String> {
    conf.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        let key = key.trim().replace(['_', ' '], "");
        (key == "rgwfrontends").then(|| value.trim().to_owned())
    })
}

fn unquote(value: &str) -> &str {
    ['"', '\'']
        .iter()
        .find_map(|&q| value.strip_prefix(q).and_then(|v| v.strip_suffix(q)))
        .unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_sh_env_file_parses() {
        let text = "export CEPH_CONF=/tmp/ceph-peer/ceph.conf\nexport S3_ENDPOINT=http://127.0.0.1:7480\n\
                    export AWS_ACCESS_KEY_ID=CEPHPEERACCESSKEY000\n\
                    export AWS_SECRET_ACCESS_KEY=\"secret=with=equals\"\n";
        let peer = parse_env(text).unwrap();
        assert_eq!(
            peer.ceph_conf.as_deref(),
            Some(Path::new("/tmp/ceph-peer/ceph.conf"))
        );
        let endpoint = peer.endpoint;
        assert_eq!(endpoint.url.as_str(), "http://127.0.0.1:7480/");
        assert_eq!(endpoint.region, "us-east-1");
        assert_eq!(endpoint.access_key, "CEPHPEERACCESSKEY000");
        assert_eq!(endpoint.secret_key, "secret=with=equals");
    }

    #[test]
    fn frontends_line_is_found_in_either_spelling() {
        let conf = "[global]\nfsid = x\n[client.rgw.peer]\n\
                    rgw frontends = beast endpoint=127.0.0.1:7481 tcp_nodelay=1\n";
        assert_eq!(
            frontends_line(conf).as_deref(),
            Some("beast endpoint=127.0.0.1:7481 tcp_nodelay=1")
        );
        assert_eq!(
            frontends_line("rgw_frontends = beast port=80\n").as_deref(),
            Some("beast port=80")
        );
        assert_eq!(frontends_line("[global]\nfsid = x\n"), None);
    }

    #[test]
    fn missing_key_is_named() {
        let err = parse_env("S3_ENDPOINT=http://127.0.0.1:7480\n").unwrap_err();
        assert!(err.to_string().contains("AWS_ACCESS_KEY_ID"));
    }
}
