// SPDX-License-Identifier: Apache-2.0
//! I/O engine tests: PUT and part bodies are written (and fsynced) through the engine the
//! store reads with, and a GET on the io_uring path hands out the pool buffers the engine
//! filled, copying nothing.

use std::time::Duration;

use bytesize::ByteSize;
use futures::StreamExt;

use super::*;
use crate::config::ReadEngineChoice;
use crate::store::testing::{body_from, pattern, put_bytes};
use crate::store::{CompletedPart, ObjectAttrs};

/// Both engines, each forced.
const ENGINES: [ReadEngineChoice; 2] = [ReadEngineChoice::Uring, ReadEngineChoice::Pread];

async fn open_with(dir: &Path, engine: ReadEngineChoice, buffers: usize) -> LocalStore {
    let limits = StoreLimits {
        read_engine: engine,
        read_depth: 4,
        read_buffers: buffers,
        read_buffer_size: ByteSize::kib(64),
        min_part_size: ByteSize::kib(5),
        ..StoreLimits::default()
    };
    let store = LocalStore::open(dir, limits).await.unwrap();
    store.create_bucket("b").await.unwrap();
    store
}

async fn wait_for_all_buffers(store: &LocalStore) {
    for _ in 0..500 {
        let stats = store.read_pool_stats();
        if stats.free == stats.buffers {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("buffers never came back: {:?}", store.read_pool_stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn puts_and_parts_are_written_and_fsynced_by_the_stores_engine() {
    for engine in ENGINES {
        let dir = tempfile::tempdir().unwrap();
        let store = open_with(dir.path(), engine, 8).await;
        let kind = store.read_engine().engine;
        assert_eq!(store.io_stats().writes, 0);

        // 3 MiB and a bit: several write buffers, a short tail.
        let big = pattern(3 * 1024 * 1024 + 77, 1);
        put_bytes(&store, "b", "big", &big).await;
        let upload = store
            .create_multipart("b", "mp", ObjectAttrs::default())
            .await
            .unwrap();
        let part_body = pattern(6 * 1024, 2);
        let part = store
            .upload_part(
                "b",
                "mp",
                &upload,
                1,
                body_from(part_body.clone()),
                PutOptions::default(),
            )
            .await
            .unwrap();
        store
            .complete_multipart(
                "b",
                "mp",
                &upload,
                &[CompletedPart {
                    part_number: 1,
                    etag: part.etag,
                }],
                PutPrecondition::None,
            )
            .await
            .unwrap();

        let stats = store.io_stats();
        assert_eq!(stats.engine, kind, "{engine:?}");
        assert_eq!(
            stats.write_bytes,
            (big.len() + part_body.len()) as u64,
            "{engine:?} {stats:?}"
        );
        // One fsync per data file: the object and the part.
        assert_eq!(stats.syncs, 2, "{engine:?} {stats:?}");
        assert!(stats.writes >= 5, "{engine:?} {stats:?}");

        // What was written reads back, through the same engine, after a reopen.
        drop(store);
        let store = LocalStore::open(dir.path(), StoreLimits::default())
            .await
            .unwrap();
        let got = crate::store::testing::get_bytes(&store, "b", "big").await;
        assert!(got == big, "{engine:?}: big differs after reopen");
        let got = crate::store::testing::get_bytes(&store, "b", "mp").await;
        assert!(
            got == part_body,
            "{engine:?}: the part differs after reopen"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_on_the_uring_path_hands_out_pool_buffers_and_copies_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // More buffers than the body has chunks, so no chunk needs an overflow buffer.
    let store = open_with(dir.path(), ReadEngineChoice::Uring, 32).await;
    assert_eq!(store.read_engine().engine, ReadEngineKind::Uring);
    let data = pattern(1024 * 1024 + 4097, 3);
    put_bytes(&store, "b", "k", &data).await;
    let before = store.io_stats();

    let reader = store.get_object("b", "k", None).await.unwrap();
    let chunks: Vec<bytes::Bytes> = reader.body.map(Result::unwrap).collect().await;
    assert!(chunks.len() > 1);
    assert_eq!(chunks.concat(), data);
    let starts: Vec<(usize, usize)> = chunks
        .iter()
        .map(|c| (c.as_ptr() as usize, c.len()))
        .collect();
    drop(chunks);
    wait_for_all_buffers(&store).await;

    // Every byte served lies in a pool buffer: the engine's own read destination.
    let pool = store.inner.read.pool_address_ranges();
    for (start, len) in starts {
        assert!(
            pool.iter()
                .any(|r| r.start <= start && start + len <= r.end),
            "a chunk at {start:#x} (+{len}) is not a pool buffer"
        );
    }
    let after = store.io_stats();
    assert_eq!(after.copied_bytes, 0, "{after:?}");
    assert!(
        after.read_bytes - before.read_bytes >= data.len() as u64,
        "{after:?}"
    );
}

#[tokio::test]
async fn inline_object_bytes_are_counted_as_copied() {
    let dir = tempfile::tempdir().unwrap();
    let limits = StoreLimits {
        inline_max: ByteSize::kib(4),
        ..StoreLimits::default()
    };
    let store = LocalStore::open(dir.path(), limits).await.unwrap();
    store.create_bucket("b").await.unwrap();
    put_bytes(&store, "b", "small", b"hello").await;
    let got = crate::store::testing::get_bytes(&store, "b", "small").await;
    assert_eq!(got, b"hello");
    assert_eq!(store.io_stats().copied_bytes, 5);
}

/// Lines of `width` bytes (newline included), every seventh holding "needle".
fn lines(count: usize, width: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(count * width);
    for i in 0..count {
        let word = if i % 7 == 0 { "needle" } else { "hay" };
        let line = format!("{i:08} {word}");
        out.extend_from_slice(line.as_bytes());
        out.resize(out.len() + width - 1 - line.len(), b'.');
        out.push(b'\n');
    }
    out
}

/// Streams a GET body through a framer into the native grep kernel, as a function's input
/// would go; returns the kernel's output, the bytes the framer copied, and where each chunk
/// the kernel read lay (chunks the framer joined are left out: they are counted instead).
async fn grep_count_from_store(store: &LocalStore) -> (Vec<u8>, u64, Vec<(usize, usize)>) {
    let kernel = quarry_kernels::find("grep").expect("the grep kernel is built in");
    let params = quarry_kernels::Params::new([
        ("pattern".to_owned(), "needle".to_owned()),
        ("mode".to_owned(), "count".to_owned()),
    ]);
    let bound = kernel
        .bind(&params.validate(kernel.info()).unwrap())
        .unwrap();
    let mut framer = quarry_kernels::Framer::new(bound.framing(), 1 << 20);
    let mut run = bound.cpu().expect("grep runs on the CPU");
    let mut out = Vec::new();
    let mut held = Vec::new();
    let mut body = store.get_object("b", "k", None).await.unwrap().body;
    while let Some(piece) = body.next().await {
        let copied_before = framer.copied_bytes();
        for (i, chunk) in framer.push(piece.unwrap()).unwrap().into_iter().enumerate() {
            run.feed(&chunk, &mut out).unwrap();
            // A joined record comes first among the chunks of a push, when there is one.
            let joined = i == 0 && framer.copied_bytes() > copied_before;
            if !joined {
                held.push((chunk.as_ptr() as usize, chunk.len()));
            }
        }
    }
    if let Some(rest) = framer.finish() {
        run.feed(&rest, &mut out).unwrap();
    }
    run.finish(&mut out).unwrap();
    (out, framer.copied_bytes(), held)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_kernel_reads_uring_chunks_in_place() {
    let kernel = quarry_kernels::find("grep").unwrap();
    for (width, straddles) in [(64, false), (100, true)] {
        let dir = tempfile::tempdir().unwrap();
        let store = open_with(dir.path(), ReadEngineChoice::Uring, 64).await;
        let data = lines(20_000, width);
        put_bytes(&store, "b", "k", &data).await;

        let (out, framer_copied, pieces) = grep_count_from_store(&store).await;
        // The same answer as one run over the whole input.
        let params = quarry_kernels::Params::new([
            ("pattern".to_owned(), "needle".to_owned()),
            ("mode".to_owned(), "count".to_owned()),
        ]);
        let bound = kernel
            .bind(&params.validate(kernel.info()).unwrap())
            .unwrap();
        let mut whole = bound.cpu().unwrap();
        let mut want = Vec::new();
        whole.feed(&data, &mut want).unwrap();
        whole.finish(&mut want).unwrap();
        assert_eq!(out, want, "width {width}");

        wait_for_all_buffers(&store).await;
        let pool = store.inner.read.pool_address_ranges();
        for (start, len) in &pieces {
            assert!(
                pool.iter()
                    .any(|r| r.start <= *start && start + len <= r.end),
                "width {width}: a kernel input chunk at {start:#x} is not a pool buffer"
            );
        }
        assert_eq!(store.io_stats().copied_bytes, 0);
        let buffer = 64 * 1024;
        if straddles {
            // Only the lines across a buffer edge are joined: at most one line per edge.
            let edges = data.len().div_ceil(buffer) as u64;
            assert!(framer_copied > 0, "width {width}");
            assert!(framer_copied <= edges * width as u64, "width {width}");
        } else {
            // Lines end on every buffer edge: not one byte is copied.
            assert_eq!(framer_copied, 0, "width {width}");
        }
    }
}
