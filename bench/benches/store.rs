// SPDX-License-Identifier: Apache-2.0
//! Criterion group `store`: `LocalStore` put and get against plain file I/O in the same
//! directory tree.
//!
//! - `put/local_store` vs `put/plain_write_fsync`: a durable whole-object write. The store
//!   also hashes, fsyncs the shard directory and commits its index; the plain side is
//!   `create + write_all + fsync`, so the gap is the store's overhead.
//! - `get/local_store` vs `get/plain_read`: the whole object into memory (`read_all` vs
//!   `std::fs::read`), from a warm page cache on both sides.
//!
//! Both sides live under one temporary directory in `CARGO_TARGET_TMPDIR`, i.e. on the disk
//! of the build, never on a tmpfs `/tmp`. Run with `cargo bench -p quarry-bench --bench store`.

use std::fs::File;
use std::io::Write as _;
use std::path::Path;
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
    let store = rt.block_on(async {
        let store = LocalStore::open(&dir.path().join("store"), StoreLimits::default())
            .await
            .expect("LocalStore opens on an empty dir");
        store
            .create_bucket(BUCKET)
            .await
            .expect("a new store creates a bucket");
        store
    });

    let mut group = c.benchmark_group("store");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (size, label) in SIZES {
        let payload = Bytes::from(pattern(size, 7));
        group.throughput(Throughput::Bytes(payload.len() as u64));
        bench_put(&mut group, &rt, &store, &plain_dir, label, &payload);
        bench_get(&mut group, &rt, &store, &plain_dir, label, &payload);
    }
    group.finish();
}

type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

fn bench_put(
    group: &mut Group<'_>,
    rt: &Runtime,
    store: &LocalStore,
    dir: &Path,
    label: &str,
    payload: &Bytes,
) {
    let key = format!("put-{label}");
    group.bench_function(BenchmarkId::new("put/local_store", label), |b| {
        b.iter(|| {
            rt.block_on(store.put_object(
                BUCKET,
                &key,
                body_from(payload.clone()),
                PutOptions::default(),
            ))
            .expect("put succeeds")
        });
    });
    let path = dir.join(&key);
    group.bench_function(BenchmarkId::new("put/plain_write_fsync", label), |b| {
        b.iter(|| write_fsync(&path, payload));
    });
}

fn bench_get(
    group: &mut Group<'_>,
    rt: &Runtime,
    store: &LocalStore,
    dir: &Path,
    label: &str,
    payload: &Bytes,
) {
    let key = format!("get-{label}");
    rt.block_on(store.put_object(
        BUCKET,
        &key,
        body_from(payload.clone()),
        PutOptions::default(),
    ))
    .expect("seeding the object succeeds");
    group.bench_function(BenchmarkId::new("get/local_store", label), |b| {
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
    let path = dir.join(&key);
    write_fsync(&path, payload);
    group.bench_function(BenchmarkId::new("get/plain_read", label), |b| {
        b.iter(|| std::fs::read(&path).expect("the seeded file exists"));
    });
}

fn write_fsync(path: &Path, payload: &[u8]) {
    let mut file = File::create(path).expect("the bench dir is writable");
    file.write_all(payload)
        .expect("the disk has room for the payload");
    file.sync_all().expect("fsync succeeds");
}

criterion_group!(benches, store);
criterion_main!(benches);
