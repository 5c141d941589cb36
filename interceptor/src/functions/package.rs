// SPDX-License-Identifier: Apache-2.0
//! Function packages: a bare WebAssembly module (binary or WAT text), or a `.tar.gz` holding
//! the module and a `manifest.toml`.

use std::collections::BTreeMap;
use std::io::Read;

use quarry_offload::{FunctionLimits, Permission};
use serde::{Deserialize, Serialize};

use super::FunctionError;

/// Largest module or manifest unpacked from a package (a guard against compression bombs).
const MAX_UNPACKED: u64 = 128 * 1024 * 1024;

/// What a package says about its function.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Manifest {
    /// The function's name; when given it must match the name it is deployed under.
    pub name: Option<String>,
    /// One line for `quarry fn ls`.
    pub description: String,
    /// The ABI the module is built for; `v1` (the default) is the only one.
    pub abi: Option<String>,
    /// What the function may do beyond its input and output.
    pub permissions: Vec<Permission>,
    /// Limits, each defaulting to the node's default.
    pub limits: FunctionLimits,
    /// Default params (the lowest precedence).
    pub params: BTreeMap<String, String>,
}

/// A package taken apart.
#[derive(Debug)]
pub struct Package {
    /// The module bytes (binary or WAT text).
    pub module: Vec<u8>,
    /// The manifest, default for a bare module.
    pub manifest: Manifest,
}

/// Splits `bytes` into module and manifest.
pub fn unpack(bytes: &[u8]) -> Result<Package, FunctionError> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(Package {
            module: bytes.to_vec(),
            manifest: Manifest::default(),
        });
    }
    let bad = |message: String| FunctionError::BadPackage { message };
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut module = None;
    let mut manifest = None;
    for entry in archive
        .entries()
        .map_err(|e| bad(format!("not a readable .tar.gz: {e}")))?
    {
        let entry = entry.map_err(|e| bad(format!("not a readable .tar.gz: {e}")))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(|e| bad(format!("bad entry name: {e}")))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_owned();
        let mut contents = Vec::new();
        entry
            .take(MAX_UNPACKED + 1)
            .read_to_end(&mut contents)
            .map_err(|e| bad(format!("cannot read {path}: {e}")))?;
        if contents.len() as u64 > MAX_UNPACKED {
            return Err(bad(format!(
                "{path} unpacks to more than {MAX_UNPACKED} bytes"
            )));
        }
        if path == "manifest.toml" {
            let text = String::from_utf8(contents)
                .map_err(|_| bad("manifest.toml is not UTF-8".to_owned()))?;
            manifest = Some(
                toml::from_str::<Manifest>(&text)
                    .map_err(|e| bad(format!("manifest.toml: {}", e.message())))?,
            );
        } else if path.ends_with(".wasm") || path.ends_with(".wat") {
            if module.is_some() {
                return Err(bad("the package holds more than one module".to_owned()));
            }
            module = Some(contents);
        }
    }
    let module = module.ok_or_else(|| bad("the package holds no .wasm module".to_owned()))?;
    let manifest = manifest.ok_or_else(|| bad("the package holds no manifest.toml".to_owned()))?;
    if let Some(abi) = &manifest.abi
        && abi != "v1"
    {
        return Err(bad(format!(
            "manifest.toml asks for ABI {abi:?}; this node supports \"v1\""
        )));
    }
    Ok(Package { module, manifest })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targz(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::default(),
        ));
        for (name, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn a_bare_module_has_the_default_manifest() {
        let p = unpack(b"(module)").unwrap();
        assert_eq!(p.module, b"(module)");
        assert_eq!(p.manifest, Manifest::default());
    }

    #[test]
    fn a_package_yields_its_module_and_manifest() {
        let manifest = br#"
            name = "wc"
            description = "count"
            permissions = ["read"]
            [limits]
            memory = "16MiB"
            timeout = "3s"
            [params]
            word = "kiwi"
        "#;
        let p = unpack(&targz(&[
            ("manifest.toml", manifest),
            ("function.wasm", b"wasm"),
        ]))
        .unwrap();
        assert_eq!(p.module, b"wasm");
        assert_eq!(p.manifest.name.as_deref(), Some("wc"));
        assert_eq!(p.manifest.permissions, vec![Permission::Read]);
        assert_eq!(p.manifest.limits.memory, bytesize::ByteSize::mib(16));
        assert_eq!(p.manifest.limits.timeout, std::time::Duration::from_secs(3));
        assert_eq!(p.manifest.params["word"], "kiwi");
    }

    #[test]
    fn a_package_without_manifest_or_with_unknown_keys_is_refused() {
        let err = unpack(&targz(&[("function.wasm", b"wasm")])).unwrap_err();
        assert!(err.to_string().contains("no manifest.toml"), "{err}");
        let err = unpack(&targz(&[
            ("manifest.toml", b"colour = 1"),
            ("f.wasm", b"x"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }
}
