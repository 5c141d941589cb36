// SPDX-License-Identifier: Apache-2.0
//! # quarry-ebpf
//!
//! Quarry's eBPF code. Today it holds the smart-SSD side: downloadable device programs in the
//! NVMe computational-programs model, and the userspace VM that runs them in the simulator.
//! The kernel probes that watch file writes, renames and deletes (libbpf-rs behind the `ebpf`
//! feature, with a fanotify fallback) belong here too and will live in their own module.
//!
//! ## Device programs
//!
//! A device program is an eBPF ELF object compiled from C with `clang -target bpf -O2`
//! against `include/quarry_bpf.h`: a function in section `quarry/chunk` called once per chunk
//! of whole records, and optionally one in `quarry/finish` called after the last chunk. The
//! helper ABI (emit output, read a parameter, emit a number), the context (the chunk, its
//! length, a per-job state area kept between chunks) and the limits are documented in the
//! header and in `docs/ebpf.md`.
//!
//! [`Program::load`] parses the object with the `object` crate, applies its relocations to
//! read-only data, and checks every instruction (the verify module); it refuses, with a
//! message naming the fix, anything that is not an ELF, not BPF, lacks the chunk section,
//! calls an unknown helper, or is over the size limits. A [`Job`] runs the functions chunk by
//! chunk under an instruction budget per call ([`Limits::budget`]), and [`EbpfKernel`] makes a
//! program a kernel of the kernels contract, so it runs wherever a kernel's CPU run does.
//!
//! ## Why a VM of our own
//!
//! `rbpf` interprets standard eBPF, but its helpers are bare function pointers with no
//! per-run context (emitting output would need globals) and its interpreter has no
//! instruction meter, so a budget would need a fork; `solana-sbpf` has a meter and a
//! context object, but runs Solana's SBF dialect and expects its ELF conventions, not the
//! objects `clang -target bpf` writes. The interpreter here is small (the vm module): a
//! metered loop over pre-decoded instructions with every load and store checked against the
//! area it addresses (each area has its own 4 GiB window, so a check is one shift, one
//! lookup and one length compare), and nothing unsafe. ELF parsing is left to `object`, the
//! well-kept crate the Rust toolchain itself uses.
//!
//! ## Built-in programs
//!
//! With the `ebpf` feature, `build.rs` compiles `programs/*.c` (grep count, csv-filter on one
//! column, crc32c) and [`builtin`] embeds them; without it the crate still builds and
//! [`builtin::object`] says at run time that the programs are absent and how to get them.

pub mod abi;
pub mod builtin;
mod error;
pub mod isa;
mod job;
mod kernel;
mod limits;
mod program;
mod verify;
mod vm;

pub use error::{LoadError, RunError};
pub use job::Job;
pub use kernel::{EbpfKernel, EbpfRun, KernelSpec, ParamCheck};
pub use limits::Limits;
pub use program::{Function, Program};
