// SPDX-License-Identifier: Apache-2.0
//! Group commit: one thread runs every index write transaction, and concurrent requests share
//! its commits and their fsync.
//!
//! redb runs one write transaction at a time and a durable commit costs an fsync, so writers
//! that each commit on their own queue up behind one fsync apiece. Instead every index write
//! (PUT, DELETE, part, completion, abort, bucket and upload changes) is a [`Commit`] sent to the
//! committer thread. The thread takes what is queued, at most [`MAX_BATCH`] requests, applies
//! them in queue order in ONE write transaction, commits once, and only then answers each
//! request. Nothing waits to fill a batch: a lone request is committed at once, and while a
//! commit runs the next requests queue up, so batches grow exactly when commits are the
//! bottleneck. A request sees the writes of the requests before it in its batch, as if they had
//! committed one after the other.
//!
//! Isolation inside a batch is a validation-then-apply split, not savepoints: redb only takes a
//! savepoint before a transaction opens its first table, so nothing can be rolled back inside a
//! shared transaction. Every request closure therefore does all its checks (bucket, upload,
//! precondition, part list, record encoding) with reads only, and writes only after all of them
//! passed. The committer relies on that contract:
//! - a closure failing with a client error ([`StoreError::is_client_error`]) wrote nothing: that
//!   request alone fails, the rest of the batch goes on;
//! - any other failure (an index error, which may strike half-way through the writes) or a
//!   panic may have left partial writes: the transaction is dropped uncommitted and every
//!   request of the batch fails (the failing one with its own error or panic);
//! - a failed commit fails every request of the batch.
//!
//! Files follow the batch: a request's new data file ([`Commit::with_file`]) is kept when the
//! batch commits, handed back to the caller to remove (before it returns its error) when the
//! batch was dropped before its commit or the request was refused, and left in place when the
//! outcome is unknown (a failed commit may still have reached the disk; recovery removes the
//! orphan at the next open). The files a request's writes made unreachable come back to the
//! caller as [`FreedFiles`], removed after the commit. The committer thread itself only
//! removes files when a caller went away before its answer arrived.
//!
//! Failpoints: a request may name a crash point ([`Commit::with_failpoint`]) that fires after
//! its batch was applied, just before the commit. When it fires, the transaction is dropped
//! uncommitted, as in a crash, every request of the batch fails, and no file is removed.

use std::any::Any;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::{self, JoinHandle};

use redb::{Database, WriteTransaction};
use tokio::sync::oneshot;
use tracing::{error, trace};

use super::Failpoints;
use super::data::{DataDir, FreedFiles, NewFile, io_err};
use super::index::FileId;
use crate::store::StoreError;

/// Most requests applied in one transaction. Bounds the work (and so the latency) of a batch.
pub(super) const MAX_BATCH: usize = 256;

// === requests ===

/// What a request closure returns once its checks passed and its writes are done.
#[derive(Debug)]
pub(super) struct Applied<T> {
    value: T,
    freed: Vec<FileId>,
    wrote: bool,
}

impl<T> Applied<T> {
    /// The request wrote; its writes made the files `freed` unreachable.
    pub(super) fn wrote(value: T, freed: impl IntoIterator<Item = FileId>) -> Self {
        Self {
            value,
            freed: freed.into_iter().collect(),
            wrote: true,
        }
    }

    /// The request found nothing to change.
    pub(super) fn unchanged(value: T) -> Self {
        Self {
            value,
            freed: Vec::new(),
            wrote: false,
        }
    }
}

/// A committed request: its result and the files its writes freed.
#[derive(Debug)]
pub(super) struct Committed<T> {
    /// What the closure returned.
    pub(super) value: T,
    /// Files no record references any more, to remove now that the commit is durable.
    pub(super) freed: FreedFiles,
}

impl<T> Committed<T> {
    /// Fires `failpoint` (a crash right after the commit: the freed files stay for recovery),
    /// then removes the freed files.
    pub(super) async fn finish(
        self,
        failpoints: &Failpoints,
        failpoint: &'static str,
    ) -> Result<T, StoreError> {
        if let Err(e) = failpoints.trigger(failpoint) {
            self.freed.abandon();
            return Err(e);
        }
        Ok(self.free().await)
    }

    /// Removes the freed files.
    pub(super) async fn free(self) -> T {
        self.freed.remove().await;
        self.value
    }
}

/// One write request: a closure run inside a batch's write transaction, and what it brings
/// along. The closure must keep the contract in the module docs: checks first, then writes.
pub(super) struct Commit<F> {
    op: &'static str,
    apply: F,
    file: Option<NewFile>,
    failpoint: Option<&'static str>,
}

impl<F> Commit<F> {
    /// A request; `op` names it in index errors ("commit object", ...).
    pub(super) fn new(op: &'static str, apply: F) -> Self {
        Self {
            op,
            apply,
            file: None,
            failpoint: None,
        }
    }

    /// The new data file the request's record references, kept only if the batch commits.
    pub(super) fn with_file(mut self, file: NewFile) -> Self {
        self.file = Some(file);
        self
    }

    /// The crash point to check after the batch was applied, before it commits.
    pub(super) fn with_failpoint(mut self, name: &'static str) -> Self {
        self.failpoint = Some(name);
        self
    }
}

/// Why a request failed.
enum Failure {
    Error(StoreError),
    /// Its closure panicked; the panic resumes in the caller.
    Panic(Box<dyn Any + Send>),
}

/// A request's answer, and its new data file when that is to be removed.
type Reply<T> = (Result<Committed<T>, Failure>, Option<NewFile>);

/// How a batch ended.
enum Outcome {
    Committed,
    /// Dropped before its commit: nothing of it reached the disk.
    Aborted(Arc<StoreError>),
    /// The commit failed, or a failpoint simulated a crash: it may or may not be on disk.
    Unknown(Arc<StoreError>),
}

/// What applying one request did.
enum Step {
    Wrote,
    Unchanged,
    /// Failed a check; wrote nothing.
    Refused,
    /// Failed in a way that may have left partial writes: the batch must not commit.
    Poisoned(Arc<StoreError>),
}

/// A request with its result type erased, as the committer thread holds it.
trait Job: Send {
    fn apply(&mut self, txn: &WriteTransaction) -> Step;
    /// The crash point to check before the commit, if the request applied.
    fn failpoint(&self) -> Option<&'static str>;
    /// A failpoint fired for this request: it fails with `crash`.
    fn crash(&mut self, crash: StoreError);
    /// Answers the request.
    fn settle(self: Box<Self>, outcome: &Outcome);
}

enum State<T> {
    Queued,
    Applied(Applied<T>),
    Failed(Failure),
}

/// A typed request on its way through the committer.
struct Pending<T, F> {
    op: &'static str,
    apply: Option<F>,
    file: Option<NewFile>,
    failpoint: Option<&'static str>,
    state: State<T>,
    data: DataDir,
    reply: oneshot::Sender<Reply<T>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send,
    F: FnOnce(&WriteTransaction) -> Result<Applied<T>, StoreError> + Send,
{
    fn apply(&mut self, txn: &WriteTransaction) -> Step {
        let Some(apply) = self.apply.take() else {
            return Step::Unchanged;
        };
        let (state, step) = match panic::catch_unwind(AssertUnwindSafe(|| apply(txn))) {
            Ok(Ok(applied)) => {
                let step = if applied.wrote {
                    Step::Wrote
                } else {
                    Step::Unchanged
                };
                (State::Applied(applied), step)
            }
            Ok(Err(e)) if e.is_client_error() => (State::Failed(Failure::Error(e)), Step::Refused),
            Ok(Err(e)) => {
                let cause = batch_error(format!("another request of the batch failed: {e}"));
                (State::Failed(Failure::Error(e)), Step::Poisoned(cause))
            }
            Err(panic) => {
                let cause = batch_error("another request of the batch panicked".to_owned());
                (State::Failed(Failure::Panic(panic)), Step::Poisoned(cause))
            }
        };
        self.state = state;
        step
    }

    fn failpoint(&self) -> Option<&'static str> {
        match self.state {
            State::Applied(_) => self.failpoint,
            State::Queued | State::Failed(_) => None,
        }
    }

    fn crash(&mut self, crash: StoreError) {
        self.state = State::Failed(Failure::Error(crash));
    }

    fn settle(self: Box<Self>, outcome: &Outcome) {
        let Self {
            op,
            file,
            state,
            data,
            reply,
            ..
        } = *self;
        let (answer, leftover) = match (state, outcome) {
            (State::Applied(applied), Outcome::Committed) => {
                let kept = file.map(NewFile::keep);
                debug_assert!(kept.is_none_or(|id| !applied.freed.contains(&id)));
                let freed = FreedFiles::new(data, applied.freed);
                let done = Committed {
                    value: applied.value,
                    freed,
                };
                (Ok(done), None)
            }
            (State::Failed(failure), _) => (Err(failure), file),
            (State::Applied(_) | State::Queued, Outcome::Aborted(cause))
            | (State::Applied(_) | State::Queued, Outcome::Unknown(cause)) => {
                let e = StoreError::index(op, Arc::clone(cause));
                (Err(Failure::Error(e)), file)
            }
            // A batch commits only after every request in it was applied.
            (State::Queued, Outcome::Committed) => {
                let e = batch_error("request was not applied".to_owned());
                (Err(Failure::Error(StoreError::index(op, e))), file)
            }
        };
        let leftover = match outcome {
            Outcome::Unknown(_) => {
                if let Some(file) = leftover {
                    file.abandon();
                }
                None
            }
            Outcome::Committed | Outcome::Aborted(_) => leftover,
        };
        // A caller that went away drops the answer here: its file and a committed result's
        // freed files are removed by their guards.
        let _ = reply.send((answer, leftover));
    }
}

/// Wraps a request for the committer thread, with the receiver of its answer.
fn into_job<T, F>(commit: Commit<F>, data: DataDir) -> (Box<dyn Job>, oneshot::Receiver<Reply<T>>)
where
    T: Send + 'static,
    F: FnOnce(&WriteTransaction) -> Result<Applied<T>, StoreError> + Send + 'static,
{
    let (reply, answer) = oneshot::channel();
    let job = Box::new(Pending {
        op: commit.op,
        apply: Some(commit.apply),
        file: commit.file,
        failpoint: commit.failpoint,
        state: State::Queued,
        data,
        reply,
    });
    (job, answer)
}

/// A batch-wide failure, shared by the requests it failed.
fn batch_error(detail: String) -> Arc<StoreError> {
    Arc::new(StoreError::index("apply batch", io::Error::other(detail)))
}

// === impl Committer ===

/// How much the committer has grouped so far: `requests / batches` is the mean batch size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Write transactions run (committed, or dropped when they failed).
    pub batches: u64,
    /// Requests they carried.
    pub requests: u64,
}

/// The counters behind [`CommitStats`], written by the committer thread.
#[derive(Debug, Default)]
struct Counters {
    batches: AtomicU64,
    requests: AtomicU64,
}

/// The committer thread and the queue to it. Dropping it lets the thread finish what is
/// queued and waits for it, so the index is closed when the store is gone.
pub(super) struct Committer {
    queue: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
    data: DataDir,
    counters: Arc<Counters>,
}

impl Committer {
    /// Starts the committer thread over an open index.
    pub(super) fn start(
        db: Arc<Database>,
        data: DataDir,
        failpoints: Arc<Failpoints>,
    ) -> Result<Self, StoreError> {
        let (queue, requests) = mpsc::channel::<Box<dyn Job>>();
        let counters = Arc::new(Counters::default());
        let thread_counters = Arc::clone(&counters);
        let thread = thread::Builder::new()
            .name("quarry-commit".to_owned())
            .spawn(move || {
                while let Ok(first) = requests.recv() {
                    let mut batch = vec![first];
                    batch.extend(requests.try_iter().take(MAX_BATCH - 1));
                    // Counted first, so an answered request finds its batch counted.
                    thread_counters.batches.fetch_add(1, Ordering::Relaxed);
                    let len = batch.len() as u64;
                    thread_counters.requests.fetch_add(len, Ordering::Relaxed);
                    run_batch(&db, &failpoints, batch);
                }
            })
            .map_err(io_err("start the index committer thread", Path::new("")))?;
        Ok(Self {
            queue: Some(queue),
            thread: Some(thread),
            data,
            counters,
        })
    }

    /// Queues a request and waits for its batch's outcome. The request runs even if this
    /// future is dropped, as a transaction already begun would.
    pub(super) async fn submit<T, F>(&self, commit: Commit<F>) -> Result<Committed<T>, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<Applied<T>, StoreError> + Send + 'static,
    {
        let op = commit.op;
        let (job, answer) = into_job(commit, self.data.clone());
        let stopped = || StoreError::index(op, io::Error::other("the index committer stopped"));
        // A refused send hands the job back, dropped here: its new file goes with it.
        let queue = self.queue.as_ref().ok_or_else(stopped)?;
        queue.send(job).map_err(|_| stopped())?;
        let (answer, leftover) = answer.await.map_err(|_| stopped())?;
        // Gone before the error is returned, as when the request wrote its own transaction.
        if let Some(file) = leftover {
            file.discard().await;
        }
        match answer {
            Ok(done) => Ok(done),
            Err(Failure::Error(e)) => Err(e),
            Err(Failure::Panic(panic)) => panic::resume_unwind(panic),
        }
    }

    /// What the committer has done so far.
    pub(super) fn stats(&self) -> CommitStats {
        CommitStats {
            batches: self.counters.batches.load(Ordering::Relaxed),
            requests: self.counters.requests.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        // Closing the queue ends the thread's loop once it has drained it.
        drop(self.queue.take());
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != thread::current().id()
            && thread.join().is_err()
        {
            error!("the index committer thread panicked");
        }
    }
}

/// Applies a batch in one write transaction, commits it, and answers every request. Blocking.
fn run_batch(db: &Database, failpoints: &Failpoints, mut batch: Vec<Box<dyn Job>>) {
    let outcome = match db.begin_write() {
        Ok(txn) => apply_and_commit(txn, failpoints, &mut batch),
        Err(e) => Outcome::Aborted(Arc::new(StoreError::index("begin write", e))),
    };
    trace!(
        requests = batch.len(),
        committed = matches!(outcome, Outcome::Committed),
        "index batch done"
    );
    for job in batch {
        job.settle(&outcome);
    }
}

/// Applies every request, checks the failpoints, commits. Blocking.
fn apply_and_commit(
    txn: WriteTransaction,
    failpoints: &Failpoints,
    batch: &mut [Box<dyn Job>],
) -> Outcome {
    let mut wrote = false;
    for job in batch.iter_mut() {
        match job.apply(&txn) {
            Step::Wrote => wrote = true,
            Step::Unchanged | Step::Refused => {}
            // Dropping `txn` on return aborts it.
            Step::Poisoned(cause) => return Outcome::Aborted(cause),
        }
    }
    for job in batch.iter_mut() {
        if let Some(name) = job.failpoint()
            && let Err(crash) = failpoints.trigger(name)
        {
            job.crash(crash);
            return Outcome::Unknown(batch_error(format!(
                "failpoint {name} simulated a crash in the batch"
            )));
        }
    }
    if !wrote {
        return Outcome::Committed; // nothing to make durable; dropping `txn` aborts it
    }
    match txn.commit() {
        Ok(()) => Outcome::Committed,
        Err(e) => {
            error!(error = %e, requests = batch.len(), "index commit failed");
            Outcome::Unknown(Arc::new(StoreError::index("commit batch", e)))
        }
    }
}

#[cfg(test)]
mod tests;
