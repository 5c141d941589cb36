// SPDX-License-Identifier: Apache-2.0
//! # quarry-ebpf
//!
//! Will own Quarry's eBPF code: the C sources of kernel probes that watch file writes,
//! renames and deletes under configured directories (loaded with libbpf-rs behind the `ebpf`
//! feature, with a `probes_disabled.rs` twin when the feature is off), the smart-SSD device
//! programs, and the userspace eBPF VM wrapper that runs those programs in the simulator.
//!
//! Nothing is implemented yet; this crate holds its place in the dependency order.
