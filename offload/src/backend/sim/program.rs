// SPDX-License-Identifier: Apache-2.0
//! Which program a simulated device runs for a function: the one place that looks at a
//! function's variants, so a new kind of device program is a new arm here.
//!
//! Fixed programs are the built-in kernels (NVMe computational-programs model): the device has
//! one when its profile gives the kernel a rate (`[compute.kernels.grep]` for `builtin-grep`).
//! The bytes come from the kernel's CPU implementation; the profile's rate gives the time.

use super::model::DeviceModel;
use crate::function::{FunctionSpec, Variant};

/// A program the device would run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Program {
    /// A built-in kernel; `kernel` is its name in the device profile.
    Fixed {
        /// The profile's name for it (`grep`).
        kernel: String,
    },
}

impl Program {
    /// The name the device model knows the program by.
    pub(super) fn model_name(&self) -> &str {
        match self {
            Self::Fixed { kernel } => kernel,
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
        _ => None,
    })
}

/// A kernel's or work's name as profiles write it: without the `builtin-` prefix.
pub(super) fn profile_kernel(name: &str) -> &str {
    name.strip_prefix("builtin-").unwrap_or(name)
}
