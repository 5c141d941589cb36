// SPDX-License-Identifier: Apache-2.0
//! Page-cache residency of a body about to be read, and switching its files to `O_DIRECT`.
//!
//! Under `store.direct_io = "auto"` a large body is read through the page cache when most of
//! it is cached already (a warm GET is served from memory) and with `O_DIRECT` otherwise (a
//! cold scan goes straight from the disk into the pool's buffers and evicts nothing). The
//! check has to be cheap next to the read and bounded whatever the object's size, so it
//! samples: at most [`SAMPLES`] windows of at most [`SAMPLE_LEN`] bytes, spread evenly over
//! the body, each asked about with one `cachestat` call (Linux 6.5+), or, where the kernel
//! lacks it or a seccomp filter refuses it, with `mincore` over a short-lived shared mapping
//! of the window. Either way no page is read or faulted in.
//!
//! Files are opened without `O_DIRECT`; [`set_direct`] turns it on (`fcntl(F_SETFL)`) once a
//! body was chosen to be read that way.

#![allow(
    unsafe_code,
    reason = "cachestat, mmap/mincore/munmap and fcntl have no safe wrapper in the crate's \
              dependencies; each call is one small block below"
)]

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd as _;
use std::sync::atomic::{AtomicBool, Ordering};

/// Most windows sampled per body.
pub(super) const SAMPLES: u64 = 8;
/// Most bytes per sampled window (32 pages of 4 KiB).
pub(super) const SAMPLE_LEN: u64 = 128 * 1024;

/// The `cachestat` system call's number (the same on every architecture, Linux 6.5+).
const SYS_CACHESTAT: libc::c_long = 451;

/// Cleared the first time `cachestat` is missing or refused: `mincore` from then on.
static CACHESTAT_WORKS: AtomicBool = AtomicBool::new(true);

/// How much of a sample is in the page cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Residency {
    /// Sampled pages found in the page cache.
    pub(super) cached: u64,
    /// Pages sampled.
    pub(super) sampled: u64,
}

impl Residency {
    /// At least half the sampled pages are cached: read through the page cache.
    pub(super) fn mostly_cached(self) -> bool {
        self.sampled > 0 && self.cached * 2 >= self.sampled
    }

    fn add(&mut self, other: Self) {
        self.cached += other.cached;
        self.sampled += other.sampled;
    }
}

/// One part of a body in one open file: `len` bytes from `offset`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Span<'a> {
    /// The file, open.
    pub(super) file: &'a File,
    /// First byte of the part.
    pub(super) offset: u64,
    /// Bytes in the part.
    pub(super) len: u64,
}

/// Samples the page-cache residency of a body made of `spans` (in order): at most
/// [`SAMPLES`] windows of at most [`SAMPLE_LEN`] bytes, spread evenly over its bytes. Blocking
/// (a few system calls, no I/O).
pub(super) fn sample(spans: &[Span<'_>]) -> io::Result<Residency> {
    let total: u64 = spans.iter().map(|s| s.len).sum();
    let mut residency = Residency::default();
    for (index, start, len) in windows(spans.iter().map(|s| s.len), total) {
        let span = spans[index];
        residency.add(cached_pages(span.file, span.offset + start, len)?);
    }
    Ok(residency)
}

/// The windows to sample in a body of parts of `lens` bytes (`total` in all): (part, offset
/// in the part, length), at most [`SAMPLES`] of them, evenly spaced from the first byte to
/// the last, each cut at the end of its part.
fn windows(lens: impl Iterator<Item = u64> + Clone, total: u64) -> Vec<(usize, u64, u64)> {
    if total == 0 {
        return Vec::new();
    }
    let window = SAMPLE_LEN.min(total);
    let count = total.div_ceil(SAMPLE_LEN).min(SAMPLES);
    let last_start = total - window;
    let mut out = Vec::new();
    for i in 0..count {
        let at = if count == 1 {
            0
        } else {
            last_start / (count - 1) * i
        };
        // The part holding byte `at`.
        let mut part_start = 0;
        for (index, len) in lens.clone().enumerate() {
            if at < part_start + len {
                let offset = at - part_start;
                out.push((index, offset, window.min(len - offset)));
                break;
            }
            part_start += len;
        }
    }
    out
}

/// Cached pages among the pages holding `len` bytes of `file` from `offset`.
fn cached_pages(file: &File, offset: u64, len: u64) -> io::Result<Residency> {
    if len == 0 {
        return Ok(Residency::default());
    }
    if CACHESTAT_WORKS.load(Ordering::Relaxed) {
        match cachestat(file, offset, len) {
            Err(e) if cachestat_missing(&e) => CACHESTAT_WORKS.store(false, Ordering::Relaxed),
            other => return other,
        }
    }
    mincore(file, offset, len)
}

/// `cachestat` is absent (an older kernel) or refused (a seccomp filter).
fn cachestat_missing(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSYS | libc::EPERM | libc::EOPNOTSUPP)
    )
}

/// `struct cachestat_range` of the `cachestat` system call.
#[repr(C)]
struct CachestatRange {
    off: u64,
    len: u64,
}

/// `struct cachestat` of the `cachestat` system call.
#[repr(C)]
#[derive(Default)]
struct Cachestat {
    nr_cache: u64,
    nr_dirty: u64,
    nr_writeback: u64,
    nr_evicted: u64,
    nr_recently_evicted: u64,
}

/// Residency through `cachestat` (Linux 6.5+), counted in 4 KiB pages.
pub(super) fn cachestat(file: &File, offset: u64, len: u64) -> io::Result<Residency> {
    let range = CachestatRange { off: offset, len };
    let mut stat = Cachestat::default();
    // SAFETY: `range` and `stat` are live, properly laid out (`repr(C)`, the kernel's
    // structs) and outlive the call; the kernel writes only `stat`; the descriptor is open.
    let ret = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            file.as_raw_fd(),
            &raw const range,
            &raw mut stat,
            0u32,
        )
    };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    let page = page_size();
    let sampled = (offset + len).div_ceil(page) - offset / page;
    Ok(Residency {
        cached: stat.nr_cache.min(sampled),
        sampled,
    })
}

/// Residency through `mincore` over a shared read-only mapping of the window, unmapped at
/// once. Mapping a file faults nothing in; `mincore` only looks.
pub(super) fn mincore(file: &File, offset: u64, len: u64) -> io::Result<Residency> {
    let page = page_size();
    let start = offset / page * page;
    let end = (offset + len).div_ceil(page) * page;
    let map_len = usize::try_from(end - start).map_err(io::Error::other)?;
    let map_offset = libc::off_t::try_from(start).map_err(io::Error::other)?;
    // SAFETY: a fresh mapping chosen by the kernel (null hint), read-only and shared, of an
    // open descriptor; nothing else refers to it, and it is unmapped below before returning.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            map_len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            map_offset,
        )
    };
    if addr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let pages = (end - start) / page;
    let mut vec = vec![0u8; usize::try_from(pages).map_err(io::Error::other)?];
    // SAFETY: `addr..addr + map_len` is the mapping made above; `vec` has one byte per page
    // of it, as `mincore` writes.
    let ret = unsafe { libc::mincore(addr, map_len, vec.as_mut_ptr()) };
    let result = if ret == 0 {
        Ok(Residency {
            cached: vec.iter().filter(|&&b| b & 1 == 1).count() as u64,
            sampled: pages,
        })
    } else {
        Err(io::Error::last_os_error())
    };
    // SAFETY: unmaps exactly the mapping made above, which nothing refers to any more.
    unsafe { libc::munmap(addr, map_len) };
    result
}

/// The kernel's page size.
fn page_size() -> u64 {
    // SAFETY: `sysconf` only reads a constant of the running system.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(4096).max(1)
}

/// Turns `O_DIRECT` on for an open file: its later reads bypass the page cache.
pub(super) fn set_direct(file: &File) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: `fcntl` on an open descriptor with a command that takes no pointer.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above; `F_SETFL` takes an integer.
    let ret = unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_DIRECT) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Drops a file's clean pages from the page cache (`POSIX_FADV_DONTNEED`), for tests that
/// need it cold.
#[cfg(test)]
pub(super) fn evict(file: &File) -> io::Result<()> {
    // SAFETY: an advisory call on an open descriptor; it takes no pointer.
    let ret = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use super::*;

    /// A fsynced file of `len` bytes, evicted from the page cache.
    fn cold_file(dir: &std::path::Path, len: usize) -> File {
        let path = dir.join("f");
        let mut f = File::create(&path).unwrap();
        f.write_all(&vec![7u8; len]).unwrap();
        f.sync_all().unwrap();
        drop(f);
        let f = File::open(&path).unwrap();
        evict(&f).unwrap();
        f
    }

    #[test]
    fn windows_cover_the_body_evenly_and_stay_inside_their_part() {
        let lens = [300 * 1024u64, 5, 2 * 1024 * 1024];
        let total = lens.iter().sum();
        let w = windows(lens.iter().copied(), total);
        assert_eq!(w.len() as u64, SAMPLES);
        assert_eq!(w[0], (0, 0, SAMPLE_LEN), "the first window starts the body");
        let (last_part, last_off, last_len) = w[w.len() - 1];
        assert_eq!(last_part, 2);
        assert_eq!(
            last_off + last_len,
            lens[2],
            "the last window ends the body"
        );
        for &(part, off, len) in &w {
            assert!(len > 0 && off + len <= lens[part], "{w:?}");
        }
        // A body smaller than a window is sampled once, whole.
        assert_eq!(windows([10u64, 20].into_iter(), 30), vec![(0, 0, 10)]);
        assert!(windows(std::iter::empty(), 0).is_empty());
    }

    #[test]
    fn both_probes_see_a_file_go_cold_and_warm() {
        let dir = tempfile::tempdir().unwrap();
        let len = 1 << 20;
        let f = cold_file(dir.path(), len);
        let span = [Span {
            file: &f,
            offset: 0,
            len: len as u64,
        }];
        let cold_sample = sample(&span).unwrap();
        assert!(!cold_sample.mostly_cached(), "{cold_sample:?}");
        for probe in [cachestat, mincore] {
            let r = probe(&f, 0, len as u64).unwrap();
            assert_eq!(r.sampled, 256, "{r:?}");
            assert!(r.cached < 128, "evicted, yet {r:?}");
        }
        let mut all = Vec::new();
        (&f).read_to_end(&mut all).unwrap();
        assert!(sample(&span).unwrap().mostly_cached());
        for probe in [cachestat, mincore] {
            let r = probe(&f, 0, len as u64).unwrap();
            assert_eq!(
                r,
                Residency {
                    cached: 256,
                    sampled: 256
                },
                "read whole, yet {r:?}"
            );
        }
        // An unaligned window counts the pages holding it.
        let r = mincore(&f, 4095, 2).unwrap();
        assert_eq!(
            r,
            Residency {
                cached: 2,
                sampled: 2
            }
        );
        assert_eq!(cachestat(&f, 4095, 2).unwrap(), r);
    }

    #[test]
    fn set_direct_turns_on_o_direct() {
        let dir = tempfile::tempdir().unwrap();
        let f = cold_file(dir.path(), 8192);
        set_direct(&f).unwrap();
        // SAFETY: reads the flags of an open descriptor.
        let flags = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETFL) };
        assert_ne!(flags & libc::O_DIRECT, 0);
    }
}
