// SPDX-License-Identifier: Apache-2.0
//! Configuration owned by the interceptor: store limits and S3 front-end limits.
//!
//! `Default` is the embedded default; `agent` composes these into `quarry.toml`.

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

/// Limits the store enforces on what it accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreLimits {
    /// Largest object a single PUT (or a completed multipart upload) may create.
    pub max_object_size: ByteSize,
    /// Smallest size of every multipart part but the last (S3: 5 MiB).
    pub min_part_size: ByteSize,
    /// Largest single part (S3: 5 GiB).
    pub max_part_size: ByteSize,
    /// Largest object stored inline, in the index itself. A whole-object PUT that declares a
    /// length of at most this many bytes is kept in memory and committed together with its
    /// record in one index transaction: no data file, no file or directory fsync, one commit.
    /// Multipart parts are never inline. `0` stores every object in data files. At most
    /// [`StoreLimits::INLINE_MAX_CEILING`]: every inline byte is written into the index and
    /// read back from it.
    pub inline_max: ByteSize,
}

impl StoreLimits {
    /// The largest `inline_max` a configuration may set.
    pub const INLINE_MAX_CEILING: ByteSize = ByteSize::mib(1);
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            max_object_size: ByteSize::tib(5),
            min_part_size: ByteSize::mib(5),
            max_part_size: ByteSize::gib(5),
            inline_max: ByteSize::kib(16),
        }
    }
}

/// Limits the S3 front end enforces before a request reaches the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Limits {
    /// Longest object key in bytes (S3: 1024).
    pub max_key_len: usize,
    /// Largest XML request body (CompleteMultipartUpload, DeleteObjects, ...).
    pub max_xml_body: ByteSize,
    /// Most keys in one DeleteObjects request (S3: 1000).
    pub max_delete_keys: usize,
    /// Most keys returned in one listing page (S3: 1000).
    pub max_list_keys: usize,
}

impl Default for S3Limits {
    fn default() -> Self {
        Self {
            max_key_len: 1024,
            max_xml_body: ByteSize::mib(1),
            max_delete_keys: 1000,
            max_list_keys: 1000,
        }
    }
}
