// SPDX-License-Identifier: Apache-2.0
//! The native backend: built-in kernels' CPU implementations on a dedicated pool of worker
//! threads.
//!
//! A job binds its kernel to the job's params (a bad parameter is the caller's fault:
//! [`BackendError::BadParams`]), waits for one of `workers` slots (at most `max_queued` jobs
//! wait, each at most `queue_timeout`; beyond either, [`BackendError::Overloaded`]), then runs on
//! a worker thread: the input is framed into chunks of whole records, read in place, and the
//! output is sent as it is produced. Memory per job is bounded by a few input pieces, one chunk
//! of output and the longest record. A job whose reader goes away stops within one chunk.

mod config;
mod pool;
mod run;
mod work;

pub use self::config::NativeConfig;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use self::pool::WorkerPool;
use crate::backend::{
    Backend, BackendError, BackendId, ChunkStream, DeviceClass, Job, Load, OutputSink, RunReport,
    VariantKind,
};
use crate::function::{FunctionSpec, Variant};

/// Runs kernels' CPU variants on a pool of worker threads (see the module docs).
#[derive(Debug)]
pub struct NativeBackend {
    id: BackendId,
    pool: WorkerPool,
    slots: Arc<Semaphore>,
    queued: AtomicUsize,
    config: NativeConfig,
    max_record: usize,
}

impl NativeBackend {
    /// Starts the worker threads.
    pub fn new(config: &NativeConfig) -> Result<Self, BackendError> {
        let workers = config.effective_workers();
        let pool = WorkerPool::start(workers).map_err(|e| BackendError::Setup {
            function: "-".to_owned(),
            backend: "native".to_owned(),
            message: format!("cannot start {workers} worker threads: {e}"),
        })?;
        tracing::info!(workers, "native kernel pool started");
        Ok(Self {
            id: BackendId("native".to_owned()),
            pool,
            slots: Arc::new(Semaphore::new(workers)),
            queued: AtomicUsize::new(0),
            max_record: usize::try_from(config.max_record.as_u64()).unwrap_or(usize::MAX),
            config: config.clone(),
        })
    }

    /// The pool's configuration.
    pub fn config(&self) -> &NativeConfig {
        &self.config
    }

    /// A worker slot, waiting in the bounded queue at most the queue timeout.
    async fn admit(&self) -> Result<OwnedSemaphorePermit, BackendError> {
        if let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() {
            return Ok(permit);
        }
        let waited_from = Instant::now();
        let max_queued = usize::try_from(self.config.max_queued).unwrap_or(usize::MAX);
        let overloaded = |waited_from: Instant| BackendError::Overloaded {
            backend: self.id.0.clone(),
            capacity: self.pool.workers(),
            waited: waited_from.elapsed(),
        };
        if self.queued.fetch_add(1, Ordering::AcqRel) >= max_queued {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(overloaded(waited_from));
        }
        let permit = tokio::time::timeout(
            self.config.queue_timeout,
            Arc::clone(&self.slots).acquire_owned(),
        )
        .await;
        self.queued.fetch_sub(1, Ordering::AcqRel);
        match permit {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(overloaded(waited_from)),
        }
    }
}

#[async_trait]
impl Backend for NativeBackend {
    fn id(&self) -> &BackendId {
        &self.id
    }

    fn class(&self) -> DeviceClass {
        DeviceClass::Cpu
    }

    fn describe(&self) -> String {
        format!(
            "native CPU kernels on {} worker threads",
            self.config().effective_workers()
        )
    }

    fn variant_for(&self, function: &FunctionSpec) -> Option<VariantKind> {
        function
            .variants
            .iter()
            .any(|v| matches!(v, Variant::Kernel(k) if k.info().cpu))
            .then_some(VariantKind::Native)
    }

    fn load(&self) -> Load {
        let capacity = self.pool.workers();
        Load {
            running: capacity.saturating_sub(self.slots.available_permits()),
            capacity,
            queued: self.queued.load(Ordering::Relaxed),
        }
    }

    async fn run(
        &self,
        job: Job,
        input: ChunkStream,
        out: OutputSink,
    ) -> Result<RunReport, BackendError> {
        run::run(self, &self.id, job, input, out).await
    }
}

impl NativeBackend {
    /// Runs `job` on this pool's workers as the backend `name`: a simulated device's fixed
    /// programs are the kernels' CPU implementations, run here for their real output bytes,
    /// with reports and errors naming the device. The pool's queue bounds apply as usual.
    pub(crate) async fn run_as(
        &self,
        name: &BackendId,
        job: Job,
        input: ChunkStream,
        out: OutputSink,
    ) -> Result<RunReport, BackendError> {
        run::run(self, name, job, input, out).await
    }
}
