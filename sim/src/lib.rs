// SPDX-License-Identifier: Apache-2.0
#![forbid(unsafe_code)]
//! # quarry-sim
//!
//! Will own the deterministic device models (computational-storage drives, FPGA cards, GPUs),
//! their profiles with cited figures, and the virtual clock they advance. The models compute
//! how long a device would take while the real kernels (from `quarry-kernels`) and eBPF
//! programs (from `quarry-ebpf`) produce the real bytes. No wall clock, seeded randomness only.
//!
//! Nothing is implemented yet; this crate holds its place in the dependency order.
