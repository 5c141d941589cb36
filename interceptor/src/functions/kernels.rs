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

/// A kernel as listings show it (`GET /v1/kernels`, `quarry kernel ls`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KernelListing {
    /// Its name.
    pub name: String,
    /// What it computes.
    pub summary: String,
    /// `map`, `filter`, `reduce` or `stream`.
    pub shape: String,
    /// Whether it has a CPU variant.
    pub cpu: bool,
    /// Whether it has an OpenCL variant.
    pub opencl: bool,
    /// `builtin`, or `user` for a registered OpenCL kernel.
    pub origin: String,
    /// Its parameters.
    pub params: Vec<ParamListing>,
}

/// One kernel parameter as listings show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ParamListing {
    /// Its name.
    pub name: String,
    /// Its type, e.g. `text`, `bool`, `uint 1..=32`, `lines|count`.
    pub ty: String,
    /// Its default; `None`: required.
    pub default: Option<String>,
    /// What it means.
    pub doc: String,
}

impl KernelListing {
    /// The listing of `kernel`, whose origin is `origin`.
    pub fn new(kernel: &dyn Kernel, origin: &str) -> Self {
        let info = kernel.info();
        Self {
            name: info.name.to_string(),
            summary: info.summary.to_string(),
            shape: info.shape.as_str().to_owned(),
            cpu: info.cpu,
            opencl: info.opencl,
            origin: origin.to_owned(),
            params: info
                .params
                .iter()
                .map(|p| ParamListing {
                    name: p.name.to_owned(),
                    ty: match p.ty {
                        quarry_kernels::ParamType::Text => "text".to_owned(),
                        quarry_kernels::ParamType::Bool => "bool".to_owned(),
                        quarry_kernels::ParamType::UInt { min, max } => {
                            format!("uint {min}..={max}")
                        }
                        quarry_kernels::ParamType::Choice(words) => words.join("|"),
                    },
                    default: p.default.map(str::to_owned),
                    doc: p.doc.to_owned(),
                })
                .collect(),
        }
    }
}
