// SPDX-License-Identifier: Apache-2.0
//! The calls into the OpenCL library that the compiler cannot check: buffers, enqueued
//! transfers and kernel launches. Everything else in the backend is safe code over this.
//!
//! A [`Lane`] is one in-order command queue with its buffers. [`Lane::run`] runs one chunk's
//! plan to completion: every command it enqueues has finished when it returns (on success and
//! on error alike, through [`FinishOnDrop`]), so host memory lent to the driver for the call
//! (the chunk, the constants) is never used after the call.
#![allow(
    unsafe_code,
    reason = "OpenCL buffers, transfers and launches are unsafe FFI (style 9.10 zone)"
)]

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::ffi::c_void;
use std::ptr;
use std::sync::Arc;

use opencl3::command_queue::CommandQueue;
use opencl3::kernel::Kernel;
use opencl3::memory::{
    Buffer, CL_MEM_READ_ONLY, CL_MEM_READ_WRITE, CL_MEM_USE_HOST_PTR, CL_MEM_WRITE_ONLY, ClMem,
    cl_mem_flags,
};
use opencl3::program::Program;
use opencl3::types::{CL_BLOCKING, CL_NON_BLOCKING, cl_command_queue, cl_mem};
use quarry_kernels::Launch;

use super::device::ClDevice;
use super::error::{ClContext, ClError};
use super::program::BuiltProgram;

/// Creates a program from a device binary.
pub(crate) fn program_from_binary(device: &ClDevice, binary: &[u8]) -> Result<Program, ClError> {
    // SAFETY: the one device passed is the device of the context (a ClDevice's context is
    // created from exactly that device), which is what create_from_binary requires.
    unsafe { Program::create_from_binary(device.context(), &[device.id()], &[binary]) }
        .during(|| format!("load a program binary on {}", device.info().name))
}

/// A buffer that grows to the largest size asked of it.
struct Grow<T> {
    flags: cl_mem_flags,
    /// Capacity in elements of `T`.
    cap: usize,
    buf: Option<Buffer<T>>,
}

impl<T> Grow<T> {
    fn new(flags: cl_mem_flags) -> Self {
        Self {
            flags,
            cap: 0,
            buf: None,
        }
    }

    /// The buffer, holding at least `len` elements (at least one).
    fn at_least(&mut self, device: &ClDevice, len: usize) -> Result<&mut Buffer<T>, ClError> {
        let len = len.max(1);
        if self.buf.is_none() || self.cap < len {
            // Grow by half again, so a slowly growing chunk size does not reallocate each time.
            let cap = len.max(self.cap + self.cap / 2);
            self.buf = None;
            // SAFETY: the host pointer is null and CL_MEM_USE_HOST_PTR / COPY_HOST_PTR are not
            // in `flags`, so the driver allocates the memory itself; `cap` is non-zero.
            let buf =
                unsafe { Buffer::<T>::create(device.context(), self.flags, cap, ptr::null_mut()) }
                    .during(|| {
                        format!(
                            "create a buffer of {} bytes on {}",
                            cap * size_of::<T>(),
                            device.info().name
                        )
                    })?;
            self.cap = cap;
            self.buf = Some(buf);
        }
        self.buf
            .as_mut()
            .ok_or_else(|| ClError::host("create a buffer", ""))
    }
}

/// Calls `clFinish` on the queue when dropped: nothing enqueued before is still running.
/// Holds the raw handle; the [`Lane`] that owns the queue outlives it.
struct FinishOnDrop(cl_command_queue);

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        if let Err(code) = cl3::command_queue::finish(self.0) {
            tracing::warn!(code, "clFinish failed");
        }
    }
}

/// One in-order command queue with its buffers and kernel objects (kernel objects hold their
/// arguments, so each lane has its own).
pub(crate) struct Lane {
    queue: CommandQueue,
    input: Grow<u8>,
    consts: Grow<u8>,
    scan: Grow<u32>,
    prefix: Grow<u32>,
    counts: Grow<u32>,
    offsets: Grow<u32>,
    out: Grow<u8>,
    /// Kernel objects by (program identity, entry); the `Arc` keeps the program alive, so the
    /// address in the key is never reused while the entry exists.
    kernels: HashMap<(usize, &'static str), (Arc<BuiltProgram>, Kernel)>,
}

/// An argument of a kernel launch.
enum Arg {
    Mem(cl_mem),
    Len(u64),
}

impl Lane {
    pub(crate) fn new(device: &ClDevice) -> Result<Self, ClError> {
        let queue = CommandQueue::create_default(device.context(), 0)
            .during(|| format!("create a command queue on {}", device.info().name))?;
        Ok(Self {
            queue,
            input: Grow::new(CL_MEM_READ_ONLY),
            consts: Grow::new(CL_MEM_READ_ONLY),
            scan: Grow::new(CL_MEM_READ_WRITE),
            prefix: Grow::new(CL_MEM_READ_ONLY),
            counts: Grow::new(CL_MEM_READ_WRITE),
            offsets: Grow::new(CL_MEM_READ_ONLY),
            out: Grow::new(CL_MEM_WRITE_ONLY),
            kernels: HashMap::new(),
        })
    }

    fn kernel(
        &mut self,
        program: &Arc<BuiltProgram>,
        entry: &'static str,
    ) -> Result<&Kernel, ClError> {
        let key = (Arc::as_ptr(program) as usize, entry);
        let (_, kernel) = match self.kernels.entry(key) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let kernel = Kernel::create(program.program(), entry)
                    .during(|| format!("create kernel {entry} of program {}", program.name()))?;
                e.insert((Arc::clone(program), kernel))
            }
        };
        Ok(kernel)
    }

    /// Runs one chunk's passes; returns the device output (empty when `items` is 0).
    pub(crate) fn run(
        &mut self,
        device: &ClDevice,
        program: &Arc<BuiltProgram>,
        input: &[u8],
        consts: &[u8],
        launch: &Launch,
    ) -> Result<Vec<u8>, ClError> {
        let items = match *launch {
            Launch::Fixed { items, .. } | Launch::CountEmit { items, .. } => items,
        };
        if items == 0 {
            return Ok(Vec::new());
        }
        let mut padded = [0u8; 8];
        let consts: &[u8] = if consts.len() >= 8 {
            consts
        } else {
            padded[..consts.len()].copy_from_slice(consts);
            &padded
        };
        let len = input.len() as u64;
        // A host-pointer buffer over the chunk on devices that share host memory (no copy);
        // declared before the guard, so it is released after the queue has finished.
        let host_input = if device.info().host_unified_memory && !input.is_empty() {
            // SAFETY: the buffer is read-only for the device (CL_MEM_READ_ONLY, and every entry
            // point takes `in` as `const`), so the driver never writes through the pointer we
            // cast to `*mut`; `input` outlives the buffer, which is dropped at the end of this
            // call after `FinishOnDrop` has waited for every command that uses it.
            let buf = unsafe {
                Buffer::<u8>::create(
                    device.context(),
                    CL_MEM_READ_ONLY | CL_MEM_USE_HOST_PTR,
                    input.len(),
                    input.as_ptr().cast_mut().cast::<c_void>(),
                )
            }
            .during(|| format!("create a host-pointer buffer of {} bytes", input.len()))?;
            Some(buf)
        } else {
            None
        };
        let finish = FinishOnDrop(self.queue.get());
        let in_mem = match &host_input {
            Some(buf) => buf.get(),
            None => {
                let buf = self.input.at_least(device, input.len())?;
                if !input.is_empty() {
                    // SAFETY: the write is non-blocking; `input` stays borrowed for this whole
                    // call and `finish` waits for the write before the call returns; the buffer
                    // holds at least `input.len()` bytes (at_least).
                    unsafe {
                        self.queue
                            .enqueue_write_buffer(buf, CL_NON_BLOCKING, 0, input, &[])
                    }
                    .during(|| format!("upload a chunk of {} bytes", input.len()))?;
                }
                buf.get()
            }
        };
        let consts_buf = self.consts.at_least(device, consts.len())?;
        // SAFETY: as for the input: non-blocking, `consts` (or `padded`) outlives `finish`,
        // and the buffer holds at least `consts.len()` bytes.
        unsafe {
            self.queue
                .enqueue_write_buffer(consts_buf, CL_NON_BLOCKING, 0, consts, &[])
        }
        .during(|| "upload kernel constants".to_owned())?;
        let consts_mem = consts_buf.get();
        let result = match *launch {
            Launch::Fixed {
                entry,
                out_per_item,
                ..
            } => {
                let total = items
                    .checked_mul(out_per_item)
                    .ok_or_else(|| ClError::host("size the output", ""))?;
                let out_mem = self.out.at_least(device, total)?.get();
                self.launch(
                    program,
                    entry,
                    &[
                        Arg::Mem(in_mem),
                        Arg::Len(len),
                        Arg::Mem(consts_mem),
                        Arg::Mem(out_mem),
                    ],
                    items,
                )?;
                self.read_out(total)?
            }
            Launch::CountEmit {
                scan, count, emit, ..
            } => {
                let prefix = match scan {
                    Some(scan) => {
                        let scan_mem = self.scan.at_least(device, items)?.get();
                        self.launch(
                            program,
                            scan,
                            &[
                                Arg::Mem(in_mem),
                                Arg::Len(len),
                                Arg::Mem(consts_mem),
                                Arg::Mem(scan_mem),
                            ],
                            items,
                        )?;
                        let values = self.read_u32(Which::Scan, items)?;
                        exclusive_prefix(&values, "scan")?.0
                    }
                    None => vec![0u32; items],
                };
                let prefix_buf = self.prefix.at_least(device, items)?;
                // SAFETY: blocking write: `prefix` is read before the call returns; the buffer
                // holds at least `items` values.
                unsafe {
                    self.queue
                        .enqueue_write_buffer(prefix_buf, CL_BLOCKING, 0, &prefix, &[])
                }
                .during(|| "upload scan prefixes".to_owned())?;
                let prefix_mem = prefix_buf.get();
                let counts_mem = self.counts.at_least(device, items)?.get();
                self.launch(
                    program,
                    count,
                    &[
                        Arg::Mem(in_mem),
                        Arg::Len(len),
                        Arg::Mem(consts_mem),
                        Arg::Mem(prefix_mem),
                        Arg::Mem(counts_mem),
                    ],
                    items,
                )?;
                let counts = self.read_u32(Which::Counts, items)?;
                let (offsets, total) = exclusive_prefix(&counts, "output")?;
                if total == 0 {
                    Vec::new()
                } else {
                    let offsets_buf = self.offsets.at_least(device, items)?;
                    // SAFETY: blocking write of `offsets`, which lives through the call; the
                    // buffer holds at least `items` values.
                    unsafe {
                        self.queue
                            .enqueue_write_buffer(offsets_buf, CL_BLOCKING, 0, &offsets, &[])
                    }
                    .during(|| "upload output offsets".to_owned())?;
                    let offsets_mem = offsets_buf.get();
                    let out_mem = self.out.at_least(device, total)?.get();
                    self.launch(
                        program,
                        emit,
                        &[
                            Arg::Mem(in_mem),
                            Arg::Len(len),
                            Arg::Mem(consts_mem),
                            Arg::Mem(prefix_mem),
                            Arg::Mem(offsets_mem),
                            Arg::Mem(out_mem),
                        ],
                        items,
                    )?;
                    self.read_out(total)?
                }
            }
        };
        drop(finish);
        drop(host_input);
        Ok(result)
    }

    /// Sets `args` on `entry` and enqueues it over `items` work-items.
    fn launch(
        &mut self,
        program: &Arc<BuiltProgram>,
        entry: &'static str,
        args: &[Arg],
        items: usize,
    ) -> Result<(), ClError> {
        let kernel = self.kernel(program, entry)?;
        for (i, arg) in args.iter().enumerate() {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            let set = match arg {
                // SAFETY: the entry's argument `index` is a `__global` pointer (the signatures
                // of the device protocol), and a cl_mem handle is what such an argument takes.
                Arg::Mem(mem) => unsafe { kernel.set_arg(index, mem) },
                // SAFETY: the entry's argument `index` is `const ulong len`: 8 bytes.
                Arg::Len(len) => unsafe { kernel.set_arg(index, len) },
            };
            set.during(|| format!("set argument {i} of kernel {entry}"))?;
        }
        let global = [items];
        let kernel = kernel.get();
        // SAFETY: every argument is set (above); `global` outlives the call (the driver copies
        // the sizes when enqueuing); a null local size lets the driver pick one; one dimension.
        unsafe {
            self.queue.enqueue_nd_range_kernel(
                kernel,
                1,
                ptr::null(),
                global.as_ptr(),
                ptr::null(),
                &[],
            )
        }
        .during(|| format!("run kernel {entry} over {items} work-items"))?;
        Ok(())
    }

    fn read_out(&mut self, total: usize) -> Result<Vec<u8>, ClError> {
        let mut out = vec![0u8; total];
        let buf = self
            .out
            .buf
            .as_ref()
            .ok_or_else(|| ClError::host("read the output", ""))?;
        // SAFETY: blocking read into `out`, which holds exactly `total` bytes; the buffer holds
        // at least `total` bytes (sized by at_least before the launch).
        unsafe {
            self.queue
                .enqueue_read_buffer(buf, CL_BLOCKING, 0, &mut out, &[])
        }
        .during(|| format!("read {total} output bytes"))?;
        Ok(out)
    }

    fn read_u32(&mut self, which: Which, items: usize) -> Result<Vec<u32>, ClError> {
        let mut out = vec![0u32; items];
        let grow = match which {
            Which::Scan => &self.scan,
            Which::Counts => &self.counts,
        };
        let buf = grow
            .buf
            .as_ref()
            .ok_or_else(|| ClError::host("read per-item values", ""))?;
        // SAFETY: blocking read into `out` of `items` values; the buffer holds at least `items`
        // values (sized by at_least before the launch that wrote them).
        unsafe {
            self.queue
                .enqueue_read_buffer(buf, CL_BLOCKING, 0, &mut out, &[])
        }
        .during(|| format!("read {items} per-item values"))?;
        Ok(out)
    }
}

#[derive(Clone, Copy)]
enum Which {
    Scan,
    Counts,
}

/// `out[i] = v[0] + .. + v[i-1]` and the total; the device protocol's offsets are 32-bit, so a
/// total past `u32::MAX` is refused (the chunk size must be lowered).
fn exclusive_prefix(values: &[u32], what: &str) -> Result<(Vec<u32>, usize), ClError> {
    let mut out = Vec::with_capacity(values.len());
    let mut sum: u64 = 0;
    for &v in values {
        let at = u32::try_from(sum).map_err(|_| {
            ClError::host(
                format!("sum the {what} counts"),
                "the chunk's total passed 4 GiB; lower opencl.chunk_size",
            )
        })?;
        out.push(at);
        sum += u64::from(v);
    }
    let total =
        usize::try_from(sum).map_err(|_| ClError::host(format!("sum the {what} counts"), ""))?;
    if u32::try_from(sum).is_err() && what == "output" {
        return Err(ClError::host(
            "sum the output counts",
            "the chunk's output passed 4 GiB; lower opencl.chunk_size",
        ));
    }
    Ok((out, total))
}

/// Writes `data` into one device buffer `times` times through a fresh queue and waits for the
/// writes: the executor's host-to-device path (pageable host memory, non-blocking writes on
/// an in-order queue), for measuring its bandwidth.
pub(crate) fn upload_repeatedly(
    device: &ClDevice,
    data: &[u8],
    times: usize,
) -> Result<(), ClError> {
    if data.is_empty() || times == 0 {
        return Ok(());
    }
    let queue = CommandQueue::create_default(device.context(), 0)
        .during(|| format!("create a command queue on {}", device.info().name))?;
    let mut buffer = Grow::<u8>::new(CL_MEM_READ_ONLY);
    let buf = buffer.at_least(device, data.len())?;
    let _finish = FinishOnDrop(queue.get());
    for _ in 0..times {
        // SAFETY: the write is non-blocking; `data` stays borrowed for this whole call and
        // `_finish` waits for every write before the call returns (and before `buffer` and
        // `queue`, declared earlier, are dropped); the buffer holds at least `data.len()` bytes.
        unsafe { queue.enqueue_write_buffer(buf, CL_NON_BLOCKING, 0, data, &[]) }
            .during(|| format!("upload {} bytes", data.len()))?;
    }
    Ok(())
}
