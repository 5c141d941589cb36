// SPDX-License-Identifier: Apache-2.0
//! Read-path tests: the conformance suite under each engine (io_uring forced, pread forced)
//! and each `direct_io` choice, ranges across chunk, block and segment boundaries, `O_DIRECT`
//! tails, buffers coming back to the pool when a body is dropped mid-way, progress when
//! consumers hold every buffer, and `direct_io = "auto"` following page-cache residency.

use std::time::Duration;

use bytesize::ByteSize;
use futures::StreamExt;

use super::*;
use crate::config::{DirectIo, ReadEngineChoice};
use crate::store::testing::{
    body_from, conformance, conformance_limits, pattern, put_bytes, read_all,
};
use crate::store::{CompletedPart, ObjectAttrs};

/// Both engines, each forced.
const ENGINES: [ReadEngineChoice; 2] = [ReadEngineChoice::Uring, ReadEngineChoice::Pread];

/// Small buffers and a small pool, so bodies of a few hundred KiB take many chunks and the
/// pool runs dry. `O_DIRECT` always (with io_uring), so freshly written (cached) bodies take
/// the aligned path too.
fn small_pool(engine: ReadEngineChoice) -> StoreLimits {
    StoreLimits {
        read_engine: engine,
        direct_io: DirectIo::Always,
        read_depth: 4,
        read_buffers: 8,
        read_buffer_size: ByteSize::kib(4),
        min_part_size: ByteSize::kib(5),
        ..StoreLimits::default()
    }
}

async fn open_with(dir: &Path, limits: StoreLimits) -> LocalStore {
    let store = LocalStore::open(dir, limits).await.unwrap();
    store.create_bucket("b").await.unwrap();
    store
}

/// Checks the engine the store opened with is the forced one, and that io_uring reads with
/// `O_DIRECT` always (the test machines' temporary directory is on a disk that takes it).
fn assert_engine(store: &LocalStore, engine: ReadEngineChoice) {
    let info = store.read_engine();
    match engine {
        ReadEngineChoice::Pread => {
            assert_eq!(info.engine, ReadEngineKind::Pread, "{info}");
            assert_eq!(info.direct_io, DirectIo::Never, "{info}");
        }
        _ => {
            assert_eq!(info.engine, ReadEngineKind::Uring, "{info}");
            assert_eq!(
                info.direct_io,
                DirectIo::Always,
                "O_DIRECT is refused in the temp dir: {info}"
            );
        }
    }
}

/// Waits until every pool buffer is back (reads in flight finish in the engine first).
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
async fn both_engines_pass_the_conformance_suite() {
    for engine in ENGINES {
        let dir = tempfile::tempdir().unwrap();
        let limits = StoreLimits {
            read_engine: engine,
            direct_io: DirectIo::Always,
            ..conformance_limits()
        };
        let store = LocalStore::open(dir.path(), limits).await.unwrap();
        assert_engine(&store, engine);
        conformance(&store).await;
        wait_for_all_buffers(&store).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uring_with_direct_io_never_and_auto_passes_the_conformance_suite() {
    for direct_io in [DirectIo::Never, DirectIo::Auto] {
        let dir = tempfile::tempdir().unwrap();
        let limits = StoreLimits {
            read_engine: ReadEngineChoice::Uring,
            direct_io,
            ..conformance_limits()
        };
        let store = LocalStore::open(dir.path(), limits).await.unwrap();
        let info = store.read_engine();
        assert!(
            info.engine == ReadEngineKind::Uring && info.direct_io == direct_io,
            "{info}"
        );
        conformance(&store).await;
        wait_for_all_buffers(&store).await;
    }
}

/// Drops every data file of the store from the page cache.
fn evict_data_files(files: &[PathBuf]) {
    for path in files {
        residency::evict(&std::fs::File::open(path).unwrap()).unwrap();
    }
}

/// Reads every data file of the store whole, through the page cache.
fn warm_data_files(files: &[PathBuf]) {
    for path in files {
        std::fs::read(path).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_direct_io_follows_page_cache_residency_with_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let limits = StoreLimits {
        read_engine: ReadEngineChoice::Uring,
        direct_io: DirectIo::Auto,
        read_buffer_size: ByteSize::kib(64),
        min_part_size: ByteSize::kib(5),
        ..StoreLimits::default()
    };
    let store = open_with(dir.path(), limits).await;
    assert_eq!(store.read_engine().direct_io, DirectIo::Auto);
    // A single-file object and a multipart one: 2 MiB and a bit each, 33 buffers.
    let single = pattern(2 * 1024 * 1024 + 4097, 21);
    put_bytes(&store, "b", "single", &single).await;
    let id = store
        .create_multipart("b", "mp", ObjectAttrs::default())
        .await
        .unwrap();
    let mut whole = Vec::new();
    let mut parts = Vec::new();
    for (n, size) in [(1u32, 1024 * 1024 + 5), (2, 1024 * 1024 + 4099)] {
        let body = pattern(size, u64::from(n) + 30);
        let part = store
            .upload_part(
                "b",
                "mp",
                &id,
                n,
                body_from(body.clone()),
                PutOptions::default(),
            )
            .await
            .unwrap();
        whole.extend_from_slice(&body);
        parts.push(CompletedPart {
            part_number: n,
            etag: part.etag,
        });
    }
    store
        .complete_multipart("b", "mp", &id, &parts, PutPrecondition::None)
        .await
        .unwrap();
    let files: Vec<PathBuf> = store
        .referenced_files()
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(files.len(), 3, "{files:?}");
    let range = ByteRange::FromTo {
        first: 4095,
        last: Some(2 * 1024 * 1024 + 3),
    };
    // (state, the choice it must lead to): written through the page cache, evicted, still
    // cold after an O_DIRECT read (which caches nothing), then read through the cache.
    type Prepare = fn(&[PathBuf]);
    let steps: [(&str, Prepare, bool); 4] = [
        ("just written", |_| {}, false),
        ("evicted", evict_data_files, true),
        ("read with O_DIRECT only", |_| {}, true),
        ("read whole", warm_data_files, false),
    ];
    for (state, prepare, want_direct) in steps {
        prepare(&files);
        for (key, body) in [("single", &single), ("mp", &whole)] {
            let before = store.io_stats();
            let got = read_all(store.get_object("b", key, None).await.unwrap()).await;
            assert!(got == *body, "{state} {key}: the whole body differs");
            let reader = store.get_object("b", key, Some(range)).await.unwrap();
            let got = read_all(reader).await;
            let want = &body[4095..=2 * 1024 * 1024 + 3];
            assert!(got == want, "{state} {key}: the range differs");
            let after = store.io_stats();
            let (direct, cached) = (
                after.direct_bodies - before.direct_bodies,
                after.cached_bodies - before.cached_bodies,
            );
            let want = if want_direct { (2, 0) } else { (0, 2) };
            assert_eq!(
                (direct, cached),
                want,
                "{state} {key}: (O_DIRECT, page cache) bodies"
            );
        }
    }
    wait_for_all_buffers(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_and_never_ignore_residency() {
    for (direct_io, want_direct) in [(DirectIo::Always, true), (DirectIo::Never, false)] {
        let dir = tempfile::tempdir().unwrap();
        let limits = StoreLimits {
            direct_io,
            ..small_pool(ReadEngineChoice::Uring)
        };
        let store = open_with(dir.path(), limits).await;
        let data = pattern(100_000, 40);
        put_bytes(&store, "b", "k", &data).await;
        let files: Vec<PathBuf> = store
            .referenced_files()
            .await
            .unwrap()
            .into_iter()
            .collect();
        for prepare in [evict_data_files, warm_data_files] {
            prepare(&files);
            let before = store.io_stats();
            let got = read_all(store.get_object("b", "k", None).await.unwrap()).await;
            assert!(got == data, "{direct_io:?}: the body differs");
            let after = store.io_stats();
            assert_eq!(
                after.direct_bodies - before.direct_bodies,
                u64::from(want_direct),
                "{direct_io:?}"
            );
            assert_eq!(
                after.cached_bodies - before.cached_bodies,
                u64::from(!want_direct),
                "{direct_io:?}"
            );
        }
    }
}

/// Offsets worth starting or ending a range at: block and chunk edges (4 KiB), part edges.
fn edges(len: u64, part_ends: &[u64]) -> Vec<u64> {
    let mut out = vec![0, 1, 511, 4095, 4096, 4097, 8191, 8192, 12_289];
    for &end in part_ends {
        out.extend([end - 1, end, end + 1]);
    }
    out.extend([len - 4097, len - 4096, len - 2, len - 1]);
    out.retain(|&o| o < len);
    out.sort_unstable();
    out.dedup();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_across_segments_and_unaligned_tails_read_exactly() {
    for engine in ENGINES {
        let dir = tempfile::tempdir().unwrap();
        let store = open_with(dir.path(), small_pool(engine)).await;
        assert_engine(&store, engine);
        // Three parts of unaligned sizes: segment boundaries fall inside blocks.
        let sizes = [5 * 1024 + 3, 9 * 1024 + 511, 7 * 1024 + 1];
        let id = store
            .create_multipart("b", "mp", ObjectAttrs::default())
            .await
            .unwrap();
        let mut whole = Vec::new();
        let mut parts = Vec::new();
        let mut part_ends = Vec::new();
        for (n, size) in (1..).zip(sizes) {
            let body = pattern(size, u64::from(n) + 10);
            let part = store
                .upload_part(
                    "b",
                    "mp",
                    &id,
                    n,
                    body_from(body.clone()),
                    PutOptions::default(),
                )
                .await
                .unwrap();
            whole.extend_from_slice(&body);
            part_ends.push(whole.len() as u64);
            parts.push(CompletedPart {
                part_number: n,
                etag: part.etag,
            });
        }
        store
            .complete_multipart("b", "mp", &id, &parts, PutPrecondition::None)
            .await
            .unwrap();
        // A single-file object whose length is not a block multiple.
        let single = pattern(50_000, 3);
        put_bytes(&store, "b", "single", &single).await;

        for (key, body, ends) in [("mp", &whole, &part_ends[..]), ("single", &single, &[][..])] {
            let len = body.len() as u64;
            let whole_read = read_all(store.get_object("b", key, None).await.unwrap()).await;
            assert_eq!(&whole_read, body, "{engine:?} {key}: whole body");
            let offsets = edges(len, ends);
            for &first in &offsets {
                for &last in offsets.iter().filter(|&&o| o >= first) {
                    let range = ByteRange::FromTo {
                        first,
                        last: Some(last),
                    };
                    let reader = store.get_object("b", key, Some(range)).await.unwrap();
                    let got = read_all(reader).await;
                    let (from, to) = (usize::try_from(first), usize::try_from(last));
                    let want = &body[from.unwrap()..=to.unwrap()];
                    assert!(got == want, "{engine:?} {key}: bytes {first}-{last} differ");
                }
            }
            let suffix = ByteRange::Suffix { length: 4097 };
            let got = read_all(store.get_object("b", key, Some(suffix)).await.unwrap()).await;
            assert_eq!(got, body[body.len() - 4097..], "{engine:?} {key}: suffix");
        }
        wait_for_all_buffers(&store).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_body_mid_read_returns_every_buffer_to_the_pool() {
    for engine in ENGINES {
        let dir = tempfile::tempdir().unwrap();
        let store = open_with(dir.path(), small_pool(engine)).await;
        let data = pattern(400 * 1024, 5);
        put_bytes(&store, "b", "k", &data).await;
        for taken in [0, 1, 3, 20] {
            let mut body = store.get_object("b", "k", None).await.unwrap().body;
            let mut held = Vec::new();
            for _ in 0..taken {
                held.push(body.next().await.unwrap().unwrap());
            }
            // Reads are in flight now; the body goes away with them, then the chunks.
            drop(body);
            drop(held);
            wait_for_all_buffers(&store).await;
        }
        let stats = store.read_pool_stats();
        assert_eq!(stats.free, stats.buffers, "{engine:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_holding_every_chunk_still_gets_the_whole_body() {
    for engine in ENGINES {
        let dir = tempfile::tempdir().unwrap();
        let store = open_with(dir.path(), small_pool(engine)).await;
        // 100 chunks against a pool of 8 buffers.
        let data = pattern(400 * 1024, 6);
        put_bytes(&store, "b", "k", &data).await;
        let reader = store.get_object("b", "k", None).await.unwrap();
        let chunks: Vec<_> = reader.body.map(Result::unwrap).collect().await;
        assert_eq!(chunks.len(), 100);
        assert_eq!(chunks.concat(), data);
        let stats = store.read_pool_stats();
        assert!(stats.overflow_allocations > 0, "{engine:?} {stats:?}");
        drop(chunks);
        wait_for_all_buffers(&store).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_reads_share_a_small_pool() {
    for engine in ENGINES {
        let dir = tempfile::tempdir().unwrap();
        let store = open_with(dir.path(), small_pool(engine)).await;
        let data = pattern(200 * 1024, 7);
        put_bytes(&store, "b", "k", &data).await;
        let reads = (0..16).map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let reader = store.get_object("b", "k", None).await.unwrap();
                read_all(reader).await
            })
        });
        for read in futures::future::join_all(reads).await {
            assert!(
                read.unwrap() == data,
                "{engine:?}: a concurrent read differs"
            );
        }
        wait_for_all_buffers(&store).await;
    }
}

#[tokio::test]
async fn a_body_cut_short_on_disk_fails_the_stream() {
    for engine in ENGINES {
        let dir = tempfile::tempdir().unwrap();
        let store = open_with(dir.path(), small_pool(engine)).await;
        put_bytes(&store, "b", "k", &pattern(100_000, 8)).await;
        // Open first (the length check passes), then cut the file under the reader.
        let reader = store.get_object("b", "k", None).await.unwrap();
        let files = store.referenced_files().await.unwrap();
        let path = files.first().unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .unwrap()
            .set_len(10_000)
            .unwrap();
        let result = crate::store::testing::try_read_body(reader.body).await;
        let err = result.expect_err("a cut file cannot yield its recorded length");
        assert_eq!(
            err.kind(),
            std::io::ErrorKind::UnexpectedEof,
            "{engine:?} {err}"
        );
        wait_for_all_buffers(&store).await;
    }
}
