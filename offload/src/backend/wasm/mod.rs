// SPDX-License-Identifier: Apache-2.0
//! The WebAssembly worker pool: wasmtime with the pooling allocator, modules pre-instantiated at
//! deploy, a fresh instance per job (microseconds, no container boot), epoch interruption for
//! CPU limits and preemption.
//!
//! ABI v1 is WASI preview1 as a Unix filter (stdin = input, stdout = output, environment =
//! params and object facts, stderr = log) plus the `quarry` host module (`abi.rs`; the C
//! header is `offload/abi/quarry.h`). ABI v2 adds the input window (`window.rs`): a module
//! that imports `quarry.input_next` gets its input written straight into a region of its
//! linear memory instead of through stdin.

#![allow(
    unsafe_code,
    reason = "loading precompiled modules that this daemon wrote"
)]

mod abi;
mod io;
mod limits;
mod pool;
mod run;
mod window;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use tokio::sync::Semaphore;
use wasmtime::{Engine, InstancePre, Linker, Module};

use self::abi::HostState;
use self::pool::EpochTicker;
use crate::backend::{
    Backend, BackendError, BackendId, ChunkStream, DeviceClass, Job, Load, OutputSink, RunReport,
    VariantKind,
};
use crate::config::WasmConfig;
use crate::function::{FunctionSpec, Variant};

/// Why a module could not be deployed.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The bytes are not a valid WebAssembly module (or WAT text).
    #[error("not a valid WebAssembly module: {message}")]
    Invalid {
        /// The validator's message.
        message: String,
    },
    /// The module imports something the host does not offer.
    #[error(
        "the module imports {module}::{name}, which Quarry does not offer (functions may import wasi_snapshot_preview1 and quarry; see docs/functions.md)"
    )]
    UnknownImport {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
    },
    /// The module is not a WASI command.
    #[error(
        "the module does not export `_start` and `memory`; build it as a WASI command (ABI v1)"
    )]
    NotACommand,
    /// Its initial memory is larger than the function's memory limit.
    #[error("the module needs {needed} bytes of memory at start; the function's limit is {limit}")]
    MemoryTooSmall {
        /// Bytes of the initial memory.
        needed: u64,
        /// The limit.
        limit: bytesize::ByteSize,
    },
    /// A precompiled artifact could not be loaded (stale or from another engine version).
    #[error("cannot load precompiled module: {message}")]
    Precompiled {
        /// wasmtime's message.
        message: String,
    },
}

/// A module compiled for this backend's engine and pre-instantiated with its imports.
pub struct WasmModule {
    module: Module,
    pre: InstancePre<HostState>,
    /// Imports `quarry.input_next`: its input goes to the window (ABI v2), not stdin.
    window: bool,
}

impl std::fmt::Debug for WasmModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmModule").finish_non_exhaustive()
    }
}

impl WasmModule {
    /// The compiled artifact, to cache on disk and load with
    /// [`WasmBackend::load_precompiled`].
    pub fn serialize(&self) -> Result<Vec<u8>, CompileError> {
        self.module
            .serialize()
            .map_err(|e| CompileError::Precompiled {
                message: format!("{e:#}"),
            })
    }

    /// Bytes of linear memory the module asks for at start.
    pub fn initial_memory(&self) -> u64 {
        self.module
            .exports()
            .filter_map(|e| e.ty().memory().map(|m| m.minimum() * m.page_size()))
            .max()
            .unwrap_or(0)
    }

    /// Whether the module uses the input window (ABI v2): it imports `quarry.input_next`,
    /// and its input is written into its memory instead of arriving on stdin.
    pub fn uses_input_window(&self) -> bool {
        self.window
    }
}

/// The WebAssembly backend.
pub struct WasmBackend {
    id: BackendId,
    engine: Engine,
    linker: Linker<HostState>,
    /// Every (module, name) the linker defines, to name an unknown import at deploy.
    offered: HashSet<(String, String)>,
    config: WasmConfig,
    slots: Arc<Semaphore>,
    queued: AtomicUsize,
    _ticker: EpochTicker,
}

impl std::fmt::Debug for WasmBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmBackend")
            .field("id", &self.id)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl WasmBackend {
    /// Starts the engine: reserves the instance pool and starts the epoch ticker.
    pub fn new(config: &WasmConfig) -> Result<Self, BackendError> {
        let setup = |message: String| BackendError::Setup {
            function: "-".to_owned(),
            backend: "wasm".to_owned(),
            message,
        };
        let engine = pool::engine(config).map_err(|e| setup(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut HostState| &mut s.wasi)
            .map_err(|e| setup(format!("{e:#}")))?;
        abi::add_to_linker(&mut linker).map_err(|e| setup(format!("{e:#}")))?;
        let offered = {
            let mut store = wasmtime::Store::new(&engine, HostState::idle());
            linker
                .iter(&mut store)
                .map(|(module, name, _)| (module.to_owned(), name.to_owned()))
                .collect()
        };
        let ticker = EpochTicker::start(engine.clone(), config.epoch_tick)
            .map_err(|e| setup(format!("cannot start the epoch thread: {e}")))?;
        let capacity = usize::try_from(config.max_instances).unwrap_or(usize::MAX);
        Ok(Self {
            id: BackendId("wasm".to_owned()),
            engine,
            linker,
            offered,
            config: config.clone(),
            slots: Arc::new(Semaphore::new(capacity)),
            queued: AtomicUsize::new(0),
            _ticker: ticker,
        })
    }

    /// The pool's configuration.
    pub fn config(&self) -> &WasmConfig {
        &self.config
    }

    /// Validates and compiles a module (binary or WAT text), checks that it is a WASI command
    /// whose imports the host offers, and pre-instantiates it.
    pub fn compile(&self, bytes: &[u8]) -> Result<Arc<WasmModule>, CompileError> {
        let module = Module::new(&self.engine, bytes).map_err(|e| CompileError::Invalid {
            message: format!("{e:#}"),
        })?;
        self.prepare(module)
    }

    /// Loads an artifact written by [`WasmModule::serialize`]. Fails (and the caller
    /// recompiles from the module) when it comes from another engine version or settings.
    pub fn load_precompiled(&self, path: &Path) -> Result<Arc<WasmModule>, CompileError> {
        // SAFETY: `deserialize_file` requires that the file holds an artifact produced by
        // `Module::serialize` and is not changed while mapped. The path is inside the node's
        // data directory (mode 0700, owned by the daemon); the daemon writes the file once, from
        // a module it compiled and validated itself, via a temporary file renamed into place, and
        // never modifies it afterwards. wasmtime checks the header, version and engine settings
        // and refuses a mismatch, which becomes `CompileError::Precompiled`.
        let module = unsafe { Module::deserialize_file(&self.engine, path) }.map_err(|e| {
            CompileError::Precompiled {
                message: format!("{e:#}"),
            }
        })?;
        self.prepare(module)
    }

    fn prepare(&self, module: Module) -> Result<Arc<WasmModule>, CompileError> {
        for import in module.imports() {
            let known = self
                .offered
                .contains(&(import.module().to_owned(), import.name().to_owned()));
            if !known {
                return Err(CompileError::UnknownImport {
                    module: import.module().to_owned(),
                    name: import.name().to_owned(),
                });
            }
        }
        let exports: Vec<&str> = module.exports().map(|e| e.name()).collect();
        if !exports.contains(&"_start") || !exports.contains(&"memory") {
            return Err(CompileError::NotACommand);
        }
        let pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|e| CompileError::Invalid {
                message: format!("{e:#}"),
            })?;
        let window = module
            .imports()
            .any(|i| i.module() == abi::MODULE && i.name() == window::INPUT_NEXT);
        Ok(Arc::new(WasmModule {
            module,
            pre,
            window,
        }))
    }
}

#[async_trait]
impl Backend for WasmBackend {
    fn id(&self) -> &BackendId {
        &self.id
    }

    fn class(&self) -> DeviceClass {
        DeviceClass::Cpu
    }

    fn describe(&self) -> String {
        format!(
            "WebAssembly functions, up to {} instances at once",
            self.config().max_instances
        )
    }

    fn variant_for(&self, function: &FunctionSpec) -> Option<VariantKind> {
        function
            .variants
            .iter()
            .any(|v| matches!(v, Variant::Wasm(_)))
            .then_some(VariantKind::Wasm)
    }

    fn load(&self) -> Load {
        let capacity = usize::try_from(self.config.max_instances).unwrap_or(usize::MAX);
        Load {
            running: capacity - self.slots.available_permits(),
            capacity,
            queued: self.queued.load(Ordering::Relaxed),
        }
    }

    async fn run(
        &self,
        job: Job,
        input: ChunkStream,
        out: OutputSink,
    ) -> Result<RunReport, BackendError> {
        run::run(self, job, input, out).await
    }
}
