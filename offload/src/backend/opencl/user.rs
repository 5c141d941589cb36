// SPDX-License-Identifier: Apache-2.0
//! User kernels: a function author's OpenCL C program (or a prebuilt binary for one device,
//! as FPGA boards need) run by the same executor as the built-in kernels.
//!
//! The ABI (documented for authors in `docs/opencl.md`):
//!
//! - the input is cut into chunks of whole records by the declared framing; within a chunk,
//!   work-item `i` owns the block `in[i * 4096 .. (i + 1) * 4096]`, and a record belongs to
//!   the block where it starts;
//! - `consts` holds the parameters as text, `name=value\n` per parameter in declaration order,
//!   then a NUL byte;
//! - `filter` and `map` (the CountEmit launch of `quarry_kernels::device`): entry points
//!   `quarry_count` (bytes work-item `i` will write, into `counts[i]`) and `quarry_emit`
//!   (writes exactly that many bytes at `out + offsets[i]`); `prefix` is all zeros;
//! - `reduce` (the Fixed launch): entry point `quarry_reduce` writes 8 bytes per block, a
//!   little-endian u64; the host sums them (wrapping) over the whole input and writes the sum
//!   in decimal followed by `\n`.
//!
//! A built user kernel lives as long as the process: its program text and parameter names are
//! leaked once per build (a deploy), because the device protocol names programs and parameters
//! by `'static` references.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use quarry_kernels::{
    BoundKernel, ChunkPlan, ClProgram, CpuRun, DeviceRun, Framing, Kernel, KernelError, KernelInfo,
    Launch, ParamSpec, ParamType, Params, Shape,
};

use super::device::ClDevice;
use super::error::ClError;
use super::runtime::OpenClRuntime;

/// Bytes of input each work-item owns.
pub const BLOCK: usize = 4096;

/// The entry points of a filter or map.
pub const COUNT_ENTRY: &str = "quarry_count";
/// See [`COUNT_ENTRY`].
pub const EMIT_ENTRY: &str = "quarry_emit";
/// The entry point of a reduce.
pub const REDUCE_ENTRY: &str = "quarry_reduce";

/// The program of a user kernel.
#[derive(Clone, PartialEq, Eq)]
pub enum UserProgram {
    /// OpenCL C source, built on every device.
    Source(String),
    /// A binary prebuilt for one device (an FPGA board's), which runs only there.
    Binary {
        /// The device: its backend name (`opencl-fpga-0`) or its OpenCL name.
        device: String,
        /// The binary, as the vendor's offline compiler wrote it.
        binary: Vec<u8>,
    },
}

impl fmt::Debug for UserProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Source(s) => write!(f, "Source({} bytes)", s.len()),
            Self::Binary { device, binary } => {
                write!(f, "Binary({} bytes for {device})", binary.len())
            }
        }
    }
}

/// One parameter a user kernel declares (text; passed to the kernel in `consts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserParam {
    /// Its name: letters, digits, `-` and `_`.
    pub name: String,
    /// The value when none is given; `None` makes it required.
    pub default: Option<String>,
    /// One line for listings.
    pub doc: String,
}

/// What a function author deploys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserKernelSpec {
    /// The kernel's (and function's) name.
    pub name: String,
    /// One line saying what it computes.
    pub summary: String,
    /// `filter`, `map` or `reduce` ([`parse_shape`]).
    pub shape: Shape,
    /// How the input is cut ([`parse_framing`]).
    pub framing: Framing,
    /// The parameters it takes.
    pub params: Vec<UserParam>,
    /// Its program.
    pub program: UserProgram,
    /// Extra build options (after `-cl-std=CL1.2`), e.g. `-DWIDTH=4`.
    pub options: String,
}

impl UserKernelSpec {
    /// A spec from a registration's text fields: `shape` and `framing` as authors write them
    /// ([`parse_shape`], [`parse_framing`]); `code` is OpenCL C source, or with `binary_for`
    /// a binary prebuilt for that device. Parameters are declared in the source by lines
    /// `// quarry:param NAME[=DEFAULT] [description]` ([`declared_params`]); a binary takes
    /// none.
    pub fn from_request(
        name: &str,
        summary: &str,
        shape: &str,
        framing: &str,
        code: &[u8],
        binary_for: Option<&str>,
    ) -> Result<Self, UserKernelError> {
        let spec_error = |message: String| UserKernelError::Spec {
            kernel: name.to_owned(),
            message,
        };
        let shape = parse_shape(shape).map_err(spec_error)?;
        let framing = parse_framing(framing).map_err(spec_error)?;
        let (program, params) = match binary_for {
            Some(device) => (
                UserProgram::Binary {
                    device: device.to_owned(),
                    binary: code.to_vec(),
                },
                Vec::new(),
            ),
            None => {
                let source = std::str::from_utf8(code).map_err(|e| {
                    spec_error(format!(
                        "the OpenCL C source is not UTF-8 ({e}); for a prebuilt binary name \
                         its device (binary_for)"
                    ))
                })?;
                let params = declared_params(source).map_err(spec_error)?;
                (UserProgram::Source(source.to_owned()), params)
            }
        };
        Ok(Self {
            name: name.to_owned(),
            summary: if summary.trim().is_empty() {
                format!("user OpenCL {} kernel", shape.as_str())
            } else {
                summary.to_owned()
            },
            shape,
            framing,
            params,
            program,
            options: String::new(),
        })
    }
}

/// The parameters a source declares, in order, by lines
/// `// quarry:param NAME[=DEFAULT] [description]`.
pub fn declared_params(source: &str) -> Result<Vec<UserParam>, String> {
    let mut out = Vec::new();
    for line in source.lines() {
        let Some(rest) = line.trim().strip_prefix("// quarry:param") else {
            continue;
        };
        let rest = rest.trim();
        let (decl, doc) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let (name, default) = match decl.split_once('=') {
            Some((n, d)) => (n, Some(d.to_owned())),
            None => (decl, None),
        };
        if name.is_empty() {
            return Err(format!(
                "{line:?} declares no name; write `// quarry:param NAME[=DEFAULT] [description]`"
            ));
        }
        out.push(UserParam {
            name: name.to_owned(),
            default,
            doc: doc.trim().to_owned(),
        });
    }
    Ok(out)
}

/// Why a user kernel could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserKernelError {
    /// The spec is unusable; the message names the fix.
    #[error("user kernel {kernel}: {message}")]
    Spec {
        /// The kernel.
        kernel: String,
        /// What is wrong and what is expected.
        message: String,
    },
    /// The program failed to build (or lacks its entry points) on some devices.
    #[error(
        "user kernel {kernel} failed on {} device(s):{}",
        failures.len(),
        failures.iter().map(|f| format!("\n--- {} ---\n{}", f.device, f.error)).collect::<String>()
    )]
    Build {
        /// The kernel.
        kernel: String,
        /// Each failing device with its error, build log included.
        failures: Vec<DeviceFailure>,
    },
}

/// One device's failure to build a user kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFailure {
    /// The device, as listed (`opencl-cpu-0: ...`).
    pub device: String,
    /// What failed, with the device's build log.
    pub error: String,
}

/// Parses a framing as authors write it: `bytes`, `lines`, `csv` or `records:N`.
pub fn parse_framing(text: &str) -> Result<Framing, String> {
    let text = text.trim();
    match text {
        "bytes" => Ok(Framing::Bytes),
        "lines" => Ok(Framing::Lines),
        "csv" | "csv-rows" => Ok(Framing::CsvRows),
        _ => match text.strip_prefix("records:").map(str::parse::<usize>) {
            Some(Ok(size)) if size > 0 => Ok(Framing::Records { size }),
            _ => Err(format!(
                "framing {text:?} is not one of bytes, lines, csv, records:N (N at least 1)"
            )),
        },
    }
}

/// Parses a shape as authors write it: `filter`, `map` or `reduce`.
pub fn parse_shape(text: &str) -> Result<Shape, String> {
    match text.trim() {
        "filter" => Ok(Shape::Filter),
        "map" => Ok(Shape::Map),
        "reduce" => Ok(Shape::Reduce),
        other => Err(format!(
            "shape {other:?} is not one of filter, map, reduce (user OpenCL kernels)"
        )),
    }
}

/// A user OpenCL kernel, built on the devices that can run it (see the module docs).
#[derive(Debug)]
pub struct UserKernel {
    info: KernelInfo,
    framing: Framing,
    program: &'static ClProgram,
    devices: Vec<String>,
}

impl UserKernel {
    /// Checks `spec` and builds its program on every device of `runtime` (source), or loads
    /// it on its one device (binary). Fails with every device's build log when any build
    /// fails, or when the program lacks the entry points its shape needs.
    pub fn build(runtime: &OpenClRuntime, spec: UserKernelSpec) -> Result<Self, UserKernelError> {
        let spec_error = |message: String| UserKernelError::Spec {
            kernel: spec.name.clone(),
            message,
        };
        check_spec(&spec).map_err(spec_error)?;
        let params: Vec<ParamSpec> = spec
            .params
            .iter()
            .map(|p| ParamSpec {
                name: leak(p.name.clone()),
                ty: ParamType::Text,
                default: p.default.clone().map(leak),
                doc: leak(p.doc.clone()),
            })
            .collect();
        let program = leak_program(&spec);
        let targets: Vec<&Arc<ClDevice>> = match &spec.program {
            UserProgram::Source(_) => runtime.devices().iter().collect(),
            UserProgram::Binary { device, .. } => {
                let found: Vec<_> = runtime
                    .devices()
                    .iter()
                    .filter(|d| d.info().backend_name() == *device || d.info().name == *device)
                    .take(1)
                    .collect();
                if found.is_empty() {
                    let known: Vec<String> = runtime
                        .devices()
                        .iter()
                        .map(|d| format!("{} ({})", d.info().backend_name(), d.info().name))
                        .collect();
                    return Err(spec_error(format!(
                        "no OpenCL device is called {device:?} (devices: {})",
                        known.join(", ")
                    )));
                }
                found
            }
        };
        let mut failures = Vec::new();
        for device in &targets {
            let built = match &spec.program {
                UserProgram::Source(_) => device.program(program),
                UserProgram::Binary { binary, .. } => device.install_binary(program, binary),
            };
            let checked = built.and_then(|p| check_entries(&p.kernel_names()?, spec.shape));
            if let Err(e) = checked {
                failures.push(DeviceFailure {
                    device: device.info().to_string(),
                    error: e.to_string(),
                });
            }
        }
        if !failures.is_empty() {
            return Err(UserKernelError::Build {
                kernel: spec.name,
                failures,
            });
        }
        for device in runtime.devices() {
            let holds = targets.iter().any(|t| Arc::ptr_eq(t, device));
            device.set_can_run(&spec.name, holds);
        }
        tracing::info!(kernel = %spec.name, devices = targets.len(), "built a user OpenCL kernel");
        Ok(Self {
            devices: targets.iter().map(|d| d.info().backend_name()).collect(),
            info: KernelInfo {
                name: Cow::Owned(spec.name),
                summary: Cow::Owned(spec.summary),
                shape: spec.shape,
                params: Cow::Owned(params),
                cpu: false,
                opencl: true,
            },
            framing: spec.framing,
            program,
        })
    }

    /// The backend names of the devices that hold it.
    pub fn devices(&self) -> &[String] {
        &self.devices
    }

    /// How its input is cut.
    pub fn framing(&self) -> Framing {
        self.framing
    }
}

impl Kernel for UserKernel {
    fn info(&self) -> &KernelInfo {
        &self.info
    }

    fn bind(&self, params: &Params) -> Result<Arc<dyn BoundKernel>, KernelError> {
        let mut consts = Vec::new();
        for spec in self.info.params.iter() {
            let value = params.text(spec.name)?;
            if value.bytes().any(|b| b == b'\n' || b == 0) {
                return Err(KernelError::param(
                    spec.name,
                    "must not hold a newline or NUL byte (user kernels get params as name=value lines)",
                ));
            }
            consts.extend_from_slice(spec.name.as_bytes());
            consts.push(b'=');
            consts.extend_from_slice(value.as_bytes());
            consts.push(b'\n');
        }
        consts.push(0);
        Ok(Arc::new(UserBound {
            shape: self.info.shape,
            framing: self.framing,
            program: self.program,
            consts: Arc::from(consts),
        }))
    }
}

/// A user kernel with its parameters.
#[derive(Debug)]
struct UserBound {
    shape: Shape,
    framing: Framing,
    program: &'static ClProgram,
    consts: Arc<[u8]>,
}

impl BoundKernel for UserBound {
    fn framing(&self) -> Framing {
        self.framing
    }

    fn cpu(&self) -> Option<Box<dyn CpuRun>> {
        None
    }

    fn device(&self) -> Option<Box<dyn DeviceRun>> {
        Some(Box::new(UserRun {
            reduce: self.shape == Shape::Reduce,
            program: self.program,
            consts: Arc::clone(&self.consts),
            sum: 0,
        }))
    }
}

/// One job of a user kernel.
struct UserRun {
    reduce: bool,
    program: &'static ClProgram,
    consts: Arc<[u8]>,
    /// The reduce's running sum.
    sum: u64,
}

impl DeviceRun for UserRun {
    fn plan(&mut self, chunk: &[u8]) -> Result<ChunkPlan, KernelError> {
        let items = chunk.len().div_ceil(BLOCK);
        let launch = if self.reduce {
            Launch::Fixed {
                entry: REDUCE_ENTRY,
                items,
                out_per_item: 8,
            }
        } else {
            Launch::CountEmit {
                scan: None,
                count: COUNT_ENTRY,
                emit: EMIT_ENTRY,
                items,
            }
        };
        Ok(ChunkPlan {
            program: self.program,
            input: 0..chunk.len(),
            consts: self.consts.to_vec(),
            launch,
        })
    }

    fn accept(
        &mut self,
        _chunk: &[u8],
        device_out: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), KernelError> {
        if !self.reduce {
            out.extend_from_slice(device_out);
            return Ok(());
        }
        for part in device_out.chunks_exact(8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(part);
            self.sum = self.sum.wrapping_add(u64::from_le_bytes(word));
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), KernelError> {
        if self.reduce {
            out.extend_from_slice(format!("{}\n", self.sum).as_bytes());
        }
        Ok(())
    }
}

fn check_spec(spec: &UserKernelSpec) -> Result<(), String> {
    let is_word = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    };
    if !is_word(&spec.name) {
        return Err("the name must be letters, digits, '-', '_' or '.'".to_owned());
    }
    if spec.shape == Shape::Stream {
        return Err("a user OpenCL kernel is a filter, map or reduce, not a stream".to_owned());
    }
    for (i, p) in spec.params.iter().enumerate() {
        if !is_word(&p.name) {
            return Err(format!(
                "parameter name {:?} must be letters, digits, '-', '_' or '.'",
                p.name
            ));
        }
        if spec.params[..i].iter().any(|q| q.name == p.name) {
            return Err(format!("parameter {} is declared twice", p.name));
        }
    }
    match &spec.program {
        UserProgram::Source(s) if s.trim().is_empty() => {
            Err("the OpenCL C source is empty".to_owned())
        }
        UserProgram::Binary { binary, .. } if binary.is_empty() => {
            Err("the prebuilt binary is empty".to_owned())
        }
        _ => Ok(()),
    }
}

/// Refuses a program without the entry points `shape` needs.
fn check_entries(names: &[String], shape: Shape) -> Result<(), ClError> {
    let needed: &[&str] = match shape {
        Shape::Reduce => &[REDUCE_ENTRY],
        Shape::Filter | Shape::Map | Shape::Stream => &[COUNT_ENTRY, EMIT_ENTRY],
    };
    let missing: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|n| !names.iter().any(|have| have == n))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(ClError::host(
        "find the kernel's entry points",
        format!(
            "a {} needs __kernel {} (the program has: {})",
            shape.as_str(),
            missing.join(" and "),
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        ),
    ))
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// The program of `spec`, named uniquely per build so that a redeploy never reuses the
/// previous build's binary in memory (on disk, binaries are keyed by source hash).
fn leak_program(spec: &UserKernelSpec) -> &'static ClProgram {
    static BUILDS: AtomicU64 = AtomicU64::new(0);
    let build = BUILDS.fetch_add(1, Ordering::Relaxed);
    let source = match &spec.program {
        UserProgram::Source(s) => s.clone(),
        UserProgram::Binary { device, .. } => {
            format!(
                "// prebuilt binary of user kernel {} for {device}\n",
                spec.name
            )
        }
    };
    Box::leak(Box::new(ClProgram {
        name: leak(format!("user-{}-{build}", spec.name)),
        source: leak(source),
        options: leak(spec.options.clone()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framings_parse_as_authors_write_them() {
        assert_eq!(parse_framing("lines"), Ok(Framing::Lines));
        assert_eq!(parse_framing("csv"), Ok(Framing::CsvRows));
        assert_eq!(
            parse_framing("records:16"),
            Ok(Framing::Records { size: 16 })
        );
        let err = parse_framing("records:0").expect_err("zero-size records");
        assert!(err.contains("records:N"), "{err}");
        assert!(parse_framing("rows").is_err());
    }

    #[test]
    fn shapes_parse_and_stream_is_refused() {
        assert_eq!(parse_shape("reduce"), Ok(Shape::Reduce));
        assert!(parse_shape("stream").is_err());
    }

    #[test]
    fn params_are_declared_in_source_comments() {
        let source =
            "// quarry:param needle the bytes\n  // quarry:param mode=lines what to emit\n";
        let params = declared_params(source).expect("parses");
        assert_eq!(params[0].name, "needle");
        assert_eq!(params[0].default, None);
        assert_eq!(params[0].doc, "the bytes");
        assert_eq!(params[1].name, "mode");
        assert_eq!(params[1].default.as_deref(), Some("lines"));
        assert!(declared_params("// quarry:param\n").is_err());
        let spec = UserKernelSpec::from_request("k", "", "filter", "csv", source.as_bytes(), None)
            .expect("valid");
        assert_eq!(spec.params.len(), 2);
        assert_eq!(spec.framing, Framing::CsvRows);
        let err = UserKernelSpec::from_request("k", "", "sort", "lines", b"", None)
            .expect_err("bad shape");
        assert!(err.to_string().contains("filter, map, reduce"), "{err}");
    }

    #[test]
    fn missing_entry_points_are_named() {
        let err =
            check_entries(&["quarry_count".to_owned()], Shape::Filter).expect_err("emit missing");
        assert!(err.to_string().contains("quarry_emit"), "{err}");
        assert!(check_entries(&["quarry_reduce".to_owned()], Shape::Reduce).is_ok());
    }

    #[test]
    fn params_reach_the_kernel_as_name_value_lines() {
        let kernel = UserKernel {
            info: KernelInfo {
                name: Cow::Borrowed("t"),
                summary: Cow::Borrowed(""),
                shape: Shape::Reduce,
                params: Cow::Owned(vec![
                    ParamSpec {
                        name: "needle",
                        ty: ParamType::Text,
                        default: None,
                        doc: "",
                    },
                    ParamSpec {
                        name: "case",
                        ty: ParamType::Text,
                        default: Some("yes"),
                        doc: "",
                    },
                ]),
                cpu: false,
                opencl: true,
            },
            framing: Framing::Lines,
            program: Box::leak(Box::new(ClProgram {
                name: "t",
                source: "",
                options: "",
            })),
            devices: Vec::new(),
        };
        let params = Params::new([("needle".to_owned(), "ab".to_owned())])
            .validate(kernel.info())
            .expect("valid");
        let bound = kernel.bind(&params).expect("binds");
        let mut run = bound.device().expect("device run");
        let plan = run.plan(&[b'x'; BLOCK + 1]).expect("plans");
        assert_eq!(plan.consts, b"needle=ab\ncase=yes\n\0");
        assert!(matches!(plan.launch, Launch::Fixed { items: 2, .. }));
        let mut out = Vec::new();
        let mut device_out = 5u64.to_le_bytes().to_vec();
        device_out.extend_from_slice(&7u64.to_le_bytes());
        run.accept(&[], &device_out, &mut out).expect("accepts");
        run.finish(&mut out).expect("finishes");
        assert_eq!(out, b"12\n");
        let bad = Params::new([("needle".to_owned(), "a\nb".to_owned())])
            .validate(kernel.info())
            .expect("valid text");
        assert!(kernel.bind(&bad).is_err());
    }
}
