// SPDX-License-Identifier: Apache-2.0
//! Configuration owned by the interceptor: the store's limits and read path, and S3 front-end
//! limits.
//!
//! `Default` is the embedded default; `agent` composes these into `quarry.toml`.

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

/// The `[store]` table: limits the store enforces on what it accepts, and how it reads.
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
    /// Which engine reads object bodies from data files (see [`ReadEngineChoice`]).
    pub read_engine: ReadEngineChoice,
    /// Reads (one buffer each) one GET keeps in flight ahead of its consumer, so the device
    /// always has requests queued. Between 1 and [`StoreLimits::READ_DEPTH_CEILING`].
    pub read_depth: usize,
    /// Buffers in the read pool that all GETs share; with io_uring they are registered with
    /// the ring (pinned memory). A read waits for a free buffer, so this bounds the memory of
    /// the read path. At least `read_depth`, at most [`StoreLimits::READ_BUFFERS_CEILING`].
    pub read_buffers: usize,
    /// Size of each read buffer: the size of one read and of one body chunk. A body of at
    /// most this size is read whole when its object is opened. A multiple of 4 KiB (the
    /// `O_DIRECT` alignment), between 4 KiB and [`StoreLimits::READ_BUFFER_SIZE_CEILING`].
    pub read_buffer_size: ByteSize,
    /// When bodies larger than one buffer are read with `O_DIRECT` (past the page cache,
    /// straight into the pool's buffers) rather than through the page cache (see
    /// [`DirectIo`]). A filesystem that refuses `O_DIRECT` (tmpfs) is always read through the
    /// page cache, and so are smaller bodies, where hot small objects stay.
    pub direct_io: DirectIo,
}

impl StoreLimits {
    /// The largest `inline_max` a configuration may set.
    pub const INLINE_MAX_CEILING: ByteSize = ByteSize::mib(1);
    /// The largest `read_depth` a configuration may set.
    pub const READ_DEPTH_CEILING: usize = 64;
    /// The most read buffers a configuration may ask for.
    pub const READ_BUFFERS_CEILING: usize = 4096;
    /// The largest `read_buffer_size` a configuration may set.
    pub const READ_BUFFER_SIZE_CEILING: ByteSize = ByteSize::mib(16);
    /// What `read_buffer_size` must be a multiple of: the `O_DIRECT` alignment.
    pub const READ_BUFFER_ALIGN: u64 = 4096;

    /// Problems with the read-path settings, each naming its key and the fix; empty when
    /// they are consistent. `LocalStore::open` refuses settings with problems.
    pub fn read_path_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let depth_max = Self::READ_DEPTH_CEILING;
        if !(1..=depth_max).contains(&self.read_depth) {
            problems.push(format!(
                "store.read_depth is {}; use 1 to {depth_max}",
                self.read_depth
            ));
        }
        let buffers_max = Self::READ_BUFFERS_CEILING;
        if self.read_buffers < self.read_depth || self.read_buffers > buffers_max {
            problems.push(format!(
                "store.read_buffers is {}; use store.read_depth ({}) to {buffers_max}",
                self.read_buffers, self.read_depth
            ));
        }
        let size = self.read_buffer_size;
        let size_max = Self::READ_BUFFER_SIZE_CEILING;
        let align = Self::READ_BUFFER_ALIGN;
        if size.as_u64() == 0 || !size.as_u64().is_multiple_of(align) || size > size_max {
            problems.push(format!(
                "store.read_buffer_size is {size}; use a multiple of 4KiB up to {size_max}"
            ));
        }
        problems
    }
}

/// The engine that reads object bodies from data files (`store.read_engine`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadEngineChoice {
    /// io_uring where the kernel allows it (probed at open), else pread with one log line
    /// saying why.
    #[default]
    Auto,
    /// io_uring; the store refuses to open where it is unavailable.
    Uring,
    /// Positioned reads on blocking threads, never io_uring.
    Pread,
}

/// When the io_uring engine reads a large body with `O_DIRECT` (`store.direct_io`).
///
/// Written as a string; `true` and `false` are taken too, as `"always"` and `"never"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectIo {
    /// Per object, from its page-cache residency when it is opened: a body whose sampled
    /// pages are mostly cached is read through the page cache (a warm GET is served from
    /// memory), any other with `O_DIRECT`.
    #[default]
    Auto,
    /// Always `O_DIRECT`, cached or not: a large scan never touches the page cache.
    Always,
    /// Never `O_DIRECT`: every read goes through the page cache.
    Never,
}

impl DirectIo {
    /// The setting's name in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Always => "always",
            Self::Never => "never",
        }
    }
}

impl<'de> Deserialize<'de> for DirectIo {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = DirectIo;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"auto\", \"always\" or \"never\"")
            }

            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<DirectIo, E> {
                Ok(if v { DirectIo::Always } else { DirectIo::Never })
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<DirectIo, E> {
                match v {
                    "auto" => Ok(DirectIo::Auto),
                    "always" => Ok(DirectIo::Always),
                    "never" => Ok(DirectIo::Never),
                    other => Err(E::custom(format!(
                        "store.direct_io is \"{other}\"; use \"auto\", \"always\" or \"never\""
                    ))),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            max_object_size: ByteSize::tib(5),
            min_part_size: ByteSize::mib(5),
            max_part_size: ByteSize::gib(5),
            inline_max: ByteSize::kib(16),
            read_engine: ReadEngineChoice::Auto,
            read_depth: 8,
            read_buffers: 64,
            read_buffer_size: ByteSize::mib(1),
            direct_io: DirectIo::Auto,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_settings_parse_from_the_store_table() {
        let limits: StoreLimits = toml::from_str(
            "read_engine = \"pread\"\nread_depth = 16\nread_buffers = 32\n\
             read_buffer_size = \"256KiB\"\ndirect_io = false\n",
        )
        .unwrap();
        assert_eq!(limits.read_engine, ReadEngineChoice::Pread);
        assert_eq!((limits.read_depth, limits.read_buffers), (16, 32));
        assert_eq!(limits.read_buffer_size, ByteSize::kib(256));
        assert_eq!(limits.direct_io, DirectIo::Never, "false is never");
        assert!(limits.read_path_problems().is_empty());
        let unknown = toml::from_str::<StoreLimits>("read_engine = \"spdk\"");
        assert!(unknown.is_err(), "an engine outside the set is refused");
    }

    #[test]
    fn direct_io_takes_its_names_and_the_old_booleans() {
        let parse = |v: &str| toml::from_str::<StoreLimits>(&format!("direct_io = {v}"));
        for (text, want) in [
            ("\"auto\"", DirectIo::Auto),
            ("\"always\"", DirectIo::Always),
            ("\"never\"", DirectIo::Never),
            ("true", DirectIo::Always),
            ("false", DirectIo::Never),
        ] {
            assert_eq!(parse(text).unwrap().direct_io, want, "{text}");
        }
        assert_eq!(StoreLimits::default().direct_io, DirectIo::Auto);
        let err = parse("\"sometimes\"").unwrap_err().to_string();
        assert!(
            err.contains("store.direct_io is \"sometimes\"") && err.contains("\"always\""),
            "the error names the key and the choices: {err}"
        );
        let written = toml::to_string(&StoreLimits::default()).unwrap();
        assert!(written.contains("direct_io = \"auto\""), "{written}");
    }

    #[test]
    fn read_settings_problems_name_the_key() {
        assert!(StoreLimits::default().read_path_problems().is_empty());
        let bad = StoreLimits {
            read_depth: 65,
            read_buffers: 10,
            read_buffer_size: ByteSize::kib(6),
            ..StoreLimits::default()
        };
        let problems = bad.read_path_problems();
        assert_eq!(problems.len(), 3, "{problems:?}");
        for key in ["read_depth", "read_buffers", "read_buffer_size"] {
            let named = format!("store.{key} is");
            assert!(problems.iter().any(|p| p.contains(&named)), "{problems:?}");
        }
    }
}
