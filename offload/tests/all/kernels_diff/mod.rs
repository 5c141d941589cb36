// SPDX-License-Identifier: Apache-2.0
//! Differential tests: every kernel's CPU run and its OpenCL run give the same bytes, on every
//! OpenCL device, however the input is cut.
//!
//! [`assert_same_on_every_device`] is the one entry point kernel tests use:
//!
//! ```ignore
//! assert_same_on_every_device("grep", &[("pattern", "error")], b"ok\nerror 1\n");
//! ```
//!
//! It runs the kernel's CPU variant (through a `Framer` and its `CpuRun`) over pieces of 1, 7,
//! 4095, 4097 bytes, 1 MiB and the whole input, and requires one answer; then, on every OpenCL
//! device, it runs the OpenCL variant through the executor over the same pieces with a small
//! and a large device chunk size, and requires the CPU's answer, with a readable diff when not.
//!
//! Without an OpenCL device the device part is skipped with one line on stderr, unless the
//! environment sets `QUARRY_REQUIRE_OPENCL=1` (as `run-tests.sh` does), which makes it fail.
//!
//! Each kernel's cases live in a file of this folder, registered below.

use std::sync::OnceLock;

use bytes::Bytes;
use quarry_kernels::{BoundKernel, Framer, Kernel, Params};
use quarry_offload::backend::opencl::{
    ExecConfig, ExecError, OpenClRuntime, OpenClUnavailable, execute,
};

// Kernel cases, one file per kernel (append yours).
mod k1;
mod k2;
pub(crate) mod probe;

/// The piece sizes every kernel is fed with; `0` stands for the whole input in one piece.
pub(crate) const PIECES: &[usize] = &[0, 1, 7, 4095, 4097, 1 << 20];

/// Device chunk sizes: small (not a multiple of the 4096-byte block, so chunks start mid-block
/// relative to the input) and large (the default).
pub(crate) const DEVICE_CHUNKS: &[(usize, usize)] = &[(5000, 2), (8 << 20, 3)];

/// The longest record the framers accept in these tests.
const MAX_RECORD: usize = 64 << 20;

/// Asserts that the built-in kernel `kernel` with `params` gives the same bytes on the CPU and
/// on every OpenCL device, over every chunking (see the module docs).
pub(crate) fn assert_same_on_every_device(kernel: &str, params: &[(&str, &str)], input: &[u8]) {
    let Some(found) = quarry_kernels::find(kernel) else {
        let known: Vec<_> = quarry_kernels::builtin()
            .iter()
            .map(|k| k.info().name.to_string())
            .collect();
        panic!(
            "no built-in kernel is called {kernel:?} (registered: {}); add it to \
             kernels/src/registry.rs",
            known.join(", ")
        );
    };
    assert_same_for(found, params, input);
}

/// [`assert_same_on_every_device`] for a kernel given as a value (test-only kernels).
pub(crate) fn assert_same_for(kernel: &dyn Kernel, params: &[(&str, &str)], input: &[u8]) {
    let name = kernel.info().name.to_string();
    let params = Params::new(
        params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    )
    .validate(kernel.info())
    .unwrap_or_else(|e| panic!("kernel {name}: bad test parameters: {e}"));
    let bound = kernel
        .bind(&params)
        .unwrap_or_else(|e| panic!("kernel {name}: bind failed: {e}"));
    let expected = cpu_reference(&name, bound.as_ref(), input);
    let Some(runtime) = runtime() else {
        return;
    };
    for device in runtime.devices() {
        for &(chunk_size, in_flight) in DEVICE_CHUNKS {
            for &piece in PIECES {
                let config = ExecConfig {
                    chunk_size,
                    in_flight,
                    max_record: MAX_RECORD,
                };
                let run = bound
                    .device()
                    .unwrap_or_else(|| panic!("kernel {name} has no OpenCL variant"));
                let mut got = Vec::new();
                let result = execute(
                    device,
                    run,
                    bound.framing(),
                    &config,
                    pieces(input, piece).map(Ok),
                    |out| {
                        got.extend_from_slice(&out);
                        Ok::<(), ExecError>(())
                    },
                );
                let what = format!(
                    "kernel {name} on {} (chunk size {chunk_size}, pieces of {}, {} input bytes)",
                    device.info(),
                    piece_name(piece),
                    input.len()
                );
                if let Err(e) = result {
                    panic!("{what}: the device run failed: {e}");
                }
                if got != expected {
                    panic!(
                        "{what}: differs from the CPU run\n{}",
                        describe_difference(&expected, &got)
                    );
                }
            }
        }
    }
}

/// The CPU run's output, the same for every piece size (or, for a device-only kernel, `None`
/// is not allowed here: every kernel under test has a CPU variant).
fn cpu_reference(name: &str, bound: &dyn BoundKernel, input: &[u8]) -> Vec<u8> {
    let mut reference: Option<Vec<u8>> = None;
    for &piece in PIECES {
        let mut run = bound
            .cpu()
            .unwrap_or_else(|| panic!("kernel {name} has no CPU variant to compare with"));
        let mut framer = Framer::new(bound.framing(), MAX_RECORD);
        let mut out = Vec::new();
        for p in pieces(input, piece) {
            for chunk in framer.push(p).expect("records within the test limit") {
                run.feed(&chunk, &mut out)
                    .unwrap_or_else(|e| panic!("kernel {name}: CPU run failed: {e}"));
            }
        }
        if let Some(last) = framer.finish() {
            run.feed(&last, &mut out)
                .unwrap_or_else(|e| panic!("kernel {name}: CPU run failed: {e}"));
        }
        run.finish(&mut out)
            .unwrap_or_else(|e| panic!("kernel {name}: CPU run failed: {e}"));
        match &reference {
            None => reference = Some(out),
            Some(first) if *first != out => panic!(
                "kernel {name}: the CPU run over pieces of {} differs from the whole input's\n{}",
                piece_name(piece),
                describe_difference(first, &out)
            ),
            Some(_) => {}
        }
    }
    reference.unwrap_or_default()
}

/// The devices, loaded once per test binary; `None` (after one line on stderr) without OpenCL,
/// or a panic when `QUARRY_REQUIRE_OPENCL=1`.
#[expect(clippy::print_stderr, reason = "the one line saying what was skipped")]
pub(crate) fn runtime() -> Option<&'static OpenClRuntime> {
    static RUNTIME: OnceLock<Result<OpenClRuntime, OpenClUnavailable>> = OnceLock::new();
    match RUNTIME.get_or_init(OpenClRuntime::load) {
        Ok(runtime) => Some(runtime),
        Err(e) => {
            if std::env::var("QUARRY_REQUIRE_OPENCL").as_deref() == Ok("1") {
                panic!("QUARRY_REQUIRE_OPENCL=1 but {e}");
            }
            static SAID: OnceLock<()> = OnceLock::new();
            SAID.get_or_init(|| {
                eprintln!("kernels_diff: the OpenCL part was not run ({e})");
            });
            None
        }
    }
}

/// `input` cut into pieces of `size` bytes (`0`: one piece).
pub(crate) fn pieces(input: &[u8], size: usize) -> impl Iterator<Item = Bytes> + '_ {
    let size = if size == 0 { input.len().max(1) } else { size };
    input.chunks(size).map(Bytes::copy_from_slice)
}

fn piece_name(size: usize) -> String {
    if size == 0 {
        "the whole input".to_owned()
    } else {
        format!("{size} bytes")
    }
}

/// Where two outputs first differ, with some context from each, escaped.
pub(crate) fn describe_difference(expected: &[u8], got: &[u8]) -> String {
    let at = expected
        .iter()
        .zip(got)
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| expected.len().min(got.len()));
    let line = expected[..at].iter().filter(|&&b| b == b'\n').count() + 1;
    let window = |bytes: &[u8]| {
        let from = at.saturating_sub(64);
        let to = (at + 64).min(bytes.len());
        let from = from.min(to);
        format!(
            "{}[>>{}<<]",
            bytes[from..at.min(to)].escape_ascii(),
            bytes[at.min(to)..to].escape_ascii()
        )
    };
    format!(
        "expected {} bytes, got {}; first difference at byte {at} (line {line} of the expected \
         output)\n  expected: {}\n  got:      {}",
        expected.len(),
        got.len(),
        window(expected),
        window(got)
    )
}
