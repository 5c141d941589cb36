// SPDX-License-Identifier: Apache-2.0
//! The OpenCL backend: built-in kernels (and user OpenCL kernels) on GPUs, FPGA boards and CPU
//! OpenCL devices.
//!
//! - [`runtime`]: loads the OpenCL library at run time (a node without one still runs) and
//!   finds every platform and device.
//! - [`device`]: one device, its facts for listings ([`DeviceInfo`]) and its context.
//! - [`program`]: builds kernel programs per device, cached in memory and on disk.
//! - [`chunker`]: cuts an input stream into record-aligned chunks of about the configured size.
//! - [`executor`]: runs a kernel's [`quarry_kernels::DeviceRun`] over those chunks, pipelined.
//! - [`OpenClBackend`]: one device behind the `Backend` seam (slots, queue timeout, a job's
//!   params bound to its kernel, the executor on a blocking thread).
//! - [`user`]: user kernels from OpenCL C source or a prebuilt binary (`docs/opencl.md`).
//!
//! All calls into the OpenCL library go through `ffi`, the one module allowed `unsafe`.

mod backend;
pub mod chunker;
pub mod device;
pub mod error;
pub mod executor;
mod ffi;
mod job;
pub mod program;
pub mod runtime;
pub mod user;

pub use self::backend::{NOMINAL_DEVICE_LINK, OpenClBackend};
pub use self::device::{ClDevice, DeviceInfo};
pub use self::error::{ClError, OpenClUnavailable};
pub use self::executor::{ExecConfig, ExecError, ExecStats, execute};
pub use self::runtime::OpenClRuntime;
pub use self::user::{UserKernel, UserKernelError, UserKernelSpec, UserParam, UserProgram};
