// SPDX-License-Identifier: Apache-2.0
//! Criterion groups `read_engine/warm` and `read_engine/cold`: one 64 MiB object read whole
//! through `LocalStore` under each read engine, against a plain sequential read of the same
//! data file.
//!
//! - `uring_direct`: `store.read_engine = "uring"` with `direct_io = "always"`: reads go to
//!   the device whatever the page cache holds.
//! - `uring_buffered`: io_uring through the page cache (`direct_io = "never"`).
//! - `pread`: the fallback engine (pread on the blocking pool, through the page cache).
//! - `std_fs_read`: `std::fs::File::read` of the store's data file into one reused 1 MiB
//!   buffer, the baseline.
//!
//! Every side reads with 1 MiB buffers and drops the bytes (the store's chunks are dropped as
//! they come, as the HTTP writer does), so the numbers compare the read paths, not a copy
//! into one big `Vec`. The store runs with the default read depth (8) and pool (64 buffers).
//! `cold` drops the file's pages (`posix_fadvise(DONTNEED)`, twice) before every timed read;
//! `warm` reads it once before the group and never evicts.
//!
//! The object lives in `CARGO_TARGET_TMPDIR` (the disk of the build, not a tmpfs), and every
//! engine reads the very same data file: the store is reopened on one directory with each
//! configuration in turn. Run with `cargo bench -p quarry-bench --bench read_engine`.

use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt as _;
use quarry_interceptor::config::{DirectIo, ReadEngineChoice, StoreLimits};
use quarry_interceptor::store::PutOptions;
use quarry_interceptor::store::local::ReadEngineKind;
use quarry_interceptor::store::testing::pattern;
use quarry_interceptor::{LocalStore, ObjectStore};
use rustix::fs::{Advice, fadvise};
use tokio::runtime::Runtime;

const BUCKET: &str = "bench";
const KEY: &str = "object";
const SIZE: usize = 64 << 20;
const CHUNK: usize = 1 << 20;

/// The store configurations compared: name, engine, `O_DIRECT`.
const ENGINES: [(&str, ReadEngineChoice, bool); 3] = [
    ("uring_direct", ReadEngineChoice::Uring, true),
    ("uring_buffered", ReadEngineChoice::Uring, false),
    ("pread", ReadEngineChoice::Pread, false),
];

fn read_engine(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime builds on any machine that runs benches");
    let dir = tempfile::Builder::new()
        .prefix("read-engine-bench-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("the target tmp dir is writable");
    let store_dir = dir.path().join("store");
    seed(&rt, &store_dir);
    let file = data_file(&store_dir);
    for cold in [false, true] {
        let name = if cold { "cold" } else { "warm" };
        let mut group = c.benchmark_group(format!("read_engine/{name}"));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(4))
            .throughput(Throughput::Bytes(SIZE as u64));
        if !cold {
            read_file(&file); // into the page cache
        }
        for (name, engine, direct) in ENGINES {
            let store = open(&rt, &store_dir, engine, direct);
            group.bench_function(name, |b| {
                b.iter_batched(
                    || evict_if(cold, &file),
                    |()| rt.block_on(get(&store)),
                    BatchSize::PerIteration,
                );
            });
            drop(store);
        }
        group.bench_function("std_fs_read", |b| {
            b.iter_batched(
                || evict_if(cold, &file),
                |()| read_file(&file),
                BatchSize::PerIteration,
            );
        });
        group.finish();
    }
}

fn limits(engine: ReadEngineChoice, direct_io: bool) -> StoreLimits {
    StoreLimits {
        read_engine: engine,
        direct_io: if direct_io {
            DirectIo::Always
        } else {
            DirectIo::Never
        },
        ..StoreLimits::default()
    }
}

/// Stores the object (in a data file: 64 MiB is far above `inline_max`).
fn seed(rt: &Runtime, dir: &Path) {
    rt.block_on(async {
        let store = LocalStore::open(dir, limits(ReadEngineChoice::Pread, false))
            .await
            .expect("LocalStore opens on an empty dir");
        store
            .create_bucket(BUCKET)
            .await
            .expect("a new store creates a bucket");
        let data = Bytes::from(pattern(SIZE, 9));
        let chunks: Vec<_> = (0..SIZE)
            .step_by(CHUNK)
            .map(|at| Ok(data.slice(at..(at + CHUNK).min(SIZE))))
            .collect();
        let options = PutOptions {
            expected_len: Some(SIZE as u64),
            ..PutOptions::default()
        };
        store
            .put_object(
                BUCKET,
                KEY,
                Box::pin(futures::stream::iter(chunks)),
                options,
            )
            .await
            .expect("the put succeeds");
    });
}

/// The store's only data file.
fn data_file(store_dir: &Path) -> PathBuf {
    let data = store_dir.join("data");
    let mut files = Vec::new();
    for shard in std::fs::read_dir(&data).expect("the store has a data dir") {
        let shard = shard.expect("the data dir lists").path();
        if shard.is_dir() {
            for file in std::fs::read_dir(&shard).expect("a shard lists") {
                files.push(file.expect("a shard lists").path());
            }
        }
    }
    assert_eq!(files.len(), 1, "one object, one data file: {files:?}");
    files.remove(0)
}

/// Opens the store with one engine configuration; panics where it cannot run as asked.
fn open(rt: &Runtime, dir: &Path, engine: ReadEngineChoice, direct: bool) -> LocalStore {
    let store = rt
        .block_on(LocalStore::open(dir, limits(engine, direct)))
        .expect("the store reopens with each engine");
    let info = store.read_engine();
    let want = match engine {
        ReadEngineChoice::Pread => ReadEngineKind::Pread,
        _ => ReadEngineKind::Uring,
    };
    assert_eq!(info.engine, want, "{info}");
    assert_eq!(
        info.direct_io == DirectIo::Always,
        direct,
        "the bench disk must take O_DIRECT: {info}"
    );
    store
}

/// A whole GET, each chunk dropped as it arrives; returns the bytes seen.
async fn get(store: &LocalStore) -> usize {
    let reader = store
        .get_object(BUCKET, KEY, None)
        .await
        .expect("the seeded object exists");
    let mut body = reader.body;
    let mut total = 0;
    while let Some(chunk) = body.next().await {
        total += chunk.expect("the body reads").len();
    }
    assert_eq!(total, SIZE);
    total
}

/// A plain sequential read into one reused buffer; returns the bytes read.
fn read_file(path: &Path) -> usize {
    let mut file = File::open(path).expect("the data file exists");
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0;
    loop {
        match file.read(&mut buf).expect("the data file reads") {
            0 => break,
            n => total += n,
        }
    }
    assert_eq!(total, SIZE);
    total
}

/// Drops the file's pages from the page cache when `cold` (the file is clean: the store
/// fsynced it).
fn evict_if(cold: bool, path: &Path) {
    if !cold {
        return;
    }
    let file = File::open(path).expect("the data file exists");
    for _ in 0..2 {
        fadvise(&file, 0, None, Advice::DontNeed).expect("fadvise works on a regular file");
    }
}

criterion_group!(benches, read_engine);
criterion_main!(benches);
