// SPDX-License-Identifier: Apache-2.0
//! The closed-loop load driver and its latency statistics.
//!
//! A cell runs `concurrency` workers; each issues one op at a time on its own slot (object key
//! or file) until the cell's time is up or its op budget is spent. Every worker completes at
//! least one op, so a cell always exercises its nominal concurrency even when one op takes
//! longer than the whole time budget (64 MiB at concurrency 32). The first error stops the
//! cell: a benchmark that silently drops failures measures something else.
//!
//! An op may have an untimed setup (a cold GET evicts its file from the page cache first).
//! Setup time is outside the op's latency, and the cell's elapsed time excludes it too: the
//! wall time minus the mean setup time per worker (exact at concurrency 1; at higher
//! concurrency the workers' setups overlap other workers' ops, and the mean is the share of
//! the wall time one worker spent on them).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use tokio::time::Instant;

/// When a cell stops.
#[derive(Debug, Clone, Copy)]
pub struct CellBudget {
    /// Workers, each with one op in flight.
    pub concurrency: usize,
    /// No new op starts after this much time (first ops excepted).
    pub duration: Duration,
    /// No new op starts once this many have started (first ops excepted).
    pub max_ops: u64,
}

impl CellBudget {
    /// A budget of `duration`, at most `max_ops` ops and about `max_bytes` bytes of `size`-byte
    /// ops, never fewer ops than workers.
    pub fn new(
        concurrency: usize,
        duration: Duration,
        max_ops: u64,
        max_bytes: u64,
        size: u64,
    ) -> Self {
        let by_bytes = max_bytes / size.max(1);
        Self {
            concurrency,
            duration,
            max_ops: max_ops.min(by_bytes),
        }
    }
}

/// What one cell measured: total bytes, wall time and every op's latency.
#[derive(Debug, Clone)]
pub struct CellOutcome {
    /// Ops completed.
    pub ops: u64,
    /// Payload bytes moved (sent for writes, received for reads).
    pub bytes: u64,
    /// From the first op's start to the last op's end, less the mean untimed setup time
    /// per worker.
    pub elapsed: Duration,
    /// Mean untimed setup time per worker (zero for ops without setup).
    pub setup: Duration,
    /// Per-op latencies in nanoseconds, sorted ascending.
    pub latencies_ns: Vec<u64>,
}

impl CellOutcome {
    /// Throughput in MB/s (10^6 bytes per second).
    pub fn mb_per_s(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.bytes as f64 / secs / 1e6
        } else {
            0.0
        }
    }

    /// Mean latency in milliseconds, or 0 with no ops.
    pub fn mean_ms(&self) -> f64 {
        let total: u128 = self.latencies_ns.iter().map(|&ns| u128::from(ns)).sum();
        let n = self.latencies_ns.len().max(1);
        total as f64 / n as f64 / 1e6
    }

    /// The `percent`-th percentile latency in milliseconds (nearest rank), or 0 with no ops.
    pub fn percentile_ms(&self, percent: u64) -> f64 {
        percentile(&self.latencies_ns, percent).map_or(0.0, |ns| ns as f64 / 1e6)
    }
}

/// Nearest-rank percentile of sorted values: the smallest value with at least `percent`% of
/// the values at or below it.
pub fn percentile(sorted: &[u64], percent: u64) -> Option<u64> {
    let n = u64::try_from(sorted.len()).ok()?;
    let rank = (percent.min(100) * n).div_ceil(100).max(1);
    let index = usize::try_from(rank - 1).ok()?;
    sorted.get(index).copied()
}

/// Runs one cell: `op(slot)` on `budget.concurrency` workers, `slot` being the worker's index.
/// `op` returns the payload bytes it moved.
pub async fn run_cell<F, Fut>(budget: CellBudget, op: F) -> Result<CellOutcome>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<u64>> + Send + 'static,
{
    run_cell_with_setup(budget, |_| std::future::ready(Ok(())), op).await
}

/// [`run_cell`] with an untimed `setup(slot)` before every op.
pub async fn run_cell_with_setup<S, SFut, F, Fut>(
    budget: CellBudget,
    setup: S,
    op: F,
) -> Result<CellOutcome>
where
    S: Fn(usize) -> SFut + Send + Sync + 'static,
    SFut: Future<Output = Result<()>> + Send + 'static,
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<u64>> + Send + 'static,
{
    ensure!(budget.concurrency > 0, "concurrency must be at least 1");
    let setup = Arc::new(setup);
    let op = Arc::new(op);
    let started_ops = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + budget.duration;

    let mut workers = Vec::with_capacity(budget.concurrency);
    for slot in 0..budget.concurrency {
        let setup = Arc::clone(&setup);
        let op = Arc::clone(&op);
        let started_ops = Arc::clone(&started_ops);
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut bytes = 0u64;
            let mut setup_time = Duration::ZERO;
            loop {
                let n = started_ops.fetch_add(1, Ordering::Relaxed);
                let first = latencies.is_empty();
                if !first && (n >= budget.max_ops || Instant::now() >= deadline) {
                    break;
                }
                let s0 = Instant::now();
                setup(slot)
                    .await
                    .with_context(|| format!("worker {slot}, setup of op {}", latencies.len()))?;
                setup_time += s0.elapsed();
                let t0 = Instant::now();
                bytes += op(slot)
                    .await
                    .with_context(|| format!("worker {slot}, op {}", latencies.len()))?;
                latencies.push(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX));
            }
            anyhow::Ok((latencies, bytes, setup_time))
        }));
    }

    let mut latencies_ns = Vec::new();
    let mut bytes = 0;
    let mut setup_total = Duration::ZERO;
    for worker in futures::future::join_all(workers).await {
        let (worker_latencies, worker_bytes, worker_setup) =
            worker.context("load worker panicked")??;
        latencies_ns.extend(worker_latencies);
        bytes += worker_bytes;
        setup_total += worker_setup;
    }
    let workers = u32::try_from(budget.concurrency).context("concurrency overflows u32")?;
    let setup = setup_total / workers;
    let elapsed = start.elapsed().saturating_sub(setup);
    latencies_ns.sort_unstable();
    let ops = u64::try_from(latencies_ns.len()).context("op count overflows u64")?;
    Ok(CellOutcome {
        ops,
        bytes,
        elapsed,
        setup,
        latencies_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50), Some(50));
        assert_eq!(percentile(&values, 99), Some(99));
        assert_eq!(percentile(&values, 100), Some(100));
        assert_eq!(percentile(&[7], 99), Some(7));
        assert_eq!(percentile(&[1, 2, 3], 50), Some(2));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn byte_budget_caps_ops_per_cell() {
        let budget = CellBudget::new(32, Duration::from_secs(2), 20_000, 2 << 30, 64 << 20);
        assert_eq!(budget.max_ops, 32);
        let budget = CellBudget::new(1, Duration::from_secs(2), 20_000, 2 << 30, 4096);
        assert_eq!(budget.max_ops, 20_000);
    }

    #[tokio::test(start_paused = true)]
    async fn every_worker_runs_at_least_once_past_the_deadline() {
        let budget = CellBudget {
            concurrency: 4,
            duration: Duration::from_millis(10),
            max_ops: 1,
        };
        let outcome = run_cell(budget, |_| async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(100)
        })
        .await
        .unwrap();
        assert_eq!(outcome.ops, 4);
        assert_eq!(outcome.bytes, 400);
        assert_eq!(outcome.percentile_ms(50), 50.0);
    }

    #[tokio::test(start_paused = true)]
    async fn cell_stops_at_the_deadline() {
        let budget = CellBudget {
            concurrency: 2,
            duration: Duration::from_millis(100),
            max_ops: 1000,
        };
        let outcome = run_cell(budget, |_| async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok(1)
        })
        .await
        .unwrap();
        // Each worker starts ops at 0, 10, ..., 90 ms: ten each.
        assert_eq!(outcome.ops, 20);
        assert_eq!(outcome.elapsed, Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn setup_is_outside_latency_and_elapsed_time() {
        let budget = CellBudget {
            concurrency: 1,
            duration: Duration::from_millis(100),
            max_ops: 4,
        };
        let outcome = run_cell_with_setup(
            budget,
            |_| async {
                tokio::time::sleep(Duration::from_millis(30)).await;
                Ok(())
            },
            |_| async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                Ok(1)
            },
        )
        .await
        .unwrap();
        // Ops start at 30, 70 and 110 ms of wall time; the third ends at 120 ms.
        assert_eq!(outcome.ops, 3);
        assert_eq!(outcome.percentile_ms(100), 10.0);
        assert_eq!(outcome.setup, Duration::from_millis(90));
        assert_eq!(outcome.elapsed, Duration::from_millis(30));
    }

    #[tokio::test]
    async fn first_error_fails_the_cell() {
        let budget = CellBudget {
            concurrency: 2,
            duration: Duration::from_secs(1),
            max_ops: 10,
        };
        let result = run_cell(budget, |slot| async move {
            anyhow::ensure!(slot != 1, "slot 1 refused");
            Ok(1)
        })
        .await;
        assert!(format!("{:#}", result.unwrap_err()).contains("slot 1 refused"));
    }
}
