// SPDX-License-Identifier: Apache-2.0
//! The `Backend` seam: one execution engine.
//!
//! A backend says what it can run ([`Backend::variant_for`]), how busy it is
//! ([`Backend::load`]) and runs one job over a stream of chunks ([`Backend::run`]), writing its
//! output into an [`OutputSink`] as it is produced. Real and simulated devices implement the same
//! trait; the caller never asks which one it has. Dynamic dispatch happens once per job.

pub mod native;
pub mod opencl;
pub mod sim;
pub mod wasm;

use std::fmt;
use std::io;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use tokio::sync::mpsc;

use crate::function::{Effects, Flow, FunctionSpec, InvocationContext};
use crate::scheduler::Policy;

/// Input or output bytes of a job: chunks, or the error that ended the stream.
///
/// The same shape as the interceptor's body stream, so a request or object body is a job's
/// input without adaptation.
pub type ChunkStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send + Sync + 'static>>;

/// A backend's name, as it appears in the `x-quarry-backend` header, metrics and logs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BackendId(pub String);

impl fmt::Display for BackendId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kind of device a backend runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceClass {
    /// Host CPU cores.
    Cpu,
    /// A GPU.
    Gpu,
    /// An FPGA card.
    Fpga,
    /// A computational storage drive.
    Csd,
}

impl DeviceClass {
    /// Every class, in listing order.
    pub const ALL: [Self; 4] = [Self::Cpu, Self::Gpu, Self::Fpga, Self::Csd];

    /// Its name in policies, listings and metrics (`cpu`, `gpu`, `fpga`, `csd`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Gpu => "gpu",
            Self::Fpga => "fpga",
            Self::Csd => "csd",
        }
    }
}

impl fmt::Display for DeviceClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that names no device class.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown device class {given:?}: expected one of cpu, gpu, fpga, csd")]
pub struct UnknownDeviceClass {
    /// The text given.
    pub given: String,
}

impl FromStr for DeviceClass {
    type Err = UnknownDeviceClass;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let word = s.trim();
        Self::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(word))
            .ok_or_else(|| UnknownDeviceClass {
                given: s.to_owned(),
            })
    }
}

/// The path between host memory and a device: what moving bytes there and back costs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    /// Sustained transfer rate in bytes per second (each direction).
    pub bytes_per_sec: f64,
    /// Fixed cost of one transfer.
    pub latency: Duration,
}

impl Link {
    /// The time to move `bytes` over the link once.
    pub fn transfer_time(&self, bytes: u64) -> Duration {
        if bytes == 0 {
            return Duration::ZERO;
        }
        let rate = self.bytes_per_sec.max(1.0);
        self.latency + Duration::from_secs_f64(bytes as f64 / rate)
    }
}

/// Where a job's input bytes sit, as the cost model sees them.
///
/// Objects in a bucket placed on a device's namespace sit on that device: a backend that runs
/// there reads them in place, every other backend first pays the device's host read (its flash
/// and its link). The bytes themselves may still come from the node's own store; the location
/// only decides what the model charges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum DataLocation {
    /// In host memory or the node's own store: no device in the way.
    #[default]
    Host,
    /// On the namespace of the device backend with this id.
    Device(BackendId),
}

impl DataLocation {
    /// Whether the bytes sit on the device backend `id`.
    pub fn is_on(&self, id: &BackendId) -> bool {
        matches!(self, Self::Device(d) if d == id)
    }
}

impl fmt::Display for DataLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Host => f.write_str("host"),
            Self::Device(id) => write!(f, "device:{id}"),
        }
    }
}

/// What a backend's own device model is asked to cost: one job's work, its sizes and where its
/// input sits (see [`Backend::estimate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Demand<'a> {
    /// The work: a kernel's name (`builtin-grep`), or a function's for WebAssembly.
    pub work: &'a str,
    /// Input bytes.
    pub input_bytes: u64,
    /// Expected output bytes (the input times the selectivity the scheduler expects).
    pub output_bytes: u64,
    /// Where the input sits.
    pub location: &'a DataLocation,
}

/// A device model's estimate of one job, by part. The parts add up to the time until the job
/// would finish; a pipelined device attributes each stage's share of the overlapped total to
/// the part it belongs to, so nothing is counted twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeviceEstimate {
    /// Waiting behind the commands already on the device.
    pub queue_wait: Duration,
    /// Getting the input to the engines: flash reads, or the link from the host.
    pub transfer_in: Duration,
    /// Device memory and the engines running the work.
    pub compute: Duration,
    /// The result crossing the link to the host.
    pub transfer_out: Duration,
}

impl DeviceEstimate {
    /// The time until the job would finish.
    pub fn total(&self) -> Duration {
        self.queue_wait + self.transfer_in + self.compute + self.transfer_out
    }
}

/// How busy a backend is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Load {
    /// Jobs running now.
    pub running: usize,
    /// Jobs that can run at once.
    pub capacity: usize,
    /// Jobs waiting for a slot.
    pub queued: usize,
}

/// Which implementation of a function a backend would run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariantKind {
    /// A WebAssembly module.
    Wasm,
    /// A kernel's native CPU implementation.
    Native,
    /// A kernel's OpenCL implementation.
    OpenCl,
    /// An eBPF program on a computational-storage device.
    Ebpf,
}

/// One job: a function version and the facts of its invocation.
#[derive(Debug, Clone)]
pub struct Job {
    /// The function version to run; in-flight jobs keep the version they started with.
    pub function: Arc<FunctionSpec>,
    /// Event, object facts and params.
    pub context: InvocationContext,
    /// Which request the job runs in (decides the host calls it may make).
    pub flow: Flow,
    /// Where the function's requests to the host (headers, metadata, rewrites) are collected.
    pub effects: Arc<Effects>,
    /// Access to the trigger's bucket, for functions with the `read` or `write` permission.
    pub bucket: Option<Arc<dyn crate::function::BucketAccess>>,
    /// Where the job may run (`x-quarry-backend-class`, function and trigger settings); read
    /// by the [`Scheduler`](crate::scheduler::Scheduler), ignored by single backends.
    pub policy: Policy,
}

impl fmt::Debug for dyn crate::function::BucketAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BucketAccess")
    }
}

/// Where a job writes its output. The receiving half is the job's output stream; it ends when
/// the job ends, with an error item if the job failed after output began.
#[derive(Debug, Clone)]
pub struct OutputSink {
    tx: mpsc::Sender<io::Result<Bytes>>,
}

impl OutputSink {
    /// A sink and the stream that yields what is written into it, holding at most `depth`
    /// chunks in between (backpressure beyond that).
    pub fn channel(depth: usize) -> (Self, mpsc::Receiver<io::Result<Bytes>>) {
        let (tx, rx) = mpsc::channel(depth.max(1));
        (Self { tx }, rx)
    }

    /// The underlying sender, for adapters.
    pub fn sender(&self) -> &mpsc::Sender<io::Result<Bytes>> {
        &self.tx
    }

    /// Ends the stream with `err` (the reader sees it as the last item). Ignored when the
    /// reader is gone.
    pub async fn fail(&self, err: io::Error) {
        let _ = self.tx.send(Err(err)).await;
    }
}

/// What a finished job measured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// The backend that ran it.
    pub backend: String,
    /// Input bytes the function read.
    pub bytes_in: u64,
    /// Output bytes it wrote.
    pub bytes_out: u64,
    /// CPU time charged to it.
    pub cpu_time: Duration,
    /// Wall-clock time from start to end.
    pub wall_time: Duration,
    /// The time the device would have taken, for backends whose device is modelled rather
    /// than present (queue wait included); `None` where the wall time is the device's.
    pub device_time: Option<Duration>,
}

/// How a function failed. Each variant is a value the S3 front end turns into an error naming
/// the function.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FunctionFailure {
    /// The function trapped (an unreachable, an out-of-bounds access, a stack overflow...).
    #[error("trapped: {0}")]
    Trap(String),
    /// It exited with a non-zero status.
    #[error("exited with status {0}")]
    Exit(i32),
    /// It tried to grow its memory past its limit.
    #[error("exceeded its memory limit of {limit}")]
    MemoryLimit {
        /// The limit.
        limit: bytesize::ByteSize,
    },
    /// It used more CPU time than allowed.
    #[error("exceeded its CPU-time limit of {limit:?}")]
    CpuTime {
        /// The limit.
        limit: Duration,
    },
    /// It ran longer than allowed.
    #[error("exceeded its time limit of {limit:?}")]
    Timeout {
        /// The limit.
        limit: Duration,
    },
    /// It produced no output within the allowed time.
    #[error("wrote no output within its first-byte limit of {limit:?}")]
    FirstByteTimeout {
        /// The limit.
        limit: Duration,
    },
    /// It wrote more than allowed.
    #[error("exceeded its output limit of {limit}")]
    OutputLimit {
        /// The limit.
        limit: bytesize::ByteSize,
    },
    /// The reader of its output went away (the client disconnected).
    #[error("was cancelled: the reader of its output went away")]
    Cancelled,
    /// Its input failed (the object could not be read, or the client's upload broke off).
    #[error("its input failed: {0}")]
    Input(String),
}

/// Why a job did not complete.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The function failed; the message names it.
    #[error("function {function} on {backend} {cause}")]
    FunctionFailed {
        /// `name@vN`.
        function: String,
        /// The backend that ran it.
        backend: String,
        /// What went wrong.
        cause: FunctionFailure,
    },
    /// The function rejected the request through the `reject` host call.
    #[error("function {function} rejected the request ({status}): {message}")]
    Rejected {
        /// `name@vN`.
        function: String,
        /// HTTP status to answer with (400..=599).
        status: u16,
        /// The function's message.
        message: String,
    },
    /// No slot came free within the queue timeout.
    #[error("backend {backend} is busy: all {capacity} slots stayed taken for {waited:?}")]
    Overloaded {
        /// The busy backend.
        backend: String,
        /// Its slots.
        capacity: usize,
        /// How long the job waited.
        waited: Duration,
    },
    /// The backend holds no variant of the function it was asked to run.
    #[error("backend {backend} cannot run function {function}")]
    Unsupported {
        /// `name@vN`.
        function: String,
        /// The backend.
        backend: String,
    },
    /// The job's parameters do not fit the kernel (missing, unknown, malformed or unusable);
    /// the caller's fault, answered `400 InvalidArgument`.
    #[error("function {function}: {message}")]
    BadParams {
        /// `name@vN`.
        function: String,
        /// What is wrong and what is expected.
        message: String,
    },
    /// No backend holds a variant of the function that the job's policy allows.
    #[error(
        "no backend can run function {function} under policy {policy} (backends that hold a variant: {available}); change the policy or deploy a variant for that device class"
    )]
    NoBackend {
        /// `name@vN`.
        function: String,
        /// The policy asked for.
        policy: Policy,
        /// The backends that hold a variant, as `id (class)`, or `none`.
        available: String,
    },
    /// The engine failed to set up the job (not the function's fault).
    #[error("backend {backend} could not start function {function}: {message}")]
    Setup {
        /// `name@vN`.
        function: String,
        /// The backend.
        backend: String,
        /// The engine's message.
        message: String,
    },
}

impl BackendError {
    /// Whether the job may succeed if tried again later (overload).
    pub fn is_overload(&self) -> bool {
        matches!(self, Self::Overloaded { .. })
    }

    /// Whether the caller's request was at fault (bad parameters, a policy nothing satisfies).
    pub fn is_invalid_request(&self) -> bool {
        matches!(self, Self::BadParams { .. } | Self::NoBackend { .. })
    }
}

/// One execution engine. Real and simulated devices implement the same trait.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Its name in headers, metrics and logs.
    fn id(&self) -> &BackendId;
    /// The device it runs on.
    fn class(&self) -> DeviceClass;
    /// The variant of `function` it would run, if it holds one.
    fn variant_for(&self, function: &FunctionSpec) -> Option<VariantKind>;
    /// How busy it is now.
    fn load(&self) -> Load;
    /// The link input and results cross to reach the device; `None` for a backend that works
    /// on host memory in place (the CPU backends).
    fn link(&self) -> Option<Link> {
        None
    }
    /// One line describing it for device listings (`quarry devices`).
    fn describe(&self) -> String {
        format!("{} backend", self.class())
    }
    /// The backend's own model of `demand`, used by the scheduler instead of calibrated rates
    /// when present; `None` (the default) for backends that are measured.
    fn estimate(&self, demand: &Demand<'_>) -> Option<DeviceEstimate> {
        let _ = demand;
        None
    }
    /// The time for the host to read `bytes` held on this device's namespace (what a job on
    /// another backend pays before its input is in host memory); `None` (the default) for
    /// backends that hold no data.
    fn host_read_time(&self, bytes: u64) -> Option<Duration> {
        let _ = bytes;
        None
    }
    /// Whether automatic placement (policy `auto`) may give it a job whose input sits at
    /// `location`. A storage device answers `false` for data that is not on it: its link and
    /// engines serve its own namespace, and shipping host data into a drive competes with
    /// that drive's storage traffic, which a per-job estimate cannot see. Policies that name
    /// its class or id still reach it.
    fn accepts_auto(&self, location: &DataLocation) -> bool {
        let _ = location;
        true
    }
    /// Runs `job` over `input`, writing output into `out` as it is produced. Output ends when
    /// this returns (the sink is dropped); on failure after output began, the caller ends the
    /// stream with an error item.
    async fn run(
        &self,
        job: Job,
        input: ChunkStream,
        out: OutputSink,
    ) -> Result<RunReport, BackendError>;
}
