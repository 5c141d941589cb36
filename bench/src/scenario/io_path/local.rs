// SPDX-License-Identifier: Apache-2.0
//! The baselines: the file read start to end in this process with `std::fs` (a blocking
//! thread) and `tokio::fs` (the runtime's file API), 1 MiB at a time.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result, ensure};
use tokio::io::AsyncReadExt as _;

use super::cpu::own_cpu;
use super::data::BLOCK;
use super::report::Sample;

/// Which file API reads.
#[derive(Debug, Clone, Copy)]
pub enum Api {
    /// `std::fs::File::read` on a blocking thread.
    Std,
    /// `tokio::fs::File` with `AsyncReadExt::read`.
    Tokio,
}

/// Reads `path` whole once with `api`, timing it and charging this process's CPU time to it.
pub async fn read_once(api: Api, path: &Path, expected: u64) -> Result<Sample> {
    let cpu_before = own_cpu()?;
    let started = Instant::now();
    let bytes = match api {
        Api::Std => {
            let path: PathBuf = path.to_owned();
            tokio::task::spawn_blocking(move || read_std(&path))
                .await
                .context("the std::fs reader panicked")??
        }
        Api::Tokio => read_tokio(path).await?,
    };
    let seconds = started.elapsed().as_secs_f64();
    let cpu = own_cpu()?.saturating_sub(cpu_before);
    ensure!(
        bytes == expected,
        "read {bytes} bytes of {}, expected {expected}",
        path.display()
    );
    Ok(Sample {
        bytes,
        seconds,
        cpu_seconds: cpu.as_secs_f64(),
        client_cpu_seconds: None,
    })
}

fn read_std(path: &Path) -> Result<u64> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("failed to open {}", path.display()))?;
    let mut buf = vec![0u8; BLOCK];
    let mut total = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("failed to read {}", path.display()))?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
    }
}

async fn read_tokio(path: &Path) -> Result<u64> {
    let mut file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("failed to open {}", path.display()))?;
    let mut buf = vec![0u8; BLOCK];
    let mut total = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .await
            .with_context(|| format!("failed to read {}", path.display()))?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
    }
}
