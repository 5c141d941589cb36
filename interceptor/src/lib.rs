// SPDX-License-Identifier: Apache-2.0
//! # quarry-interceptor
//!
//! Everything about object I/O on a Quarry node.
//!
//! ## Overview
//!
//! - [`store`]: the [`ObjectStore`] seam and its implementations: [`LocalStore`] (the embedded
//!   default: a redb index plus data files named by id) and [`MemStore`] (tests).
//! - [`s3`]: the S3 front end, an `s3s::S3` implementation over any `ObjectStore`, and the
//!   one mapping from store errors to S3 error codes.
//! - [`config`]: limits the store and the front end enforce.
//! - [`metrics`]: request and store metrics (registered into a caller's registry).
//!
//! Later: the trigger index, request hooks and the async event queue.
//!
//! ## Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), quarry_interceptor::store::StoreError> {
//! use quarry_interceptor::{LocalStore, ObjectStore, config::StoreLimits};
//! let store = LocalStore::open("./quarry-data".as_ref(), StoreLimits::default()).await?;
//! store.create_bucket("photos").await?;
//! # Ok(()) }
//! ```
//!
//! ## Design notes
//!
//! The front end never touches the filesystem; the store never sees HTTP. Keys never become
//! paths.

pub mod config;
pub mod events;
pub mod functions;
pub mod hooks;
pub mod metrics;
pub mod s3;
pub mod store;
pub mod triggers;

pub use store::local::LocalStore;
pub use store::memory::MemStore;
pub use store::{ObjectStore, StoreError};
