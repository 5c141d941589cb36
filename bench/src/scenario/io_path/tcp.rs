// SPDX-License-Identifier: Apache-2.0
//! Serving baselines: what it costs to send the file's bytes over a loopback TCP connection,
//! as a GET's body is sent, without Quarry.
//!
//! A GET's CPU includes the socket send (the copy into the socket buffer, and on loopback the
//! receive-side TCP processing, which runs in the sender's context); a `tokio::fs` read does
//! not pay it. These rows put that cost beside the judged ratios:
//! - [`Source::Memory`]: one 1 MiB buffer written again and again, the socket alone;
//! - [`Source::TokioFs`]: each 1 MiB block read with `tokio::fs` and then written, a minimal
//!   file server without HTTP.
//!
//! The sender runs on this process's runtime; the receiver is a plain thread reading into a
//! 1 MiB buffer and dropping the bytes, as the GET client does. A row's CPU is this process's
//! CPU minus the receiver thread's own, measured by that thread.

use std::io::Read as _;
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, ensure};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::cpu::{own_cpu, thread_cpu};
use super::data::BLOCK;
use super::report::Sample;

/// Where the bytes sent come from.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// One in-memory 1 MiB buffer, sent until `size` bytes went out.
    Memory,
    /// The file, read 1 MiB at a time with `tokio::fs`.
    TokioFs,
}

/// Sends `size` bytes from `source` over a fresh loopback connection once, timed, with this
/// process's CPU time less the receiving thread's.
pub async fn send_once(source: Source, file: &Path, size: u64) -> Result<Sample> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("bind a loopback port")?;
    let addr = listener.local_addr().context("loopback address")?;
    let receiver = std::thread::spawn(move || -> Result<(u64, Duration)> {
        let (mut stream, _) = listener.accept().context("accept")?;
        let before = thread_cpu()?;
        let mut buf = vec![0u8; BLOCK];
        let mut total = 0u64;
        loop {
            let n = stream.read(&mut buf).context("receive")?;
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        Ok((total, thread_cpu()?.saturating_sub(before)))
    });
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .context("connect over loopback")?;
    stream.set_nodelay(true).context("TCP_NODELAY")?;
    let cpu_before = own_cpu()?;
    let started = Instant::now();
    let sent = match source {
        Source::Memory => {
            let buf = vec![b'x'; BLOCK];
            let mut sent = 0u64;
            while sent < size {
                let n = usize::try_from(size - sent).map_or(BLOCK, |left| left.min(BLOCK));
                stream.write_all(&buf[..n]).await.context("send")?;
                sent += n as u64;
            }
            sent
        }
        Source::TokioFs => {
            let mut f = tokio::fs::File::open(file)
                .await
                .with_context(|| format!("failed to open {}", file.display()))?;
            let mut buf = vec![0u8; BLOCK];
            let mut sent = 0u64;
            loop {
                let n = f
                    .read(&mut buf)
                    .await
                    .with_context(|| format!("failed to read {}", file.display()))?;
                if n == 0 {
                    break sent;
                }
                stream.write_all(&buf[..n]).await.context("send")?;
                sent += n as u64;
            }
        }
    };
    stream
        .shutdown()
        .await
        .context("shut the connection down")?;
    drop(stream);
    let (received, receiver_cpu) = tokio::task::spawn_blocking(move || receiver.join())
        .await
        .context("join the receiver")?
        .map_err(|_| anyhow!("the receiver panicked"))??;
    let seconds = started.elapsed().as_secs_f64();
    let cpu = own_cpu()?.saturating_sub(cpu_before);
    ensure!(
        sent == size && received == size,
        "sent {sent} and received {received} bytes, expected {size}"
    );
    Ok(Sample {
        bytes: size,
        seconds,
        cpu_seconds: cpu.saturating_sub(receiver_cpu).as_secs_f64(),
        client_cpu_seconds: Some(receiver_cpu.as_secs_f64()),
    })
}
