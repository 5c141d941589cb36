// SPDX-License-Identifier: Apache-2.0
//! eBPF device programs on the node: the built-in ones (`quarry_ebpf::builtin`) and those users
//! register (`quarry ebpf register`), which functions run on computational-storage devices.
//!
//! Registering loads the ELF object in the VM's loader, so an object that is not an ELF, not
//! BPF, lacks the `quarry/chunk` section, calls an unknown helper or is too large is refused
//! with the loader's message and nothing is kept. The object is written under `ebpf/` in the
//! data directory (`NAME.o`), fsynced, and then the record is committed to the catalog. At
//! start every registered program is loaded again; one that no longer loads is left out with
//! a warning naming it.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::SystemTime;

use quarry_ebpf::{EbpfKernel, KernelSpec, Limits, LoadError, Program};
use quarry_kernels::{Framing, Kernel, ParamSpec, ParamType, Shape};
use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::catalog::{Catalog, CatalogError, USER_EBPF, db_err, decode, encode};
use super::kernels::ParamListing;
use super::{valid_name, write_durably};

/// A registered program as the catalog keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEbpfRecord {
    /// Its name.
    pub name: String,
    /// One line saying what it computes.
    pub summary: String,
    /// `filter`, `map` or `reduce`.
    pub shape: String,
    /// How its input is cut into records: `bytes`, `lines`, `csv` or `records:N`.
    pub framing: String,
    /// The parameters it reads: `NAME` (required) or `NAME=DEFAULT`.
    #[serde(default)]
    pub params: Vec<String>,
    /// SHA-256 of the ELF object, hex.
    pub sha256: String,
    /// Size of the object.
    pub size: u64,
    /// Instruction slots in its functions.
    pub instructions: u64,
    /// When it was registered.
    pub registered_at: SystemTime,
}

/// What a registration asks for.
#[derive(Debug, Clone, Default)]
pub struct UserEbpfRequest {
    /// The name.
    pub name: String,
    /// One line saying what it computes (empty: a default naming the shape).
    pub summary: String,
    /// `filter`, `map` or `reduce`.
    pub shape: String,
    /// `bytes`, `lines`, `csv` or `records:N`.
    pub framing: String,
    /// The parameters it reads: `NAME` (required) or `NAME=DEFAULT`.
    pub params: Vec<String>,
}

/// Why an eBPF-program operation failed.
#[derive(Debug, thiserror::Error)]
pub enum UserEbpfError {
    /// The name is not acceptable.
    #[error(
        "eBPF program name {name:?} is not valid: use 1 to 64 lowercase letters, digits, '-' or '_', starting with a letter or digit"
    )]
    BadName {
        /// The name.
        name: String,
    },
    /// The name is that of a built-in program.
    #[error(
        "{name:?} is a built-in eBPF program; register under another name, or remove only registered programs"
    )]
    Builtin {
        /// The name.
        name: String,
    },
    /// A field of the request is not acceptable.
    #[error("{0}")]
    BadRequest(String),
    /// The object is not a program the VM runs.
    #[error("eBPF program {name} was not registered: {source}")]
    Invalid {
        /// The program.
        name: String,
        /// The loader's reason.
        #[source]
        source: LoadError,
    },
    /// No registered program by that name.
    #[error("no eBPF program named {name:?} (`quarry ebpf ls` lists them)")]
    NoSuchProgram {
        /// The name.
        name: String,
    },
    /// Functions still use the program.
    #[error("eBPF program {name} is used by {users}; remove them first")]
    InUse {
        /// The program.
        name: String,
        /// Who uses it, e.g. `function scan-errors`.
        users: String,
    },
    /// The catalog failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The object file could not be written or read.
    #[error("eBPF program file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// A program as listings show it (`GET /v1/ebpf`, `quarry ebpf ls`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EbpfListing {
    /// Its name.
    pub name: String,
    /// `builtin` or `user`.
    pub origin: String,
    /// What it computes.
    pub summary: String,
    /// `map`, `filter`, `reduce`.
    pub shape: String,
    /// How its input is cut.
    pub framing: String,
    /// Its parameters.
    pub params: Vec<ParamListing>,
    /// Instruction slots (0 for an absent built-in).
    pub instructions: u64,
    /// For a built-in: whether this build holds it (the `ebpf` feature).
    pub available: bool,
    /// For a registered program: its record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration: Option<UserEbpfRecord>,
}

/// A registered program, loaded.
#[derive(Debug, Clone)]
struct Loaded {
    record: UserEbpfRecord,
    kernel: Arc<EbpfKernel>,
}

/// The node's eBPF programs: the built-in ones and the registered ones.
#[derive(Debug)]
pub struct NodeEbpf {
    catalog: Arc<Catalog>,
    dir: PathBuf,
    limits: Limits,
    builtin: BTreeMap<&'static str, Arc<EbpfKernel>>,
    user: RwLock<BTreeMap<String, Loaded>>,
    writes: Mutex<()>,
}

impl NodeEbpf {
    /// Opens the registered programs (objects under `dir`) and loads each under `limits`; one
    /// that does not load is left out, with a warning.
    pub fn open(
        catalog: Arc<Catalog>,
        dir: PathBuf,
        limits: Limits,
    ) -> Result<Self, UserEbpfError> {
        let records: Vec<UserEbpfRecord> = catalog.read(|txn| {
            let table = txn
                .open_table(USER_EBPF)
                .map_err(db_err("open user ebpf programs"))?;
            let mut out = Vec::new();
            for entry in table.iter().map_err(db_err("scan user ebpf programs"))? {
                let (_, value) = entry.map_err(db_err("scan user ebpf programs"))?;
                out.push(decode("user_ebpf", value.value())?);
            }
            Ok(out)
        })?;
        let builtin = quarry_ebpf::builtin::all()
            .iter()
            .filter_map(|b| match quarry_ebpf::builtin::kernel(b.name, limits) {
                Ok(kernel) => Some((b.name, Arc::new(kernel))),
                Err(e) => {
                    tracing::debug!(program = b.name, "built-in eBPF program absent: {e}");
                    None
                }
            })
            .collect();
        let node = Self {
            catalog,
            dir,
            limits,
            builtin,
            user: RwLock::new(BTreeMap::new()),
            writes: Mutex::new(()),
        };
        let mut loaded = node.user.write().unwrap_or_else(PoisonError::into_inner);
        for record in records {
            let path = node.object_path(&record.name);
            let kernel = std::fs::read(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
                .and_then(|elf| node.load(&record, &elf).map_err(|e| e.to_string()));
            match kernel {
                Ok(kernel) => {
                    loaded.insert(record.name.clone(), Loaded { record, kernel });
                }
                Err(e) => tracing::warn!(
                    program = %record.name,
                    "registered eBPF program not loaded: {e}; register it again or `quarry ebpf rm` it"
                ),
            }
        }
        if !loaded.is_empty() {
            tracing::info!(count = loaded.len(), "loaded registered eBPF programs");
        }
        drop(loaded);
        Ok(node)
    }

    /// Registers (or replaces) a program: checks the request, loads `elf` in the VM's loader,
    /// writes it and commits the record.
    pub fn register(
        &self,
        request: UserEbpfRequest,
        elf: &[u8],
    ) -> Result<UserEbpfRecord, UserEbpfError> {
        let name = request.name.clone();
        if !valid_name(&name) {
            return Err(UserEbpfError::BadName { name });
        }
        if quarry_ebpf::builtin::find(&name).is_ok() {
            return Err(UserEbpfError::Builtin { name });
        }
        let shape = parse_shape(&request.shape)?;
        parse_framing(&request.framing)?;
        param_specs(&request.params)?;
        let summary = if request.summary.trim().is_empty() {
            format!("registered eBPF {} program", shape.as_str())
        } else {
            request.summary.trim().to_owned()
        };
        let mut record = UserEbpfRecord {
            name: name.clone(),
            summary,
            shape: shape.as_str().to_owned(),
            framing: request.framing.trim().to_owned(),
            params: request.params.iter().map(|p| p.trim().to_owned()).collect(),
            sha256: hex::encode(Sha256::digest(elf)),
            size: elf.len() as u64,
            instructions: 0,
            registered_at: SystemTime::now(),
        };
        let kernel = self.load(&record, elf)?;
        record.instructions = kernel.program().instruction_count() as u64;

        let _guard = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
        let path = self.object_path(&name);
        write_durably(&path, elf).map_err(|source| UserEbpfError::Io {
            path: path.clone(),
            source,
        })?;
        let value = encode(&record);
        self.catalog.write(true, |txn| {
            let mut table = txn
                .open_table(USER_EBPF)
                .map_err(db_err("open user ebpf programs"))?;
            table
                .insert(name.as_str(), value.as_slice())
                .map_err(db_err("write user ebpf program"))?;
            Ok(())
        })?;
        self.user
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                name.clone(),
                Loaded {
                    record: record.clone(),
                    kernel,
                },
            );
        tracing::info!(program = %name, sha256 = %record.sha256, "registered eBPF program");
        Ok(record)
    }

    /// Removes the registered program `name` unless `users` (the functions that run it,
    /// described) is non-empty.
    pub fn remove(&self, name: &str, users: &[String]) -> Result<UserEbpfRecord, UserEbpfError> {
        if quarry_ebpf::builtin::find(name).is_ok() {
            return Err(UserEbpfError::Builtin {
                name: name.to_owned(),
            });
        }
        let _guard = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(record) = self.record(name) else {
            return Err(UserEbpfError::NoSuchProgram {
                name: name.to_owned(),
            });
        };
        if !users.is_empty() {
            return Err(UserEbpfError::InUse {
                name: name.to_owned(),
                users: users.join(", "),
            });
        }
        self.catalog.write(true, |txn| {
            let mut table = txn
                .open_table(USER_EBPF)
                .map_err(db_err("open user ebpf programs"))?;
            table
                .remove(name)
                .map_err(db_err("remove user ebpf program"))?;
            Ok(())
        })?;
        self.user
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
        let path = self.object_path(name);
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!(path = %path.display(), "cannot remove eBPF program file: {e}");
        }
        tracing::info!(program = %name, "removed registered eBPF program");
        Ok(record)
    }

    /// The program called `name`, built-in or registered, as a kernel.
    pub fn program(&self, name: &str) -> Option<Arc<EbpfKernel>> {
        self.builtin.get(name).cloned().or_else(|| {
            self.user
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .get(name)
                .map(|l| Arc::clone(&l.kernel))
        })
    }

    /// The record of the registered program `name`.
    pub fn record(&self, name: &str) -> Option<UserEbpfRecord> {
        self.user
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .map(|l| l.record.clone())
    }

    /// Every program, built-in first, then registered, by name.
    pub fn listings(&self) -> Vec<EbpfListing> {
        let mut out: Vec<EbpfListing> = quarry_ebpf::builtin::all()
            .iter()
            .map(|b| match self.builtin.get(b.name) {
                Some(kernel) => listing(kernel, "builtin", None),
                None => EbpfListing {
                    name: b.name.to_owned(),
                    origin: "builtin".to_owned(),
                    summary: b.summary.to_owned(),
                    shape: b.shape.as_str().to_owned(),
                    framing: framing_text(b.framing),
                    params: b.params.iter().map(param_listing).collect(),
                    instructions: 0,
                    available: false,
                    registration: None,
                },
            })
            .collect();
        out.extend(
            self.user
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .values()
                .map(|l| listing(&l.kernel, "user", Some(l.record.clone()))),
        );
        out
    }

    /// The listing of the program `name`.
    pub fn listing(&self, name: &str) -> Option<EbpfListing> {
        self.listings().into_iter().find(|l| l.name == name)
    }

    /// The limits programs run under.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn load(&self, record: &UserEbpfRecord, elf: &[u8]) -> Result<Arc<EbpfKernel>, UserEbpfError> {
        let program = Program::load(&record.name, elf, &self.limits).map_err(|source| {
            UserEbpfError::Invalid {
                name: record.name.clone(),
                source,
            }
        })?;
        let spec = KernelSpec {
            name: record.name.clone(),
            summary: record.summary.clone(),
            shape: parse_shape(&record.shape)?,
            framing: parse_framing(&record.framing)?,
            params: Cow::Owned(param_specs(&record.params)?),
        };
        Ok(Arc::new(EbpfKernel::new(
            spec,
            Arc::new(program),
            self.limits,
        )))
    }

    fn object_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.o"))
    }
}

fn listing(kernel: &EbpfKernel, origin: &str, registration: Option<UserEbpfRecord>) -> EbpfListing {
    let info = kernel.info();
    EbpfListing {
        name: info.name.to_string(),
        origin: origin.to_owned(),
        summary: info.summary.to_string(),
        shape: info.shape.as_str().to_owned(),
        framing: framing_text(kernel.framing()),
        params: info.params.iter().map(param_listing).collect(),
        instructions: kernel.program().instruction_count() as u64,
        available: true,
        registration,
    }
}

fn param_listing(p: &ParamSpec) -> ParamListing {
    ParamListing {
        name: p.name.to_owned(),
        ty: match p.ty {
            ParamType::Text => "text".to_owned(),
            ParamType::Bool => "bool".to_owned(),
            ParamType::UInt { min, max } => format!("uint {min}..={max}"),
            ParamType::Choice(words) => words.join("|"),
        },
        default: p.default.map(str::to_owned),
        doc: p.doc.to_owned(),
    }
}

/// A framing as registrations write it.
fn framing_text(framing: Framing) -> String {
    match framing {
        Framing::Bytes => "bytes".to_owned(),
        Framing::Lines => "lines".to_owned(),
        Framing::CsvRows => "csv".to_owned(),
        Framing::Records { size } => format!("records:{size}"),
    }
}

fn parse_shape(text: &str) -> Result<Shape, UserEbpfError> {
    match text.trim() {
        "filter" => Ok(Shape::Filter),
        "map" => Ok(Shape::Map),
        "reduce" => Ok(Shape::Reduce),
        other => Err(UserEbpfError::BadRequest(format!(
            "shape {other:?} is not one of filter, map, reduce"
        ))),
    }
}

fn parse_framing(text: &str) -> Result<Framing, UserEbpfError> {
    let text = text.trim();
    let framing = match text {
        "bytes" => Some(Framing::Bytes),
        "lines" => Some(Framing::Lines),
        "csv" => Some(Framing::CsvRows),
        _ => text
            .strip_prefix("records:")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .map(|size| Framing::Records { size }),
    };
    framing.ok_or_else(|| {
        UserEbpfError::BadRequest(format!(
            "framing {text:?} is not one of bytes, lines, csv, records:N (N > 0 bytes per record)"
        ))
    })
}

/// The parameter specs of `NAME` / `NAME=DEFAULT` entries (text parameters).
fn param_specs(entries: &[String]) -> Result<Vec<ParamSpec>, UserEbpfError> {
    let mut seen = BTreeSet::new();
    entries
        .iter()
        .map(|entry| {
            let entry = entry.trim();
            let (name, default) = match entry.split_once('=') {
                Some((n, d)) => (n.trim(), Some(d)),
                None => (entry, None),
            };
            let valid = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !valid {
                return Err(UserEbpfError::BadRequest(format!(
                    "parameter {entry:?} is not NAME or NAME=DEFAULT (names: letters, digits, '_', '-')"
                )));
            }
            if !seen.insert(name) {
                return Err(UserEbpfError::BadRequest(format!(
                    "parameter {name:?} is declared twice"
                )));
            }
            Ok(ParamSpec {
                name: intern(name),
                ty: ParamType::Text,
                default: default.map(intern),
                doc: "a parameter of a registered eBPF program (read with quarry_param)",
            })
        })
        .collect()
}

/// `text` with a static lifetime, each distinct text leaked once (parameter specs hold
/// `&'static str`; registered programs' names and defaults are few and small).
fn intern(text: &str) -> &'static str {
    static TEXTS: OnceLock<Mutex<BTreeSet<&'static str>>> = OnceLock::new();
    let mut texts = TEXTS
        .get_or_init(|| Mutex::new(BTreeSet::new()))
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(&known) = texts.get(text) {
        return known;
    }
    let leaked: &'static str = Box::leak(text.to_owned().into_boxed_str());
    texts.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal program: `r0 = 0; exit` in `quarry/chunk`.
    fn object(section: &str, code: &[[u8; 8]]) -> Vec<u8> {
        use object::write::Object;
        use object::{Architecture, BinaryFormat, Endianness, SectionKind};
        let mut obj = Object::new(BinaryFormat::Elf, Architecture::Bpf, Endianness::Little);
        let id = obj.add_section(Vec::new(), section.as_bytes().to_vec(), SectionKind::Text);
        obj.append_section_data(id, &code.concat(), 8);
        obj.write().unwrap()
    }

    const RETURN_0: [[u8; 8]; 2] = [[0xb7, 0, 0, 0, 0, 0, 0, 0], [0x95, 0, 0, 0, 0, 0, 0, 0]];

    fn request(name: &str) -> UserEbpfRequest {
        UserEbpfRequest {
            name: name.to_owned(),
            summary: String::new(),
            shape: "filter".to_owned(),
            framing: "lines".to_owned(),
            params: vec!["needle".to_owned(), "limit=10".to_owned()],
        }
    }

    fn open(dir: &std::path::Path) -> NodeEbpf {
        let catalog = Arc::new(Catalog::open(dir).unwrap());
        NodeEbpf::open(catalog, dir.join("ebpf"), Limits::default()).unwrap()
    }

    #[test]
    fn a_registered_program_is_found_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let node = open(dir.path());
        let record = node
            .register(request("marker"), &object("quarry/chunk", &RETURN_0))
            .unwrap();
        assert_eq!(record.instructions, 2);
        assert!(dir.path().join("ebpf/marker.o").exists());
        let kernel = node.program("marker").unwrap();
        assert_eq!(kernel.info().params.len(), 2);
        assert_eq!(kernel.info().params[1].default, Some("10"));
        drop(node);
        let reopened = open(dir.path());
        assert_eq!(reopened.record("marker"), Some(record));
        assert!(reopened.program("marker").is_some());
        let listing = reopened.listing("marker").unwrap();
        assert_eq!(
            (listing.origin.as_str(), listing.framing.as_str()),
            ("user", "lines")
        );
    }

    #[test]
    fn invalid_objects_are_refused_with_the_loaders_message() {
        let dir = tempfile::tempdir().unwrap();
        let node = open(dir.path());
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"not an object".to_vec(), "not an ELF"),
            (object("xdp", &RETURN_0), "no program section"),
            (
                object("quarry/chunk", &[[0x85, 0, 0, 0, 6, 0, 0, 0], RETURN_0[1]]),
                "unknown helper id 6",
            ),
        ];
        for (elf, needle) in cases {
            let err = node.register(request("bad"), &elf).unwrap_err();
            assert!(matches!(err, UserEbpfError::Invalid { .. }), "{err}");
            assert!(err.to_string().contains(needle), "{needle}: {err}");
        }
        assert!(node.record("bad").is_none());
        assert!(!dir.path().join("ebpf/bad.o").exists());
    }

    #[test]
    fn bad_requests_and_built_in_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let node = open(dir.path());
        let elf = object("quarry/chunk", &RETURN_0);
        let cases = [
            (request("Bad Name"), "not valid"),
            (request("crc32c"), "built-in eBPF program"),
            (
                UserEbpfRequest {
                    shape: "sort".to_owned(),
                    ..request("p1")
                },
                "filter, map, reduce",
            ),
            (
                UserEbpfRequest {
                    framing: "records:0".to_owned(),
                    ..request("p2")
                },
                "records:N",
            ),
            (
                UserEbpfRequest {
                    params: vec!["a".to_owned(), "a=1".to_owned()],
                    ..request("p3")
                },
                "declared twice",
            ),
        ];
        for (req, needle) in cases {
            let err = node.register(req.clone(), &elf).unwrap_err();
            assert!(err.to_string().contains(needle), "{req:?}: {err}");
        }
    }

    #[test]
    fn removal_is_refused_while_in_use_and_for_built_ins() {
        let dir = tempfile::tempdir().unwrap();
        let node = open(dir.path());
        node.register(request("marker"), &object("quarry/chunk", &RETURN_0))
            .unwrap();
        let err = node
            .remove("marker", &["function scan".to_owned()])
            .unwrap_err();
        assert!(matches!(err, UserEbpfError::InUse { .. }), "{err}");
        assert!(matches!(
            node.remove("grep-count", &[]),
            Err(UserEbpfError::Builtin { .. })
        ));
        assert!(matches!(
            node.remove("nothing", &[]),
            Err(UserEbpfError::NoSuchProgram { .. })
        ));
        node.remove("marker", &[]).unwrap();
        assert!(node.program("marker").is_none());
        assert!(!dir.path().join("ebpf/marker.o").exists());
    }

    #[test]
    fn built_ins_are_listed_whether_or_not_this_build_holds_them() {
        let dir = tempfile::tempdir().unwrap();
        let node = open(dir.path());
        let listings = node.listings();
        let names: Vec<&str> = listings.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["grep-count", "csv-filter", "crc32c"]);
        for l in &listings {
            assert_eq!(l.available, quarry_ebpf::builtin::available(), "{}", l.name);
            assert_eq!(node.program(&l.name).is_some(), l.available);
        }
    }
}
