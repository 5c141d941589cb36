// SPDX-License-Identifier: Apache-2.0
//! Simulated devices behind the scheduler: placement by the device models and data location
//! (a selective scan of data on a CSD goes to the CSD; a scan keeping every byte, or data not
//! on the device, does not), and a job run end to end with its device time in the report, the
//! effects and the metrics.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prometheus::Encoder as _;
use quarry_kernels::{BoundKernel, Kernel, KernelError, KernelInfo, Params};
use quarry_offload::scheduler::Rate;
use quarry_offload::{
    Backend, BackendId, DataLocation, DeviceClass, Effects, Flow, FunctionLimits, FunctionSpec,
    InvocationContext, Job, NativeBackend, NativeConfig, OutputSink, Policy, Scheduler,
    SchedulerConfig, SchedulerMetrics, SimDeviceBackend, SimDeviceConfig, Variant,
};
use quarry_sim::Profile;

const GIB: u64 = 1 << 30;

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

fn spec(kernel: &str) -> Arc<FunctionSpec> {
    Arc::new(FunctionSpec {
        name: kernel.to_owned(),
        version: 1,
        limits: FunctionLimits::default(),
        permissions: Vec::new(),
        variants: vec![Variant::Kernel(Arc::new(Builtin(
            quarry_kernels::find(kernel).unwrap(),
        )))],
    })
}

fn csd0() -> BackendId {
    BackendId("csd0".to_owned())
}

fn on_csd0() -> DataLocation {
    DataLocation::Device(csd0())
}

/// The native backend and a simulated SmartSSD `csd0` behind a scheduler.
fn node() -> (Scheduler, Arc<NativeBackend>) {
    let native = Arc::new(
        NativeBackend::new(&NativeConfig {
            workers: Some(2),
            ..NativeConfig::default()
        })
        .unwrap(),
    );
    let csd = SimDeviceBackend::new(
        csd0(),
        &Profile::builtin("smartssd").unwrap(),
        Arc::clone(&native),
        SimDeviceConfig::default(),
    )
    .unwrap();
    let backends: Vec<Arc<dyn Backend>> = vec![
        Arc::clone(&native) as Arc<dyn Backend>,
        Arc::new(csd) as Arc<dyn Backend>,
    ];
    (Scheduler::new(backends, SchedulerConfig::default()), native)
}

/// The host CPU's rate for `work`: `gb_s` per job, and a measured selectivity.
fn host_rate(scheduler: &Scheduler, work: &str, gb_s: f64, out_ratio: f64) {
    let rate = Rate {
        fixed: Duration::from_micros(20),
        bytes_per_sec: gb_s * 1e9,
        out_ratio,
        samples: 10,
    };
    scheduler.set_rate(work, &BackendId("native".to_owned()), rate);
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

#[tokio::test]
async fn a_selective_scan_of_data_on_a_csd_runs_on_the_csd() {
    let (scheduler, _) = node();
    // Keeps 1 % of the bytes; the host filters at the 1.05 GB/s of the xeon-host profile.
    host_rate(&scheduler, "csv-filter", 1.05, 0.01);
    let placement = scheduler
        .place(&job("csv-filter", &[], GIB, on_csd0()))
        .unwrap();
    assert_eq!(placement.chosen.backend, csd0(), "{placement:#?}");
    assert!(placement.chosen.modelled);
    let host = &placement.candidates[0];
    // The host pays the drive's flash and link before its CPU (partly overlapped), and is
    // bound by its filter rate: about 3x the pushdown, as the SmartSSD letter reports.
    assert!(host.transfer_in > Duration::from_millis(300), "{host:?}");
    assert!(host.overlap > Duration::ZERO, "{host:?}");
    let speedup = host.total().as_secs_f64() / placement.chosen.total().as_secs_f64();
    assert!((2.5..3.5).contains(&speedup), "{speedup}");
}

#[tokio::test]
async fn a_scan_keeping_every_byte_stays_on_a_fast_host() {
    let (scheduler, _) = node();
    // grep keeping every line, the host searching at 8 GB/s: the pushdown moves as many bytes
    // over the link as a host read, and adds device-memory passes, so the host wins.
    host_rate(&scheduler, "grep", 8.0, 1.0);
    let placement = scheduler
        .place(&job("grep", &[("pattern", "x")], GIB, on_csd0()))
        .unwrap();
    assert_eq!(
        placement.chosen.backend,
        BackendId("native".to_owned()),
        "{placement:#?}"
    );
    // The same scan keeping 1 % of the lines is the drive's.
    host_rate(&scheduler, "grep", 8.0, 0.01);
    let placement = scheduler
        .place(&job("grep", &[("pattern", "x")], GIB, on_csd0()))
        .unwrap();
    assert_eq!(placement.chosen.backend, csd0(), "{placement:#?}");
}

#[tokio::test]
async fn data_not_on_the_device_is_not_sent_to_it_unless_asked() {
    let (scheduler, _) = node();
    host_rate(&scheduler, "csv-filter", 1.05, 0.01);
    let off = job("csv-filter", &[], GIB, DataLocation::Host);
    let placement = scheduler.place(&off).unwrap();
    assert_eq!(placement.chosen.backend, BackendId("native".to_owned()));
    assert_eq!(placement.candidates.len(), 1, "{placement:#?}");
    // No device read for host data.
    assert_eq!(placement.chosen.transfer_in, Duration::ZERO);

    // Asked for by class, the drive gets it and pays the link for the whole object.
    let mut required = off;
    required.policy = Policy::Require(DeviceClass::Csd);
    let placement = scheduler.place(&required).unwrap();
    assert_eq!(placement.chosen.backend, csd0());
    let link = GIB as f64 / (3.94e9 * 0.86);
    let transfer_in = placement.chosen.transfer_in.as_secs_f64();
    assert!(transfer_in > link * 0.95, "{transfer_in} vs {link}");
}

#[tokio::test]
async fn a_job_on_a_simulated_csd_reports_its_device_time() {
    let (scheduler, native) = node();
    let registry = prometheus::Registry::new();
    let scheduler = scheduler.with_metrics(SchedulerMetrics::register(&registry).unwrap());
    let mut text = String::new();
    for i in 0..2_000 {
        let level = if i % 100 == 0 { "ERROR" } else { "INFO" };
        text.push_str(&format!("line {i} {level} something happened\n"));
    }
    let data = Bytes::from(text);
    let params = [("pattern", "ERROR")];
    let size = data.len() as u64;

    let (want, _) = run(
        native.as_ref(),
        job("grep", &params, size, DataLocation::Host),
        &data,
    )
    .await;
    let j = job("grep", &params, size, on_csd0());
    let effects = Arc::clone(&j.effects);
    let (got, report) = run(&scheduler, j, &data).await;
    assert_eq!(got, want);
    assert_eq!(report.backend, "csd0");
    assert_eq!(effects.backend(), Some(csd0()));
    let device_time = report.device_time.unwrap();
    assert!(device_time > Duration::ZERO);
    assert_eq!(effects.device_time(), Some(device_time));

    let mut buf = Vec::new();
    prometheus::TextEncoder::new()
        .encode(&registry.gather(), &mut buf)
        .unwrap();
    let metrics = String::from_utf8(buf).unwrap();
    assert!(
        metrics.contains("quarry_offload_device_seconds_total{backend=\"csd0\",work=\"grep\"}"),
        "{metrics}"
    );
}

async fn run(
    backend: &dyn Backend,
    job: Job,
    data: &Bytes,
) -> (Vec<u8>, quarry_offload::RunReport) {
    let (sink, mut rx) = OutputSink::channel(8);
    let input: quarry_offload::ChunkStream = Box::pin(futures::stream::iter(
        data.chunks(1000)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    ));
    let collect = async move {
        let mut out = Vec::new();
        while let Some(item) = rx.recv().await {
            out.extend_from_slice(&item.unwrap());
        }
        out
    };
    let (report, out) = tokio::join!(backend.run(job, input, sink), collect);
    (out, report.unwrap())
}
