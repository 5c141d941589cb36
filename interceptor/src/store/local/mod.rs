// SPDX-License-Identifier: Apache-2.0
//! `LocalStore`: the embedded durable store, a redb index plus data files named by id.
//!
//! Layout under the store's directory: `index.redb` (the redb index, see `index.rs`) and
//! `data/<xx>/<id>` (one file per PUT body or multipart part, see `data.rs`). Small objects
//! have no file: their bytes are stored in the index next to their record (`inline.rs`).
//!
//! A write goes data first, index second: the body is streamed into a fresh file, the file and
//! its directory are fsynced, and only then one redb write transaction checks the bucket and
//! the precondition and commits the new record (durably). A version is visible exactly when its
//! record is committed, so a crash at any point leaves either the old version or the new one
//! whole; files written for an uncommitted record are orphans that recovery (`recovery.rs`)
//! removes at the next open. Files a commit made unreachable (a replaced version, a replaced
//! part) are deleted right after the commit, best effort; readers hold their files open, and
//! retry when a file vanished before they could open it. A whole-object PUT that declares a
//! length of at most `StoreLimits::inline_max` skips the file: its bytes are collected in
//! memory and committed with the record, in the same transaction.
//!
//! Every index write transaction runs on one committer thread (`committer/mod.rs`), which applies
//! all the requests queued at that moment in one transaction and commits them with one fsync
//! (group commit); each request is answered only after that commit returned.
//!
//! Bodies larger than one read buffer are streamed by the read engine chosen at open
//! (`read_engine.rs`: io_uring, or pread where io_uring is unavailable) through a read-ahead
//! pipeline (`pipeline.rs`) into a shared pool of aligned buffers (`pool.rs`); the chunks a GET
//! hands out own their pool buffers, so the bytes are not copied on their way out.
//!
//! redb is synchronous and so is file I/O here: every read transaction and every file
//! operation runs on tokio's blocking pool or the read engine's thread, every write
//! transaction on the committer thread, never on a runtime worker.

mod bucket;
mod committer;
mod data;
mod engine_stats;
#[cfg_attr(
    not(any(test, feature = "failpoints")),
    path = "failpoints_disabled.rs"
)]
mod failpoints;
mod index;
mod inline;
mod list;
mod multipart;
mod object;
mod pipeline;
mod pool;
mod pread;
mod read;
mod read_engine;
mod recovery;
mod residency;
mod uring;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use redb::Database;

pub use self::committer::CommitStats;
pub use self::engine_stats::{IoMetrics, IoStats};
#[cfg(not(any(test, feature = "failpoints")))]
use self::failpoints::Failpoints;
#[cfg(any(test, feature = "failpoints"))]
pub use self::failpoints::{FAILPOINTS, Failpoints};
pub use self::pool::ReadPoolStats;
pub use self::read_engine::{ReadEngineInfo, ReadEngineKind};
pub use self::recovery::RecoveryReport;

use self::committer::Committer;
use self::data::{DataDir, io_err};
use self::read_engine::ReadPath;
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
    /// Runs every index write transaction. Dropped first: it waits for its thread, which
    /// holds the index too, so the index is closed once `Inner` is gone.
    committer: Committer,
    /// The index, for read transactions.
    db: Arc<Database>,
    /// The data files.
    data: DataDir,
    /// Size limits.
    limits: StoreLimits,
    /// Crash points (a no-op stand-in unless built for tests or with `failpoints`).
    failpoints: Arc<Failpoints>,
    /// What recovery found at open.
    recovery: RecoveryReport,
    /// The read engine and its buffer pool.
    read: ReadPath,
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
        let read_limits = limits.clone();
        let (db, data, recovery, read) = blocking(move || {
            std::fs::create_dir_all(&root).map_err(io_err("create store directory", &root))?;
            let data = DataDir::new(root.join("data"));
            data.create_layout()?;
            let db = recovery::open_index(&root.join("index.redb"))?;
            let report = recovery::remove_orphans(&db, &data)?;
            let read = ReadPath::open(&read_limits, data.root())?;
            Ok((db, data, report, read))
        })
        .await?;
        let db = Arc::new(db);
        let committer = Committer::start(Arc::clone(&db), data.clone(), Arc::clone(&failpoints))?;
        let inner = Inner {
            committer,
            db,
            data,
            limits,
            failpoints,
            recovery,
            read,
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// What recovery found and removed when this store was opened.
    pub fn recovery_report(&self) -> RecoveryReport {
        self.inner.recovery
    }

    /// How many index write transactions the store ran and how many requests they carried
    /// (group commit: several concurrent writes share one transaction and its fsync).
    pub fn commit_stats(&self) -> CommitStats {
        self.inner.committer.stats()
    }

    /// The engine that reads object bodies, and its settings (`store.read_engine`).
    pub fn read_engine(&self) -> &ReadEngineInfo {
        self.inner.read.info()
    }

    /// What the store's I/O engine did since it opened: reads, writes, fsyncs, and the body
    /// bytes copied on their way out.
    pub fn io_stats(&self) -> IoStats {
        self.inner.read.io_stats()
    }

    /// The I/O counters as Prometheus metrics (`quarry_store_io_*{engine, op}`), for the
    /// agent's registry.
    pub fn io_metrics(&self) -> Result<IoMetrics, prometheus::Error> {
        self.inner.read.io_metrics()
    }

    /// What the read buffer pool holds right now.
    pub fn read_pool_stats(&self) -> ReadPoolStats {
        self.inner.read.pool_stats()
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

    async fn update_metadata(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
        metadata: std::collections::BTreeMap<String, String>,
    ) -> Result<ObjectMeta, StoreError> {
        object::update_metadata(&self.inner, bucket, key, etag, metadata).await
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
mod io_tests;
#[cfg(test)]
mod read_tests;
#[cfg(test)]
mod tests;
