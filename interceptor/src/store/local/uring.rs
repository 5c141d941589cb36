// SPDX-License-Identifier: Apache-2.0
//! The io_uring engine: one thread owns a ring, the pool's buffers are registered with it
//! as fixed buffers, and reads and writes are lent buffers by ownership.
//!
//! An operation ([`RingOp`]: a [`ChunkRead`], a [`ChunkWrite`] of a data file, or the
//! [`FileSync`] that follows a file's writes) reaches the ring thread over a channel; the
//! thread moves it into its table of operations in flight, points an SQE at the unfilled part
//! of the read's buffer (or the unwritten part of the write's), and submits. When the CQE
//! arrives the operation leaves the table and goes back, with its buffer, through its reply
//! channel. If the stream that asked is gone, the reply fails and the buffer drops
//! back into the pool, only now that the kernel is done with it. Nothing else ever touches a
//! buffer between submission and completion.
//!
//! The thread sleeps in `io_uring_enter` waiting for completions. So that a new read wakes
//! it, one read of a pipe is always armed on the ring; a submitter writes a byte to the pipe
//! when no wake is pending yet (one atomic flag), so the pipe never fills.
//!
//! Invariants (what the `unsafe` blocks below rely on):
//!
//! - **A lent buffer outlives its SQE.** Every SQE that names memory names either the unfilled
//!   part of the buffer of a read, or the unwritten part of the buffer of a write, held in the
//!   table (an operation leaves the table only when its CQE is reaped), or the thread's own wake buffer (a field of the thread, which ends only
//!   once the wake read completed).
//! - **The file outlives its SQE.** The operation in the table holds its file (`Arc<File>`).
//! - **Registered memory outlives the ring.** Fixed buffers are the pool's buffers, whose bytes
//!   never move and are freed only with the pool; the thread holds the pool in a field declared
//!   after the ring, so the ring (and its registration) goes first.
//! - **No completion is left behind.** The thread ends only when the table is empty and no
//!   wake read is armed. If the ring fails beyond repair, the buffers of the reads still in
//!   flight are leaked on purpose (never freed, never reused), since the kernel may yet write
//!   them.
#![allow(
    unsafe_code,
    reason = "SQE submission with lent buffers and fixed-buffer registration"
)]

use std::io::{self, PipeReader, PipeWriter, Write as _};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use io_uring::{IoUring, Probe, opcode, squeue, types};
use tracing::error;

use super::pipeline::{ChunkRead, ReadDone};
use super::pool::BufferPool;
use super::writer::{ChunkWrite, FileSync, WriteDone};

/// `user_data` of the wake read; reads use their table index.
const WAKE: u64 = u64::MAX;
/// Largest submission queue.
const MAX_ENTRIES: u32 = 4096;

/// The engine's handle, shared by every stream that reads through it.
#[derive(Debug)]
pub(super) struct UringEngine {
    /// Reads for the ring thread; taken (disconnected) when the engine drops, which tells the
    /// thread to finish the reads in flight and stop.
    reads: Option<mpsc::Sender<RingOp>>,
    wake: Arc<Wake>,
    thread: Option<JoinHandle<()>>,
}

/// How a running engine turned out.
#[derive(Debug)]
pub(super) struct UringStarted {
    /// The engine.
    pub(super) engine: UringEngine,
    /// Why the pool's buffers could not be registered as fixed buffers (reads then name
    /// plain buffers), when they could not.
    pub(super) fixed_buffers: Result<(), io::Error>,
}

impl UringEngine {
    /// Sets up a ring, checks that it runs reads, registers the pool's buffers and starts the
    /// ring thread. Fails, with the reason in the error, where io_uring is unavailable.
    pub(super) fn start(pool: &BufferPool) -> io::Result<UringStarted> {
        let entries = u32::try_from(pool.count() + 1)
            .unwrap_or(MAX_ENTRIES)
            .next_power_of_two()
            .clamp(8, MAX_ENTRIES);
        let mut ring = IoUring::new(entries).map_err(setup_error)?;
        check_ring(&mut ring)?;
        let fixed_buffers = register_buffers(&ring, pool);
        let (reader, writer) = io::pipe()?;
        let (reads, queue) = mpsc::channel();
        let wake = Arc::new(Wake {
            pending: AtomicBool::new(false),
            pipe: writer,
        });
        let thread = RingThread {
            ring,
            table: Table::default(),
            queue,
            open: true,
            wake: Arc::clone(&wake),
            wake_pipe: reader,
            wake_buf: Box::new([0; 8]),
            wake_armed: false,
            fixed: fixed_buffers.is_ok(),
            _pool: pool.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("quarry-uring".to_owned())
            .spawn(move || thread.run())?;
        Ok(UringStarted {
            engine: Self {
                reads: Some(reads),
                wake,
                thread: Some(thread),
            },
            fixed_buffers,
        })
    }

    /// Hands a read to the ring thread; its reply comes when the read completed.
    pub(super) fn submit(&self, read: ChunkRead) {
        self.send(RingOp::Read(read));
    }

    /// Hands a write to the ring thread; its reply comes when the write completed.
    pub(super) fn submit_write(&self, write: ChunkWrite) {
        self.send(RingOp::Write(write));
    }

    /// Hands an fsync to the ring thread; its reply comes when the sync completed. The caller
    /// orders it: it submits the sync once the file's writes have completed.
    pub(super) fn submit_sync(&self, sync: FileSync) {
        self.send(RingOp::Sync(sync));
    }

    fn send(&self, op: RingOp) {
        let Some(reads) = &self.reads else {
            return op.refuse(stopped());
        };
        match reads.send(op) {
            Ok(()) => self.wake.wake(),
            Err(mpsc::SendError(op)) => op.refuse(stopped()),
        }
    }
}

/// One operation for the ring thread.
#[derive(Debug)]
pub(super) enum RingOp {
    /// Read into a pool buffer.
    Read(ChunkRead),
    /// Write a buffer to a data file.
    Write(ChunkWrite),
    /// Fsync a data file.
    Sync(FileSync),
}

impl RingOp {
    /// Answers the operation without doing it.
    fn refuse(self, error: io::Error) {
        match self {
            Self::Read(read) => read.refuse(error),
            Self::Write(write) => write.refuse(error),
            Self::Sync(sync) => sync.refuse(error),
        }
    }
}

impl Drop for UringEngine {
    fn drop(&mut self) {
        // Disconnect first, then complete the armed wake read, so the thread sees both.
        drop(self.reads.take());
        self.wake.force();
        if let Some(thread) = self.thread.take() {
            // The thread waits for the reads in flight (disk reads, so briefly) and then ends.
            let _ = thread.join();
        }
    }
}

fn stopped() -> io::Error {
    io::Error::other("the io_uring engine stopped")
}

/// Why `io_uring_setup` failed, with the sysctl that disables io_uring when it is set.
fn setup_error(e: io::Error) -> io::Error {
    let sysctl = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| v != "0");
    match sysctl {
        Some(v) => io::Error::new(
            e.kind(),
            format!("io_uring_setup: {e} (kernel.io_uring_disabled = {v})"),
        ),
        None => io::Error::new(e.kind(), format!("io_uring_setup: {e}")),
    }
}

/// Checks what the engine relies on: completions are never dropped, the kernel runs `READ`
/// and `READ_FIXED`, and a no-op goes through `io_uring_enter` and back (a seccomp filter may
/// allow the setup and refuse the rest).
fn check_ring(ring: &mut IoUring) -> io::Result<()> {
    if !ring.params().is_feature_nodrop() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the kernel may drop io_uring completions (IORING_FEAT_NODROP needs Linux 5.5)",
        ));
    }
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| io::Error::new(e.kind(), format!("IORING_REGISTER_PROBE (Linux 5.6): {e}")))?;
    let needed = [
        opcode::Read::CODE,
        opcode::ReadFixed::CODE,
        opcode::Write::CODE,
        opcode::Fsync::CODE,
    ];
    if !needed.iter().all(|&code| probe.is_supported(code)) {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the kernel's io_uring lacks READ, READ_FIXED, WRITE or FSYNC",
        ));
    }
    let nop = opcode::Nop::new().build().user_data(1);
    // SAFETY: a no-op names no memory and no file, so nothing must outlive it.
    unsafe { ring.submission().push(&nop) }
        .map_err(|_| io::Error::other("a new ring's submission queue is full"))?;
    ring.submit_and_wait(1)
        .map_err(|e| io::Error::new(e.kind(), format!("io_uring_enter: {e}")))?;
    let result = ring.completion().next().map(|cqe| cqe.result());
    match result {
        Some(r) if r >= 0 => Ok(()),
        Some(r) => Err(io::Error::from_raw_os_error(-r)),
        None => Err(io::Error::other("a no-op on the ring did not complete")),
    }
}

/// Registers every pool buffer as the fixed buffer of the same index.
fn register_buffers(ring: &IoUring, pool: &BufferPool) -> io::Result<()> {
    pool.with_free_buffers(|buffers| {
        let iovecs: Vec<libc::iovec> = buffers
            .iter_mut()
            .map(|buf| {
                let bytes = buf.as_mut_slice();
                libc::iovec {
                    iov_base: bytes.as_mut_ptr().cast(),
                    iov_len: bytes.len(),
                }
            })
            .collect();
        // SAFETY: each iovec spans exactly the usable bytes of one pool buffer, in slot order
        // (`with_free_buffers` sorts them and none is lent out yet, so slot i is iovec i).
        // Those bytes never move (a boxed slice) and are freed only when the pool is; the
        // ring thread holds the pool in a field dropped after the ring, and before the
        // thread exists the caller holds the pool while it holds the ring. So the memory is
        // valid for as long as the registration exists.
        unsafe { ring.submitter().register_buffers(&iovecs) }
    })
}

/// Wakes the ring thread when reads are queued.
#[derive(Debug)]
struct Wake {
    /// A byte was written and the thread has not taken the wake yet.
    pending: AtomicBool,
    pipe: PipeWriter,
}

impl Wake {
    /// Writes a byte unless a wake is pending already.
    fn wake(&self) {
        if !self.pending.swap(true, Ordering::AcqRel) {
            self.force();
        }
    }

    /// Writes a byte. The pipe holds at most a few (one per pending wake, and one from the
    /// engine's drop), so the write never blocks.
    fn force(&self) {
        if let Err(e) = (&self.pipe).write(&[1]) {
            error!(error = %e, "failed to wake the io_uring read thread");
        }
    }
}

/// Operations in flight, by `user_data`.
#[derive(Debug, Default)]
struct Table {
    slots: Vec<Option<RingOp>>,
    free: Vec<usize>,
    len: usize,
}

impl Table {
    fn insert(&mut self, read: RingOp) -> usize {
        self.len += 1;
        if let Some(i) = self.free.pop() {
            self.slots[i] = Some(read);
            return i;
        }
        self.slots.push(Some(read));
        self.slots.len() - 1
    }

    fn remove(&mut self, i: usize) -> Option<RingOp> {
        let read = self.slots.get_mut(i)?.take()?;
        self.free.push(i);
        self.len -= 1;
        Some(read)
    }
}

/// The ring thread's state. Field order is drop order: the ring goes first.
struct RingThread {
    ring: IoUring,
    /// Reads in flight; each owns its buffer and file until its CQE is reaped.
    table: Table,
    queue: mpsc::Receiver<RingOp>,
    /// The engine still sends reads (the channel is connected).
    open: bool,
    wake: Arc<Wake>,
    wake_pipe: PipeReader,
    /// Where the wake read writes; lent to the kernel while `wake_armed`.
    wake_buf: Box<[u8; 8]>,
    wake_armed: bool,
    /// The pool's buffers are registered: reads into them use `READ_FIXED`.
    fixed: bool,
    /// Keeps the registered memory alive until after the ring is gone.
    _pool: BufferPool,
}

impl RingThread {
    fn run(mut self) {
        loop {
            self.take_reads();
            if self.open && !self.wake_armed {
                self.arm_wake();
            }
            if !self.open && self.table.len == 0 && !self.wake_armed {
                return;
            }
            if let Err(e) = self.ring.submit_and_wait(1) {
                // Interrupted, or completions to reap before more can be submitted.
                let transient = [libc::EINTR, libc::EAGAIN, libc::EBUSY];
                if !e
                    .raw_os_error()
                    .is_some_and(|code| transient.contains(&code))
                {
                    error!(error = %e, "io_uring_enter failed; the read engine stops");
                    return self.abandon();
                }
            }
            self.reap();
        }
    }

    /// Moves queued reads onto the ring; notes when the engine has gone.
    fn take_reads(&mut self) {
        while self.open {
            match self.queue.try_recv() {
                Ok(RingOp::Read(read)) => self.push_read(read),
                Ok(RingOp::Write(write)) => self.push_write(write),
                Ok(RingOp::Sync(sync)) => self.push_sync(sync),
                Err(mpsc::TryRecvError::Empty) => return,
                Err(mpsc::TryRecvError::Disconnected) => self.open = false,
            }
        }
    }

    fn push_read(&mut self, mut read: ChunkRead) {
        let Ok(len) = u32::try_from(read.len) else {
            return read.refuse(io::Error::from(io::ErrorKind::InvalidInput));
        };
        if read.len > read.buf.capacity() - read.buf.filled() {
            return read.refuse(io::Error::from(io::ErrorKind::InvalidInput));
        }
        let fixed = self.fixed;
        let fd = types::Fd(read.file.as_raw_fd());
        let offset = read.offset;
        let slot = read.buf.slot();
        let dst = read.buf.unfilled_mut()[..read.len].as_mut_ptr();
        let entry = match slot {
            Some(buf_index) if fixed => opcode::ReadFixed::new(fd, dst, len, buf_index)
                .offset(offset)
                .build(),
            _ => opcode::Read::new(fd, dst, len).offset(offset).build(),
        };
        let index = self.table.insert(RingOp::Read(read));
        // SAFETY: `dst..dst + len` is the unfilled part of the buffer of the read now in the
        // table (checked against its capacity above); the read stays in the table, owning the
        // buffer and touched by nobody, until `reap` takes its CQE (or, if the push fails, is
        // taken back below before the kernel saw it), and the buffer's bytes do not move when
        // the read does (a boxed slice). The read holds its file open. With `READ_FIXED`,
        // `buf_index` is the buffer's pool slot, registered as the fixed buffer of that index
        // spanning all of its bytes (`register_buffers`).
        let pushed = unsafe { self.push(&entry.user_data(index as u64)) };
        if let Err(e) = pushed
            && let Some(op) = self.table.remove(index)
        {
            op.refuse(e);
        }
    }

    fn push_write(&mut self, write: ChunkWrite) {
        let Some(rest) = write.buf.len().checked_sub(write.done) else {
            return write.refuse(io::Error::from(io::ErrorKind::InvalidInput));
        };
        let Ok(len) = u32::try_from(rest) else {
            return write.refuse(io::Error::from(io::ErrorKind::InvalidInput));
        };
        let fd = types::Fd(write.file.as_raw_fd());
        let src = write.buf[write.done..].as_ptr();
        let entry = opcode::Write::new(fd, src, len)
            .offset(write.offset + write.done as u64)
            .build();
        let index = self.table.insert(RingOp::Write(write));
        // SAFETY: `src..src + len` is the unwritten tail of the write's buffer (`done` was
        // checked against its length above); the write stays in the table, owning the buffer
        // and touched by nobody, until `reap` takes its CQE (or, if the push fails, is taken
        // back below before the kernel saw it), and a `Vec`'s heap bytes do not move when the
        // write does. The kernel only reads them. The write holds its file open.
        let pushed = unsafe { self.push(&entry.user_data(index as u64)) };
        if let Err(e) = pushed
            && let Some(op) = self.table.remove(index)
        {
            op.refuse(e);
        }
    }

    fn push_sync(&mut self, sync: FileSync) {
        let fd = types::Fd(sync.file.as_raw_fd());
        let index = self.table.insert(RingOp::Sync(sync));
        let entry = opcode::Fsync::new(fd).build().user_data(index as u64);
        // SAFETY: an fsync names no memory; its file is held open by the sync in the table
        // until `reap` takes the CQE (or, if the push fails, until it is taken back below).
        let pushed = unsafe { self.push(&entry) };
        if let Err(e) = pushed
            && let Some(op) = self.table.remove(index)
        {
            op.refuse(e);
        }
    }

    /// Arms the read of the wake pipe.
    fn arm_wake(&mut self) {
        let fd = types::Fd(self.wake_pipe.as_raw_fd());
        let entry = opcode::Read::new(fd, self.wake_buf.as_mut_ptr(), 8)
            .build()
            .user_data(WAKE);
        // SAFETY: the read writes at most 8 bytes into `wake_buf`, a boxed array owned by the
        // thread and not touched while `wake_armed`, which is set once the push succeeded and
        // stays set until `reap` takes this CQE; the thread does not end while it is set
        // (`run`), and `abandon` leaks the array instead of freeing it. The pipe is a field of
        // the thread as well.
        match unsafe { self.push(&entry) } {
            Ok(()) => self.wake_armed = true,
            Err(e) => error!(error = %e, "failed to arm the io_uring read thread's wake"),
        }
    }

    /// Queues an SQE, handing the queue to the kernel first when it is full. An error means
    /// the entry was not queued.
    ///
    /// # Safety
    ///
    /// Once this returns `Ok`, whatever memory and file `entry` names must stay valid, and
    /// untouched by this process, until its CQE is reaped.
    unsafe fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: the caller keeps what `entry` names valid until its completion.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                return Ok(());
            }
            match self.ring.submit() {
                Ok(_) => {}
                // Completions must be taken before more can be submitted.
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => self.reap(),
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Takes every completion: reads go back to their streams, a wake clears its flag.
    fn reap(&mut self) {
        let done: Vec<(u64, i32)> = self
            .ring
            .completion()
            .map(|cqe| (cqe.user_data(), cqe.result()))
            .collect();
        for (user_data, result) in done {
            if user_data == WAKE {
                self.wake_armed = false;
                // Cleared before the queue is drained, so a read sent after the drain wakes
                // the thread again.
                self.wake.pending.store(false, Ordering::Release);
                continue;
            }
            let op = usize::try_from(user_data)
                .ok()
                .and_then(|i| self.table.remove(i));
            let result = match usize::try_from(result) {
                Ok(n) => Ok(n),
                Err(_) => Err(io::Error::from_raw_os_error(-result)),
            };
            // A stream or writer that went away drops the reply, and with it the buffer (into
            // the pool, for a read).
            match op {
                Some(RingOp::Read(ChunkRead { buf, reply, .. })) => {
                    let _ = reply.send(ReadDone { result, buf });
                }
                Some(RingOp::Write(ChunkWrite { buf, reply, .. })) => {
                    let _ = reply.send(WriteDone { result, buf });
                }
                Some(RingOp::Sync(FileSync { reply, .. })) => {
                    let _ = reply.send(result.map(drop));
                }
                None => error!(user_data, "an io_uring completion for nothing in flight"),
            }
        }
    }

    /// Gives up after the ring failed: the reads in flight are answered with an error, and
    /// their buffers (and the wake buffer) leaked, since the kernel may still write them.
    fn abandon(mut self) {
        for slot in std::mem::take(&mut self.table.slots).into_iter().flatten() {
            match slot {
                RingOp::Read(ChunkRead { buf, reply, .. }) => {
                    std::mem::forget(buf);
                    drop(reply);
                }
                RingOp::Write(ChunkWrite { buf, reply, .. }) => {
                    std::mem::forget(buf);
                    drop(reply);
                }
                RingOp::Sync(sync) => sync.refuse(stopped()),
            }
        }
        if self.wake_armed {
            std::mem::forget(std::mem::replace(&mut self.wake_buf, Box::new([0; 8])));
        }
        self.open = false;
        while let Ok(op) = self.queue.try_recv() {
            op.refuse(stopped());
        }
    }
}
