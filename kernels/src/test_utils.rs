// SPDX-License-Identifier: Apache-2.0
//! Test helpers shared by the kernels' unit tests: binding with literal parameters, and CPU
//! runs over an input cut into pieces of given sizes by a [`Framer`].

use std::sync::Arc;

use bytes::Bytes;

use crate::contract::{BoundKernel, Kernel, KernelError, Params};
use crate::framing::Framer;

/// Binds `kernel` to `params` (validated and defaulted).
pub(crate) fn try_bind(
    kernel: &dyn Kernel,
    params: &[(&str, &str)],
) -> Result<Arc<dyn BoundKernel>, KernelError> {
    let given = Params::new(
        params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    kernel.bind(&given.validate(kernel.info())?)
}

/// Binds `kernel` to `params`, which must be valid.
pub(crate) fn bind(kernel: &dyn Kernel, params: &[(&str, &str)]) -> Arc<dyn BoundKernel> {
    try_bind(kernel, params).expect("valid parameters")
}

/// The CPU output for `input`, cut into pieces of `sizes` (cycled; 0 is read as 1) and framed
/// into chunks of whole records.
pub(crate) fn run_cpu_pieces(bound: &dyn BoundKernel, input: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut framer = Framer::new(bound.framing(), usize::MAX);
    let mut run = bound.cpu().expect("a CPU variant");
    let mut out = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < input.len() {
        let size = sizes
            .get(i % sizes.len().max(1))
            .copied()
            .unwrap_or(input.len());
        let end = (pos + size.max(1)).min(input.len());
        for chunk in framer
            .push(Bytes::copy_from_slice(&input[pos..end]))
            .expect("no limit")
        {
            run.feed(&chunk, &mut out).expect("feed");
        }
        pos = end;
        i += 1;
    }
    if let Some(rest) = framer.finish() {
        run.feed(&rest, &mut out).expect("feed");
    }
    run.finish(&mut out).expect("finish");
    out
}

/// The CPU output for `input` as one piece.
pub(crate) fn run_cpu(bound: &dyn BoundKernel, input: &[u8]) -> Vec<u8> {
    run_cpu_pieces(bound, input, &[input.len()])
}
