// SPDX-License-Identifier: Apache-2.0
//! Criterion group `store`: `LocalStore` put and get against plain file I/O in the same
//! directory tree.
//!
//! - `put/local_store` vs `put/plain_write_fsync`: a durable whole-object write. The store
//!   also hashes and commits its index (and, for an object in a data file, fsyncs the shard
//!   directory); the plain side is `create + write_all + fsync`, so the gap is the store's
//!   overhead.
//! - `put_c32/local_store` vs `put_c32/plain_write_fsync`: 32 durable 4 KiB writes in flight at
//!   once (distinct keys, distinct files); one iteration is the wall time until all 32 are
//!   acknowledged, so it is the latency of each of them and 32 / it the throughput. This is
//!   where the store's commits can share fsyncs (group commit); the plain side runs 32
//!   `create + write_all + fsync` on the blocking pool.
//! - `get/local_store` vs `get/plain_read`: the whole object into memory (`read_all` vs
//!   `std::fs::read`), from a warm page cache on both sides.
//!
//! `local_store` has the default limits, so its 4 KiB objects are inline (in the index, no
//! data file); `local_store_files` is the same store with `inline_max = 0`, every object in a
//! data file, for the sizes where the two differ. PUTs declare their length
//! (`PutOptions::expected_len`), as the S3 front end does for every request with a
//! `Content-Length`.
//!
//! Both sides live under one temporary directory in `CARGO_TARGET_TMPDIR`, i.e. on the disk
//! of the build, never on a tmpfs `/tmp`. Run with `cargo bench -p quarry-bench --bench store`.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use quarry_interceptor::config::StoreLimits;
use quarry_interceptor::store::PutOptions;
use quarry_interceptor::store::testing::{body_from, pattern, read_all};
use quarry_interceptor::{LocalStore, ObjectStore};
use tokio::runtime::Runtime;

const BUCKET: &str = "bench";
const SIZES: [(usize, &str); 2] = [(4 << 10, "4KiB"), (1 << 20, "1MiB")];
/// PUTs in flight at once in the `put_c32` cases.
const IN_FLIGHT: usize = 32;

/// A store under test and its name in benchmark ids.
type Named<'a> = (&'a str, &'a LocalStore);

fn store(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime builds on any machine that runs benches");
    let dir = tempfile::Builder::new()
        .prefix("store-bench-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("the target tmp dir is writable");
    let plain_dir = dir.path().join("plain");
    std::fs::create_dir_all(&plain_dir).expect("the bench dir is writable");
    let limits = StoreLimits::default();
    let inline_max = limits.inline_max.as_u64();
    let store = open_store(&rt, &dir.path().join("store"), limits.clone());
    let files_limits = StoreLimits {
        inline_max: Default::default(), // 0 bytes: inline objects off
        ..limits
    };
    let files = open_store(&rt, &dir.path().join("store-files"), files_limits);

    let mut group = c.benchmark_group("store");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let both: [Named<'_>; 2] = [("local_store", &store), ("local_store_files", &files)];
    for (size, label) in SIZES {
        let payload = Bytes::from(pattern(size, 7));
        // The files-only store differs only where the default one inlines.
        let stores = if size as u64 <= inline_max {
            &both[..]
        } else {
            &both[..1]
        };
        group.throughput(Throughput::Bytes(payload.len() as u64));
        bench_put(&mut group, &rt, stores, &plain_dir, label, &payload);
        bench_get(&mut group, &rt, stores, &plain_dir, label, &payload);
    }
    let (size, label) = SIZES[0];
    let payload = Bytes::from(pattern(size, 7));
    group.throughput(Throughput::Bytes((IN_FLIGHT * payload.len()) as u64));
    bench_put_concurrent(&mut group, &rt, &both, &plain_dir, label, &payload);
    group.finish();
}

/// Opens a store with one bucket in `dir`.
fn open_store(rt: &Runtime, dir: &Path, limits: StoreLimits) -> LocalStore {
    rt.block_on(async {
        let store = LocalStore::open(dir, limits)
            .await
            .expect("LocalStore opens on an empty dir");
        store
            .create_bucket(BUCKET)
            .await
            .expect("a new store creates a bucket");
        store
    })
}

type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

fn bench_put(
    group: &mut Group<'_>,
    rt: &Runtime,
    stores: &[Named<'_>],
    dir: &Path,
    label: &str,
    payload: &Bytes,
) {
    let key = format!("put-{label}");
    for &(name, store) in stores {
        group.bench_function(BenchmarkId::new(format!("put/{name}"), label), |b| {
            b.iter(|| {
                rt.block_on(store.put_object(
                    BUCKET,
                    &key,
                    body_from(payload.clone()),
                    sized(payload),
                ))
                .expect("put succeeds")
            });
        });
    }
    let path = dir.join(&key);
    group.bench_function(BenchmarkId::new("put/plain_write_fsync", label), |b| {
        b.iter(|| write_fsync(&path, payload));
    });
}

fn bench_put_concurrent(
    group: &mut Group<'_>,
    rt: &Runtime,
    stores: &[Named<'_>],
    dir: &Path,
    label: &str,
    payload: &Bytes,
) {
    let keys: Vec<String> = (0..IN_FLIGHT)
        .map(|i| format!("put-c-{label}-{i}"))
        .collect();
    for &(name, store) in stores {
        group.bench_function(BenchmarkId::new(format!("put_c32/{name}"), label), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let puts = keys.iter().map(|key| {
                        let (store, key, payload) = (store.clone(), key.clone(), payload.clone());
                        tokio::spawn(async move {
                            let options = sized(&payload);
                            store
                                .put_object(BUCKET, &key, body_from(payload), options)
                                .await
                                .expect("put succeeds")
                        })
                    });
                    for put in futures::future::join_all(puts).await {
                        put.expect("the put task does not panic");
                    }
                })
            });
        });
    }
    let paths: Vec<PathBuf> = keys.iter().map(|key| dir.join(key)).collect();
    group.bench_function(BenchmarkId::new("put_c32/plain_write_fsync", label), |b| {
        b.iter(|| {
            rt.block_on(async {
                let writes = paths.iter().map(|path| {
                    let (path, payload) = (path.clone(), payload.clone());
                    tokio::task::spawn_blocking(move || write_fsync(&path, &payload))
                });
                for write in futures::future::join_all(writes).await {
                    write.expect("the write task does not panic");
                }
            })
        });
    });
}

fn bench_get(
    group: &mut Group<'_>,
    rt: &Runtime,
    stores: &[Named<'_>],
    dir: &Path,
    label: &str,
    payload: &Bytes,
) {
    let key = format!("get-{label}");
    for &(name, store) in stores {
        rt.block_on(store.put_object(BUCKET, &key, body_from(payload.clone()), sized(payload)))
            .expect("seeding the object succeeds");
        group.bench_function(BenchmarkId::new(format!("get/{name}"), label), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let reader = store
                        .get_object(BUCKET, &key, None)
                        .await
                        .expect("the seeded object exists");
                    read_all(reader).await
                })
            });
        });
    }
    let path = dir.join(&key);
    write_fsync(&path, payload);
    group.bench_function(BenchmarkId::new("get/plain_read", label), |b| {
        b.iter(|| std::fs::read(&path).expect("the seeded file exists"));
    });
}

/// Options of a PUT that declares its length, as every S3 PUT with a `Content-Length` does.
fn sized(payload: &Bytes) -> PutOptions {
    PutOptions {
        expected_len: Some(payload.len() as u64),
        ..PutOptions::default()
    }
}

fn write_fsync(path: &Path, payload: &[u8]) {
    let mut file = File::create(path).expect("the bench dir is writable");
    file.write_all(payload)
        .expect("the disk has room for the payload");
    file.sync_all().expect("fsync succeeds");
}

criterion_group!(benches, store);
criterion_main!(benches);
