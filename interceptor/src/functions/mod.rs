// SPDX-License-Identifier: Apache-2.0
//! The function registry: deploy, list, show, update and delete functions, persisted in the
//! node's catalog.
//!
//! Deploying validates and compiles the module (a module that imports something the host does
//! not offer is refused, naming the import), writes the module and the compiled artifact under
//! `functions/<name>/` in the data directory, then commits the record. A restart loads the
//! compiled artifacts instead of recompiling. Deploying an existing name adds a version;
//! invocations already running keep the version they started with.

pub mod catalog;
pub mod kernels;
pub mod package;
pub mod user_ebpf;
pub mod user_kernels;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use bytesize::ByteSize;
use quarry_offload::{
    CompileError, FunctionLimits, FunctionSpec, Permission, Variant, WasmBackend,
};
use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use self::catalog::{Catalog, CatalogError, FUNCTIONS, db_err, decode, encode};
pub use self::kernels::{BuiltinKernels, KernelListing, KernelLookup, ParamListing};
pub use self::package::Manifest;
pub use self::user_ebpf::{EbpfListing, NodeEbpf, UserEbpfError, UserEbpfRecord, UserEbpfRequest};
pub use self::user_kernels::{
    KernelBuildError, KernelCompiler, NoCompiler, NodeKernels, UserKernelError, UserKernelRecord,
    UserKernelRequest,
};

/// Longest function name.
const MAX_NAME: usize = 64;

/// A deployed function version as the catalog keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionRecord {
    /// Its name.
    pub name: String,
    /// Its version, 1 for the first deploy of the name.
    pub version: u64,
    /// One line from the manifest.
    pub description: String,
    /// Limits every run is held to.
    pub limits: FunctionLimits,
    /// What it may do beyond its input and output.
    pub permissions: Vec<Permission>,
    /// Default params (manifest, then `fn deploy --param`).
    pub params: BTreeMap<String, String>,
    /// SHA-256 of the module as deployed, hex.
    pub sha256: String,
    /// Size of the module as deployed.
    pub module_size: u64,
    /// When this version was deployed.
    pub deployed_at: SystemTime,
    /// The kernel it runs, for a kernel function (`None`: a WebAssembly module).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// Where it prefers or requires to run (`auto`, `gpu`, `prefer:fpga`, ...); `None`: auto.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_class: Option<String>,
    /// The eBPF program it also runs on computational-storage devices (beside its kernel),
    /// or only runs (without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ebpf: Option<String>,
}

/// Options given at deploy time; each overrides the manifest.
#[derive(Debug, Clone, Default)]
pub struct DeployOptions {
    /// Memory limit.
    pub memory: Option<ByteSize>,
    /// Total time limit (CPU time and first-byte limits are capped at it).
    pub timeout: Option<Duration>,
    /// Default params, over the manifest's.
    pub params: BTreeMap<String, String>,
    /// Placement: `auto`, a device class (`cpu`, `gpu`, `fpga`, `csd`), `require:CLASS` or
    /// `prefer:CLASS`.
    pub backend_class: Option<String>,
    /// An eBPF program (built-in or registered) to deploy as the function's variant for
    /// computational-storage devices.
    pub ebpf: Option<String>,
}

/// A version ready to run.
#[derive(Debug)]
pub struct Deployed {
    /// Its record.
    pub record: FunctionRecord,
    /// What the engines need.
    pub spec: Arc<FunctionSpec>,
}

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    /// The name is not acceptable.
    #[error(
        "function name {name:?} is not valid: use 1 to {MAX_NAME} lowercase letters, digits, '-' or '_', starting with a letter or digit"
    )]
    BadName {
        /// The name.
        name: String,
    },
    /// The package is malformed.
    #[error("bad function package: {message}")]
    BadPackage {
        /// What is wrong.
        message: String,
    },
    /// The manifest names another function.
    #[error(
        "the package's manifest names function {manifest:?}, but it is being deployed as {name:?}"
    )]
    NameMismatch {
        /// The deploy name.
        name: String,
        /// The manifest's name.
        manifest: String,
    },
    /// The module does not compile or uses what the host does not offer.
    #[error("function {name} was not deployed: {source}")]
    Compile {
        /// The function.
        name: String,
        /// Why.
        #[source]
        source: CompileError,
    },
    /// A limit is larger than the node allows.
    #[error(
        "function {name} asks for {what} {asked}; this node allows at most {allowed} (functions.wasm.max_memory)"
    )]
    LimitTooLarge {
        /// The function.
        name: String,
        /// Which limit.
        what: &'static str,
        /// The value asked for.
        asked: String,
        /// The ceiling.
        allowed: String,
    },
    /// No kernel by that name.
    #[error(
        "no kernel named {name:?}: `quarry kernel ls` lists the built-in and registered kernels"
    )]
    NoSuchKernel {
        /// The name.
        name: String,
    },
    /// No eBPF program by that name.
    #[error(
        "no eBPF program named {name:?}: `quarry ebpf ls` lists the built-in and registered ones"
    )]
    NoSuchEbpf {
        /// The name.
        name: String,
    },
    /// A kernel's name cannot be deployed over.
    #[error("{name:?} is the name of a kernel; deploy under another name (e.g. `my-{name}`)")]
    KernelName {
        /// The name.
        name: String,
    },
    /// A kernel function's params do not fit the kernel.
    #[error("kernel {kernel}: {source}")]
    KernelParams {
        /// The kernel.
        kernel: String,
        /// What is wrong.
        #[source]
        source: quarry_kernels::KernelError,
    },
    /// The placement policy does not parse.
    #[error("function {name}: {source}")]
    BadPolicy {
        /// The function.
        name: String,
        /// What is wrong.
        #[source]
        source: quarry_offload::PolicyError,
    },
    /// No function by that name.
    #[error("no function named {name:?} is deployed")]
    NoSuchFunction {
        /// The name.
        name: String,
    },
    /// Triggers still use the function.
    #[error("function {name} is used by trigger(s) {triggers:?}; remove them first")]
    InUse {
        /// The function.
        name: String,
        /// The triggers' ids.
        triggers: Vec<u64>,
    },
    /// The catalog failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A module file could not be written or read.
    #[error("function file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Deployed functions, by name.
#[derive(Debug)]
pub struct FunctionRegistry {
    catalog: Arc<Catalog>,
    dir: PathBuf,
    backend: Arc<WasmBackend>,
    kernels: Arc<dyn KernelLookup>,
    ebpf: Arc<NodeEbpf>,
    live: RwLock<HashMap<String, Arc<Deployed>>>,
    /// Held by deploys and deletes.
    writes: std::sync::Mutex<()>,
}

/// Whether `name` is a valid function name (also safe as a directory name).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric()
}

impl FunctionRegistry {
    /// Opens the registry and loads every deployed function: from its compiled artifact when
    /// that loads, otherwise by compiling the module again (and rewriting the artifact).
    pub fn open(
        catalog: Arc<Catalog>,
        dir: PathBuf,
        backend: Arc<WasmBackend>,
        kernels: Arc<dyn KernelLookup>,
        ebpf: Arc<NodeEbpf>,
    ) -> Result<Self, FunctionError> {
        std::fs::create_dir_all(&dir).map_err(|source| FunctionError::Io {
            path: dir.clone(),
            source,
        })?;
        let records: Vec<FunctionRecord> = catalog.read(|txn| {
            let table = txn
                .open_table(FUNCTIONS)
                .map_err(db_err("open functions"))?;
            let mut out = Vec::new();
            for entry in table.iter().map_err(db_err("scan functions"))? {
                let (_, value) = entry.map_err(db_err("scan functions"))?;
                out.push(decode("functions", value.value())?);
            }
            Ok(out)
        })?;
        let registry = Self {
            catalog,
            dir,
            backend,
            kernels,
            ebpf,
            live: RwLock::new(HashMap::new()),
            writes: std::sync::Mutex::new(()),
        };
        let (mut cached, mut compiled) = (0, 0);
        for record in records {
            if let Some(kernel) = &record.kernel {
                match registry.kernels.kernel(kernel) {
                    Some(k) => registry.install_kernel(record, k),
                    None => tracing::warn!(
                        function = %record.name,
                        %kernel,
                        "not loaded: its kernel is gone (register it again, or `quarry fn rm` the function)"
                    ),
                }
                continue;
            }
            if let Some(program) = &record.ebpf {
                match registry.ebpf.program(program) {
                    Some(p) => registry.install_ebpf(record, p),
                    None => tracing::warn!(
                        function = %record.name,
                        %program,
                        "not loaded: its eBPF program is gone (register it again, or `quarry fn rm` the function)"
                    ),
                }
                continue;
            }
            let files = registry.files(&record.name, record.version);
            let module = match registry.backend.load_precompiled(&files.artifact) {
                Ok(m) => {
                    cached += 1;
                    m
                }
                Err(e) => {
                    tracing::info!(function = %record.name, "recompiling: {e}");
                    let bytes =
                        std::fs::read(&files.module).map_err(|source| FunctionError::Io {
                            path: files.module.clone(),
                            source,
                        })?;
                    let module = registry.backend.compile(&bytes).map_err(|source| {
                        FunctionError::Compile {
                            name: record.name.clone(),
                            source,
                        }
                    })?;
                    write_file(&files.artifact, &module_artifact(&record.name, &module)?)?;
                    compiled += 1;
                    module
                }
            };
            registry.install(record, module);
        }
        if cached + compiled > 0 {
            tracing::info!(cached, compiled, "loaded deployed functions");
        }
        Ok(registry)
    }

    /// Deploys `bytes` (a module or a package) as `name`: a new function or its next version.
    /// Blocking (compiles); call it from a blocking task.
    pub fn deploy(
        &self,
        name: &str,
        bytes: &[u8],
        options: DeployOptions,
    ) -> Result<FunctionRecord, FunctionError> {
        self.check_deploy_name(name)?;
        Self::check_policy(name, &options)?;
        let package = package::unpack(bytes)?;
        let manifest = package.manifest;
        if let Some(m) = &manifest.name
            && m != name
        {
            return Err(FunctionError::NameMismatch {
                name: name.to_owned(),
                manifest: m.clone(),
            });
        }
        let limits = self.limits(name, manifest.limits, &options)?;
        let module =
            self.backend
                .compile(&package.module)
                .map_err(|source| FunctionError::Compile {
                    name: name.to_owned(),
                    source,
                })?;
        if module.initial_memory() > limits.memory.as_u64() {
            return Err(FunctionError::Compile {
                name: name.to_owned(),
                source: CompileError::MemoryTooSmall {
                    needed: module.initial_memory(),
                    limit: limits.memory,
                },
            });
        }
        let artifact = module_artifact(name, &module)?;
        let mut params = manifest.params;
        params.extend(options.params);

        let _guard = self.write_lock();
        let version = self.get(name).map_or(1, |d| d.record.version + 1);
        let files = self.files(name, version);
        write_file(&files.module, &package.module)?;
        write_file(&files.artifact, &artifact)?;
        let record = FunctionRecord {
            name: name.to_owned(),
            version,
            description: manifest.description,
            limits,
            permissions: manifest.permissions,
            params,
            sha256: hex::encode(Sha256::digest(&package.module)),
            module_size: package.module.len() as u64,
            deployed_at: SystemTime::now(),
            kernel: None,
            ebpf: None,
            backend_class: options.backend_class,
        };
        self.commit(&record)?;
        self.install(record.clone(), module);
        self.remove_old_versions(name, version);
        tracing::info!(function = %name, version, sha256 = %record.sha256, "deployed function");
        Ok(record)
    }

    /// Deploys `kernel` (built-in or registered) as function `name` with preset params:
    /// a new function or its next version. The params given are checked against the kernel's
    /// (names and types); required ones may still come with each request.
    pub fn deploy_kernel(
        &self,
        name: &str,
        kernel: &str,
        options: DeployOptions,
    ) -> Result<FunctionRecord, FunctionError> {
        self.check_deploy_name(name)?;
        Self::check_policy(name, &options)?;
        if let Some(program) = &options.ebpf {
            self.ebpf_program(program)?;
        }
        let Some(k) = self.kernels.kernel(kernel) else {
            return Err(FunctionError::NoSuchKernel {
                name: kernel.to_owned(),
            });
        };
        quarry_kernels::Params::new(options.params.clone())
            .check_given(k.info())
            .map_err(|source| FunctionError::KernelParams {
                kernel: kernel.to_owned(),
                source,
            })?;
        let limits = self.limits(name, FunctionLimits::default(), &options)?;
        let _guard = self.write_lock();
        let version = self.get(name).map_or(1, |d| d.record.version + 1);
        let record = FunctionRecord {
            name: name.to_owned(),
            version,
            description: k.info().summary.to_string(),
            limits,
            permissions: Vec::new(),
            params: options.params,
            sha256: String::new(),
            module_size: 0,
            deployed_at: SystemTime::now(),
            kernel: Some(kernel.to_owned()),
            backend_class: options.backend_class,
            ebpf: options.ebpf,
        };
        self.commit(&record)?;
        self.install_kernel(record.clone(), k);
        // A wasm function redeployed as a kernel leaves no module behind.
        self.remove_old_versions(name, 0);
        tracing::info!(function = %name, version, %kernel, "deployed kernel function");
        Ok(record)
    }

    /// Deploys the eBPF program `program` (built-in or registered) as function `name`, run
    /// only on computational-storage devices, with preset params: a new function or its next
    /// version.
    pub fn deploy_ebpf(
        &self,
        name: &str,
        program: &str,
        options: DeployOptions,
    ) -> Result<FunctionRecord, FunctionError> {
        self.check_deploy_name(name)?;
        Self::check_policy(name, &options)?;
        let p = self.ebpf_program(program)?;
        let info = quarry_kernels::Kernel::info(p.as_ref());
        quarry_kernels::Params::new(options.params.clone())
            .check_given(info)
            .map_err(|source| FunctionError::KernelParams {
                kernel: program.to_owned(),
                source,
            })?;
        let limits = self.limits(name, FunctionLimits::default(), &options)?;
        let _guard = self.write_lock();
        let version = self.get(name).map_or(1, |d| d.record.version + 1);
        let record = FunctionRecord {
            name: name.to_owned(),
            version,
            description: info.summary.to_string(),
            limits,
            permissions: Vec::new(),
            params: options.params,
            sha256: String::new(),
            module_size: 0,
            deployed_at: SystemTime::now(),
            kernel: None,
            backend_class: options.backend_class,
            ebpf: Some(program.to_owned()),
        };
        self.commit(&record)?;
        self.install_ebpf(record.clone(), p);
        self.remove_old_versions(name, 0);
        tracing::info!(function = %name, version, %program, "deployed eBPF function");
        Ok(record)
    }

    /// Re-resolves every deployed function that runs eBPF program `program` (after a
    /// registered program was replaced), so that new invocations run the new object.
    pub fn rebind_ebpf(&self, program: &str) {
        let users: Vec<FunctionRecord> = self
            .list()
            .into_iter()
            .filter(|r| r.ebpf.as_deref() == Some(program))
            .collect();
        for record in users {
            match record
                .kernel
                .as_deref()
                .and_then(|k| self.kernels.kernel(k))
            {
                Some(kernel) => self.install_kernel(record, kernel),
                None => {
                    if let Some(p) = self.ebpf.program(program) {
                        self.install_ebpf(record, p);
                    }
                }
            }
        }
    }

    /// The deployed functions that run eBPF program `program`, by name.
    pub fn ebpf_users(&self, program: &str) -> Vec<String> {
        self.list()
            .into_iter()
            .filter(|r| r.ebpf.as_deref() == Some(program))
            .map(|r| r.name)
            .collect()
    }

    /// The node's eBPF programs.
    pub fn ebpf(&self) -> &Arc<NodeEbpf> {
        &self.ebpf
    }

    fn ebpf_program(&self, program: &str) -> Result<Arc<quarry_ebpf::EbpfKernel>, FunctionError> {
        self.ebpf
            .program(program)
            .ok_or_else(|| FunctionError::NoSuchEbpf {
                name: program.to_owned(),
            })
    }

    fn install_ebpf(&self, record: FunctionRecord, program: Arc<quarry_ebpf::EbpfKernel>) {
        let spec = Arc::new(FunctionSpec {
            name: record.name.clone(),
            version: record.version,
            limits: record.limits,
            permissions: Vec::new(),
            variants: vec![Variant::Ebpf(program)],
        });
        let name = record.name.clone();
        self.live
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name, Arc::new(Deployed { record, spec }));
    }

    /// The live version of `name`: a deployed function, or else a kernel of that name (a
    /// function of version 0 with the kernel's defaults).
    pub fn get(&self, name: &str) -> Option<Arc<Deployed>> {
        if let Some(deployed) = self
            .live
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
        {
            return Some(deployed);
        }
        let kernel = self.kernels.kernel(name)?;
        Some(Arc::new(kernel_function(name, kernel)))
    }

    /// Re-resolves every deployed function that runs kernel `kernel` (after a registered
    /// kernel was replaced), so that new invocations run the new build; running ones finish on
    /// the old.
    pub fn rebind_kernel(&self, kernel: &str) {
        let Some(k) = self.kernels.kernel(kernel) else {
            return;
        };
        let _guard = self.write_lock();
        let records: Vec<FunctionRecord> = self
            .live
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .filter(|d| d.record.kernel.as_deref() == Some(kernel))
            .map(|d| d.record.clone())
            .collect();
        for record in records {
            self.install_kernel(record, Arc::clone(&k));
        }
    }

    /// The deployed functions that run kernel `kernel`, by name.
    pub fn kernel_users(&self, kernel: &str) -> Vec<String> {
        self.list()
            .into_iter()
            .filter(|r| r.kernel.as_deref() == Some(kernel))
            .map(|r| r.name)
            .collect()
    }

    /// Whether a function named `name` is deployed (kernels' implicit functions aside).
    pub fn is_deployed(&self, name: &str) -> bool {
        self.live
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains_key(name)
    }

    /// The kernels functions can run.
    pub fn kernels(&self) -> &Arc<dyn KernelLookup> {
        &self.kernels
    }

    /// Every deployed function, by name.
    pub fn list(&self) -> Vec<FunctionRecord> {
        let mut out: Vec<FunctionRecord> = self
            .live
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .map(|d| d.record.clone())
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Deletes `name` unless `users` (the triggers that name it) is non-empty. Invocations
    /// already running finish.
    pub fn remove(&self, name: &str, users: Vec<u64>) -> Result<FunctionRecord, FunctionError> {
        let _guard = self.write_lock();
        let deployed = self
            .live
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned();
        let Some(deployed) = deployed else {
            return Err(FunctionError::NoSuchFunction {
                name: name.to_owned(),
            });
        };
        if !users.is_empty() {
            return Err(FunctionError::InUse {
                name: name.to_owned(),
                triggers: users,
            });
        }
        self.catalog.write(true, |txn| {
            let mut table = txn
                .open_table(FUNCTIONS)
                .map_err(db_err("open functions"))?;
            table.remove(name).map_err(db_err("remove function"))?;
            Ok(())
        })?;
        self.live
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(name);
        let dir = self.dir.join(name);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            tracing::warn!(path = %dir.display(), "cannot remove function files: {e}");
        }
        tracing::info!(function = %name, "deleted function");
        Ok(deployed.record.clone())
    }

    fn check_policy(name: &str, options: &DeployOptions) -> Result<(), FunctionError> {
        if let Some(text) = &options.backend_class {
            text.parse::<quarry_offload::Policy>()
                .map_err(|source| FunctionError::BadPolicy {
                    name: name.to_owned(),
                    source,
                })?;
        }
        Ok(())
    }

    fn check_deploy_name(&self, name: &str) -> Result<(), FunctionError> {
        if !valid_name(name) {
            return Err(FunctionError::BadName {
                name: name.to_owned(),
            });
        }
        if self.kernels.kernel(name).is_some() {
            return Err(FunctionError::KernelName {
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    /// Commits `record` as the live version of its name.
    fn commit(&self, record: &FunctionRecord) -> Result<(), FunctionError> {
        let value = encode(record);
        self.catalog.write(true, |txn| {
            let mut table = txn
                .open_table(FUNCTIONS)
                .map_err(db_err("open functions"))?;
            table
                .insert(record.name.as_str(), value.as_slice())
                .map_err(db_err("write function"))?;
            Ok(())
        })?;
        Ok(())
    }

    fn install_kernel(&self, record: FunctionRecord, kernel: Arc<dyn quarry_kernels::Kernel>) {
        let spec = Arc::new(FunctionSpec {
            name: record.name.clone(),
            version: record.version,
            limits: record.limits,
            permissions: Vec::new(),
            variants: std::iter::once(Variant::Kernel(kernel))
                .chain(
                    record
                        .ebpf
                        .as_deref()
                        .and_then(|p| self.ebpf.program(p))
                        .map(Variant::Ebpf),
                )
                .collect(),
        });
        let name = record.name.clone();
        self.live
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name, Arc::new(Deployed { record, spec }));
    }

    /// Serialises deploys and deletes (the version number and files of one name).
    fn write_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn limits(
        &self,
        name: &str,
        manifest: FunctionLimits,
        options: &DeployOptions,
    ) -> Result<FunctionLimits, FunctionError> {
        let mut limits = manifest;
        if let Some(memory) = options.memory {
            limits.memory = memory;
        }
        if let Some(timeout) = options.timeout {
            limits.timeout = timeout;
            limits.cpu_time = limits.cpu_time.min(timeout);
            limits.first_byte_timeout = limits.first_byte_timeout.min(timeout);
        }
        let ceiling = self.backend.config().max_memory;
        if limits.memory > ceiling {
            return Err(FunctionError::LimitTooLarge {
                name: name.to_owned(),
                what: "memory",
                asked: limits.memory.to_string(),
                allowed: ceiling.to_string(),
            });
        }
        Ok(limits)
    }

    fn install(
        &self,
        record: FunctionRecord,
        module: Arc<quarry_offload::backend::wasm::WasmModule>,
    ) {
        let spec = Arc::new(FunctionSpec {
            name: record.name.clone(),
            version: record.version,
            limits: record.limits,
            permissions: record.permissions.clone(),
            variants: vec![Variant::Wasm(module)],
        });
        let name = record.name.clone();
        self.live
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name, Arc::new(Deployed { record, spec }));
    }

    fn files(&self, name: &str, version: u64) -> FunctionFiles {
        let dir = self.dir.join(name);
        FunctionFiles {
            module: dir.join(format!("v{version}.wasm")),
            artifact: dir.join(format!("v{version}.cwasm")),
        }
    }

    fn remove_old_versions(&self, name: &str, current: u64) {
        let Ok(entries) = std::fs::read_dir(self.dir.join(name)) else {
            return;
        };
        let keep = [format!("v{current}.wasm"), format!("v{current}.cwasm")];
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if !keep.contains(&file) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// A kernel as the function of its own name (version 0, the kernel's defaults).
fn kernel_function(name: &str, kernel: Arc<dyn quarry_kernels::Kernel>) -> Deployed {
    let record = FunctionRecord {
        name: name.to_owned(),
        version: 0,
        description: kernel.info().summary.to_string(),
        limits: FunctionLimits::default(),
        permissions: Vec::new(),
        params: BTreeMap::new(),
        sha256: String::new(),
        module_size: 0,
        deployed_at: SystemTime::UNIX_EPOCH,
        kernel: Some(name.to_owned()),
        ebpf: None,
        backend_class: None,
    };
    let spec = Arc::new(FunctionSpec {
        name: name.to_owned(),
        version: 0,
        limits: record.limits,
        permissions: Vec::new(),
        variants: vec![Variant::Kernel(kernel)],
    });
    Deployed { record, spec }
}

/// The files of one version.
struct FunctionFiles {
    module: PathBuf,
    artifact: PathBuf,
}

fn module_artifact(
    name: &str,
    module: &quarry_offload::backend::wasm::WasmModule,
) -> Result<Vec<u8>, FunctionError> {
    module.serialize().map_err(|source| FunctionError::Compile {
        name: name.to_owned(),
        source,
    })
}

/// Writes `bytes` to `path` durably, as a function file.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), FunctionError> {
    write_durably(path, bytes).map_err(|source| FunctionError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Writes `bytes` to `path` durably: a temporary file, fsync, rename, directory fsync.
fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir).and_then(|d| d.sync_all())
}
