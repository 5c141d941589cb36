// SPDX-License-Identifier: Apache-2.0
//! Which program a simulated device runs for a function: the one place that looks at a
//! function's variants, so a new kind of device program is a new arm here.
//!
//! Fixed programs are the built-in kernels (NVMe computational-programs model): the device has
//! one when its profile gives the kernel a rate (`[compute.kernels.grep]` for `builtin-grep`).
//! The bytes come from the kernel's CPU implementation; the profile's rate gives the time.
//!
//! Downloadable programs are eBPF (`Variant::Ebpf`), which only a CSD runs: the userspace eBPF
//! VM gives the bytes and counts the instructions executed, and the time is that count at
//! [`EBPF_INSTRUCTIONS_PER_SEC`] per engine, plus the data's way in and the result's way out.

use std::sync::Arc;

use super::model::DeviceModel;
use crate::function::{FunctionSpec, Variant};

/// eBPF instructions one engine of a drive executes per second: about one per cycle of a
/// 1 GHz-class embedded core running the program JIT-compiled (an assumption, not a product
/// figure; profiles give no eBPF rate).
pub(super) const EBPF_INSTRUCTIONS_PER_SEC: f64 = 1e9;

/// A program the device would run.
#[derive(Debug, Clone)]
pub(super) enum Program {
    /// A built-in kernel; `kernel` is its name in the device profile.
    Fixed {
        /// The profile's name for it (`grep`).
        kernel: String,
    },
    /// A downloadable eBPF program (CSDs only), run in the userspace eBPF VM.
    Ebpf {
        /// The program.
        program: Arc<quarry_ebpf::EbpfKernel>,
    },
}

impl Program {
    /// The name the device model knows the program by.
    pub(super) fn model_name(&self) -> &str {
        match self {
            Self::Fixed { kernel } => kernel,
            Self::Ebpf { .. } => "ebpf",
        }
    }
}

/// The program `model` would run for `function`, if it has one.
pub(super) fn program_for(function: &FunctionSpec, model: &DeviceModel) -> Option<Program> {
    function.variants.iter().find_map(|variant| match variant {
        Variant::Kernel(k) if k.info().cpu => {
            let kernel = profile_kernel(&k.info().name);
            model.has_program(kernel).then(|| Program::Fixed {
                kernel: kernel.to_owned(),
            })
        }
        Variant::Ebpf(program) if model.holds_data() => Some(Program::Ebpf {
            program: Arc::clone(program),
        }),
        _ => None,
    })
}

/// A kernel's or work's name as profiles write it: without the `builtin-` prefix.
pub(super) fn profile_kernel(name: &str) -> &str {
    name.strip_prefix("builtin-").unwrap_or(name)
}
