// SPDX-License-Identifier: Apache-2.0
//! Output of a simulated job, held back until its device time is known.
//!
//! The response head (with `x-quarry-device-time`) goes out with the first output byte, but
//! the device time depends on the output size, known only at the end. So the first
//! [`HOLD_BYTES`] of output wait here: a result that fits (the usual pushdown result: counts,
//! sums, selected rows) is released after the job ends with the exact time; a larger one is
//! released when the hold fills, after the caller has recorded a projected time, and streams
//! from then on.

use std::io;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::backend::OutputSink;

/// The most output held back before release.
pub(super) const HOLD_BYTES: u64 = 1 << 20;

/// What the forwarder saw.
#[derive(Debug, Default)]
pub(super) struct Held {
    /// Output not yet released (empty once released).
    chunks: Vec<io::Result<Bytes>>,
    /// Whether the hold filled and output was released before the end.
    pub(super) released_early: bool,
    /// Whether the reader of the output went away.
    pub(super) reader_gone: bool,
}

/// Takes the job's output from `rx` until it ends: held while it fits in [`HOLD_BYTES`], then
/// (after `on_release`) forwarded to `out` as it comes.
pub(super) async fn hold(
    mut rx: mpsc::Receiver<io::Result<Bytes>>,
    out: &OutputSink,
    on_release: impl FnOnce(),
) -> Held {
    let mut held = Held::default();
    let mut bytes = 0u64;
    let mut on_release = Some(on_release);
    loop {
        let item = tokio::select! {
            item = rx.recv() => item,
            () = out.sender().closed() => {
                held.reader_gone = true;
                return held;
            }
        };
        let Some(item) = item else {
            return held;
        };
        if held.released_early {
            if out.sender().send(item).await.is_err() {
                held.reader_gone = true;
                return held;
            }
            continue;
        }
        bytes += item.as_ref().map_or(0, |b| b.len() as u64);
        held.chunks.push(item);
        if bytes > HOLD_BYTES {
            if let Some(f) = on_release.take() {
                f();
            }
            held.released_early = true;
            if !held.release(out).await {
                held.reader_gone = true;
                return held;
            }
        }
    }
}

impl Held {
    /// Sends what is held to `out`; `false` if the reader went away.
    pub(super) async fn release(&mut self, out: &OutputSink) -> bool {
        for item in self.chunks.drain(..) {
            if out.sender().send(item).await.is_err() {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn small_output_is_held_until_released() {
        let (tx, rx) = mpsc::channel(4);
        let (out, mut out_rx) = OutputSink::channel(4);
        tx.send(Ok(Bytes::from_static(b"abc"))).await.unwrap();
        drop(tx);
        let mut held = hold(rx, &out, || panic!("nothing to release early")).await;
        assert!(!held.released_early);
        assert!(out_rx.try_recv().is_err(), "nothing sent before release");
        assert!(held.release(&out).await);
        assert_eq!(out_rx.recv().await.unwrap().unwrap(), "abc");
    }

    #[tokio::test]
    async fn output_past_the_hold_is_released_once_and_streams() {
        let (tx, rx) = mpsc::channel(4);
        let (out, mut out_rx) = OutputSink::channel(64);
        let piece = Bytes::from(vec![7u8; 512 * 1024]);
        let sender = tokio::spawn(async move {
            for _ in 0..4 {
                tx.send(Ok(piece.clone())).await.unwrap();
            }
        });
        let mut calls = 0;
        let held = hold(rx, &out, || calls += 1).await;
        sender.await.unwrap();
        assert!(held.released_early);
        assert_eq!(calls, 1);
        drop(out);
        let mut total = 0;
        while let Some(item) = out_rx.recv().await {
            total += item.unwrap().len();
        }
        assert_eq!(total, 4 * 512 * 1024);
    }
}
