// SPDX-License-Identifier: Apache-2.0
//! Building kernel programs per device, cached in memory and on disk.
//!
//! A program is built once per device, on first use or at start ([`super::ClDevice::prebuild`]).
//! With a cache directory, the device binary is also written to
//! `DIR/NAME-HASH.clbin`, where `HASH` covers the source, the build options, the platform, the
//! device name and the driver version, so a driver upgrade or an edited source never reuses a
//! stale binary. A file is checked (magic and a SHA-256 of its contents) before the driver sees
//! it; a corrupt file, or one the driver refuses, is rebuilt from source and replaced.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use opencl3::program::Program;
use quarry_kernels::ClProgram;
use sha2::{Digest, Sha256};

use super::device::{ClDevice, DeviceInfo};
use super::error::{ClContext, ClError};
use super::ffi;

/// A program to build: a built-in kernel's, or a user kernel's.
pub type ProgramSource = ClProgram;

/// The options every program is built with, before its own.
pub const BASE_OPTIONS: &str = "-cl-std=CL1.2";

const MAGIC: &[u8; 8] = b"QCLBIN1\n";

/// A program built for one device.
pub struct BuiltProgram {
    name: String,
    program: Program,
    /// Whether it came from the disk cache rather than a build from source.
    from_cache: bool,
}

impl fmt::Debug for BuiltProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuiltProgram")
            .field("name", &self.name)
            .field("from_cache", &self.from_cache)
            .finish()
    }
}

impl BuiltProgram {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it was loaded from the disk cache.
    pub fn from_cache(&self) -> bool {
        self.from_cache
    }

    /// The names of its `__kernel` entry points.
    pub fn kernel_names(&self) -> Result<Vec<String>, ClError> {
        let names = self
            .program
            .get_kernel_names()
            .during(|| format!("list the kernels of program {}", self.name))?;
        Ok(names
            .trim_end_matches('\0')
            .split(';')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect())
    }

    /// Its device binary (what an offline compiler would give for this device).
    pub fn binary(&self) -> Result<Vec<u8>, ClError> {
        binary_of(&self.program)
    }

    pub(crate) fn program(&self) -> &Program {
        &self.program
    }
}

/// In-memory key: the program's name and the identity of its static source.
type MemoryKey = (String, usize, usize, &'static str);

/// The programs built for one device.
pub(crate) struct ProgramCache {
    dir: Option<PathBuf>,
    /// What, besides source and options, decides whether a binary fits this device.
    device_key: String,
    built: Mutex<HashMap<MemoryKey, Arc<BuiltProgram>>>,
}

impl ProgramCache {
    pub(crate) fn new(dir: Option<PathBuf>, info: &DeviceInfo) -> Self {
        Self {
            dir,
            device_key: format!(
                "{}\0{}\0{}\0{}",
                info.platform, info.name, info.vendor, info.driver_version
            ),
            built: Mutex::new(HashMap::new()),
        }
    }

    fn memory_key(source: &ProgramSource) -> MemoryKey {
        (
            source.name.to_owned(),
            source.source.as_ptr() as usize,
            source.source.len(),
            source.options,
        )
    }

    /// The built program, building (or loading) it on first use. Builds of different programs
    /// may run at once; two callers of the same program may both build it once, harmlessly.
    pub(crate) fn get(
        &self,
        device: &ClDevice,
        source: &ProgramSource,
    ) -> Result<Arc<BuiltProgram>, ClError> {
        let key = Self::memory_key(source);
        if let Some(p) = self.lock().get(&key) {
            return Ok(Arc::clone(p));
        }
        let built = Arc::new(self.load_or_build(device, source)?);
        self.lock().insert(key, Arc::clone(&built));
        Ok(built)
    }

    /// Installs a prebuilt binary (an FPGA bitstream container) as the program `source.name`.
    pub(crate) fn install_binary(
        &self,
        device: &ClDevice,
        source: &ProgramSource,
        binary: &[u8],
    ) -> Result<Arc<BuiltProgram>, ClError> {
        let program = build_from_binary(device, binary, &options(source))?;
        let built = Arc::new(BuiltProgram {
            name: source.name.to_owned(),
            program,
            from_cache: false,
        });
        self.lock()
            .insert(Self::memory_key(source), Arc::clone(&built));
        Ok(built)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<MemoryKey, Arc<BuiltProgram>>> {
        self.built.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn load_or_build(
        &self,
        device: &ClDevice,
        source: &ProgramSource,
    ) -> Result<BuiltProgram, ClError> {
        let options = options(source);
        let path = self
            .dir
            .as_ref()
            .map(|dir| self.path(dir, source, &options));
        if let Some(path) = &path {
            match read_checked(path) {
                Ok(Some(binary)) => match build_from_binary(device, &binary, &options) {
                    Ok(program) => {
                        return Ok(BuiltProgram {
                            name: source.name.to_owned(),
                            program,
                            from_cache: true,
                        });
                    }
                    Err(e) => tracing::warn!(
                        path = %path.display(), error = %e,
                        "the driver refused a cached program binary; rebuilding from source"
                    ),
                },
                Ok(None) => {}
                Err(reason) => tracing::warn!(
                    path = %path.display(), %reason,
                    "a cached program binary is corrupt; rebuilding from source"
                ),
            }
        }
        let program = build_from_source(device, source.name, source.source, &options)?;
        if let Some(path) = &path {
            match binary_of(&program) {
                Ok(binary) => {
                    if let Err(e) = write_checked(path, &binary) {
                        tracing::warn!(
                            path = %path.display(), error = %e,
                            "could not write a program binary to the cache"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not read a built program's binary"),
            }
        }
        Ok(BuiltProgram {
            name: source.name.to_owned(),
            program,
            from_cache: false,
        })
    }

    fn path(&self, dir: &Path, source: &ProgramSource, options: &str) -> PathBuf {
        let mut hash = Sha256::new();
        for part in [source.source, options, &self.device_key] {
            hash.update(part.as_bytes());
            hash.update([0u8]);
        }
        let digest = hex::encode(&hash.finalize()[..16]);
        let name: String = source
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        dir.join(format!("{name}-{digest}.clbin"))
    }
}

fn options(source: &ProgramSource) -> String {
    if source.options.is_empty() {
        BASE_OPTIONS.to_owned()
    } else {
        format!("{BASE_OPTIONS} {}", source.options)
    }
}

/// Builds `code` for `device`; on failure the error carries the device's build log.
pub(crate) fn build_from_source(
    device: &ClDevice,
    name: &str,
    code: &str,
    options: &str,
) -> Result<Program, ClError> {
    let mut program = Program::create_from_source(device.context(), code)
        .during(|| format!("create program {name}"))?;
    if let Err(e) = program.build(&[device.id()], options) {
        let log = program.get_build_log(device.id()).unwrap_or_default();
        return Err(ClError::new(
            format!("build program {name} for {}", device.info().name),
            e.0,
        )
        .with_detail(format!("build log:\n{}", log.trim_end())));
    }
    Ok(program)
}

/// Loads and builds a device binary.
pub(crate) fn build_from_binary(
    device: &ClDevice,
    binary: &[u8],
    options: &str,
) -> Result<Program, ClError> {
    let mut program = ffi::program_from_binary(device, binary)?;
    if let Err(e) = program.build(&[device.id()], options) {
        let log = program.get_build_log(device.id()).unwrap_or_default();
        return Err(ClError::new(
            format!("build a program binary for {}", device.info().name),
            e.0,
        )
        .with_detail(format!("build log:\n{}", log.trim_end())));
    }
    Ok(program)
}

/// The device binary of a program built for one device.
pub(crate) fn binary_of(program: &Program) -> Result<Vec<u8>, ClError> {
    let mut binaries = program
        .get_binaries()
        .during(|| "read a program binary".to_owned())?;
    match binaries.pop() {
        Some(b) if !b.is_empty() => Ok(b),
        _ => Err(ClError::host(
            "read a program binary",
            "the driver returned no binary",
        )),
    }
}

/// The checked contents of a cache file; `Ok(None)` when there is none, `Err(reason)` when it
/// is damaged.
fn read_checked(path: &Path) -> Result<Option<Vec<u8>>, String> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("unreadable: {e}")),
    };
    let header = MAGIC.len() + 32;
    if bytes.len() <= header || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a program binary file (bad header)".to_owned());
    }
    let (sum, payload) = bytes[MAGIC.len()..].split_at(32);
    if Sha256::digest(payload).as_slice() != sum {
        return Err("checksum mismatch".to_owned());
    }
    Ok(Some(payload.to_vec()))
}

/// Writes a cache file atomically (a temporary file renamed into place).
fn write_checked(path: &Path, binary: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(MAGIC)?;
        file.write_all(&Sha256::digest(binary))?;
        file.write_all(binary)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)
}
