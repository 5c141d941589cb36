// SPDX-License-Identifier: Apache-2.0
//! ABI v2, the input window: the guest names a region of its own linear memory, and the host
//! writes the input straight into it, one `input_next` call at a time.
//!
//! ```text
//! quarry.input_window(ptr: i32, len: i32) -> i32    0, or QUARRY_EINVAL
//! quarry.input_next() -> i64                        bytes now at ptr, 0 at the end, or < 0
//! ```
//!
//! A module that imports `quarry.input_next` is a window module: its input goes to the window
//! and its stdin is empty. Everything else (stdout, stderr, environment, the other host calls)
//! is ABI v1.
//!
//! What is copied: each input chunk is a buffer the store's read engine filled (or the
//! request body's chunk); `input_next` copies its bytes once, from that buffer into the
//! window, with no buffer in between. ABI v1 moves the same bytes through WASI's stdin stream,
//! which buffers them before `fd_read` copies them into the guest. A chunk larger than the
//! window is handed out over several calls (the rest is kept as a slice of the same buffer,
//! not copied). [`InputWindow::copied_bytes`] counts the bytes copied into the window.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{Buf as _, Bytes};
use futures::StreamExt as _;
use wasmtime::{Caller, Extern, Linker};

use super::abi::{HostState, MODULE};
use super::io::StreamState;
use crate::backend::ChunkStream;

/// The import that makes a module a window module.
pub(super) const INPUT_NEXT: &str = "input_next";
/// The import that names the window.
pub(super) const INPUT_WINDOW: &str = "input_window";
/// Largest window: one `input_next` copies at most this many bytes.
pub(super) const MAX_WINDOW: u32 = 16 * 1024 * 1024;

/// `QUARRY_EINVAL`: no window named, or a window outside the guest's memory.
const INVALID: i64 = -1;
/// `QUARRY_EIO`: the input stream failed (the store's read, the client's body).
const IO: i64 = -6;

/// The input of one window-module invocation and where it goes.
#[derive(Default)]
pub(super) struct InputWindow {
    input: Option<ChunkStream>,
    /// What is left of the chunk a call could not fit into the window.
    pending: Bytes,
    /// `(offset, len)` of the window in the guest's memory.
    region: Option<(usize, usize)>,
    /// Whether the input has ended.
    ended: bool,
    copied: u64,
}

impl InputWindow {
    /// A window fed from `input` (a module that imports `input_next`).
    pub(super) fn new(input: ChunkStream) -> Self {
        Self {
            input: Some(input),
            ..Self::default()
        }
    }

    /// Bytes copied into the guest's window so far (each input byte exactly once).
    pub(super) fn copied_bytes(&self) -> u64 {
        self.copied
    }

    /// Names the window: `len` bytes at `ptr` within a memory of `memory_size` bytes.
    fn set(&mut self, ptr: u32, len: u32, memory_size: usize) -> bool {
        let (Ok(start), Ok(n)) = (usize::try_from(ptr), usize::try_from(len)) else {
            return false;
        };
        let fits = start.checked_add(n).is_some_and(|end| end <= memory_size);
        if n == 0 || len > MAX_WINDOW || !fits {
            return false;
        }
        self.region = Some((start, n));
        true
    }

    /// The next input bytes not yet handed out: what is pending, else the next non-empty
    /// chunk; empty at the end of the input.
    async fn next_piece(&mut self) -> std::io::Result<()> {
        while self.pending.is_empty() && !self.ended {
            match self.input.as_mut() {
                None => self.ended = true,
                Some(input) => match input.next().await {
                    None => self.ended = true,
                    Some(chunk) => self.pending = chunk?,
                },
            }
        }
        Ok(())
    }

    /// Copies as much of the pending piece as fits into `window`; returns the count.
    fn fill(&mut self, window: &mut [u8]) -> usize {
        let n = self.pending.len().min(window.len());
        window[..n].copy_from_slice(&self.pending[..n]);
        self.pending.advance(n);
        self.copied += n as u64;
        n
    }
}

/// Adds `input_window` and `input_next` to the `quarry` module.
pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(MODULE, INPUT_WINDOW, input_window)?;
    linker.func_wrap_async(MODULE, INPUT_NEXT, |caller, (): ()| {
        Box::new(input_next(caller))
    })?;
    Ok(())
}

fn input_window(mut caller: Caller<'_, HostState>, ptr: u32, len: u32) -> i32 {
    let Some(memory) = caller.get_export("memory").and_then(Extern::into_memory) else {
        return -1;
    };
    let size = memory.data_size(&caller);
    if caller.data_mut().calls.window.set(ptr, len, size) {
        0
    } else {
        -1
    }
}

async fn input_next(mut caller: Caller<'_, HostState>) -> i64 {
    let Some((start, len)) = caller.data().calls.window.region else {
        return INVALID;
    };
    let Some(memory) = caller.get_export("memory").and_then(Extern::into_memory) else {
        return INVALID;
    };
    let streams: Arc<StreamState> = Arc::clone(&caller.data().calls.streams);
    if let Err(e) = caller.data_mut().calls.window.next_piece().await {
        streams.input_failed.store(true, Ordering::Release);
        tracing::debug!(target: "quarry::function", error = %e, "window input failed");
        return IO;
    }
    // Split borrows: the guest's memory and the host state of the same store.
    let (data, host) = memory.data_and_store_mut(&mut caller);
    // The memory cannot shrink, so the window checked by `input_window` is still in bounds.
    let Some(window) = data.get_mut(start..start + len) else {
        return INVALID;
    };
    let n = host.calls.window.fill(window);
    streams.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window_over(chunks: Vec<&'static [u8]>) -> InputWindow {
        let stream = futures::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c))));
        InputWindow::new(Box::pin(stream))
    }

    async fn drain(w: &mut InputWindow, window_len: usize) -> (Vec<u8>, Vec<usize>) {
        let mut memory = vec![0u8; window_len];
        let (mut all, mut calls) = (Vec::new(), Vec::new());
        loop {
            w.next_piece().await.unwrap();
            let n = w.fill(&mut memory);
            if n == 0 {
                return (all, calls);
            }
            all.extend_from_slice(&memory[..n]);
            calls.push(n);
        }
    }

    #[tokio::test]
    async fn chunks_larger_than_the_window_span_calls_and_every_byte_is_copied_once() {
        let mut w = window_over(vec![b"abcdefghij", b"", b"kl", b"mnopq"]);
        let (all, calls) = drain(&mut w, 4).await;
        assert_eq!(all, b"abcdefghijklmnopq");
        // One chunk per call at most: 10 = 4 + 4 + 2, then 2, then 5 = 4 + 1.
        assert_eq!(calls, [4, 4, 2, 2, 4, 1]);
        assert_eq!(w.copied_bytes(), 17);
    }

    #[tokio::test]
    async fn an_empty_input_ends_at_once() {
        let mut w = window_over(vec![]);
        let (all, calls) = drain(&mut w, 8).await;
        assert!(all.is_empty() && calls.is_empty());
        assert_eq!(w.copied_bytes(), 0);
    }

    #[tokio::test]
    async fn an_input_error_is_reported() {
        let stream = futures::stream::iter([
            Ok(Bytes::from_static(b"ab")),
            Err(std::io::Error::other("disk on fire")),
        ]);
        let mut w = InputWindow::new(Box::pin(stream));
        let mut memory = [0u8; 8];
        w.next_piece().await.unwrap();
        assert_eq!(w.fill(&mut memory), 2);
        assert!(w.next_piece().await.is_err());
    }

    #[test]
    fn a_window_must_lie_inside_memory_and_not_be_empty() {
        let mut w = InputWindow::default();
        assert!(w.set(0, 65536, 65536));
        assert!(!w.set(1, 65536, 65536));
        assert!(!w.set(0, 0, 65536));
        assert!(!w.set(u32::MAX, 2, 65536));
        assert!(!w.set(0, MAX_WINDOW + 1, usize::MAX));
        assert!(w.set(4096, 4096, 65536));
        assert_eq!(w.region, Some((4096, 4096)));
    }
}
