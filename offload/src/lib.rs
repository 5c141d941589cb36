// SPDX-License-Identifier: Apache-2.0
//! # quarry-offload
//!
//! Execution: the [`Backend`] seam (one execution engine: what it can run, how busy it is, run a
//! job over a stream of chunks) and its backends, and [`pipeline`], which chains functions so
//! that each one's output streams into the next one's input.
//!
//! Today the one backend is the WebAssembly worker pool ([`WasmBackend`]): wasmtime with the
//! pooling allocator, pre-instantiated modules, epoch interruption for CPU limits and the
//! Unix-filter ABI v1 (WASI preview1; see `docs/functions.md`). Native kernels, OpenCL devices
//! and simulated devices plug in behind the same trait; the scheduler that picks among them
//! comes with them.

pub mod backend;
pub mod config;
pub mod function;
pub mod pipeline;
pub mod scheduler;

pub use self::backend::native::{NativeBackend, NativeConfig};
pub use self::backend::opencl::{
    DeviceInfo, OpenClBackend, OpenClUnavailable, UserKernel, UserKernelError, UserKernelSpec,
};
pub use self::backend::sim::{SimDeviceBackend, SimDeviceConfig, SimDeviceError};
pub use self::backend::wasm::{CompileError, WasmBackend};
pub use self::backend::{
    Backend, BackendError, BackendId, ChunkStream, DataLocation, Demand, DeviceClass,
    DeviceEstimate, FunctionFailure, Job, Link, Load, OutputSink, RunReport, UnknownDeviceClass,
    VariantKind,
};
pub use self::config::{OffloadConfig, OpenClConfig, WasmConfig};
pub use self::function::{
    BucketAccess, EffectState, Effects, Flow, FunctionLimits, FunctionSpec, HostError,
    InvocationContext, ObjectFacts, Permission, Variant,
};
pub use self::scheduler::{
    CalibrationReport, DeviceRow, Estimate, Placement, Policy, PolicyError, Rate, Scheduler,
    SchedulerConfig, SchedulerMetrics,
};
