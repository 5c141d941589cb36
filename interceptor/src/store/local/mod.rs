// SPDX-License-Identifier: Apache-2.0
//! `LocalStore`: the embedded durable store, a redb index plus data files named by id.
//!
//! Layout under the store's directory: `index.redb` (the redb index, see `index.rs`) and
//! `data/<xx>/<id>` (one file per PUT body or multipart part, see `data.rs`).
//!
//! A write goes data first, index second: the body is streamed into a fresh file, the file and
//! its directory are fsynced, and only then one redb write transaction checks the bucket and
//! the precondition and commits the new record (durably). A version is visible exactly when its
//! record is committed, so a crash at any point leaves either the old version or the new one
//! whole; files written for an uncommitted record are orphans that recovery (`recovery.rs`)
//! removes at the next open. Files a commit made unreachable (a replaced version, a replaced
//! part) are deleted right after the commit, best effort; readers hold their files open, and
//! retry when a file vanished before they could open it.
//!
//! redb is synchronous and so is file I/O here: every transaction and every file operation runs
//! on tokio's blocking pool, never on a runtime worker.

mod bucket;
mod data;
#[cfg_attr(
    not(any(test, feature = "failpoints")),
    path = "failpoints_disabled.rs"
)]
mod failpoints;
mod index;
mod list;
mod multipart;
mod object;
mod read;
mod recovery;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use redb::Database;

#[cfg(not(any(test, feature = "failpoints")))]
use self::failpoints::Failpoints;
#[cfg(any(test, feature = "failpoints"))]
pub use self::failpoints::{FAILPOINTS, Failpoints};
pub use self::recovery::RecoveryReport;

use self::data::{DataDir, io_err};
use crate::config::StoreLimits;
use crate::store::{
    BodyStream, BucketInfo, ByteRange, CompletedPart, ListPage, ListPartsRequest, ListRequest,
    ListUploadsRequest, ObjectAttrs, ObjectMeta, ObjectReader, ObjectStore, PartInfo, PartsPage,
    PutOptions, PutPrecondition, StoreError, StoreUsage, UploadsPage,
};

/// The embedded durable [`ObjectStore`]: a redb index plus data files named by random ids.
///
/// Cheap to clone; clones share the index and the data directory.
#[derive(Clone)]
pub struct LocalStore {
    inner: Arc<Inner>,
}

/// What every operation shares.
struct Inner {
    /// The index.
    db: Database,
    /// The data files.
    data: DataDir,
    /// Size limits.
    limits: StoreLimits,
    /// Crash points (a no-op stand-in unless built for tests or with `failpoints`).
    failpoints: Arc<Failpoints>,
    /// What recovery found at open.
    recovery: RecoveryReport,
}

impl fmt::Debug for LocalStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalStore")
            .field("data", &self.inner.data.root())
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl LocalStore {
    /// Opens (creating if missing) the store in `data_dir`, then runs recovery: data files no
    /// index record references (writes in flight at a crash) are removed.
    ///
    /// Fails if the directory cannot be created or another process has the index open.
    pub async fn open(data_dir: &Path, limits: StoreLimits) -> Result<Self, StoreError> {
        Self::open_inner(data_dir, limits, Arc::new(Failpoints::new())).await
    }

    /// Like [`LocalStore::open`], with crash points armed through `failpoints`.
    #[cfg(any(test, feature = "failpoints"))]
    pub async fn open_with_failpoints(
        data_dir: &Path,
        limits: StoreLimits,
        failpoints: Arc<Failpoints>,
    ) -> Result<Self, StoreError> {
        Self::open_inner(data_dir, limits, failpoints).await
    }

    async fn open_inner(
        data_dir: &Path,
        limits: StoreLimits,
        failpoints: Arc<Failpoints>,
    ) -> Result<Self, StoreError> {
        let root = data_dir.to_path_buf();
        let (db, data, recovery) = blocking(move || {
            std::fs::create_dir_all(&root).map_err(io_err("create store directory", &root))?;
            let data = DataDir::new(root.join("data"));
            data.create_layout()?;
            let db = recovery::open_index(&root.join("index.redb"))?;
            let report = recovery::remove_orphans(&db, &data)?;
            Ok((db, data, report))
        })
        .await?;
        let inner = Inner {
            db,
            data,
            limits,
            failpoints,
            recovery,
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// What recovery found and removed when this store was opened.
    pub fn recovery_report(&self) -> RecoveryReport {
        self.inner.recovery
    }

    /// The store's `data/` directory.
    pub fn data_dir(&self) -> &Path {
        self.inner.data.root()
    }

    /// Paths of every data file the index references (objects' segments and parts), for crash
    /// tests that compare them with the files on disk.
    #[cfg(any(test, feature = "failpoints"))]
    pub async fn referenced_files(
        &self,
    ) -> Result<std::collections::BTreeSet<PathBuf>, StoreError> {
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let ids = recovery::referenced_ids(&inner.db)?;
            Ok(ids.into_iter().map(|id| inner.data.path(id)).collect())
        })
        .await
    }
}

/// Runs blocking work (redb, file I/O) on tokio's blocking pool. A panic in it resumes here.
///
/// The task starts at once, not when the returned future is first polled: callers such as
/// the body writer feed it through a channel before awaiting it.
fn blocking<T, F>(work: F) -> impl Future<Output = Result<T, StoreError>> + Send
where
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    let task = tokio::task::spawn_blocking(work);
    async move {
        match task.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(StoreError::Io {
                op: "run blocking store task",
                path: PathBuf::new(),
                source: std::io::Error::other(e),
            }),
        }
    }
}

// === impl ObjectStore ===

#[async_trait]
impl ObjectStore for LocalStore {
    async fn create_bucket(&self, bucket: &str) -> Result<BucketInfo, StoreError> {
        bucket::create(&self.inner, bucket).await
    }

    async fn delete_bucket(&self, bucket: &str) -> Result<(), StoreError> {
        bucket::delete(&self.inner, bucket).await
    }

    async fn head_bucket(&self, bucket: &str) -> Result<BucketInfo, StoreError> {
        bucket::head(&self.inner, bucket).await
    }

    async fn list_buckets(&self) -> Result<Vec<BucketInfo>, StoreError> {
        bucket::list(&self.inner).await
    }

    async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectMeta, StoreError> {
        object::head(&self.inner, bucket, key).await
    }

    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<ObjectReader, StoreError> {
        object::get(&self.inner, bucket, key, range).await
    }

    async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: BodyStream,
        options: PutOptions,
    ) -> Result<ObjectMeta, StoreError> {
        object::put(&self.inner, bucket, key, body, options).await
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        object::delete(&self.inner, bucket, key).await
    }

    async fn list_objects(
        &self,
        bucket: &str,
        request: &ListRequest,
    ) -> Result<ListPage, StoreError> {
        list::list_objects(&self.inner, bucket, request).await
    }

    async fn create_multipart(
        &self,
        bucket: &str,
        key: &str,
        attrs: ObjectAttrs,
    ) -> Result<String, StoreError> {
        multipart::create(&self.inner, bucket, key, attrs).await
    }

    async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: BodyStream,
        options: PutOptions,
    ) -> Result<PartInfo, StoreError> {
        multipart::upload_part(
            &self.inner,
            bucket,
            key,
            upload_id,
            part_number,
            body,
            options,
        )
        .await
    }

    async fn complete_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
        precondition: PutPrecondition,
    ) -> Result<ObjectMeta, StoreError> {
        multipart::complete(&self.inner, bucket, key, upload_id, parts, precondition).await
    }

    async fn abort_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), StoreError> {
        multipart::abort(&self.inner, bucket, key, upload_id).await
    }

    async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        request: &ListPartsRequest,
    ) -> Result<PartsPage, StoreError> {
        multipart::list_parts(&self.inner, bucket, key, upload_id, request).await
    }

    async fn list_uploads(
        &self,
        bucket: &str,
        request: &ListUploadsRequest,
    ) -> Result<UploadsPage, StoreError> {
        list::list_uploads(&self.inner, bucket, request).await
    }

    async fn usage(&self) -> Result<StoreUsage, StoreError> {
        bucket::usage(&self.inner).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use bytesize::ByteSize;
    use futures::StreamExt;

    use super::*;
    use crate::store::testing::{
        body_from, conformance, conformance_limits, get_bytes, pattern, put_bytes,
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
            let got = crate::store::testing::read_all(reader).await;
            assert!(bodies.contains(&got), "a read saw a torn or mixed body");
            assert_eq!(etag, crate::store::testing::md5_hex(&got));
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
}
