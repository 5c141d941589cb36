// SPDX-License-Identifier: Apache-2.0
//! Named crash points inside [`LocalStore`](super::LocalStore), for crash tests.
//!
//! Compiled only for tests and with the `failpoints` feature; other builds use
//! `failpoints_disabled.rs`, whose `trigger` is a no-op the compiler removes.
//!
//! A test arms a point on a shared [`Failpoints`], opens the store with
//! [`LocalStore::open_with_failpoints`](super::LocalStore::open_with_failpoints) and runs an
//! operation. When the operation reaches the armed point it returns at once with an error and
//! runs **no cleanup**: files it created stay on disk, files it meant to delete stay too, and an
//! open index transaction is dropped uncommitted, as after `kill -9`. The test then drops the
//! store, reopens the directory and checks the invariants. A point fires once, then disarms.
//!
//! Index writes run in batches on the committer thread (`committer/mod.rs`). The points before a
//! commit (`*.before_index_commit`, `complete.before_commit`) fire there, once the request's
//! batch was applied: the whole batch is dropped uncommitted and every request in it fails, as
//! all of them would in a crash, with their files left on disk. The points after a commit fire
//! in the request itself, once its batch committed and before the files it freed are removed.

use std::collections::BTreeSet;
use std::io;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use crate::store::StoreError;

/// Every named crash point, in the order an operation reaches them.
pub const FAILPOINTS: &[&str] = &[
    "put.after_data_fsync",
    "put.before_index_commit",
    "put.after_index_commit",
    "update_metadata.after_commit",
    "upload_part.after_data_fsync",
    "upload_part.before_index_commit",
    "upload_part.after_index_commit",
    "complete.before_commit",
    "complete.after_commit",
    "delete.after_commit",
];

/// The `op` of the error a fired failpoint returns.
const CRASH_OP: &str = "simulate a crash at failpoint";

/// A set of armed crash points, shared between a test and the store it opened.
#[derive(Debug, Default)]
pub struct Failpoints {
    armed: Mutex<BTreeSet<&'static str>>,
    fired: Mutex<Vec<&'static str>>,
}

impl Failpoints {
    /// An empty set: nothing fires.
    pub fn new() -> Self {
        Self::default()
    }

    /// Arms the named point: the next operation to reach it stops there.
    ///
    /// # Panics
    ///
    /// If `name` is not one of [`FAILPOINTS`], so a typo cannot make a crash test vacuous.
    pub fn arm(&self, name: &str) {
        let known = FAILPOINTS.iter().find(|known| **known == name);
        let Some(known) = known else {
            panic!("unknown failpoint {name:?}; known: {FAILPOINTS:?}");
        };
        self.armed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(known);
    }

    /// Disarms every point.
    pub fn disarm_all(&self) {
        self.armed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// The points that have fired so far, in order.
    pub fn fired(&self) -> Vec<&'static str> {
        self.fired
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether `err` is the error of a fired failpoint.
    pub fn is_crash(err: &StoreError) -> bool {
        matches!(err, StoreError::Io { op, .. } if *op == CRASH_OP)
    }

    /// Called by the store at each named point: fails if the point is armed (and disarms it).
    pub(super) fn trigger(&self, name: &'static str) -> Result<(), StoreError> {
        debug_assert!(FAILPOINTS.contains(&name), "failpoint {name} is not listed");
        let fired = self
            .armed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
        if !fired {
            return Ok(());
        }
        self.fired
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(name);
        Err(StoreError::Io {
            op: CRASH_OP,
            path: PathBuf::from(name),
            source: io::Error::other(format!("failpoint {name} fired")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn armed_failpoint_fires_once() {
        let fps = Failpoints::new();
        assert!(fps.trigger("put.before_index_commit").is_ok());
        fps.arm("put.before_index_commit");
        let err = fps.trigger("put.before_index_commit").unwrap_err();
        assert!(Failpoints::is_crash(&err));
        assert!(fps.trigger("put.before_index_commit").is_ok());
        assert_eq!(fps.fired(), vec!["put.before_index_commit"]);
    }

    #[test]
    #[should_panic(expected = "unknown failpoint")]
    fn arming_an_unknown_failpoint_panics() {
        Failpoints::new().arm("put.nowhere");
    }
}
