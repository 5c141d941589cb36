// SPDX-License-Identifier: Apache-2.0
//! Kernels as functions: the built-in kernels (and, through [`KernelLookup`], the user kernels
//! registered on the node) are functions of their own name, and a deploy can bind a kernel to
//! a new name with preset params.

use std::fmt;
use std::sync::Arc;

use quarry_kernels::{BoundKernel, Kernel, KernelError, KernelInfo, Params};

/// Finds kernels by name.
pub trait KernelLookup: Send + Sync + fmt::Debug + 'static {
    /// The kernel called `name`, if there is one.
    fn kernel(&self, name: &str) -> Option<Arc<dyn Kernel>>;
    /// Every kernel, by name.
    fn all(&self) -> Vec<Arc<dyn Kernel>>;
}

/// The built-in kernels only.
#[derive(Debug, Default, Clone, Copy)]
pub struct BuiltinKernels;

impl KernelLookup for BuiltinKernels {
    fn kernel(&self, name: &str) -> Option<Arc<dyn Kernel>> {
        quarry_kernels::find(name).map(|k| Arc::new(Builtin(k)) as Arc<dyn Kernel>)
    }

    fn all(&self) -> Vec<Arc<dyn Kernel>> {
        quarry_kernels::builtin()
            .iter()
            .map(|k| Arc::new(Builtin(*k)) as Arc<dyn Kernel>)
            .collect()
    }
}

/// A built-in kernel behind an `Arc`, as function variants hold kernels.
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
