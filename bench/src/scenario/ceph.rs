// SPDX-License-Identifier: Apache-2.0
//! The Ceph RADOS Gateway peer: its endpoint and keys, from the env file `start.sh` writes.
//!
//! The harness never starts or stops the peer (it needs root and installs packages); it only
//! reads `/tmp/ceph-peer/env`, whose lines look like `export S3_ENDPOINT=http://...`.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context as _, Result};

use super::s3::S3Endpoint;

/// Reads the peer's endpoint and keys from its env file.
pub fn read_env_file(path: &Path) -> Result<S3Endpoint> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read the Ceph peer env file {}", path.display()))?;
    parse_env(&text).with_context(|| format!("bad Ceph peer env file {}", path.display()))
}

fn parse_env(text: &str) -> Result<S3Endpoint> {
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
    let endpoint = get("S3_ENDPOINT")?;
    Ok(S3Endpoint {
        url: endpoint
            .parse()
            .with_context(|| format!("S3_ENDPOINT `{endpoint}` is not a URL"))?,
        region: vars
            .get("AWS_DEFAULT_REGION")
            .copied()
            .unwrap_or("us-east-1")
            .to_owned(),
        access_key: get("AWS_ACCESS_KEY_ID")?.to_owned(),
        secret_key: get("AWS_SECRET_ACCESS_KEY")?.to_owned(),
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
        let text = "export CEPH_PEER_DIR=/tmp/ceph-peer\nexport S3_ENDPOINT=http://127.0.0.1:7480\n\
                    export AWS_ACCESS_KEY_ID=CEPHPEERACCESSKEY000\n\
                    export AWS_SECRET_ACCESS_KEY=\"secret=with=equals\"\n";
        let endpoint = parse_env(text).unwrap();
        assert_eq!(endpoint.url.as_str(), "http://127.0.0.1:7480/");
        assert_eq!(endpoint.region, "us-east-1");
        assert_eq!(endpoint.access_key, "CEPHPEERACCESSKEY000");
        assert_eq!(endpoint.secret_key, "secret=with=equals");
    }

    #[test]
    fn missing_key_is_named() {
        let err = parse_env("S3_ENDPOINT=http://127.0.0.1:7480\n").unwrap_err();
        assert!(err.to_string().contains("AWS_ACCESS_KEY_ID"));
    }
}
