// SPDX-License-Identifier: Apache-2.0
//! The scheduler over synthetic backends (which report a modelled wall time instead of
//! sleeping, so every expectation is exact): placement is the cost model's argmin, policies,
//! calibration, learning from finished jobs, the choice recorded before output, metrics; and
//! over the native backend: backpressure and cancellation pass through.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use bytesize::ByteSize;
use futures::StreamExt;
use prometheus::Encoder as _;
use quarry_offload::scheduler::Rate;
use quarry_offload::{
    Backend, BackendError, BackendId, ChunkStream, DeviceClass, FunctionFailure, FunctionSpec, Job,
    Link, Load, NativeBackend, NativeConfig, OutputSink, Policy, RunReport, Scheduler,
    SchedulerConfig, SchedulerMetrics, VariantKind,
};

use crate::native::{CountLines, ReverseLines, job, kernel_function, pieces, run_all};

/// The work name rates are kept under for [`CountLines`].
const WORK: &str = "count-lines";

// === a synthetic backend ===

/// A backend that copies its input to its output and reports the wall time its model gives
/// (`fixed` + bytes / speed, plus its link both ways) without taking that time.
struct Synthetic {
    id: BackendId,
    class: DeviceClass,
    variant: VariantKind,
    link: Option<Link>,
    load: Mutex<Load>,
    fixed: Duration,
    /// Bytes per second, as `f64` bits.
    speed: AtomicU64,
    runs: AtomicUsize,
    /// What `Effects::backend` said when each run started.
    placed_as: Mutex<Vec<Option<BackendId>>>,
}

impl Synthetic {
    fn new(id: &str, class: DeviceClass, speed: f64, fixed: Duration) -> Self {
        let variant = if class == DeviceClass::Cpu {
            VariantKind::Native
        } else {
            VariantKind::OpenCl
        };
        Self {
            id: BackendId(id.to_owned()),
            class,
            variant,
            link: None,
            load: Mutex::new(Load {
                running: 0,
                capacity: 1,
                queued: 0,
            }),
            fixed,
            speed: AtomicU64::new(speed.to_bits()),
            runs: AtomicUsize::new(0),
            placed_as: Mutex::new(Vec::new()),
        }
    }

    fn with_link(mut self, link: Link) -> Self {
        self.link = Some(link);
        self
    }

    fn set_load(&self, load: Load) {
        *self.load.lock().unwrap() = load;
    }

    fn set_speed(&self, speed: f64) {
        self.speed.store(speed.to_bits(), Ordering::Relaxed);
    }

    fn modelled_wall(&self, bytes_in: u64, bytes_out: u64) -> Duration {
        let speed = f64::from_bits(self.speed.load(Ordering::Relaxed));
        let moved = self.link.map_or(Duration::ZERO, |l| {
            l.transfer_time(bytes_in) + l.transfer_time(bytes_out)
        });
        moved + self.fixed + Duration::from_secs_f64(bytes_in as f64 / speed)
    }
}

#[async_trait]
impl Backend for Synthetic {
    fn id(&self) -> &BackendId {
        &self.id
    }

    fn class(&self) -> DeviceClass {
        self.class
    }

    fn variant_for(&self, function: &FunctionSpec) -> Option<VariantKind> {
        function
            .variants
            .iter()
            .any(|v| matches!(v, quarry_offload::Variant::Kernel(_)))
            .then_some(self.variant)
    }

    fn load(&self) -> Load {
        *self.load.lock().unwrap()
    }

    fn link(&self) -> Option<Link> {
        self.link
    }

    async fn run(
        &self,
        job: Job,
        mut input: ChunkStream,
        out: OutputSink,
    ) -> Result<RunReport, BackendError> {
        self.runs.fetch_add(1, Ordering::Relaxed);
        self.placed_as.lock().unwrap().push(job.effects.backend());
        let mut bytes = 0u64;
        while let Some(chunk) = input.next().await {
            let chunk = chunk.map_err(|e| BackendError::FunctionFailed {
                function: job.function.label(),
                backend: self.id.0.clone(),
                cause: FunctionFailure::Input(e.to_string()),
            })?;
            bytes += chunk.len() as u64;
            if out.sender().send(Ok(chunk)).await.is_err() {
                return Err(BackendError::FunctionFailed {
                    function: job.function.label(),
                    backend: self.id.0.clone(),
                    cause: FunctionFailure::Cancelled,
                });
            }
        }
        Ok(RunReport {
            backend: self.id.0.clone(),
            bytes_in: bytes,
            bytes_out: bytes,
            cpu_time: Duration::ZERO,
            wall_time: self.modelled_wall(bytes, bytes),
            device_time: None,
        })
    }
}

fn rate(bytes_per_sec: f64, fixed: Duration, out_ratio: f64) -> Rate {
    Rate {
        fixed,
        bytes_per_sec,
        out_ratio,
        samples: 1,
    }
}

fn scheduler(backends: &[Arc<Synthetic>], config: SchedulerConfig) -> Scheduler {
    let dyns: Vec<Arc<dyn Backend>> = backends
        .iter()
        .map(|b| Arc::clone(b) as Arc<dyn Backend>)
        .collect();
    Scheduler::new(dyns, config)
}

/// A count-lines job over `size` bytes (unknown when `None`) under `policy`.
fn sized_job(size: Option<u64>, policy: Policy) -> Job {
    let mut job = job(kernel_function(CountLines::kernel()), &[("needle", "x")]);
    job.context.facts.size = size;
    job.policy = policy;
    job
}

// === the cost model, restated independently ===

/// One candidate as the test sees it.
#[derive(Clone, Copy)]
struct Case {
    rate: Rate,
    link: Option<Link>,
    load: Load,
}

/// Finish time: queue wait + link in + compute + link out, the queue wait being the jobs
/// ahead over the slots times one job's time (no job has finished yet).
fn expected_total(c: Case, bytes: u64) -> Duration {
    let compute = c.rate.fixed + Duration::from_secs_f64(bytes as f64 / c.rate.bytes_per_sec);
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a small non-negative product"
    )]
    let out = (bytes as f64 * c.rate.out_ratio) as u64;
    let over = |n: u64| {
        c.link.map_or(Duration::ZERO, |l| {
            if n == 0 {
                Duration::ZERO
            } else {
                l.latency + Duration::from_secs_f64(n as f64 / l.bytes_per_sec)
            }
        })
    };
    let job = over(bytes) + compute + over(out);
    let busy = c.load.running + c.load.queued;
    let queue = if busy < c.load.capacity {
        Duration::ZERO
    } else {
        job.mul_f64((busy - c.load.capacity + 1) as f64 / c.load.capacity as f64)
    };
    queue + job
}

fn idle(capacity: usize) -> Load {
    Load {
        running: 0,
        capacity,
        queued: 0,
    }
}

#[tokio::test]
async fn placement_is_the_cost_models_argmin() {
    let pcie = Link {
        bytes_per_sec: 10e9,
        latency: Duration::from_micros(10),
    };
    let slow_link = Link {
        bytes_per_sec: 2e9,
        latency: Duration::from_micros(50),
    };
    let cpu_rate = rate(1e9, Duration::from_micros(20), 1.0);
    let gpu_rate = rate(20e9, Duration::from_millis(1), 0.0);
    let fpga_rate = rate(8e9, Duration::from_micros(500), 0.1);
    let mib = |n: u64| n << 20;
    // (what, input size, [cpu, gpu, fpga] loads, the winner by hand)
    let table: Vec<(&str, Option<u64>, [Load; 3], &str)> = vec![
        (
            "64 KiB stays on the host",
            Some(64 << 10),
            [idle(2), idle(1), idle(1)],
            "cpu",
        ),
        (
            "1 MiB on an idle host",
            Some(mib(1)),
            [idle(2), idle(1), idle(1)],
            "cpu",
        ),
        (
            "1 MiB with the host full",
            Some(mib(1)),
            [
                Load {
                    running: 2,
                    capacity: 2,
                    queued: 0,
                },
                idle(1),
                idle(1),
            ],
            "gpu",
        ),
        (
            "256 MiB goes to the GPU",
            Some(mib(256)),
            [idle(2), idle(1), idle(1)],
            "gpu",
        ),
        (
            "256 MiB with a long GPU queue",
            Some(mib(256)),
            [
                idle(2),
                Load {
                    running: 1,
                    capacity: 1,
                    queued: 10,
                },
                idle(1),
            ],
            "fpga",
        ),
        (
            "256 MiB with every device queued",
            Some(mib(256)),
            [
                idle(2),
                Load {
                    running: 1,
                    capacity: 1,
                    queued: 10,
                },
                Load {
                    running: 1,
                    capacity: 1,
                    queued: 10,
                },
            ],
            "cpu",
        ),
        (
            "unknown size assumes 8 MiB",
            None,
            [idle(2), idle(1), idle(1)],
            "gpu",
        ),
    ];
    for (what, size, loads, winner) in table {
        let cpu = Arc::new(Synthetic::new("cpu", DeviceClass::Cpu, 1e9, Duration::ZERO));
        let gpu =
            Arc::new(Synthetic::new("gpu", DeviceClass::Gpu, 1e9, Duration::ZERO).with_link(pcie));
        let fpga = Arc::new(
            Synthetic::new("fpga", DeviceClass::Fpga, 1e9, Duration::ZERO).with_link(slow_link),
        );
        let backends = [cpu, gpu, fpga];
        let cases = [
            Case {
                rate: cpu_rate,
                link: None,
                load: loads[0],
            },
            Case {
                rate: gpu_rate,
                link: Some(pcie),
                load: loads[1],
            },
            Case {
                rate: fpga_rate,
                link: Some(slow_link),
                load: loads[2],
            },
        ];
        let s = scheduler(&backends, SchedulerConfig::default());
        for (b, c) in backends.iter().zip(cases) {
            b.set_load(c.load);
            s.set_rate(WORK, &b.id, c.rate);
        }
        let bytes = size.unwrap_or(ByteSize::mib(8).as_u64());
        let totals: Vec<Duration> = cases.iter().map(|c| expected_total(*c, bytes)).collect();
        let argmin = (0..3).min_by_key(|&i| totals[i]).unwrap();
        assert_eq!(
            backends[argmin].id.0, winner,
            "{what}: the table itself ({totals:?})"
        );

        let placement = s.place(&sized_job(size, Policy::Auto)).unwrap();
        assert_eq!(placement.chosen.backend.0, winner, "{what}: {placement:?}");
        assert_eq!(placement.input_bytes, bytes, "{what}");
        assert_eq!(placement.work, WORK);
        assert_eq!(placement.candidates.len(), 3, "{what}");
        for (estimate, want) in placement.candidates.iter().zip(&totals) {
            let diff = estimate.total().abs_diff(*want);
            assert!(
                diff <= Duration::from_micros(1),
                "{what}: {} estimated {:?}, expected {want:?}",
                estimate.backend,
                estimate.total()
            );
            assert!(estimate.measured);
        }
    }
}

#[tokio::test]
async fn the_default_size_is_configurable() {
    let cpu = Arc::new(Synthetic::new("cpu", DeviceClass::Cpu, 1e9, Duration::ZERO));
    let gpu = Arc::new(Synthetic::new("gpu", DeviceClass::Gpu, 1e9, Duration::ZERO));
    let config = SchedulerConfig {
        default_input_size: ByteSize::kib(4),
        ..SchedulerConfig::default()
    };
    let s = scheduler(&[Arc::clone(&cpu), Arc::clone(&gpu)], config);
    s.set_rate(WORK, &cpu.id, rate(1e9, Duration::from_micros(20), 1.0));
    s.set_rate(WORK, &gpu.id, rate(20e9, Duration::from_millis(1), 1.0));
    let placement = s.place(&sized_job(None, Policy::Auto)).unwrap();
    assert_eq!(placement.input_bytes, 4096);
    assert_eq!(placement.chosen.backend.0, "cpu");
}

// === policies ===

/// A fast GPU and a slow host, both measured.
fn fast_gpu_slow_cpu() -> (Scheduler, Arc<Synthetic>, Arc<Synthetic>) {
    let cpu = Arc::new(Synthetic::new("cpu", DeviceClass::Cpu, 1e9, Duration::ZERO));
    let gpu = Arc::new(Synthetic::new("gpu", DeviceClass::Gpu, 1e9, Duration::ZERO));
    let s = scheduler(
        &[Arc::clone(&cpu), Arc::clone(&gpu)],
        SchedulerConfig::default(),
    );
    s.set_rate(WORK, &cpu.id, rate(1e9, Duration::ZERO, 1.0));
    s.set_rate(WORK, &gpu.id, rate(10e9, Duration::ZERO, 1.0));
    (s, cpu, gpu)
}

#[tokio::test]
async fn require_and_prefer_override_the_cost_model() {
    let (s, _, _) = fast_gpu_slow_cpu();
    let chosen = |policy: &str| {
        let policy: Policy = policy.parse().unwrap();
        s.place(&sized_job(Some(1 << 20), policy))
            .map(|p| p.chosen.backend.0)
    };
    assert_eq!(chosen("auto").unwrap(), "gpu");
    assert_eq!(chosen("require:cpu").unwrap(), "cpu");
    assert_eq!(chosen("cpu").unwrap(), "cpu");
    assert_eq!(chosen("prefer:cpu").unwrap(), "cpu");
    assert_eq!(chosen("gpu").unwrap(), "gpu");
    // No FPGA: prefer falls back to the cost model, require fails.
    assert_eq!(chosen("prefer:fpga").unwrap(), "gpu");
    let err = chosen("require:fpga").unwrap_err();
    assert!(err.is_invalid_request(), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("require:fpga"), "{text}");
    assert!(text.contains("cpu (cpu), gpu (gpu)"), "{text}");
}

#[tokio::test]
async fn require_on_a_set_without_variants_names_none() {
    let (s, _, _) = fast_gpu_slow_cpu();
    let mut job = sized_job(Some(1), Policy::Require(DeviceClass::Gpu));
    job.function = Arc::new(FunctionSpec {
        variants: Vec::new(),
        ..(*job.function).clone()
    });
    let err = s.place(&job).unwrap_err();
    assert!(
        matches!(&err, BackendError::NoBackend { available, .. } if available == "none"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_run_under_require_fails_before_any_backend_starts() {
    let (s, cpu, gpu) = fast_gpu_slow_cpu();
    let (result, out) = run_all(
        &s,
        sized_job(Some(3), Policy::Require(DeviceClass::Csd)),
        pieces(b"x\n\n", 3),
    )
    .await;
    assert!(
        matches!(result, Err(BackendError::NoBackend { .. })),
        "{result:?}"
    );
    assert!(out.is_empty());
    assert_eq!(cpu.runs.load(Ordering::Relaxed), 0);
    assert_eq!(gpu.runs.load(Ordering::Relaxed), 0);
}

// === running through the scheduler ===

#[tokio::test]
async fn the_choice_is_recorded_before_output_and_on_the_report() {
    let (s, cpu, gpu) = fast_gpu_slow_cpu();
    let job = sized_job(Some(6), Policy::Auto);
    let effects = Arc::clone(&job.effects);
    let (result, out) = run_all(&s, job, pieces(b"a\nb\nc\n", 2)).await;
    let report = result.unwrap();
    assert_eq!(out, b"a\nb\nc\n");
    assert_eq!(report.backend, "gpu");
    assert_eq!(effects.backend(), Some(BackendId("gpu".to_owned())));
    assert_eq!(
        *gpu.placed_as.lock().unwrap(),
        vec![Some(BackendId("gpu".to_owned()))]
    );
    assert_eq!(cpu.runs.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn a_backend_that_slows_down_loses_its_jobs() {
    let fast = Arc::new(Synthetic::new("a", DeviceClass::Cpu, 2e9, Duration::ZERO));
    let steady = Arc::new(Synthetic::new("b", DeviceClass::Cpu, 1e9, Duration::ZERO));
    let s = scheduler(
        &[Arc::clone(&fast), Arc::clone(&steady)],
        SchedulerConfig::default(),
    );
    s.set_rate(WORK, &fast.id, rate(2e9, Duration::ZERO, 1.0));
    s.set_rate(WORK, &steady.id, rate(1e9, Duration::ZERO, 1.0));
    let run_one = || run_mib(&s);
    // While it is fast, it gets the work, and its rate stays near the truth.
    for _ in 0..3 {
        assert_eq!(run_one().await, "a");
    }
    let learned = s.rate(WORK, &fast.id).unwrap();
    assert!((learned.bytes_per_sec - 2e9).abs() < 2e7, "{learned:?}");
    // It slows to a tenth; within a few jobs the other backend is faster by the model.
    fast.set_speed(2e8);
    let mut moved_after = None;
    for i in 1..=10 {
        if run_one().await == "b" {
            moved_after = Some(i);
            break;
        }
    }
    let moved_after = moved_after.expect("placement never moved off the slowed backend");
    assert!(
        moved_after >= 2,
        "moved after {moved_after} job(s): one slow job should not flip it"
    );
    assert_eq!(run_one().await, "b");
    assert!(s.rate(WORK, &fast.id).unwrap().bytes_per_sec < 1e9);
}

/// Runs a 1 MiB job; the backend that ran it.
async fn run_mib(s: &Scheduler) -> String {
    let data = vec![b'x'; 1 << 20];
    let job = sized_job(Some(1 << 20), Policy::Auto);
    let (result, _) = run_all(s, job, pieces(&data, 1 << 16)).await;
    result.unwrap().backend
}

#[tokio::test]
async fn failed_jobs_teach_nothing() {
    let (s, cpu, _) = fast_gpu_slow_cpu();
    let before = s.rate(WORK, &cpu.id).unwrap();
    let input: ChunkStream = Box::pin(futures::stream::iter([
        Ok(Bytes::from_static(b"a\n")),
        Err(std::io::Error::other("disk gone")),
    ]));
    let (result, _) = run_all(
        &s,
        sized_job(None, Policy::Require(DeviceClass::Cpu)),
        input,
    )
    .await;
    assert!(result.is_err());
    assert_eq!(s.rate(WORK, &cpu.id).unwrap(), before);
}

// === calibration ===

#[tokio::test]
async fn calibration_measures_each_pair_it_can() {
    let cpu = Arc::new(Synthetic::new(
        "cpu",
        DeviceClass::Cpu,
        1e9,
        Duration::from_micros(50),
    ));
    let gpu = Arc::new(
        Synthetic::new("gpu", DeviceClass::Gpu, 8e9, Duration::from_millis(2)).with_link(Link {
            bytes_per_sec: 10e9,
            latency: Duration::from_micros(10),
        }),
    );
    let config = SchedulerConfig {
        calibration_size: ByteSize::kib(512),
        ..SchedulerConfig::default()
    };
    let s = scheduler(&[Arc::clone(&cpu), Arc::clone(&gpu)], config);
    assert_eq!(s.rate(WORK, &cpu.id), None);
    let report = s.calibrate(&[CountLines::kernel()]).await;
    assert_eq!(report.measured.len(), 2, "{report:?}");
    assert!(report.skipped.is_empty(), "{report:?}");
    for (b, speed, fixed) in [(&cpu, 1e9, 50.0), (&gpu, 8e9, 2000.0)] {
        let r = s.rate(WORK, &b.id).unwrap();
        assert!(
            (r.bytes_per_sec / speed - 1.0).abs() < 0.01,
            "{}: {r:?}",
            b.id
        );
        assert!(
            (r.fixed.as_secs_f64() * 1e6 - fixed).abs() < 2.0,
            "{}: {r:?}",
            b.id
        );
        assert!((r.out_ratio - 1.0).abs() < 1e-9, "{r:?}");
    }
    // Warm-up, then two runs at each of two sizes.
    assert_eq!(cpu.runs.load(Ordering::Relaxed), 5);
    // The listing shows what was measured.
    let rows = s.devices();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].id.0, "gpu");
    assert_eq!(rows[1].class, DeviceClass::Gpu);
    assert!(rows[1].link.is_some());
    assert_eq!(rows[1].rates.len(), 1);
    assert_eq!(rows[1].rates[0].0, WORK);
}

#[tokio::test]
async fn calibration_stops_at_its_budget() {
    let cpu = Arc::new(Synthetic::new("cpu", DeviceClass::Cpu, 1e9, Duration::ZERO));
    let config = SchedulerConfig {
        calibration_budget: Duration::ZERO,
        ..SchedulerConfig::default()
    };
    let s = scheduler(&[Arc::clone(&cpu)], config);
    let report = s
        .calibrate(&[CountLines::kernel(), ReverseLines::kernel()])
        .await;
    assert!(report.measured.is_empty());
    assert_eq!(report.skipped.len(), 2, "{report:?}");
    assert!(report.skipped[0].2.contains("budget"), "{report:?}");
    assert_eq!(s.rate(WORK, &cpu.id), None);
    // Unmeasured pairs still place, on default rates.
    let placement = s.place(&sized_job(None, Policy::Auto)).unwrap();
    assert!(!placement.chosen.measured);
}

// === metrics ===

#[tokio::test]
async fn metrics_count_jobs_bytes_and_outcomes() {
    let registry = prometheus::Registry::new();
    let metrics = SchedulerMetrics::register(&registry).unwrap();
    let (s, _, _) = fast_gpu_slow_cpu();
    let s = s.with_metrics(metrics);
    for _ in 0..2 {
        let (result, _) = run_all(&s, sized_job(Some(4), Policy::Auto), pieces(b"a\nb\n", 4)).await;
        result.unwrap();
    }
    let text = {
        let mut buf = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&registry.gather(), &mut buf)
            .unwrap();
        String::from_utf8(buf).unwrap()
    };
    assert!(
        text.contains(
            r#"quarry_offload_jobs_total{backend="gpu",kernel="count-lines",outcome="ok"} 2"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"quarry_offload_bytes_in_total{backend="gpu",kernel="count-lines"} 8"#),
        "{text}"
    );
    assert!(
        text.contains(r#"quarry_offload_queue_depth{backend="gpu"} 0"#),
        "{text}"
    );
    assert!(text.contains("quarry_offload_busy_seconds_total"), "{text}");
}

// === over the native backend ===

fn native_scheduler(workers: u32, max_queued: u32, queue_timeout: Duration) -> Arc<Scheduler> {
    let native = NativeBackend::new(&NativeConfig {
        workers: Some(workers),
        max_queued,
        queue_timeout,
        ..NativeConfig::default()
    })
    .unwrap();
    Arc::new(Scheduler::new(
        vec![Arc::new(native) as Arc<dyn Backend>],
        SchedulerConfig::default(),
    ))
}

#[tokio::test]
async fn a_full_backend_is_answered_overloaded_through_the_scheduler() {
    let s = native_scheduler(1, 1, Duration::from_millis(100));
    let function = kernel_function(ReverseLines::kernel());
    let (hold_sink, _hold_rx) = OutputSink::channel(1);
    let holder = {
        let s = Arc::clone(&s);
        let job = job(Arc::clone(&function), &[]);
        tokio::spawn(async move {
            s.run(job, Box::pin(futures::stream::pending()), hold_sink)
                .await
        })
    };
    while s.load().running == 0 {
        tokio::task::yield_now().await;
    }
    let waiter = {
        let s = Arc::clone(&s);
        let job = job(Arc::clone(&function), &[]);
        tokio::spawn(async move { run_all(s.as_ref(), job, pieces(b"a\n", 2)).await })
    };
    while s.load().queued == 0 {
        tokio::task::yield_now().await;
    }
    let (refused, _) = run_all(
        s.as_ref(),
        job(Arc::clone(&function), &[]),
        pieces(b"b\n", 2),
    )
    .await;
    assert!(refused.unwrap_err().is_overload());
    let (waited, _) = waiter.await.unwrap();
    assert!(waited.unwrap_err().is_overload());
    assert_eq!(s.load().queued, 0);
    holder.abort();
}

#[tokio::test]
async fn dropping_the_reader_stops_a_placed_job() {
    let s = native_scheduler(1, 8, Duration::from_secs(5));
    let function = kernel_function(ReverseLines::kernel());
    let line = Bytes::from_static(b"an endless stream of lines\n");
    let input: ChunkStream = Box::pin(futures::stream::repeat_with(move || Ok(line.clone())));
    let (sink, mut rx) = OutputSink::channel(1);
    let reader = async move {
        let first = rx.recv().await;
        drop(rx);
        first
    };
    let endless = job(Arc::clone(&function), &[]);
    let effects = Arc::clone(&endless.effects);
    let (result, first) = tokio::join!(s.run(endless, input, sink), reader);
    assert!(first.is_some());
    assert!(
        matches!(
            result,
            Err(BackendError::FunctionFailed {
                cause: FunctionFailure::Cancelled,
                ..
            })
        ),
        "{result:?}"
    );
    assert_eq!(effects.backend(), Some(BackendId("native".to_owned())));
    // The job learned nothing and the worker is free.
    assert_eq!(
        s.rate("reverse-lines", &BackendId("native".to_owned())),
        None
    );
    let (again, out) = run_all(s.as_ref(), job(function, &[]), pieces(b"ab\n", 3)).await;
    assert_eq!(again.unwrap().backend, "native");
    assert_eq!(out, b"ba\n");
}
