// SPDX-License-Identifier: Apache-2.0
//! Stand-in for `failpoints.rs` in builds without the `failpoints` feature: the same internal
//! API, with a `trigger` that never fires and compiles to nothing.

use crate::store::StoreError;

/// No crash points in this build.
#[derive(Debug, Default)]
pub(super) struct Failpoints;

impl Failpoints {
    /// An empty set.
    pub(super) fn new() -> Self {
        Self
    }

    /// Never fires.
    #[inline(always)]
    pub(super) fn trigger(&self, _name: &'static str) -> Result<(), StoreError> {
        Ok(())
    }
}
