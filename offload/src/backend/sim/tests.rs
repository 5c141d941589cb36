// SPDX-License-Identifier: Apache-2.0
//! The simulated device backend: real bytes equal to the native run, the modelled time, its
//! estimates, the queue bound and the variant rules.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use quarry_kernels::{BoundKernel, Kernel, KernelError, KernelInfo, Params};

use super::*;
use crate::backend::native::NativeConfig;
use crate::function::{Effects, Flow, FunctionLimits, InvocationContext, Variant};
use crate::scheduler::Policy;

/// A built-in kernel as a deployable variant.
#[derive(Debug)]
struct Builtin(&'static dyn Kernel);

impl Kernel for Builtin {
    fn info(&self) -> &KernelInfo {
        self.0.info()
    }

    fn bind(&self, params: &Params) -> Result<Arc<dyn BoundKernel>, KernelError> {
        self.0.bind(params)
    }
}

pub(super) fn spec(kernel: &str) -> Arc<FunctionSpec> {
    let k = quarry_kernels::find(kernel).expect("a built-in kernel");
    Arc::new(FunctionSpec {
        name: kernel.to_owned(),
        version: 1,
        limits: FunctionLimits::default(),
        permissions: Vec::new(),
        variants: vec![Variant::Kernel(Arc::new(Builtin(k)))],
    })
}

fn executor() -> Arc<NativeBackend> {
    let config = NativeConfig {
        workers: Some(2),
        ..NativeConfig::default()
    };
    Arc::new(NativeBackend::new(&config).unwrap())
}

fn device(id: &str, profile: &str, executor: &Arc<NativeBackend>) -> SimDeviceBackend {
    SimDeviceBackend::new(
        BackendId(id.to_owned()),
        &Profile::builtin(profile).unwrap(),
        Arc::clone(executor),
        SimDeviceConfig::default(),
    )
    .unwrap()
}

fn job(kernel: &str, params: &[(&str, &str)], size: u64, location: DataLocation) -> Job {
    let mut context = InvocationContext {
        event: "invoke".to_owned(),
        params: params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        location,
        ..InvocationContext::default()
    };
    context.facts.size = Some(size);
    Job {
        function: spec(kernel),
        context,
        flow: Flow::Read,
        effects: Effects::new(),
        bucket: None,
        policy: Policy::Auto,
    }
}

fn input(data: &Bytes) -> ChunkStream {
    let pieces: Vec<std::io::Result<Bytes>> = data
        .chunks(4096)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(pieces))
}

async fn run(
    backend: &dyn Backend,
    job: Job,
    data: &Bytes,
) -> (Result<RunReport, BackendError>, Vec<u8>) {
    let (sink, mut rx) = OutputSink::channel(8);
    let collect = async move {
        let mut out = Vec::new();
        while let Some(item) = rx.recv().await {
            out.extend_from_slice(&item.unwrap());
        }
        out
    };
    let (result, out) = tokio::join!(backend.run(job, input(data), sink), collect);
    (result, out)
}

fn log_lines(lines: usize) -> Bytes {
    let mut text = String::new();
    for i in 0..lines {
        let level = if i % 50 == 0 { "ERROR" } else { "INFO" };
        text.push_str(&format!(
            "2026-11-23T18:{:02}:00Z {level} request {i} done\n",
            i % 60
        ));
    }
    Bytes::from(text)
}

#[tokio::test]
async fn fixed_programs_give_the_native_bytes_and_a_device_time() {
    let exec = executor();
    let csd = device("csd0", "smartssd", &exec);
    let data = log_lines(5_000);
    let params = [("pattern", "ERROR")];
    let size = data.len() as u64;
    let on_device = DataLocation::Device(BackendId("csd0".to_owned()));

    let (native, want) = run(
        exec.as_ref(),
        job("grep", &params, size, DataLocation::Host),
        &data,
    )
    .await;
    native.unwrap();
    let job = job("grep", &params, size, on_device);
    let effects = Arc::clone(&job.effects);
    let (report, got) = run(&csd, job, &data).await;
    let report = report.unwrap();
    assert_eq!(got, want);
    assert_eq!(report.backend, "csd0");
    assert_eq!(report.bytes_out, want.len() as u64);

    // The pushdown's modelled time: flash read, device memory, engines, result over the link.
    let model = Csd::from_profile(&Profile::builtin("smartssd").unwrap()).unwrap();
    let pushdown = model.pushdown("grep", size, want.len() as u64).unwrap();
    assert_eq!(report.device_time, Some(to_std(pushdown.total)));
    assert_eq!(effects.device_time(), report.device_time);
}

use quarry_sim::Csd;

#[tokio::test]
async fn data_off_the_device_crosses_the_link_first() {
    let exec = executor();
    let csd = device("csd0", "smartssd", &exec);
    let data = log_lines(2_000);
    let size = data.len() as u64;
    let params = [("pattern", "ERROR"), ("mode", "count")];
    let here = DataLocation::Device(BackendId("csd0".to_owned()));
    let (on, _) = run(&csd, job("grep", &params, size, here.clone()), &data).await;
    let (off, _) = run(&csd, job("grep", &params, size, DataLocation::Host), &data).await;
    let (on, off) = (on.unwrap(), off.unwrap());
    // Off the device there is no flash read latency (60 us) but the whole input crosses the
    // link: different times, both positive.
    assert_ne!(on.device_time, off.device_time);
    let demand = |location| Demand {
        work: "grep",
        input_bytes: 64 << 20,
        output_bytes: 1 << 10,
        location,
    };
    let est_on = csd.estimate(&demand(&here)).unwrap();
    let est_off = csd.estimate(&demand(&DataLocation::Host)).unwrap();
    // In place: the input comes from flash (3.2 GB/s); off the device, over the link.
    assert!(est_on.transfer_in > Duration::ZERO);
    assert!(est_off.transfer_in > Duration::ZERO);
    assert!(est_on.transfer_out < Duration::from_micros(10));
    assert_eq!(est_on.queue_wait, Duration::ZERO);
}

#[test]
fn estimate_parts_add_up_to_the_models_total() {
    let exec_config = NativeConfig {
        workers: Some(1),
        ..NativeConfig::default()
    };
    let exec = Arc::new(NativeBackend::new(&exec_config).unwrap());
    for profile in ["smartssd", "ngd-newport", "alveo-u250", "a100-pcie"] {
        let backend = device("d", profile, &exec);
        let here = DataLocation::Device(BackendId("d".to_owned()));
        for location in [&here, &DataLocation::Host] {
            let demand = Demand {
                work: "grep",
                input_bytes: 1 << 30,
                output_bytes: 1 << 24,
                location,
            };
            let est = backend.estimate(&demand).unwrap();
            let total = backend
                .model
                .timing("grep", 1 << 30, 1 << 24, location.is_on(&backend.id))
                .unwrap()
                .total;
            assert_eq!(est.total(), to_std(total), "{profile} {location}");
        }
    }
}

#[tokio::test]
async fn kernels_without_a_rate_in_the_profile_are_not_offered() {
    let exec = executor();
    let csd = device("csd0", "smartssd", &exec);
    assert_eq!(csd.variant_for(&spec("grep")), Some(VariantKind::Native));
    assert_eq!(
        csd.variant_for(&spec("csv-filter")),
        Some(VariantKind::Native)
    );
    // The profile gives no rate for jsonl-filter: the device has no such program.
    assert_eq!(csd.variant_for(&spec("jsonl-filter")), None);
    let err = run(
        &csd,
        job("jsonl-filter", &[], 0, DataLocation::Host),
        &Bytes::new(),
    )
    .await
    .0
    .unwrap_err();
    assert!(matches!(err, BackendError::Unsupported { .. }), "{err}");
}

#[tokio::test]
async fn a_csd_takes_automatic_work_only_for_its_own_data() {
    let exec = executor();
    let csd = device("csd0", "smartssd", &exec);
    let gpu = device("gpu0", "a100-pcie", &exec);
    let here = DataLocation::Device(BackendId("csd0".to_owned()));
    assert!(csd.accepts_auto(&here));
    assert!(!csd.accepts_auto(&DataLocation::Host));
    assert!(!csd.accepts_auto(&DataLocation::Device(BackendId("csd1".to_owned()))));
    assert!(gpu.accepts_auto(&DataLocation::Host));
    assert!(csd.host_read_time(1 << 20).is_some());
    assert!(gpu.host_read_time(1 << 20).is_none());
    assert_eq!(csd.class(), DeviceClass::Csd);
    assert_eq!(gpu.class(), DeviceClass::Gpu);
    assert_eq!(device("f", "alveo-u250", &exec).class(), DeviceClass::Fpga);
}

#[test]
fn a_host_profile_is_no_device() {
    let exec = Arc::new(
        NativeBackend::new(&NativeConfig {
            workers: Some(1),
            ..NativeConfig::default()
        })
        .unwrap(),
    );
    let err = SimDeviceBackend::new(
        BackendId("h".to_owned()),
        &Profile::builtin("xeon-host").unwrap(),
        exec,
        SimDeviceConfig::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("csd, fpga or gpu profile"),
        "{err}"
    );
}

#[tokio::test]
async fn a_full_command_queue_answers_overloaded() {
    let exec = executor();
    let csd = device("csd0", "smartssd", &exec);
    // Fill the device's 64-command queue with commands that never finish.
    let held: Vec<_> = (0..64)
        .map(|_| csd.commands.admit(SimDuration::from_micros(10)).unwrap())
        .collect();
    assert_eq!(csd.load().queued, 63);
    let demand = Demand {
        work: "grep",
        input_bytes: 0,
        output_bytes: 0,
        location: &DataLocation::Host,
    };
    // The estimate counts the wait behind them, on the device's one engine.
    assert_eq!(
        csd.estimate(&demand).unwrap().queue_wait,
        Duration::from_micros(640)
    );
    let err = run(
        &csd,
        job("grep", &[("pattern", "x")], 1, DataLocation::Host),
        &Bytes::from_static(b"x\n"),
    )
    .await
    .0
    .unwrap_err();
    assert!(err.is_overload(), "{err}");
    drop(held);
    let ok = run(
        &csd,
        job("grep", &[("pattern", "x")], 2, DataLocation::Host),
        &Bytes::from_static(b"x\n"),
    )
    .await
    .0;
    assert!(ok.is_ok());
}

#[tokio::test]
async fn bad_params_and_large_results_pass_through() {
    let exec = executor();
    let csd = device("csd0", "smartssd", &exec);
    let err = run(
        &csd,
        job("grep", &[], 2, DataLocation::Host),
        &Bytes::from_static(b"x\n"),
    )
    .await
    .0
    .unwrap_err();
    assert!(matches!(err, BackendError::BadParams { .. }), "{err}");
    // A result over the hold is released early with a projected time; bytes still match.
    let data = log_lines(60_000);
    let params = [("pattern", "request")];
    let size = data.len() as u64;
    let (want_report, want) = run(
        exec.as_ref(),
        job("grep", &params, size, DataLocation::Host),
        &data,
    )
    .await;
    want_report.unwrap();
    assert!(want.len() as u64 > output::HOLD_BYTES);
    let j = job("grep", &params, size, DataLocation::Host);
    let effects = Arc::clone(&j.effects);
    let (report, got) = run(&csd, j, &data).await;
    assert_eq!(got, want);
    assert!(report.unwrap().device_time.is_some());
    assert!(effects.device_time().is_some());
}

#[tokio::test]
async fn pace_holds_the_job_for_its_device_time() {
    let exec = executor();
    let paced = SimDeviceBackend::new(
        BackendId("csd0".to_owned()),
        &Profile::builtin("smartssd").unwrap(),
        Arc::clone(&exec),
        SimDeviceConfig { pace: true },
    )
    .unwrap();
    let data = log_lines(20_000);
    let size = data.len() as u64;
    let on_device = DataLocation::Device(BackendId("csd0".to_owned()));
    let started = Instant::now();
    let (report, _) = run(
        &paced,
        job("grep", &[("pattern", "ERROR")], size, on_device),
        &data,
    )
    .await;
    let report = report.unwrap();
    // A lower bound only: pacing sleeps until the device time has passed.
    let device_time = report.device_time.unwrap();
    assert!(started.elapsed() >= device_time, "{device_time:?}");
    assert!(report.wall_time >= device_time);
}

/// `program` (a built-in eBPF program) as the only variant of a function.
fn ebpf_spec(program: &str) -> Option<Arc<FunctionSpec>> {
    let kernel = quarry_ebpf::builtin::kernel(program, quarry_ebpf::Limits::default()).ok()?;
    Some(Arc::new(FunctionSpec {
        name: program.to_owned(),
        version: 1,
        limits: FunctionLimits::default(),
        permissions: Vec::new(),
        variants: vec![Variant::Ebpf(Arc::new(kernel))],
    }))
}

#[tokio::test]
async fn ebpf_programs_run_on_a_csd_only_with_time_from_their_instructions() {
    // The built-in programs are compiled with the `ebpf` feature (on in CI's --all-features).
    let Some(spec) = ebpf_spec("grep-count") else {
        assert!(!quarry_ebpf::builtin::available());
        return;
    };
    let exec = executor();
    let csd = device("csd0", "smartssd", &exec);
    let gpu = device("gpu0", "a100-pcie", &exec);
    assert_eq!(csd.variant_for(&spec), Some(VariantKind::Ebpf));
    assert_eq!(gpu.variant_for(&spec), None, "only a CSD runs eBPF");

    let data = log_lines(3_000);
    let size = data.len() as u64;
    let ebpf_job = |size: u64, location| {
        let mut job = job("grep", &[("pattern", "ERROR")], size, location);
        job.function = Arc::clone(&spec);
        job
    };
    let here = DataLocation::Device(BackendId("csd0".to_owned()));
    let (report, got) = run(&csd, ebpf_job(size, here.clone()), &data).await;
    let report = report.unwrap();
    // The CPU twin: grep in count mode.
    let (native, want) = run(
        exec.as_ref(),
        job(
            "grep",
            &[("pattern", "ERROR"), ("mode", "count")],
            size,
            DataLocation::Host,
        ),
        &data,
    )
    .await;
    native.unwrap();
    assert_eq!(got, want);
    assert_eq!(got, b"60\n");
    // Time grows with the instructions: more input, more time.
    let on_device = report.device_time.unwrap();
    assert!(on_device > Duration::ZERO);
    let more = log_lines(6_000);
    let (bigger, _) = run(&csd, ebpf_job(more.len() as u64, here), &more).await;
    assert!(bigger.unwrap().device_time.unwrap() > on_device);
    // Off the device the input crosses the link first.
    let (off, _) = run(&csd, ebpf_job(size, DataLocation::Host), &data).await;
    assert!(off.unwrap().device_time.unwrap() > on_device);
}
