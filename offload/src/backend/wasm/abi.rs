// SPDX-License-Identifier: Apache-2.0
//! ABI v1 host calls: the `quarry` import module (header: `offload/abi/quarry.h`); the
//! window calls of ABI v2 are in `window.rs`.
//!
//! Every call validates the guest's pointers and lengths against its memory, answers with a
//! negative code instead of trapping on bad input, and enforces the function's permissions and
//! the event it runs for. Only `reject` ends the function (by raising [`Rejection`]).

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use wasmtime::{Caller, Extern, Linker};
use wasmtime_wasi::p1::WasiP1Ctx;

use super::io::StreamState;
use super::limits::{CpuMeter, MemoryLimiter};
use super::window::{self, InputWindow};
use crate::function::{BucketAccess, Effects, Flow, HostError, Permission};

/// The name of the import module.
pub(super) const MODULE: &str = "quarry";

/// Result codes of host calls (the header's `QUARRY_E*`).
mod code {
    pub(super) const OK: i32 = 0;
    pub(super) const INVALID: i32 = -1;
    pub(super) const NOT_PERMITTED: i32 = -2;
    pub(super) const NOT_FOUND: i32 = -3;
    pub(super) const TOO_LARGE: i32 = -4;
    pub(super) const NOT_AVAILABLE: i32 = -5;
    pub(super) const IO: i32 = -6;
}

/// Longest header or metadata name.
const MAX_NAME: u32 = 128;
/// Longest header value, URL or rejection message.
const MAX_VALUE: u32 = 8 * 1024;
/// Most response headers one invocation may set.
const MAX_HEADERS: usize = 64;
/// S3's limit on the total size of user metadata.
const MAX_METADATA_BYTES: usize = 2 * 1024;
/// Longest key (S3's limit).
const MAX_KEY: u32 = 1024;
/// Most bytes one `object_read` returns.
const MAX_READ: u32 = 16 * 1024 * 1024;
/// Largest object `object_write` stores.
const MAX_WRITE: u32 = 64 * 1024 * 1024;

/// Headers a function may set besides `x-amz-meta-*` and `x-quarry-*`.
const SETTABLE_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "content-disposition",
    "content-encoding",
    "content-language",
    "cache-control",
    "expires",
];

/// The function asked the host to end the request with `status` and `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Rejection {
    pub(super) status: u16,
    pub(super) message: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rejected with {}: {}", self.status, self.message)
    }
}

impl std::error::Error for Rejection {}

/// Everything a store of one invocation holds.
pub(super) struct HostState {
    pub(super) wasi: WasiP1Ctx,
    pub(super) memory: MemoryLimiter,
    pub(super) cpu: CpuMeter,
    pub(super) calls: HostCalls,
}

impl HostState {
    /// A state for stores that never run a function (listing the linker's definitions).
    pub(super) fn idle() -> Self {
        Self {
            wasi: wasmtime_wasi::WasiCtxBuilder::new().build_p1(),
            memory: MemoryLimiter::new(0),
            cpu: CpuMeter::new(
                std::time::Duration::from_millis(1),
                std::time::Duration::ZERO,
            ),
            calls: HostCalls {
                flow: Flow::Read,
                effects: Effects::new(),
                permissions: Vec::new(),
                bucket: None,
                streams: Arc::default(),
                window: InputWindow::default(),
            },
        }
    }
}

/// The state behind the `quarry` module.
pub(super) struct HostCalls {
    pub(super) flow: Flow,
    pub(super) effects: Arc<Effects>,
    pub(super) permissions: Vec<Permission>,
    pub(super) bucket: Option<Arc<dyn BucketAccess>>,
    pub(super) streams: Arc<StreamState>,
    /// The input of a window module (ABI v2); empty for v1 modules, which read stdin.
    pub(super) window: InputWindow,
}

/// Adds the `quarry` module to `linker`.
pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(MODULE, "set_header", set_header)?;
    linker.func_wrap(MODULE, "set_metadata", set_metadata)?;
    linker.func_wrap(MODULE, "rewrite_key", rewrite_key)?;
    linker.func_wrap(MODULE, "redirect", redirect)?;
    linker.func_wrap(MODULE, "reject", reject)?;
    linker.func_wrap_async(MODULE, "object_size", |caller, (ptr, len): (u32, u32)| {
        Box::new(object_size(caller, ptr, len))
    })?;
    linker.func_wrap_async(
        MODULE,
        "object_read",
        |caller, (kptr, klen, offset, bptr, blen): (u32, u32, i64, u32, u32)| {
            Box::new(object_read(caller, kptr, klen, offset, bptr, blen))
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "object_write",
        |caller, (kptr, klen, bptr, blen): (u32, u32, u32, u32)| {
            Box::new(object_write(caller, kptr, klen, bptr, blen))
        },
    )?;
    window::add_to_linker(linker)?;
    Ok(())
}

/// Copies `len` bytes at `ptr` out of the guest's memory; `None` if out of bounds or longer
/// than `max`.
fn guest_bytes(
    caller: &mut Caller<'_, HostState>,
    ptr: u32,
    len: u32,
    max: u32,
) -> Option<Vec<u8>> {
    if len > max {
        return None;
    }
    let memory = caller.get_export("memory").and_then(Extern::into_memory)?;
    let data = memory.data(&caller);
    let start = usize::try_from(ptr).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    data.get(start..end).map(<[u8]>::to_vec)
}

/// Like [`guest_bytes`], as UTF-8 text.
fn guest_str(caller: &mut Caller<'_, HostState>, ptr: u32, len: u32, max: u32) -> Option<String> {
    String::from_utf8(guest_bytes(caller, ptr, len, max)?).ok()
}

/// A header value or URL: visible ASCII and spaces, no control characters.
fn is_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
}

/// A metadata name: S3's `x-amz-meta-` suffix characters.
fn is_meta_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn set_header(mut caller: Caller<'_, HostState>, np: u32, nl: u32, vp: u32, vl: u32) -> i32 {
    let calls = &caller.data().calls;
    if !matches!(calls.flow, Flow::BeforeRead | Flow::Read) || calls.streams.wrote_any() {
        // Headers go out with the first output byte; later ones cannot be sent.
        return code::NOT_AVAILABLE;
    }
    let (Some(name), Some(value)) = (
        guest_str(&mut caller, np, nl, MAX_NAME),
        guest_str(&mut caller, vp, vl, MAX_VALUE),
    ) else {
        return code::INVALID;
    };
    let name = name.to_ascii_lowercase();
    let allowed = SETTABLE_HEADERS.contains(&name.as_str())
        || (name.starts_with("x-amz-meta-") && is_meta_name(&name["x-amz-meta-".len()..]))
        || (name.starts_with("x-quarry-") && is_meta_name(&name["x-quarry-".len()..]));
    if !allowed {
        return code::NOT_PERMITTED;
    }
    if !is_header_value(&value) {
        return code::INVALID;
    }
    if name == "content-length" && value.parse::<u64>().is_err() {
        return code::INVALID;
    }
    let effects = Arc::clone(&caller.data().calls.effects);
    {
        let state = effects.lock();
        if state.headers.len() >= MAX_HEADERS && !state.headers.iter().any(|(n, _)| *n == name) {
            return code::TOO_LARGE;
        }
    }
    effects.set_header(name, value);
    code::OK
}

fn set_metadata(mut caller: Caller<'_, HostState>, np: u32, nl: u32, vp: u32, vl: u32) -> i32 {
    if !matches!(caller.data().calls.flow, Flow::Write | Flow::AfterWrite) {
        return code::NOT_AVAILABLE;
    }
    let (Some(name), Some(value)) = (
        guest_str(&mut caller, np, nl, MAX_NAME),
        guest_str(&mut caller, vp, vl, MAX_VALUE),
    ) else {
        return code::INVALID;
    };
    let name = name.to_ascii_lowercase();
    if !is_meta_name(&name) || !is_header_value(&value) {
        return code::INVALID;
    }
    let effects = Arc::clone(&caller.data().calls.effects);
    let mut state = effects.lock();
    let total: usize = state
        .metadata
        .iter()
        .filter(|(n, _)| **n != name)
        .map(|(n, v)| n.len() + v.len())
        .sum();
    if total + name.len() + value.len() > MAX_METADATA_BYTES {
        return code::TOO_LARGE;
    }
    state.metadata.insert(name, value);
    code::OK
}

fn rewrite_key(mut caller: Caller<'_, HostState>, ptr: u32, len: u32) -> i32 {
    if caller.data().calls.flow != Flow::BeforeRead {
        return code::NOT_AVAILABLE;
    }
    match guest_str(&mut caller, ptr, len, MAX_KEY) {
        Some(key) if !key.is_empty() => {
            caller.data().calls.effects.lock().rewrite_key = Some(key);
            code::OK
        }
        _ => code::INVALID,
    }
}

fn redirect(mut caller: Caller<'_, HostState>, ptr: u32, len: u32) -> i32 {
    if caller.data().calls.flow != Flow::BeforeRead {
        return code::NOT_AVAILABLE;
    }
    match guest_str(&mut caller, ptr, len, MAX_VALUE) {
        Some(url) if !url.is_empty() && is_header_value(&url) => {
            caller.data().calls.effects.lock().redirect = Some(url);
            code::OK
        }
        _ => code::INVALID,
    }
}

fn reject(
    mut caller: Caller<'_, HostState>,
    status: i32,
    ptr: u32,
    len: u32,
) -> wasmtime::Result<()> {
    let status = u16::try_from(status)
        .ok()
        .filter(|s| (400..=599).contains(s))
        .unwrap_or(500);
    let mut message = guest_bytes(&mut caller, ptr, len.min(MAX_VALUE), MAX_VALUE)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    message.retain(|c| !c.is_control());
    Err(wasmtime::Error::new(Rejection { status, message }))
}

/// The bucket handle when the function holds `permission`, or the code to answer with.
fn bucket_for(
    caller: &Caller<'_, HostState>,
    permission: Permission,
) -> Result<Arc<dyn BucketAccess>, i32> {
    let calls = &caller.data().calls;
    if !calls.permissions.contains(&permission) {
        return Err(code::NOT_PERMITTED);
    }
    calls.bucket.clone().ok_or(code::NOT_AVAILABLE)
}

fn host_code(err: &HostError) -> i32 {
    match err {
        HostError::NotFound => code::NOT_FOUND,
        HostError::TooLarge => code::TOO_LARGE,
        HostError::Invalid(_) => code::INVALID,
        HostError::Io(_) => code::IO,
    }
}

async fn object_size(mut caller: Caller<'_, HostState>, ptr: u32, len: u32) -> i64 {
    let bucket = match bucket_for(&caller, Permission::Read) {
        Ok(b) => b,
        Err(c) => return i64::from(c),
    };
    let Some(key) = guest_str(&mut caller, ptr, len, MAX_KEY) else {
        return i64::from(code::INVALID);
    };
    match bucket.size(&key).await {
        Ok(size) => i64::try_from(size).unwrap_or(i64::MAX),
        Err(e) => i64::from(host_code(&e)),
    }
}

async fn object_read(
    mut caller: Caller<'_, HostState>,
    kptr: u32,
    klen: u32,
    offset: i64,
    bptr: u32,
    blen: u32,
) -> i64 {
    let bucket = match bucket_for(&caller, Permission::Read) {
        Ok(b) => b,
        Err(c) => return i64::from(c),
    };
    let Some(key) = guest_str(&mut caller, kptr, klen, MAX_KEY) else {
        return i64::from(code::INVALID);
    };
    let Ok(offset) = u64::try_from(offset) else {
        return i64::from(code::INVALID);
    };
    let Some(memory) = caller.get_export("memory").and_then(Extern::into_memory) else {
        return i64::from(code::INVALID);
    };
    let start = usize::try_from(bptr).unwrap_or(usize::MAX);
    let want = blen.min(MAX_READ);
    let Some(end) = start.checked_add(usize::try_from(want).unwrap_or(usize::MAX)) else {
        return i64::from(code::INVALID);
    };
    if end > memory.data_size(&caller) {
        return i64::from(code::INVALID);
    }
    let bytes: Bytes = match bucket.read(&key, offset, u64::from(want)).await {
        Ok(b) => b,
        Err(e) => return i64::from(host_code(&e)),
    };
    let n = bytes.len().min(end - start);
    // The memory cannot shrink, so the range checked above is still in bounds.
    match memory.data_mut(&mut caller).get_mut(start..start + n) {
        Some(dst) => {
            dst.copy_from_slice(&bytes[..n]);
            i64::try_from(n).unwrap_or(i64::MAX)
        }
        None => i64::from(code::INVALID),
    }
}

async fn object_write(
    mut caller: Caller<'_, HostState>,
    kptr: u32,
    klen: u32,
    bptr: u32,
    blen: u32,
) -> i32 {
    let bucket = match bucket_for(&caller, Permission::Write) {
        Ok(b) => b,
        Err(c) => return c,
    };
    let Some(key) = guest_str(&mut caller, kptr, klen, MAX_KEY) else {
        return code::INVALID;
    };
    if blen > MAX_WRITE {
        return code::TOO_LARGE;
    }
    let Some(bytes) = guest_bytes(&mut caller, bptr, blen, MAX_WRITE) else {
        return code::INVALID;
    };
    match bucket.write(&key, Bytes::from(bytes)).await {
        Ok(()) => code::OK,
        Err(e) => host_code(&e),
    }
}
