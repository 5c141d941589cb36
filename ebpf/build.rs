// SPDX-License-Identifier: Apache-2.0
//! With the `ebpf` feature, compiles each device program in `programs/` with
//! `clang -target bpf -O2` into `OUT_DIR` (set `QUARRY_BPF_CLANG` to use another clang).

#![allow(
    clippy::print_stdout,
    reason = "cargo reads a build script's instructions from stdout"
)]

use std::env;
use std::path::PathBuf;
use std::process::Command;

/// The device programs, by file stem (kept in step with `src/builtin.rs`).
const PROGRAMS: &[&str] = &["grep_count", "csv_filter", "crc32c"];

fn main() {
    println!("cargo::rerun-if-changed=programs");
    println!("cargo::rerun-if-changed=include");
    println!("cargo::rerun-if-env-changed=QUARRY_BPF_CLANG");
    if env::var_os("CARGO_FEATURE_EBPF").is_none() {
        return;
    }
    let manifest =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let clang = env::var("QUARRY_BPF_CLANG").unwrap_or_else(|_| "clang".to_owned());
    for program in PROGRAMS {
        let source = manifest.join("programs").join(format!("{program}.c"));
        let object = out.join(format!("{program}.o"));
        let output = Command::new(&clang)
            .args(["-target", "bpf", "-O2", "-g0", "-Wall", "-Werror", "-I"])
            .arg(manifest.join("include"))
            .arg("-c")
            .arg(&source)
            .arg("-o")
            .arg(&object)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "the ebpf feature compiles device programs with `{clang}`, which could not be run ({e}); install clang (apt-get install clang) or set QUARRY_BPF_CLANG"
                )
            });
        if !output.status.success() {
            panic!(
                "`{clang} -target bpf` failed on {}:\n{}",
                source.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}
