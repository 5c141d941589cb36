// SPDX-License-Identifier: Apache-2.0
//! What a function is to the engines that run it: its contract ([`FunctionSpec`]), the facts
//! and params of one invocation ([`InvocationContext`]), what the function asked the host to do
//! ([`Effects`]), and the host's window onto the trigger's bucket ([`BucketAccess`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::backend::wasm::WasmModule;
use crate::backend::{BackendId, DataLocation};

/// Per-function limits, enforced by the backend that runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FunctionLimits {
    /// Linear memory the function may grow to.
    pub memory: bytesize::ByteSize,
    /// CPU time, counted in epoch ticks while the function runs.
    #[serde(with = "humantime_serde")]
    pub cpu_time: Duration,
    /// Wall-clock time from start until the first output byte (or the end, for functions that
    /// write nothing).
    #[serde(with = "humantime_serde")]
    pub first_byte_timeout: Duration,
    /// Wall-clock time from start to end.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Bytes the function may write to stdout.
    pub max_output: bytesize::ByteSize,
}

impl Default for FunctionLimits {
    fn default() -> Self {
        Self {
            memory: bytesize::ByteSize::mib(64),
            cpu_time: Duration::from_secs(30),
            first_byte_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            max_output: bytesize::ByteSize::gib(5),
        }
    }
}

/// What a function may do beyond its own input and output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Permission {
    /// Read other objects in the trigger's bucket (`object_size`, `object_read`).
    Read,
    /// Write objects in the trigger's bucket (`object_write`).
    Write,
}

/// One implementation of a function.
#[derive(Clone)]
pub enum Variant {
    /// A WebAssembly module compiled for the [`WasmBackend`](crate::WasmBackend).
    Wasm(Arc<WasmModule>),
    /// A kernel (built-in, or a user's OpenCL kernel), bound to the invocation's params when
    /// a job starts. Its CPU variant runs on the native backend, its OpenCL variant on
    /// OpenCL devices.
    Kernel(Arc<dyn quarry_kernels::Kernel>),
    /// An eBPF program for a smart SSD (a downloadable program in the NVMe computational-
    /// programs model), run in the userspace eBPF VM. Only computational-storage backends
    /// run it; every other backend's `variant_for` passes it over.
    Ebpf(Arc<quarry_ebpf::EbpfKernel>),
}

impl fmt::Debug for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Wasm(_) => f.write_str("Variant::Wasm"),
            Self::Kernel(k) => write!(f, "Variant::Kernel({})", k.info().name),
            Self::Ebpf(k) => write!(
                f,
                "Variant::Ebpf({})",
                quarry_kernels::Kernel::info(k.as_ref()).name
            ),
        }
    }
}

/// A deployed function version as the engines see it.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// The function's name.
    pub name: String,
    /// Its version; each deploy of the same name adds one.
    pub version: u64,
    /// Limits every run is held to.
    pub limits: FunctionLimits,
    /// What it may do beyond its input and output.
    pub permissions: Vec<Permission>,
    /// Its implementations.
    pub variants: Vec<Variant>,
}

impl FunctionSpec {
    /// `name@vN`, the way logs and errors name a function version.
    pub fn label(&self) -> String {
        format!("{}@v{}", self.name, self.version)
    }

    /// Whether the function declared `permission`.
    pub fn may(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }
}

/// Facts about the object an invocation is about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectFacts {
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// Size in bytes, when known (not for a PUT body of unknown length).
    pub size: Option<u64>,
    /// `Content-Type`, when set.
    pub content_type: Option<String>,
    /// ETag without quotes, when the object exists.
    pub etag: Option<String>,
    /// User metadata (`x-amz-meta-*` without the prefix).
    pub metadata: BTreeMap<String, String>,
}

/// Which request a function runs in, deciding which host calls it may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// `before-get`: no body; may rewrite, redirect, set headers, reject.
    BeforeRead,
    /// `after-get` or an explicit GET: transforms the body; may set headers, reject.
    Read,
    /// `put` or an explicit PUT: transforms the body to store; may set metadata, reject.
    Write,
    /// `put-done`, `copy`: after commit; may update the stored object's metadata.
    AfterWrite,
    /// `delete`: after commit; the object is gone.
    AfterDelete,
}

impl Flow {
    /// The flow of an event name, as in `InvocationContext::event`; `invoke` is resolved by the
    /// caller to `Read` or `Write`.
    pub fn of_event(event: &str) -> Option<Self> {
        Some(match event {
            "before-get" => Self::BeforeRead,
            "after-get" => Self::Read,
            "put" => Self::Write,
            "put-done" | "copy" => Self::AfterWrite,
            "delete" => Self::AfterDelete,
            _ => return None,
        })
    }
}

/// Everything an invocation knows besides its input bytes.
#[derive(Debug, Clone, Default)]
pub struct InvocationContext {
    /// The event that caused it: `before-get`, `after-get`, `put`, `put-done`, `delete`, `copy`
    /// or `invoke`.
    pub event: String,
    /// The object.
    pub facts: ObjectFacts,
    /// Parameters after precedence (function defaults, then trigger, then request).
    pub params: BTreeMap<String, String>,
    /// Where the job's input sits: on a device's namespace when the job reads an object of a
    /// bucket placed there, otherwise the host.
    pub location: DataLocation,
}

impl InvocationContext {
    /// The environment ABI v1 gives the function: `QUARRY_PARAM_<NAME>`, `QUARRY_META_<NAME>`
    /// (names upper-cased, `-` and `.` as `_`) and the object facts.
    pub fn environment(&self, function: &str) -> Vec<(String, String)> {
        let facts = &self.facts;
        let mut env = vec![
            ("QUARRY_FUNCTION".to_owned(), function.to_owned()),
            ("QUARRY_EVENT".to_owned(), self.event.clone()),
            ("QUARRY_BUCKET".to_owned(), facts.bucket.clone()),
            ("QUARRY_KEY".to_owned(), facts.key.clone()),
        ];
        if let Some(size) = facts.size {
            env.push(("QUARRY_SIZE".to_owned(), size.to_string()));
        }
        if let Some(ct) = &facts.content_type {
            env.push(("QUARRY_CONTENT_TYPE".to_owned(), ct.clone()));
        }
        if let Some(etag) = &facts.etag {
            env.push(("QUARRY_ETAG".to_owned(), etag.clone()));
        }
        for (name, value) in &facts.metadata {
            env.push((format!("QUARRY_META_{}", env_name(name)), value.clone()));
        }
        for (name, value) in &self.params {
            env.push((format!("QUARRY_PARAM_{}", env_name(name)), value.clone()));
        }
        env
    }
}

/// A parameter or metadata name as an environment-variable suffix.
pub fn env_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '-' | '.' | ' ' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

/// What a function asked the host to do, collected while it runs and applied by the caller.
#[derive(Debug, Default)]
pub struct Effects {
    state: Mutex<EffectState>,
    /// The backend the scheduler placed the job on, set before output starts.
    backend: Mutex<Option<BackendId>>,
    /// Simulated device time of the jobs that reported one, summed over a chain's stages.
    device_time: Mutex<Option<Duration>>,
}

/// The collected effects; see [`Effects`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EffectState {
    /// Response headers, in the order set (names lowercased).
    pub headers: Vec<(String, String)>,
    /// User-metadata entries to set on the object.
    pub metadata: BTreeMap<String, String>,
    /// `before-get`: read this key instead.
    pub rewrite_key: Option<String>,
    /// `before-get`: answer with a redirect to this URL.
    pub redirect: Option<String>,
}

impl Effects {
    /// A fresh, shareable set.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Locks the state (a poisoned lock still holds consistent data: every update is one
    /// assignment).
    pub fn lock(&self) -> MutexGuard<'_, EffectState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A copy of the state.
    pub fn snapshot(&self) -> EffectState {
        self.lock().clone()
    }

    /// Records the backend a job was placed on (the `x-quarry-backend` header); set by the
    /// scheduler before the job's output starts.
    pub fn set_backend(&self, backend: BackendId) {
        *self
            .backend
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(backend);
    }

    /// The backend the job was placed on, once placed (in a chain, the stage placed last).
    pub fn backend(&self) -> Option<BackendId> {
        self.backend
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Adds a modelled device's time for one job (the `x-quarry-device-time` header); set by
    /// simulated-device backends before their output is released.
    pub fn add_device_time(&self, time: Duration) {
        let mut slot = self
            .device_time
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *slot = Some(slot.unwrap_or_default() + time);
    }

    /// The summed device time of the jobs on modelled devices so far, if any ran on one.
    pub fn device_time(&self) -> Option<Duration> {
        *self
            .device_time
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets a response header, replacing an earlier value of the same name.
    pub fn set_header(&self, name: String, value: String) {
        let mut state = self.lock();
        state.headers.retain(|(n, _)| *n != name);
        state.headers.push((name, value));
    }
}

/// Why a host call on another object failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// The object does not exist.
    #[error("object not found")]
    NotFound,
    /// The object or the buffer is larger than the host allows.
    #[error("too large")]
    TooLarge,
    /// The argument (a key) is not acceptable.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// The store failed.
    #[error("i/o error: {0}")]
    Io(String),
}

/// The host's access to the trigger's bucket on behalf of a function with the `read` or
/// `write` permission. Implemented by the interceptor over its object store.
#[async_trait]
pub trait BucketAccess: Send + Sync + 'static {
    /// Size of the object `key`.
    async fn size(&self, key: &str) -> Result<u64, HostError>;
    /// Up to `len` bytes of `key` from `offset`; empty at or past the end.
    async fn read(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, HostError>;
    /// Replaces (or creates) the object `key` with `bytes`.
    async fn write(&self, key: &str, bytes: Bytes) -> Result<(), HostError>;
}
