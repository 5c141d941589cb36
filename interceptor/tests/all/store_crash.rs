// SPDX-License-Identifier: Apache-2.0
//! Crash tests: stop an operation at each named failpoint (no cleanup runs, as after
//! `kill -9`), drop the store, reopen the directory, and check that
//! - the key holds the previous acknowledged version or the new one, whole (never a mix);
//! - what the crash left behind (files of uncommitted writes, files of replaced versions) was
//!   reclaimed: the data files on disk are exactly those the index references.
//!
//! Inline objects (small PUTs that declare their length) go through the same points but write
//! no file: a crash before their commit leaves nothing behind at all.
//!
//! These tests check atomicity and reclamation. They cannot drop the page cache, so they do
//! not prove the fsyncs; the ordering that makes those sufficient is argued in
//! `store/local/mod.rs`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use quarry_interceptor::config::{ReadEngineChoice, StoreLimits};
use quarry_interceptor::store::local::{FAILPOINTS, Failpoints};
use quarry_interceptor::store::testing::{body_from, get_bytes, md5_hex, pattern, put_bytes};
use quarry_interceptor::store::{
    CompletedPart, ListPartsRequest, ObjectAttrs, PutOptions, PutPrecondition,
};
use quarry_interceptor::{LocalStore, ObjectStore, StoreError};

const BUCKET: &str = "crash";
const PART: usize = 5 * 1024;

/// The io_uring engine, forced: bodies and parts are written, and fsynced, through its ring
/// (the machines that run these tests have io_uring; where they do not, the open fails).
fn limits() -> StoreLimits {
    StoreLimits {
        min_part_size: bytesize::ByteSize::b(PART as u64),
        read_engine: ReadEngineChoice::Uring,
        ..StoreLimits::default()
    }
}

fn files_on_disk(data_dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for shard in std::fs::read_dir(data_dir).expect("read data dir") {
        for file in std::fs::read_dir(shard.expect("shard").path()).expect("read shard") {
            out.insert(file.expect("entry").path());
        }
    }
    out
}

/// A store with failpoints in a fresh directory, holding an acknowledged `v1` under `key`.
struct Scene {
    dir: tempfile::TempDir,
    failpoints: Arc<Failpoints>,
    store: LocalStore,
    v1: Vec<u8>,
}

impl Scene {
    /// `v1` is 100,000 bytes: a data file.
    async fn new() -> Self {
        Self::with_v1(pattern(100_000, 1)).await
    }

    async fn with_v1(v1: Vec<u8>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let failpoints = Arc::new(Failpoints::new());
        let store = LocalStore::open_with_failpoints(dir.path(), limits(), Arc::clone(&failpoints))
            .await
            .expect("open");
        store.create_bucket(BUCKET).await.expect("create bucket");
        put_bytes(&store, BUCKET, "key", &v1).await;
        Self {
            dir,
            failpoints,
            store,
            v1,
        }
    }

    /// Runs `op` with `failpoint` armed, checks it stopped there, then "crashes" (drops the
    /// store without any cleanup) and reopens the directory.
    async fn crash_at<F, Fut, T>(
        self,
        failpoint: &str,
        op: F,
    ) -> (LocalStore, tempfile::TempDir, Vec<u8>)
    where
        F: FnOnce(LocalStore) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
        T: std::fmt::Debug,
    {
        self.failpoints.arm(failpoint);
        let result = op(self.store.clone()).await;
        match &result {
            Err(e) if Failpoints::is_crash(e) => {}
            other => panic!("{failpoint}: expected a simulated crash, got {other:?}"),
        }
        assert_eq!(self.failpoints.fired(), vec![failpoint]);
        drop(self.store);
        let store = LocalStore::open(self.dir.path(), limits())
            .await
            .expect("reopen");
        (store, self.dir, self.v1)
    }
}

/// The files on disk are exactly the ones the index references.
async fn assert_no_orphans(store: &LocalStore, what: &str) {
    let referenced = store.referenced_files().await.expect("referenced files");
    assert_eq!(
        files_on_disk(store.data_dir()),
        referenced,
        "{what}: orphans left on disk"
    );
}

/// The key's object is whole: its bytes are `want` and its ETag and size match them.
async fn assert_object(store: &LocalStore, want: &[u8], etag: &str, what: &str) {
    let meta = store.head_object(BUCKET, "key").await.expect("head");
    assert_eq!(
        (meta.size, meta.etag.as_str()),
        (want.len() as u64, etag),
        "{what}: metadata"
    );
    assert!(
        get_bytes(store, BUCKET, "key").await == want,
        "{what}: body differs"
    );
}

#[tokio::test]
async fn crash_during_put_leaves_old_or_new_version_whole() {
    for (failpoint, new_is_visible) in [
        ("put.after_data_fsync", false),
        ("put.before_index_commit", false),
        ("put.after_index_commit", true),
    ] {
        let v2 = pattern(70_000, 2);
        let body = v2.clone();
        let scene = Scene::new().await;
        let (store, _dir, v1) = scene
            .crash_at(failpoint, |s| async move {
                s.put_object(BUCKET, "key", body_from(body), PutOptions::default())
                    .await
            })
            .await;
        let want = if new_is_visible { &v2 } else { &v1 };
        assert_object(&store, want, &md5_hex(want), failpoint).await;
        // Exactly one file was left behind: the new body, or the replaced one.
        assert_eq!(store.recovery_report().orphan_files, 1, "{failpoint}");
        assert_no_orphans(&store, failpoint).await;
    }
}

#[tokio::test]
async fn crash_during_first_put_of_a_key_leaves_it_absent_or_whole() {
    for (failpoint, visible) in [
        ("put.before_index_commit", false),
        ("put.after_index_commit", true),
    ] {
        let scene = Scene::new().await;
        let (store, _dir, _) = scene
            .crash_at(failpoint, |s| async move {
                s.put_object(
                    BUCKET,
                    "fresh",
                    body_from(&b"fresh"[..]),
                    PutOptions::default(),
                )
                .await
            })
            .await;
        let got = store.head_object(BUCKET, "fresh").await;
        match (visible, got) {
            (true, Ok(meta)) => assert_eq!(meta.etag, md5_hex(b"fresh")),
            (false, Err(StoreError::NoSuchKey { .. })) => {}
            (_, other) => panic!("{failpoint}: {other:?}"),
        }
        assert_eq!(
            store.recovery_report().orphan_files,
            u64::from(!visible),
            "{failpoint}"
        );
        assert_no_orphans(&store, failpoint).await;
    }
}

/// Options of a PUT that declares its length: inline when at most `inline_max` (16 KiB).
fn declared(body: &[u8]) -> PutOptions {
    PutOptions {
        expected_len: Some(body.len() as u64),
        ..PutOptions::default()
    }
}

#[tokio::test]
async fn crash_during_inline_put_leaves_old_or_new_version_whole() {
    for (failpoint, new_is_visible) in [
        ("put.before_index_commit", false),
        ("put.after_index_commit", true),
    ] {
        let v2 = pattern(1_000, 2);
        let body = v2.clone();
        let scene = Scene::new().await;
        let (store, _dir, v1) = scene
            .crash_at(failpoint, |s| async move {
                let options = declared(&body);
                s.put_object(BUCKET, "key", body_from(body), options).await
            })
            .await;
        let want = if new_is_visible { &v2 } else { &v1 };
        assert_object(&store, want, &md5_hex(want), failpoint).await;
        // No file was written for the inline body: the only possible orphan is v1's file,
        // replaced by a committed v2.
        assert_eq!(
            store.recovery_report().orphan_files,
            u64::from(new_is_visible),
            "{failpoint}"
        );
        assert_no_orphans(&store, failpoint).await;
    }
}

#[tokio::test]
async fn crash_while_replacing_an_inline_object_leaves_it_or_the_new_file_whole() {
    for (failpoint, new_is_visible) in [
        ("put.after_data_fsync", false),
        ("put.before_index_commit", false),
        ("put.after_index_commit", true),
    ] {
        let v2 = pattern(70_000, 2);
        let body = v2.clone();
        let scene = Scene::with_v1(pattern(500, 1)).await;
        let (store, _dir, v1) = scene
            .crash_at(failpoint, |s| async move {
                let options = declared(&body);
                s.put_object(BUCKET, "key", body_from(body), options).await
            })
            .await;
        let want = if new_is_visible { &v2 } else { &v1 };
        assert_object(&store, want, &md5_hex(want), failpoint).await;
        // The new file is an orphan unless its record committed; the inline bytes it
        // replaced went with that same commit.
        assert_eq!(
            store.recovery_report().orphan_files,
            u64::from(!new_is_visible),
            "{failpoint}"
        );
        assert_no_orphans(&store, failpoint).await;
    }
}

#[tokio::test]
async fn crash_after_deleting_an_inline_object_leaves_nothing_behind() {
    let scene = Scene::with_v1(pattern(500, 1)).await;
    let (store, _dir, _) = scene
        .crash_at("delete.after_commit", |s| async move {
            s.delete_object(BUCKET, "key").await
        })
        .await;
    let got = store.head_object(BUCKET, "key").await;
    assert!(matches!(got, Err(StoreError::NoSuchKey { .. })), "{got:?}");
    assert_eq!(store.recovery_report(), Default::default());
    assert_no_orphans(&store, "delete.after_commit").await;
}

/// Uploads parts 1..=3 of an upload of "key" and returns the id and the part bodies.
async fn three_parts(store: &LocalStore) -> (String, Vec<Vec<u8>>, Vec<CompletedPart>) {
    let id = store
        .create_multipart(BUCKET, "key", ObjectAttrs::default())
        .await
        .expect("create");
    let bodies: Vec<Vec<u8>> = (1..=3).map(|n| pattern(PART + n, n as u64 + 10)).collect();
    let mut parts = Vec::new();
    for (n, body) in (1u32..).zip(&bodies) {
        let put = store.upload_part(
            BUCKET,
            "key",
            &id,
            n,
            body_from(body.clone()),
            PutOptions::default(),
        );
        parts.push(CompletedPart {
            part_number: n,
            etag: put.await.expect("upload part").etag,
        });
    }
    (id, bodies, parts)
}

#[tokio::test]
async fn crash_during_complete_leaves_old_object_and_open_upload_or_new_object_whole() {
    for (failpoint, committed) in [
        ("complete.before_commit", false),
        ("complete.after_commit", true),
    ] {
        let scene = Scene::new().await;
        let (id, bodies, parts) = three_parts(&scene.store).await;
        // Parts 1 and 3 only: part 2's file must be freed on completion.
        let listed = vec![parts[0].clone(), parts[2].clone()];
        let (crash_id, crash_listed) = (id.clone(), listed.clone());
        let (store, _dir, v1) = scene
            .crash_at(failpoint, |s| async move {
                s.complete_multipart(
                    BUCKET,
                    "key",
                    &crash_id,
                    &crash_listed,
                    PutPrecondition::None,
                )
                .await
            })
            .await;
        let new_body = [&bodies[0][..], &bodies[2][..]].concat();
        if committed {
            let meta = store.head_object(BUCKET, "key").await.expect("head");
            assert_eq!(meta.parts_count, Some(2));
            assert_object(&store, &new_body, &meta.etag, failpoint).await;
            let parts = store
                .list_parts(BUCKET, "key", &id, &ListPartsRequest::default())
                .await;
            assert!(
                matches!(parts, Err(StoreError::NoSuchUpload { .. })),
                "{failpoint}: upload gone"
            );
            // Part 2's file and the replaced version's file.
            assert_eq!(store.recovery_report().orphan_files, 2, "{failpoint}");
        } else {
            assert_object(&store, &v1, &md5_hex(&v1), failpoint).await;
            let request = ListPartsRequest {
                max_parts: 10,
                ..Default::default()
            };
            let open = store
                .list_parts(BUCKET, "key", &id, &request)
                .await
                .expect("upload still open");
            assert_eq!(open.parts.len(), 3, "{failpoint}: parts kept");
            assert_eq!(store.recovery_report().orphan_files, 0, "{failpoint}");
            assert_no_orphans(&store, failpoint).await;
            // The upload can still be completed after the restart.
            store
                .complete_multipart(BUCKET, "key", &id, &listed, PutPrecondition::None)
                .await
                .expect("complete");
            assert_eq!(get_bytes(&store, BUCKET, "key").await, new_body);
        }
        assert_no_orphans(&store, failpoint).await;
    }
}

#[tokio::test]
async fn crash_during_upload_part_keeps_the_old_part_or_the_new_one() {
    for (failpoint, new_is_stored) in [
        ("upload_part.after_data_fsync", false),
        ("upload_part.before_index_commit", false),
        ("upload_part.after_index_commit", true),
    ] {
        let scene = Scene::new().await;
        let (id, _, parts) = three_parts(&scene.store).await;
        let crash_id = id.clone();
        let (store, _dir, _) = scene
            .crash_at(failpoint, |s| async move {
                let body = body_from(&b"replacement"[..]);
                s.upload_part(BUCKET, "key", &crash_id, 2, body, PutOptions::default())
                    .await
            })
            .await;
        let request = ListPartsRequest {
            max_parts: 10,
            ..Default::default()
        };
        let listed = store
            .list_parts(BUCKET, "key", &id, &request)
            .await
            .expect("list parts");
        let etag = &listed.parts[1].etag;
        let want = if new_is_stored {
            md5_hex(b"replacement")
        } else {
            parts[1].etag.clone()
        };
        assert_eq!(etag, &want, "{failpoint}");
        assert_eq!(store.recovery_report().orphan_files, 1, "{failpoint}");
        assert_no_orphans(&store, failpoint).await;
    }
}

#[tokio::test]
async fn crash_after_delete_commit_reclaims_the_deleted_files() {
    let scene = Scene::new().await;
    let (store, _dir, _) = scene
        .crash_at("delete.after_commit", |s| async move {
            s.delete_object(BUCKET, "key").await
        })
        .await;
    let got = store.head_object(BUCKET, "key").await;
    assert!(matches!(got, Err(StoreError::NoSuchKey { .. })), "{got:?}");
    assert_eq!(store.recovery_report().orphan_files, 1);
    assert_no_orphans(&store, "delete.after_commit").await;
}

#[tokio::test]
async fn crash_after_metadata_commit_keeps_the_update_and_the_body() {
    let scene = Scene::new().await;
    let etag = md5_hex(&scene.v1);
    let (store, _dir, v1) = scene
        .crash_at("update_metadata.after_commit", |s| async move {
            let metadata = [("colour".to_owned(), "blue".to_owned())].into();
            s.update_metadata(BUCKET, "key", &etag, metadata).await
        })
        .await;
    assert_object(&store, &v1, &md5_hex(&v1), "update_metadata.after_commit").await;
    let meta = store.head_object(BUCKET, "key").await.expect("head");
    assert_eq!(
        meta.attrs.user_metadata.get("colour").map(String::as_str),
        Some("blue"),
        "the committed update survives the crash"
    );
    assert_eq!(store.recovery_report().orphan_files, 0);
    assert_no_orphans(&store, "update_metadata.after_commit").await;
}

#[test]
fn every_failpoint_has_a_crash_test() {
    let source = include_str!("store_crash.rs");
    for name in FAILPOINTS {
        assert!(
            source.contains(&format!("\"{name}\"")),
            "failpoint {name} has no crash test"
        );
    }
}
