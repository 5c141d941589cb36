// SPDX-License-Identifier: Apache-2.0
//! The built-in kernels, by name.

use crate::contract::Kernel;

/// Every built-in kernel, in listing order.
pub fn builtin() -> &'static [&'static dyn Kernel] {
    &[
        &crate::grep::Grep,
        &crate::crc32c::Crc32c,
        &crate::byte_histogram::ByteHistogram,
        &crate::csv_filter::CsvFilter,
        &crate::jsonl_filter::JsonlFilter,
        &crate::csv_agg::CsvAgg,
        &crate::reed_solomon::ReedSolomonParity,
        &crate::lz4::Lz4,
        &crate::xxh3::Xxh3,
    ]
}

/// The built-in kernel called `name`.
pub fn find(name: &str) -> Option<&'static dyn Kernel> {
    builtin().iter().copied().find(|k| k.info().name == name)
}
