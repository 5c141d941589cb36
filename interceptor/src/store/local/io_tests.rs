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
