// SPDX-License-Identifier: Apache-2.0
//! User kernels: OpenCL kernels registered on the node (`quarry kernel register`), next to the
//! built-in ones.
//!
//! Registering builds the code on every OpenCL device of the node through a
//! [`KernelCompiler`] (the agent provides the OpenCL one); a build that fails returns the
//! compiler's log and changes nothing. The code is written under `kernels/` in the data
//! directory (`NAME.cl` for OpenCL C source, `NAME.bin` for a prebuilt binary), fsynced, and
//! then the record is committed to the catalog. At start every registered kernel is built
//! again (the OpenCL program cache makes that cheap); one that no longer builds is left out
//! with a warning naming it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::SystemTime;

use quarry_kernels::{Kernel, Shape};
use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::catalog::{Catalog, CatalogError, USER_KERNELS, db_err, decode, encode};
use super::kernels::{BuiltinKernels, KernelLookup};
use super::{valid_name, write_durably};

/// Largest kernel source or binary accepted.
pub const MAX_KERNEL_BYTES: usize = 16 << 20;

/// A registered kernel as the catalog keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserKernelRecord {
    /// Its name (also the name of the function that runs it with its defaults).
    pub name: String,
    /// One line saying what it computes.
    pub summary: String,
    /// `filter`, `map` or `reduce`.
    pub shape: String,
    /// How its input is cut into records: `bytes`, `lines`, `csv` or `records:N`.
    pub framing: String,
    /// For a prebuilt binary, the name of the device it was built for; `None`: OpenCL C source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_for: Option<String>,
    /// SHA-256 of the code, hex.
    pub sha256: String,
    /// Size of the code.
    pub size: u64,
    /// When it was registered.
    pub registered_at: SystemTime,
}

/// What a registration asks for.
#[derive(Debug, Clone, Default)]
pub struct UserKernelRequest {
    /// The name.
    pub name: String,
    /// One line saying what it computes (empty: a default naming the shape).
    pub summary: String,
    /// `filter`, `map` or `reduce`.
    pub shape: String,
    /// `bytes`, `lines`, `csv` or `records:N`.
    pub framing: String,
    /// The device a prebuilt binary is for; `None`: the code is OpenCL C source.
    pub binary_for: Option<String>,
}

/// Why a user kernel could not be built.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KernelBuildError {
    /// The node has no OpenCL runtime or device to build on.
    #[error("this node cannot run OpenCL kernels: {0}")]
    Unavailable(String),
    /// The request is not buildable as given (bad framing, unknown device, ...).
    #[error("{0}")]
    Invalid(String),
    /// The OpenCL compiler refused the code; the message carries its log for every device.
    #[error("the OpenCL build failed:\n{log}")]
    Build {
        /// The build log, per device.
        log: String,
    },
}

/// Builds user kernels; the agent implements it over the node's OpenCL devices.
pub trait KernelCompiler: Send + Sync + fmt::Debug + 'static {
    /// Builds `code` as described by `record` on every device it can run on.
    fn compile(
        &self,
        record: &UserKernelRecord,
        code: &[u8],
    ) -> Result<Arc<dyn Kernel>, KernelBuildError>;
}

/// Why a user-kernel operation failed.
#[derive(Debug, thiserror::Error)]
pub enum UserKernelError {
    /// The name is not acceptable.
    #[error(
        "kernel name {name:?} is not valid: use 1 to 64 lowercase letters, digits, '-' or '_', starting with a letter or digit"
    )]
    BadName {
        /// The name.
        name: String,
    },
    /// The name is taken by a built-in kernel or a deployed function.
    #[error("{name:?} is already the name of {what}; register under another name")]
    NameTaken {
        /// The name.
        name: String,
        /// What holds it: `a built-in kernel`, `a deployed function`.
        what: &'static str,
    },
    /// A field of the request is not acceptable.
    #[error("{0}")]
    BadRequest(String),
    /// The code did not build (or cannot be built on this node).
    #[error("kernel {name} was not registered: {source}")]
    Build {
        /// The kernel.
        name: String,
        /// Why.
        #[source]
        source: KernelBuildError,
    },
    /// No user kernel by that name.
    #[error("no registered kernel named {name:?} (`quarry kernel ls` lists them)")]
    NoSuchKernel {
        /// The name.
        name: String,
    },
    /// A built-in kernel cannot be removed.
    #[error("{name:?} is a built-in kernel; only registered kernels can be removed")]
    Builtin {
        /// The name.
        name: String,
    },
    /// Functions or triggers still use the kernel.
    #[error("kernel {name} is used by {users}; remove them first")]
    InUse {
        /// The kernel.
        name: String,
        /// Who uses it, e.g. `function top-errors, trigger 3`.
        users: String,
    },
    /// The catalog failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A code file could not be written or read.
    #[error("kernel file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// A registered kernel, built.
#[derive(Debug, Clone)]
struct Loaded {
    record: UserKernelRecord,
    kernel: Arc<dyn Kernel>,
}

/// The node's kernels: the built-in ones and the registered ones.
#[derive(Debug)]
pub struct NodeKernels {
    catalog: Arc<Catalog>,
    dir: PathBuf,
    compiler: Arc<dyn KernelCompiler>,
    user: RwLock<BTreeMap<String, Loaded>>,
    writes: Mutex<()>,
}

impl NodeKernels {
    /// Opens the registered kernels (code under `dir`) and builds each with `compiler`; one
    /// that does not build is left out, with a warning.
    pub fn open(
        catalog: Arc<Catalog>,
        dir: PathBuf,
        compiler: Arc<dyn KernelCompiler>,
    ) -> Result<Self, UserKernelError> {
        let records: Vec<UserKernelRecord> = catalog.read(|txn| {
            let table = txn
                .open_table(USER_KERNELS)
                .map_err(db_err("open user kernels"))?;
            let mut out = Vec::new();
            for entry in table.iter().map_err(db_err("scan user kernels"))? {
                let (_, value) = entry.map_err(db_err("scan user kernels"))?;
                out.push(decode("user_kernels", value.value())?);
            }
            Ok(out)
        })?;
        let kernels = Self {
            catalog,
            dir,
            compiler,
            user: RwLock::new(BTreeMap::new()),
            writes: Mutex::new(()),
        };
        let mut loaded = kernels.user.write().unwrap_or_else(PoisonError::into_inner);
        for record in records {
            let path = kernels.code_path(&record);
            let built = std::fs::read(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
                .and_then(|code| {
                    kernels
                        .compiler
                        .compile(&record, &code)
                        .map_err(|e| e.to_string())
                });
            match built {
                Ok(kernel) => {
                    loaded.insert(record.name.clone(), Loaded { record, kernel });
                }
                Err(e) => tracing::warn!(
                    kernel = %record.name,
                    "registered kernel not loaded: {e}; register it again or `quarry kernel rm` it"
                ),
            }
        }
        if !loaded.is_empty() {
            tracing::info!(count = loaded.len(), "loaded registered kernels");
        }
        drop(loaded);
        Ok(kernels)
    }

    /// Registers (or replaces) a kernel: checks the request, builds `code`, writes it and
    /// commits the record. Blocking (builds); call it from a blocking task. `taken` says
    /// whether a deployed function already has the name.
    pub fn register(
        &self,
        request: UserKernelRequest,
        code: &[u8],
        taken: impl Fn(&str) -> bool,
    ) -> Result<UserKernelRecord, UserKernelError> {
        let name = request.name.clone();
        if !valid_name(&name) {
            return Err(UserKernelError::BadName { name });
        }
        if quarry_kernels::find(&name).is_some() {
            return Err(UserKernelError::NameTaken {
                name,
                what: "a built-in kernel",
            });
        }
        if taken(&name) {
            return Err(UserKernelError::NameTaken {
                name,
                what: "a deployed function",
            });
        }
        let shape = parse_shape(&request.shape)?;
        check_framing(&request.framing)?;
        if code.is_empty() {
            return Err(UserKernelError::BadRequest(
                "the kernel code is empty: send OpenCL C source (or a binary with binary_for)"
                    .to_owned(),
            ));
        }
        if code.len() > MAX_KERNEL_BYTES {
            return Err(UserKernelError::BadRequest(format!(
                "the kernel code is {} bytes; at most {MAX_KERNEL_BYTES} are accepted",
                code.len()
            )));
        }
        if request.binary_for.is_none() && std::str::from_utf8(code).is_err() {
            return Err(UserKernelError::BadRequest(
                "OpenCL C source must be UTF-8 text; for a prebuilt binary give binary_for=DEVICE"
                    .to_owned(),
            ));
        }
        let summary = if request.summary.trim().is_empty() {
            format!("registered OpenCL {} kernel", shape.as_str())
        } else {
            request.summary.trim().to_owned()
        };
        let record = UserKernelRecord {
            name: name.clone(),
            summary,
            shape: shape.as_str().to_owned(),
            framing: request.framing.trim().to_owned(),
            binary_for: request.binary_for,
            sha256: hex::encode(Sha256::digest(code)),
            size: code.len() as u64,
            registered_at: SystemTime::now(),
        };
        let kernel =
            self.compiler
                .compile(&record, code)
                .map_err(|source| UserKernelError::Build {
                    name: name.clone(),
                    source,
                })?;

        let _guard = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
        let path = self.code_path(&record);
        write_durably(&path, code).map_err(|source| UserKernelError::Io {
            path: path.clone(),
            source,
        })?;
        let value = encode(&record);
        self.catalog.write(true, |txn| {
            let mut table = txn
                .open_table(USER_KERNELS)
                .map_err(db_err("open user kernels"))?;
            table
                .insert(name.as_str(), value.as_slice())
                .map_err(db_err("write user kernel"))?;
            Ok(())
        })?;
        let previous = self
            .user
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                name.clone(),
                Loaded {
                    record: record.clone(),
                    kernel,
                },
            );
        // A source kernel replaced by a binary (or back) leaves its other file behind.
        if let Some(old) = previous {
            let old_path = self.code_path(&old.record);
            if old_path != path {
                let _ = std::fs::remove_file(old_path);
            }
        }
        tracing::info!(kernel = %name, sha256 = %record.sha256, "registered kernel");
        Ok(record)
    }

    /// Removes the registered kernel `name` unless `users` (functions and triggers that use
    /// it, described) is non-empty.
    pub fn remove(
        &self,
        name: &str,
        users: &[String],
    ) -> Result<UserKernelRecord, UserKernelError> {
        if quarry_kernels::find(name).is_some() {
            return Err(UserKernelError::Builtin {
                name: name.to_owned(),
            });
        }
        let _guard = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(loaded) = self.loaded(name) else {
            return Err(UserKernelError::NoSuchKernel {
                name: name.to_owned(),
            });
        };
        if !users.is_empty() {
            return Err(UserKernelError::InUse {
                name: name.to_owned(),
                users: users.join(", "),
            });
        }
        self.catalog.write(true, |txn| {
            let mut table = txn
                .open_table(USER_KERNELS)
                .map_err(db_err("open user kernels"))?;
            table.remove(name).map_err(db_err("remove user kernel"))?;
            Ok(())
        })?;
        self.user
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
        let path = self.code_path(&loaded.record);
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!(path = %path.display(), "cannot remove kernel file: {e}");
        }
        tracing::info!(kernel = %name, "removed registered kernel");
        Ok(loaded.record)
    }

    /// The record of the registered kernel `name`.
    pub fn record(&self, name: &str) -> Option<UserKernelRecord> {
        self.loaded(name).map(|l| l.record)
    }

    /// Every registered kernel's record, by name.
    pub fn records(&self) -> Vec<UserKernelRecord> {
        self.user
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|l| l.record.clone())
            .collect()
    }

    fn loaded(&self, name: &str) -> Option<Loaded> {
        self.user
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    fn code_path(&self, record: &UserKernelRecord) -> PathBuf {
        let ext = if record.binary_for.is_some() {
            "bin"
        } else {
            "cl"
        };
        self.dir.join(format!("{}.{ext}", record.name))
    }
}

impl KernelLookup for NodeKernels {
    fn kernel(&self, name: &str) -> Option<Arc<dyn Kernel>> {
        BuiltinKernels
            .kernel(name)
            .or_else(|| self.loaded(name).map(|l| l.kernel))
    }

    fn all(&self) -> Vec<Arc<dyn Kernel>> {
        let mut out = BuiltinKernels.all();
        out.extend(
            self.user
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .values()
                .map(|l| Arc::clone(&l.kernel)),
        );
        out
    }
}

/// A compiler for nodes without OpenCL: every registration fails with `reason`.
#[derive(Debug, Clone)]
pub struct NoCompiler {
    /// Why the node cannot build kernels.
    pub reason: String,
}

impl KernelCompiler for NoCompiler {
    fn compile(
        &self,
        _record: &UserKernelRecord,
        _code: &[u8],
    ) -> Result<Arc<dyn Kernel>, KernelBuildError> {
        Err(KernelBuildError::Unavailable(self.reason.clone()))
    }
}

fn parse_shape(text: &str) -> Result<Shape, UserKernelError> {
    match text.trim() {
        "filter" => Ok(Shape::Filter),
        "map" => Ok(Shape::Map),
        "reduce" => Ok(Shape::Reduce),
        other => Err(UserKernelError::BadRequest(format!(
            "shape {other:?} is not one of filter, map, reduce"
        ))),
    }
}

fn check_framing(text: &str) -> Result<(), UserKernelError> {
    let text = text.trim();
    let ok = match text {
        "bytes" | "lines" | "csv" => true,
        _ => text
            .strip_prefix("records:")
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n > 0),
    };
    if ok {
        Ok(())
    } else {
        Err(UserKernelError::BadRequest(format!(
            "framing {text:?} is not one of bytes, lines, csv, records:N (N > 0 bytes per record)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use quarry_kernels::{BoundKernel, KernelError, KernelInfo, Params};

    use super::*;

    /// Refuses code containing `syntax error` with a log naming the line; counts builds.
    #[derive(Debug, Default)]
    struct FakeCompiler {
        builds: AtomicUsize,
    }

    #[derive(Debug)]
    struct Built {
        info: KernelInfo,
    }

    impl Kernel for Built {
        fn info(&self) -> &KernelInfo {
            &self.info
        }

        fn bind(&self, _params: &Params) -> Result<Arc<dyn BoundKernel>, KernelError> {
            Err(KernelError::Input("not runnable in this test".to_owned()))
        }
    }

    impl KernelCompiler for FakeCompiler {
        fn compile(
            &self,
            record: &UserKernelRecord,
            code: &[u8],
        ) -> Result<Arc<dyn Kernel>, KernelBuildError> {
            self.builds.fetch_add(1, Ordering::SeqCst);
            if String::from_utf8_lossy(code).contains("syntax error") {
                return Err(KernelBuildError::Build {
                    log: "device pthread: <source>:1:1: error: expected identifier".to_owned(),
                });
            }
            Ok(Arc::new(Built {
                info: KernelInfo {
                    name: Cow::Owned(record.name.clone()),
                    summary: Cow::Owned(record.summary.clone()),
                    shape: Shape::Filter,
                    params: Cow::Owned(Vec::new()),
                    cpu: false,
                    opencl: true,
                },
            }))
        }
    }

    fn request(name: &str) -> UserKernelRequest {
        UserKernelRequest {
            name: name.to_owned(),
            summary: "lines with a marker".to_owned(),
            shape: "filter".to_owned(),
            framing: "lines".to_owned(),
            binary_for: None,
        }
    }

    fn open(dir: &std::path::Path, compiler: Arc<FakeCompiler>) -> NodeKernels {
        let catalog = Arc::new(Catalog::open(dir).unwrap());
        NodeKernels::open(catalog, dir.join("kernels"), compiler).unwrap()
    }

    #[test]
    fn a_registered_kernel_is_found_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let compiler = Arc::new(FakeCompiler::default());
        let kernels = open(dir.path(), Arc::clone(&compiler));
        let record = kernels
            .register(request("marker"), b"__kernel void k() {}", |_| false)
            .unwrap();
        assert_eq!(record.shape, "filter");
        assert!(dir.path().join("kernels/marker.cl").exists());
        assert!(kernels.kernel("marker").is_some());
        assert!(kernels.kernel("grep").is_some(), "built-ins stay visible");
        assert_eq!(kernels.all().len(), quarry_kernels::builtin().len() + 1);
        drop(kernels);

        let reopened = open(dir.path(), Arc::clone(&compiler));
        assert_eq!(reopened.records(), vec![record]);
        assert!(reopened.kernel("marker").is_some());
        assert_eq!(
            compiler.builds.load(Ordering::SeqCst),
            2,
            "rebuilt at start"
        );
    }

    #[test]
    fn a_build_failure_returns_the_log_and_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let kernels = open(dir.path(), Arc::new(FakeCompiler::default()));
        let err = kernels
            .register(request("broken"), b"syntax error here", |_| false)
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("expected identifier"), "{text}");
        assert!(matches!(err, UserKernelError::Build { .. }));
        assert!(kernels.kernel("broken").is_none());
        assert!(kernels.records().is_empty());
        assert!(!dir.path().join("kernels/broken.cl").exists());
    }

    #[test]
    fn bad_requests_are_refused_naming_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let kernels = open(dir.path(), Arc::new(FakeCompiler::default()));
        let code = b"__kernel void k() {}";
        let cases: Vec<(UserKernelRequest, &[u8], &str)> = vec![
            (request("Bad Name"), code, "not valid"),
            (request("grep"), code, "built-in kernel"),
            (request("taken"), code, "deployed function"),
            (
                UserKernelRequest {
                    shape: "sort".to_owned(),
                    ..request("k1")
                },
                code,
                "filter, map, reduce",
            ),
            (
                UserKernelRequest {
                    framing: "records:0".to_owned(),
                    ..request("k2")
                },
                code,
                "records:N",
            ),
            (request("k3"), b"", "empty"),
            (request("k4"), b"\xff\xfe", "UTF-8"),
        ];
        for (req, code, needle) in cases {
            let err = kernels
                .register(req.clone(), code, |n| n == "taken")
                .unwrap_err();
            assert!(err.to_string().contains(needle), "{req:?}: {err}");
        }
        assert!(kernels.records().is_empty());
    }

    #[test]
    fn removal_is_refused_while_in_use_and_for_built_ins() {
        let dir = tempfile::tempdir().unwrap();
        let kernels = open(dir.path(), Arc::new(FakeCompiler::default()));
        kernels
            .register(request("marker"), b"__kernel void k() {}", |_| false)
            .unwrap();
        let err = kernels
            .remove("marker", &["function top".to_owned()])
            .unwrap_err();
        assert!(err.to_string().contains("function top"), "{err}");
        assert!(kernels.kernel("marker").is_some());
        assert!(matches!(
            kernels.remove("grep", &[]),
            Err(UserKernelError::Builtin { .. })
        ));
        assert!(matches!(
            kernels.remove("nothing", &[]),
            Err(UserKernelError::NoSuchKernel { .. })
        ));
        kernels.remove("marker", &[]).unwrap();
        assert!(kernels.kernel("marker").is_none());
        assert!(!dir.path().join("kernels/marker.cl").exists());
        drop(kernels);
        let reopened = open(dir.path(), Arc::new(FakeCompiler::default()));
        assert!(reopened.records().is_empty());
    }

    #[test]
    fn a_binary_kernel_keeps_its_device_and_replaces_the_source() {
        let dir = tempfile::tempdir().unwrap();
        let kernels = open(dir.path(), Arc::new(FakeCompiler::default()));
        kernels
            .register(request("marker"), b"__kernel void k() {}", |_| false)
            .unwrap();
        let record = kernels
            .register(
                UserKernelRequest {
                    binary_for: Some("board0".to_owned()),
                    ..request("marker")
                },
                b"\x7fELF\xff",
                |_| false,
            )
            .unwrap();
        assert_eq!(record.binary_for.as_deref(), Some("board0"));
        assert!(dir.path().join("kernels/marker.bin").exists());
        assert!(!dir.path().join("kernels/marker.cl").exists());
        assert_eq!(kernels.records().len(), 1);
    }
}
