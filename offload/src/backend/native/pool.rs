// SPDX-License-Identifier: Apache-2.0
//! The worker threads: a fixed set of OS threads that take tasks from one shared queue. Kernels
//! are CPU-bound and run to the end of a chunk without yielding, so they run here and never on
//! the async runtime's threads.
//!
//! The queue itself is never longer than the number of workers: the backend admits a job only
//! after taking one of `workers` slots, and the slot is released by the task when it ends.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// One unit of work; it reports its own result (through a channel it captured).
pub(super) type Task = Box<dyn FnOnce() + Send + 'static>;

/// A fixed pool of worker threads. Dropping it lets each thread finish its task and exit.
#[derive(Debug)]
pub(super) struct WorkerPool {
    tx: mpsc::Sender<Task>,
    workers: usize,
}

impl WorkerPool {
    /// Starts `workers` threads named `quarry-native-N`.
    pub(super) fn start(workers: usize) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Task>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("quarry-native-{i}"))
                .spawn(move || work_loop(&rx))?;
        }
        Ok(Self { tx, workers })
    }

    /// How many threads it runs.
    pub(super) fn workers(&self) -> usize {
        self.workers
    }

    /// Queues `task` for the next free thread; gives it back if the pool has stopped.
    pub(super) fn submit(&self, task: Task) -> Result<(), Task> {
        self.tx.send(task).map_err(|e| e.0)
    }
}

fn work_loop(rx: &Mutex<mpsc::Receiver<Task>>) {
    loop {
        let next = rx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .recv();
        let Ok(task) = next else {
            return;
        };
        // A task contains its own panics (it reports them as the job's failure); this guard
        // only keeps the thread alive should one escape.
        if std::panic::catch_unwind(AssertUnwindSafe(task)).is_err() {
            tracing::error!("a native task panicked outside its job guard");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_and_a_panic_does_not_kill_the_worker() {
        let pool = WorkerPool::start(1).unwrap();
        let (tx, rx) = mpsc::channel();
        assert!(pool.submit(Box::new(|| panic!("boom"))).is_ok());
        for i in 0..3 {
            let tx = tx.clone();
            assert!(pool.submit(Box::new(move || tx.send(i).unwrap())).is_ok());
        }
        let got: Vec<i32> = (0..3).map(|_| rx.recv().unwrap()).collect();
        assert_eq!(got, vec![0, 1, 2]);
    }
}
