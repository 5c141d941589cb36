// SPDX-License-Identifier: Apache-2.0
//! The cost model: the estimated finish time of a job on a backend, and the rates it is built
//! from, calibrated at start and corrected from every finished job.
//!
//! finish = queue wait + transfer in + compute + transfer out, where
//! - queue wait = jobs ahead of this one / the backend's slots × the backend's recent job time;
//! - transfer in / out = the input / expected output over the backend's [`Link`] (zero for
//!   backends that work on host memory);
//! - compute = fixed cost per job + input bytes / throughput, per (work, backend).
//!
//! Measured wall times include the link; the model subtracts its transfer estimate before
//! learning a compute rate, so the link is never counted twice.
//!
//! A backend with a device model of its own (a simulated device) answers for itself through
//! `Backend::estimate`; its parts replace the calibrated ones. When the job's input sits on a
//! device's namespace, every other backend first pays that device's host read: added to its
//! transfer in, and, for a backend that streams host memory in place (the CPU backends), partly
//! hidden behind its compute the way a two-stage pipeline overlaps ([`Estimate::overlap`]).

use std::collections::HashMap;
use std::time::Duration;

use crate::backend::{BackendId, DeviceClass, DeviceEstimate, Link, Load, RunReport, VariantKind};

/// Weight of a new measurement in the moving averages.
const EWMA_WEIGHT: f64 = 0.3;
/// The fastest throughput ever believed (bytes/s), so one tiny measurement cannot make a
/// backend look infinitely fast.
const MAX_RATE: f64 = 1e12;
/// The slowest throughput ever believed (bytes/s).
const MIN_RATE: f64 = 1e3;
/// The piece size a streamed read overlaps compute in (as the device models pipeline).
const STREAM_CHUNK: u64 = 4 << 20;

/// What running one kind of work on one backend costs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Cost of a job regardless of its size (start, launch, program setup).
    pub fixed: Duration,
    /// Input bytes processed per second once running.
    pub bytes_per_sec: f64,
    /// Output bytes per input byte.
    pub out_ratio: f64,
    /// Measurements it rests on (calibration runs and finished jobs); 0 for a default.
    pub samples: u64,
}

impl Rate {
    /// The assumed rate before any measurement, by the variant the backend runs.
    pub fn default_for(variant: VariantKind) -> Self {
        let (fixed_us, bytes_per_sec) = match variant {
            VariantKind::Wasm => (200, 200e6),
            VariantKind::Native => (20, 1e9),
            VariantKind::OpenCl => (1_000, 2e9),
            VariantKind::Ebpf => (100, 500e6),
        };
        Self {
            fixed: Duration::from_micros(fixed_us),
            bytes_per_sec,
            out_ratio: 1.0,
            samples: 0,
        }
    }

    /// A rate fitted to two measurements of compute time at two input sizes (`small < large`).
    pub fn fit(small: (u64, Duration), large: (u64, Duration), out_ratio: f64) -> Self {
        let (s_bytes, s_time) = small;
        let (l_bytes, l_time) = large;
        let extra_bytes = l_bytes.saturating_sub(s_bytes).max(1) as f64;
        let extra_secs = l_time.saturating_sub(s_time).as_secs_f64();
        let bytes_per_sec = if extra_secs > 0.0 {
            extra_bytes / extra_secs
        } else {
            l_bytes as f64 / l_time.as_secs_f64().max(1e-9)
        }
        .clamp(MIN_RATE, MAX_RATE);
        let fixed = s_time.saturating_sub(Duration::from_secs_f64(s_bytes as f64 / bytes_per_sec));
        Self {
            fixed,
            bytes_per_sec,
            out_ratio,
            samples: 2,
        }
    }

    /// The compute time for `bytes` of input.
    pub fn compute_time(&self, bytes: u64) -> Duration {
        self.fixed + Duration::from_secs_f64(bytes as f64 / self.bytes_per_sec)
    }

    /// Folds in one measured job: `bytes` of input, `out` of output, `compute` time.
    fn observe(&mut self, bytes: u64, out: u64, compute: Duration) {
        self.samples += 1;
        if bytes > 0 {
            self.out_ratio = ewma(self.out_ratio, out as f64 / bytes as f64);
        }
        let variable = Duration::from_secs_f64(bytes as f64 / self.bytes_per_sec);
        if bytes > 0 && variable >= self.fixed {
            // Dominated by the size: learn the throughput.
            let secs = compute.saturating_sub(self.fixed).as_secs_f64().max(1e-9);
            let measured = (bytes as f64 / secs).clamp(MIN_RATE, MAX_RATE);
            self.bytes_per_sec = ewma(self.bytes_per_sec, measured);
        } else {
            // Dominated by the fixed cost: learn it.
            let measured = compute.saturating_sub(variable).as_secs_f64();
            self.fixed = Duration::from_secs_f64(ewma(self.fixed.as_secs_f64(), measured));
        }
    }
}

fn ewma(old: f64, new: f64) -> f64 {
    old + EWMA_WEIGHT * (new - old)
}

/// The estimated finish time of one job on one backend, by part.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// The backend.
    pub backend: BackendId,
    /// Its device class.
    pub class: DeviceClass,
    /// The variant it would run.
    pub variant: VariantKind,
    /// Waiting for a slot.
    pub queue_wait: Duration,
    /// Moving the input to the device.
    pub transfer_in: Duration,
    /// Running the work.
    pub compute: Duration,
    /// Moving the result back.
    pub transfer_out: Duration,
    /// Time of the transfer in hidden behind compute (input streamed from a device while the
    /// backend works on what has arrived); subtracted from the sum of the parts.
    pub overlap: Duration,
    /// Whether the rate was measured (calibration or finished jobs) rather than assumed.
    pub measured: bool,
    /// Whether the backend's own device model gave the parts (see `Backend::estimate`).
    pub modelled: bool,
}

impl Estimate {
    /// The estimated time until the job finishes.
    pub fn total(&self) -> Duration {
        (self.queue_wait + self.transfer_in + self.compute + self.transfer_out)
            .saturating_sub(self.overlap)
    }

    /// The estimate a backend's device model gave.
    pub fn modelled(view: BackendView<'_>, parts: DeviceEstimate) -> Self {
        Self {
            backend: view.id.clone(),
            class: view.class,
            variant: view.variant,
            queue_wait: parts.queue_wait,
            transfer_in: parts.transfer_in,
            compute: parts.compute,
            transfer_out: parts.transfer_out,
            overlap: Duration::ZERO,
            measured: false,
            modelled: true,
        }
    }

    /// Adds a device's host read of the `bytes` of input before they reach this backend. A
    /// backend that `streams` (works on host memory as pieces arrive) overlaps the read with
    /// its compute as a two-stage pipeline in pieces of 4 MiB: the shorter of the two is
    /// hidden but for one piece's worth.
    pub fn add_host_read(&mut self, read: Duration, bytes: u64, streams: bool) {
        self.transfer_in += read;
        if streams {
            let pieces = bytes.div_ceil(STREAM_CHUNK).max(1);
            let shorter = read.min(self.compute);
            let one_piece = shorter.div_f64(pieces as f64);
            self.overlap += shorter.saturating_sub(one_piece);
        }
    }
}

/// What the model knows about one backend when estimating.
#[derive(Debug, Clone, Copy)]
pub struct BackendView<'a> {
    /// The backend.
    pub id: &'a BackendId,
    /// Its class.
    pub class: DeviceClass,
    /// The variant it would run.
    pub variant: VariantKind,
    /// Its load now.
    pub load: Load,
    /// Its link, if any.
    pub link: Option<Link>,
}

/// The table of rates per (work, backend) and recent job times per backend.
#[derive(Debug, Default)]
pub struct CostModel {
    rates: HashMap<(String, BackendId), Rate>,
    job_times: HashMap<BackendId, Duration>,
}

impl CostModel {
    /// The rate of `work` on `backend`: measured, or the default for the variant.
    pub fn rate(&self, work: &str, backend: &BackendId, variant: VariantKind) -> Rate {
        self.rates
            .get(&(work.to_owned(), backend.clone()))
            .copied()
            .unwrap_or_else(|| Rate::default_for(variant))
    }

    /// The rate of `work` on `backend` if it was measured or set.
    pub fn measured(&self, work: &str, backend: &BackendId) -> Option<Rate> {
        self.rates.get(&(work.to_owned(), backend.clone())).copied()
    }

    /// Replaces the rate of `work` on `backend` (calibration).
    pub fn set_rate(&mut self, work: &str, backend: &BackendId, rate: Rate) {
        self.rates.insert((work.to_owned(), backend.clone()), rate);
    }

    /// Every measured rate, sorted by backend then work.
    pub fn rates(&self) -> Vec<(BackendId, String, Rate)> {
        let mut out: Vec<_> = self
            .rates
            .iter()
            .map(|((work, backend), rate)| (backend.clone(), work.clone(), *rate))
            .collect();
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        out
    }

    /// The estimated finish of `work` over `bytes` of input on `view`.
    pub fn estimate(&self, work: &str, bytes: u64, view: BackendView<'_>) -> Estimate {
        let rate = self.rate(work, view.id, view.variant);
        let compute = rate.compute_time(bytes);
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a non-negative estimate; the float-to-int cast saturates"
        )]
        let out_bytes = (bytes as f64 * rate.out_ratio.max(0.0)) as u64;
        let (transfer_in, transfer_out) = match view.link {
            Some(link) => (link.transfer_time(bytes), link.transfer_time(out_bytes)),
            None => (Duration::ZERO, Duration::ZERO),
        };
        let job_time = self
            .job_times
            .get(view.id)
            .copied()
            .unwrap_or(transfer_in + compute + transfer_out);
        Estimate {
            backend: view.id.clone(),
            class: view.class,
            variant: view.variant,
            queue_wait: queue_wait(view.load, job_time),
            transfer_in,
            compute,
            transfer_out,
            overlap: Duration::ZERO,
            measured: rate.samples > 0,
            modelled: false,
        }
    }

    /// Output bytes per input byte of `work`, as measured on the backend that ran it most;
    /// `None` before any job of it finished.
    pub fn out_ratio(&self, work: &str) -> Option<f64> {
        self.rates
            .iter()
            .filter(|((w, _), rate)| w == work && rate.samples > 0)
            .max_by(|(ka, a), (kb, b)| a.samples.cmp(&b.samples).then_with(|| kb.1.cmp(&ka.1)))
            .map(|(_, rate)| rate.out_ratio)
    }

    /// Folds in a finished job of `work` on `backend` (whose link is `link`).
    pub fn observe(
        &mut self,
        work: &str,
        backend: &BackendId,
        variant: VariantKind,
        link: Option<Link>,
        report: &RunReport,
    ) {
        let moved = link.map_or(Duration::ZERO, |l| {
            l.transfer_time(report.bytes_in) + l.transfer_time(report.bytes_out)
        });
        let compute = report.wall_time.saturating_sub(moved);
        let mut rate = self.rate(work, backend, variant);
        rate.observe(report.bytes_in, report.bytes_out, compute);
        self.set_rate(work, backend, rate);
        let job_time = self
            .job_times
            .entry(backend.clone())
            .or_insert(report.wall_time);
        *job_time =
            Duration::from_secs_f64(ewma(job_time.as_secs_f64(), report.wall_time.as_secs_f64()));
    }
}

/// The wait for a slot: the jobs ahead of a new one, spread over the slots, times the time a
/// job takes.
fn queue_wait(load: Load, job_time: Duration) -> Duration {
    let capacity = load.capacity.max(1);
    let busy = load.running + load.queued;
    if busy < capacity {
        return Duration::ZERO;
    }
    let ahead = busy - capacity + 1;
    job_time.mul_f64(ahead as f64 / capacity as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fit_recovers_fixed_cost_and_throughput() {
        // 1 ms fixed, 1 GB/s.
        let rate = Rate::fit(
            (1_000_000, Duration::from_millis(2)),
            (10_000_000, Duration::from_millis(11)),
            0.5,
        );
        assert!((rate.bytes_per_sec - 1e9).abs() < 1e6, "{rate:?}");
        assert!(rate.fixed.abs_diff(Duration::from_millis(1)) < Duration::from_micros(10));
        assert_eq!(rate.compute_time(0), rate.fixed);
    }

    #[test]
    fn a_full_backend_adds_queue_wait_in_proportion() {
        let t = Duration::from_millis(10);
        let load = |running, queued| Load {
            running,
            capacity: 2,
            queued,
        };
        assert_eq!(queue_wait(load(1, 0), t), Duration::ZERO);
        assert_eq!(queue_wait(load(2, 0), t), Duration::from_millis(5));
        assert_eq!(queue_wait(load(2, 3), t), Duration::from_millis(20));
    }

    #[test]
    fn slow_jobs_lower_the_learned_throughput() {
        let mut model = CostModel::default();
        let id = BackendId("a".to_owned());
        let before = model.rate("k", &id, VariantKind::Native);
        let report = RunReport {
            bytes_in: 100_000_000,
            bytes_out: 100_000_000,
            wall_time: Duration::from_secs(1),
            ..RunReport::default()
        };
        model.observe("k", &id, VariantKind::Native, None, &report);
        let after = model.rate("k", &id, VariantKind::Native);
        assert!(after.bytes_per_sec < before.bytes_per_sec);
        assert_eq!(after.samples, 1);
    }

    #[test]
    fn the_link_is_charged_both_ways() {
        let model = CostModel::default();
        let id = BackendId("gpu".to_owned());
        let link = Link {
            bytes_per_sec: 1e9,
            latency: Duration::from_micros(10),
        };
        let view = BackendView {
            id: &id,
            class: DeviceClass::Gpu,
            variant: VariantKind::OpenCl,
            load: Load::default(),
            link: Some(link),
        };
        let e = model.estimate("k", 1_000_000, view);
        assert_eq!(e.transfer_in, Duration::from_micros(1_010));
        assert_eq!(e.transfer_out, Duration::from_micros(1_010));
        assert_eq!(e.queue_wait, Duration::ZERO);
    }
}
