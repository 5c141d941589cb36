// SPDX-License-Identifier: Apache-2.0
//! The node's OpenCL devices as the daemon sees them: discovery at start (the library is loaded
//! at run time; a node without one logs why and runs everything else) and the compiler that
//! builds registered kernels on every device.

use std::path::Path;
use std::sync::Arc;

use quarry_interceptor::functions::{
    KernelBuildError, KernelCompiler, NoCompiler, UserKernelRecord,
};
use quarry_kernels::Kernel;
use quarry_offload::backend::opencl::OpenClRuntime;
use quarry_offload::{OpenClBackend, OpenClConfig, UserKernel, UserKernelError, UserKernelSpec};
use tracing::{info, warn};

/// What OpenCL discovery found.
pub struct OpenClDevices {
    /// One backend per device (empty without OpenCL).
    pub backends: Vec<OpenClBackend>,
    /// Builds registered kernels (refuses them, saying why, without OpenCL).
    pub compiler: Arc<dyn KernelCompiler>,
}

impl std::fmt::Debug for OpenClDevices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenClDevices")
            .field("backends", &self.backends.len())
            .finish_non_exhaustive()
    }
}

/// Looks for OpenCL devices as `config` says; program binaries are cached under
/// `data_dir/opencl-cache` unless the config names a cache directory. Blocking.
pub fn discover(config: &OpenClConfig, data_dir: &Path) -> OpenClDevices {
    let mut config = config.clone();
    if config.cache_dir.is_none() {
        config.cache_dir = Some(data_dir.join("opencl-cache"));
    }
    let unavailable = |reason: String| OpenClDevices {
        backends: Vec::new(),
        compiler: Arc::new(NoCompiler { reason }),
    };
    match OpenClBackend::discover(&config) {
        Ok(backends) if backends.is_empty() => {
            info!("OpenCL: the library loaded but offers no device; kernels run on the CPU");
            unavailable("the OpenCL library offers no device".to_owned())
        }
        Ok(backends) => {
            for b in &backends {
                let d = b.info();
                info!(
                    backend = %b.info().backend_name(),
                    device = %d.name,
                    platform = %d.platform,
                    "OpenCL device found"
                );
            }
            let compiler = Arc::new(OpenClCompiler {
                runtime: backends[0].runtime().clone(),
            });
            OpenClDevices { backends, compiler }
        }
        Err(e) => {
            info!("OpenCL not used: {}; kernels run on the CPU", e.reason);
            unavailable(e.reason)
        }
    }
}

/// Builds registered kernels with the node's OpenCL runtime.
#[derive(Debug)]
struct OpenClCompiler {
    runtime: OpenClRuntime,
}

impl KernelCompiler for OpenClCompiler {
    fn compile(
        &self,
        record: &UserKernelRecord,
        code: &[u8],
    ) -> Result<Arc<dyn Kernel>, KernelBuildError> {
        let convert = |e: UserKernelError| match e {
            UserKernelError::Spec { .. } => KernelBuildError::Invalid(e.to_string()),
            UserKernelError::Build { .. } => KernelBuildError::Build { log: e.to_string() },
        };
        let spec = UserKernelSpec::from_request(
            &record.name,
            &record.summary,
            &record.shape,
            &record.framing,
            code,
            record.binary_for.as_deref(),
        )
        .map_err(convert)?;
        let kernel = UserKernel::build(&self.runtime, spec).map_err(|e| {
            warn!(kernel = %record.name, "user kernel build failed");
            convert(e)
        })?;
        Ok(Arc::new(kernel))
    }
}
