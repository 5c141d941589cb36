// SPDX-License-Identifier: Apache-2.0
//! `LocalStore` tests: the conformance suite (with and without inline objects), durability,
//! recovery, file reclamation, inline objects and group commit.

use std::collections::BTreeSet;

use bytesize::ByteSize;
use futures::StreamExt;

use redb::ReadableTable;

use super::index::INLINE;
use super::*;
use crate::store::testing::{
    body_from, conformance, conformance_limits, get_bytes, md5_hex, pattern, put_bytes, read_all,
};

fn files_on_disk(store: &LocalStore) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for shard in std::fs::read_dir(store.data_dir()).unwrap() {
        for file in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            out.insert(file.unwrap().path());
        }
    }
    out
}

async fn open(dir: &Path) -> LocalStore {
    LocalStore::open(dir, conformance_limits()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    conformance(&store).await;
    assert_eq!(
        files_on_disk(&store),
        store.referenced_files().await.unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_store_with_inline_objects_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    // Every PUT that declares its length is inline (the suite's objects are at most 100 KiB).
    let limits = StoreLimits {
        inline_max: ByteSize::kib(100),
        ..conformance_limits()
    };
    let store = LocalStore::open(dir.path(), limits).await.unwrap();
    conformance(&store).await;
    assert_eq!(
        files_on_disk(&store),
        store.referenced_files().await.unwrap()
    );
    assert_eq!(inline_rows(&store), inline_records(&store).await);
}

#[tokio::test]
async fn put_is_durable_once_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.create_bucket("b").await.unwrap();
    put_bytes(&store, "b", "k", b"durable").await;
    drop(store);
    let store = open(dir.path()).await;
    assert_eq!(get_bytes(&store, "b", "k").await, b"durable");
    assert_eq!(store.recovery_report(), RecoveryReport::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_racing_overwrites_always_see_a_whole_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path(), StoreLimits::default())
        .await
        .unwrap();
    store.create_bucket("b").await.unwrap();
    // One small body (read inline) and one streamed in chunks.
    let bodies = [pattern(3000, 1), pattern(1_500_000, 2)];
    put_bytes(&store, "b", "k", &bodies[0]).await;
    let writer = tokio::spawn({
        let store = store.clone();
        let bodies = bodies.clone();
        async move {
            for i in 0..60 {
                put_bytes(&store, "b", "k", &bodies[i % 2]).await;
            }
        }
    });
    let mut reads = 0;
    while !writer.is_finished() {
        let reader = store.get_object("b", "k", None).await.unwrap();
        let etag = reader.meta.etag.clone();
        let got = read_all(reader).await;
        assert!(bodies.contains(&got), "a read saw a torn or mixed body");
        assert_eq!(etag, md5_hex(&got));
        reads += 1;
    }
    writer.await.unwrap();
    assert!(reads > 0);
    assert_eq!(
        files_on_disk(&store),
        store.referenced_files().await.unwrap()
    );
}

#[tokio::test]
async fn index_is_locked_against_a_second_open() {
    let dir = tempfile::tempdir().unwrap();
    let _store = open(dir.path()).await;
    let second = LocalStore::open(dir.path(), conformance_limits()).await;
    assert!(
        matches!(second, Err(StoreError::Index { .. })),
        "{second:?}"
    );
}

#[tokio::test]
async fn large_object_streams_in_one_mib_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path(), StoreLimits::default())
        .await
        .unwrap();
    store.create_bucket("b").await.unwrap();
    let data = pattern(3 * 1024 * 1024 + 5, 1);
    put_bytes(&store, "b", "big", &data).await;
    let reader = store.get_object("b", "big", None).await.unwrap();
    let chunks: Vec<_> = reader.body.collect().await;
    assert_eq!(chunks.len(), 4);
    let got: Vec<u8> = chunks.into_iter().flat_map(|c| c.unwrap()).collect();
    assert_eq!(got, data);
}

#[tokio::test]
async fn orphan_and_stray_files_are_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.create_bucket("b").await.unwrap();
    put_bytes(&store, "b", "k", b"kept").await;
    let kept = files_on_disk(&store);
    let data_dir = store.data_dir().to_path_buf();
    drop(store);
    std::fs::write(
        data_dir.join("ab").join(format!("ab{}", "0".repeat(30))),
        b"orphan",
    )
    .unwrap();
    std::fs::write(data_dir.join("ab").join("upload.tmp"), b"temp").unwrap();
    let store = open(dir.path()).await;
    let report = store.recovery_report();
    assert_eq!(
        (report.orphan_files, report.orphan_bytes, report.stray_files),
        (1, 6, 1)
    );
    assert_eq!(files_on_disk(&store), kept);
    assert_eq!(get_bytes(&store, "b", "k").await, b"kept");
}

#[tokio::test]
async fn missing_data_file_reads_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.create_bucket("b").await.unwrap();
    put_bytes(&store, "b", "k", b"soon gone").await;
    for file in files_on_disk(&store) {
        std::fs::remove_file(file).unwrap();
    }
    let got = store.get_object("b", "k", None).await;
    assert!(matches!(got, Err(StoreError::Corrupt { .. })), "{got:?}");
    drop(store);
    let store = open(dir.path()).await;
    assert_eq!(store.recovery_report().missing_files, 1);
}

#[tokio::test]
async fn replaced_and_deleted_versions_free_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.create_bucket("b").await.unwrap();
    for i in 0..5u8 {
        put_bytes(&store, "b", "k", &[i; 10]).await;
    }
    assert_eq!(files_on_disk(&store).len(), 1);
    store.delete_object("b", "k").await.unwrap();
    assert!(files_on_disk(&store).is_empty());
}

#[tokio::test]
async fn completed_upload_adopts_its_part_files_without_copying() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    store.create_bucket("b").await.unwrap();
    let id = store
        .create_multipart("b", "k", ObjectAttrs::default())
        .await
        .unwrap();
    let min = usize::try_from(conformance_limits().min_part_size.as_u64()).unwrap();
    let mut parts = Vec::new();
    for n in 1..=3 {
        let body = body_from(pattern(min, u64::from(n)));
        let part = store
            .upload_part("b", "k", &id, n, body, PutOptions::default())
            .await
            .unwrap();
        parts.push(CompletedPart {
            part_number: n,
            etag: part.etag,
        });
    }
    let before = files_on_disk(&store);
    let listed = [parts[0].clone(), parts[2].clone()];
    store
        .complete_multipart("b", "k", &id, &listed, PutPrecondition::None)
        .await
        .unwrap();
    let after = files_on_disk(&store);
    assert_eq!(after.len(), 2, "the unlisted part's file is gone");
    assert!(
        after.is_subset(&before),
        "no file was written by completion"
    );
    assert_eq!(after, store.referenced_files().await.unwrap());
}

#[tokio::test]
async fn declared_length_over_the_limit_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let limits = StoreLimits {
        max_object_size: ByteSize::b(4),
        ..StoreLimits::default()
    };
    let store = LocalStore::open(dir.path(), limits).await.unwrap();
    store.create_bucket("b").await.unwrap();
    let options = PutOptions {
        expected_len: Some(5),
        ..PutOptions::default()
    };
    let put = store
        .put_object("b", "k", body_from(&b"12345"[..]), options)
        .await;
    assert!(
        matches!(put, Err(StoreError::EntityTooLarge { limit: 4 })),
        "{put:?}"
    );
    assert!(files_on_disk(&store).is_empty());
}

// === inline objects ===

/// A store whose declared PUTs up to 16 bytes are inline.
async fn open_inline(dir: &Path) -> LocalStore {
    let limits = StoreLimits {
        inline_max: ByteSize::b(16),
        ..conformance_limits()
    };
    LocalStore::open(dir, limits).await.unwrap()
}

/// The (bucket, key) of every row of the `inline` table.
fn inline_rows(store: &LocalStore) -> BTreeSet<(String, Vec<u8>)> {
    let txn = store.inner.db.begin_read().unwrap();
    let table = txn.open_table(INLINE).unwrap();
    table
        .iter()
        .unwrap()
        .map(|e| {
            let (k, _) = e.unwrap();
            let (bucket, key) = k.value();
            (bucket.to_owned(), key.to_vec())
        })
        .collect()
}

/// The (bucket, key) of every object record whose bytes are inline.
async fn inline_records(store: &LocalStore) -> BTreeSet<(String, Vec<u8>)> {
    let txn = store.inner.db.begin_read().unwrap();
    let objects = txn.open_table(index::OBJECTS).unwrap();
    objects
        .iter()
        .unwrap()
        .filter_map(|e| {
            let (k, v) = e.unwrap();
            let record: index::ObjectRecord = index::decode(v.value()).unwrap();
            let (bucket, key) = k.value();
            record
                .is_inline()
                .then(|| (bucket.to_owned(), key.to_vec()))
        })
        .collect()
}

fn row(bucket: &str, key: &str) -> (String, Vec<u8>) {
    (bucket.to_owned(), key.as_bytes().to_vec())
}

/// Stores `bytes` without declaring their length.
async fn put_undeclared(store: &LocalStore, key: &str, bytes: &[u8]) {
    let body = body_from(bytes.to_vec());
    store
        .put_object("b", key, body, PutOptions::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn small_declared_put_is_inline_with_no_file_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_inline(dir.path()).await;
    store.create_bucket("b").await.unwrap();
    let before = store.commit_stats();
    put_bytes(&store, "b", "k", b"inline body").await;
    put_bytes(&store, "b", "empty", b"").await;
    assert!(files_on_disk(&store).is_empty(), "no data file");
    assert_eq!(
        inline_rows(&store),
        [row("b", "empty"), row("b", "k")].into()
    );
    // One index transaction per PUT, nothing else written.
    assert_eq!(store.commit_stats().requests - before.requests, 2);
    drop(store);
    let store = open_inline(dir.path()).await;
    assert_eq!(store.recovery_report(), RecoveryReport::default());
    assert_eq!(get_bytes(&store, "b", "k").await, b"inline body");
    assert_eq!(get_bytes(&store, "b", "empty").await, b"");
    let meta = store.head_object("b", "k").await.unwrap();
    assert_eq!((meta.size, meta.etag), (11, md5_hex(b"inline body")));
}

#[tokio::test]
async fn inline_object_serves_ranges_from_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_inline(dir.path()).await;
    store.create_bucket("b").await.unwrap();
    put_bytes(&store, "b", "k", b"0123456789").await;
    let cases = [
        (
            ByteRange::FromTo {
                first: 2,
                last: Some(4),
            },
            &b"234"[..],
        ),
        (
            ByteRange::FromTo {
                first: 7,
                last: None,
            },
            b"789",
        ),
        (
            ByteRange::FromTo {
                first: 8,
                last: Some(100),
            },
            b"89",
        ),
        (ByteRange::Suffix { length: 3 }, b"789"),
        (ByteRange::Suffix { length: 30 }, b"0123456789"),
    ];
    for (range, want) in cases {
        let reader = store.get_object("b", "k", Some(range)).await.unwrap();
        assert_eq!(reader.meta.size, 10);
        assert_eq!(read_all(reader).await, want, "{range:?}");
    }
    let past = ByteRange::FromTo {
        first: 10,
        last: None,
    };
    let got = store.get_object("b", "k", Some(past)).await;
    assert!(
        matches!(got, Err(StoreError::InvalidRange { size: 10 })),
        "{got:?}"
    );
}

#[tokio::test]
async fn only_declared_lengths_up_to_inline_max_are_inline() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_inline(dir.path()).await;
    store.create_bucket("b").await.unwrap();
    put_bytes(&store, "b", "at-limit", &[1; 16]).await;
    put_bytes(&store, "b", "over", &[2; 17]).await;
    put_undeclared(&store, "undeclared", &[3; 5]).await;
    assert_eq!(inline_rows(&store), [row("b", "at-limit")].into());
    assert_eq!(files_on_disk(&store).len(), 2);
    assert_eq!(
        files_on_disk(&store),
        store.referenced_files().await.unwrap()
    );
}

#[tokio::test]
async fn inline_max_zero_stores_every_object_in_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await; // conformance limits: inline_max = 0
    store.create_bucket("b").await.unwrap();
    put_bytes(&store, "b", "k", b"x").await;
    put_bytes(&store, "b", "empty", b"").await;
    assert!(inline_rows(&store).is_empty());
    assert_eq!(files_on_disk(&store).len(), 2);
}

#[tokio::test]
async fn replacing_or_deleting_an_inline_object_drops_its_bytes_in_the_same_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_inline(dir.path()).await;
    store.create_bucket("b").await.unwrap();
    // Inline → file → inline → deleted.
    put_bytes(&store, "b", "k", b"small").await;
    put_bytes(&store, "b", "k", &pattern(100, 1)).await;
    assert!(inline_rows(&store).is_empty());
    assert_eq!(files_on_disk(&store).len(), 1);
    put_bytes(&store, "b", "k", b"small again").await;
    assert_eq!(inline_rows(&store), [row("b", "k")].into());
    assert!(
        files_on_disk(&store).is_empty(),
        "the replaced file is freed"
    );
    assert_eq!(get_bytes(&store, "b", "k").await, b"small again");
    store.delete_object("b", "k").await.unwrap();
    assert!(inline_rows(&store).is_empty());
    // A multipart completion over an inline object.
    put_bytes(&store, "b", "k", b"small").await;
    let id = store
        .create_multipart("b", "k", ObjectAttrs::default())
        .await
        .unwrap();
    let part = store
        .upload_part(
            "b",
            "k",
            &id,
            1,
            body_from(&b"part"[..]),
            PutOptions::default(),
        )
        .await
        .unwrap();
    let listed = [CompletedPart {
        part_number: 1,
        etag: part.etag,
    }];
    store
        .complete_multipart("b", "k", &id, &listed, PutPrecondition::None)
        .await
        .unwrap();
    assert!(inline_rows(&store).is_empty());
    assert_eq!(get_bytes(&store, "b", "k").await, b"part");
    assert_eq!(files_on_disk(&store).len(), 1, "parts are never inline");
    store.delete_object("b", "k").await.unwrap();
    store.delete_bucket("b").await.unwrap();
    assert!(inline_rows(&store).is_empty());
    assert!(files_on_disk(&store).is_empty());
}

#[tokio::test]
async fn readers_of_an_inline_object_keep_their_version_across_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_inline(dir.path()).await;
    store.create_bucket("b").await.unwrap();
    put_bytes(&store, "b", "k", b"old").await;
    let reader = store.get_object("b", "k", None).await.unwrap();
    put_bytes(&store, "b", "k", b"new").await;
    store.delete_object("b", "k").await.unwrap();
    assert_eq!(read_all(reader).await, b"old");
}

#[tokio::test]
async fn inline_row_missing_under_an_inline_record_reads_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_inline(dir.path()).await;
    store.create_bucket("b").await.unwrap();
    put_bytes(&store, "b", "k", b"soon gone").await;
    let txn = store.inner.db.begin_write().unwrap();
    txn.open_table(INLINE)
        .unwrap()
        .remove(("b", &b"k"[..]))
        .unwrap();
    txn.commit().unwrap();
    let got = store.get_object("b", "k", None).await;
    assert!(matches!(got, Err(StoreError::Corrupt { .. })), "{got:?}");
}

// === group commit ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_commits_and_fail_only_on_their_own_account() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_inline(dir.path()).await;
    store.create_bucket("b").await.unwrap();
    put_bytes(&store, "b", "taken", b"first").await;
    let before = store.commit_stats();
    let tasks: Vec<_> = (0..96)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                // Inline and file bodies, each request with its own fate.
                let body = if i % 2 == 0 {
                    pattern(8, i)
                } else {
                    pattern(40, i)
                };
                let (bucket, key, precondition) = match i % 3 {
                    0 => ("missing", format!("k{i}"), PutPrecondition::None),
                    1 => ("b", "taken".to_owned(), PutPrecondition::IfAbsent),
                    _ => ("b", format!("k{i}"), PutPrecondition::None),
                };
                let options = PutOptions {
                    expected_len: Some(body.len() as u64),
                    precondition,
                    ..PutOptions::default()
                };
                let got = store
                    .put_object(bucket, &key, body_from(body.clone()), options)
                    .await;
                (i, key, body, got)
            })
        })
        .collect();
    for task in tasks {
        let (i, key, body, got) = task.await.unwrap();
        match i % 3 {
            0 => assert!(
                matches!(got, Err(StoreError::NoSuchBucket { .. })),
                "{got:?}"
            ),
            1 => assert!(
                matches!(got, Err(StoreError::PreconditionFailed { .. })),
                "{got:?}"
            ),
            _ => {
                assert_eq!(got.unwrap().etag, md5_hex(&body));
                assert_eq!(get_bytes(&store, "b", &key).await, body);
            }
        }
    }
    assert_eq!(get_bytes(&store, "b", "taken").await, b"first");
    // Every PUT reached the committer but the 16 file PUTs into the missing bucket, refused
    // before their bodies were read.
    let stats = store.commit_stats();
    assert_eq!(stats.requests - before.requests, 96 - 16);
    assert_eq!(
        files_on_disk(&store),
        store.referenced_files().await.unwrap(),
        "refused requests left no file"
    );
    assert_eq!(inline_rows(&store), inline_records(&store).await);
}
