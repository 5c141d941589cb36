// SPDX-License-Identifier: Apache-2.0
//! The pread engine: each chunk read is a positioned read (`pread`) on tokio's blocking pool.
//!
//! It is the fallback where io_uring is unavailable, and the engine `store.read_engine =
//! "pread"` forces. It runs the same pipeline as io_uring (`pipeline.rs`): the same pool
//! buffers, the same read-ahead depth, so several reads of one body are in flight at once, and
//! the two engines differ only in how a read reaches the kernel. Files are read through the
//! page cache (never `O_DIRECT`).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt as _;

use super::pipeline::{ChunkRead, ReadDone};

/// The pread engine (stateless: the blocking pool is tokio's).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct PreadEngine;

impl PreadEngine {
    /// Runs the read on the blocking pool; its reply comes when it completed. Outside a tokio
    /// runtime the read runs on the caller's thread.
    pub(super) fn submit(self, read: ChunkRead) {
        match tokio::runtime::Handle::try_current() {
            // Detached: the reply carries the outcome.
            Ok(runtime) => drop(runtime.spawn_blocking(move || run(read))),
            Err(_) => run(read),
        }
    }
}

/// One read. Blocking.
fn run(read: ChunkRead) {
    let ChunkRead {
        file,
        offset,
        len,
        mut buf,
        reply,
    } = read;
    let result = match buf.unfilled_mut().get_mut(..len) {
        Some(dst) => read_full_at(&file, dst, offset),
        None => Err(io::Error::from(io::ErrorKind::InvalidInput)),
    };
    let _ = reply.send(ReadDone { result, buf });
}

/// Reads until `dst` is full or the file ends; returns the bytes read.
fn read_full_at(file: &File, dst: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < dst.len() {
        match file.read_at(&mut dst[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
