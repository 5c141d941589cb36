// SPDX-License-Identifier: Apache-2.0
//! Cold reads: dropping files from the page cache, and checking that it worked.
//!
//! A cold GET reads from the disk, not from memory. Before each timed cold op the harness
//! drops the file's cached pages with `posix_fadvise(POSIX_FADV_DONTNEED)`, which needs no
//! privilege (unlike `/proc/sys/vm/drop_caches`) and touches only the files named. It drops
//! clean pages only: a file that may hold dirty pages is written back first (`sync`).
//!
//! `DONTNEED` is advice: a call here occasionally leaves a file's pages cached (about one file
//! in a few hundred, seen with the probes below), and a second call drops them. Every eviction
//! therefore makes [`EVICT_PASSES`] calls, and the checks retry on what is still cached and
//! report both counts.
//!
//! Whether a page is cached is probed with `preadv2(RWF_NOWAIT)` of that page: the kernel
//! answers `EAGAIN` instead of waiting for the disk. A probe that misses starts a read of the
//! probed page (and readahead), so every check here waits for those reads and evicts again
//! after probing.
//!
//! [`self_test`] runs once per report on a file of the largest object size, on the same disk
//! as the targets: a warm read, an eviction, then the probes and a cold read. Its verdict
//! gates the cold ratios (a "cold" number taken where eviction does nothing is a warm number
//! under a false name).

use std::fs::File;
use std::io::{IoSliceMut, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use rustix::fs::{Advice, fadvise};
use rustix::io::{Errno, ReadWriteFlags, preadv2};
use serde::Serialize;

use super::report::round3;

/// The page size the probes read (the smallest page size Linux uses).
const PAGE: u64 = 4096;
/// [`PAGE`] as a buffer length.
const PAGE_BYTES: usize = 4096;
/// Read buffer of the self-test's timed reads (the same as the plain baseline's).
const READ_CHUNK: usize = 256 * 1024;
/// Pages probed per file by [`self_test`].
const SELF_TEST_PROBES: u64 = 16;
/// Pages probed per file by [`EvictionCheck`]: the first, the middle and the last.
const CHECK_PROBES: u64 = 3;
/// `posix_fadvise(DONTNEED)` calls per eviction.
pub const EVICT_PASSES: usize = 2;
/// A check evicts again while it finds pages cached, after each of these waits: a page a
/// recent write or read still holds is often free a moment later.
const RETRY_WAITS_MS: [u64; 4] = [0, 10, 50, 250];
/// How long a check waits for the reads its missing probes started before evicting again.
const PROBE_READS_SETTLE: Duration = Duration::from_millis(50);

/// How the harness makes reads cold, in words, for the report.
pub const METHOD: &str = "posix_fadvise(POSIX_FADV_DONTNEED) on each file before every timed \
                          cold op (fsync first where the file may be dirty); residency probed \
                          with preadv2(RWF_NOWAIT), which fails with EAGAIN on an uncached page";

/// Drops the cached pages of an open file ([`EVICT_PASSES`] calls); with `sync`, writes dirty
/// pages back first so that they can be dropped too.
pub fn evict(file: &File, sync: bool) -> Result<()> {
    if sync {
        file.sync_data().context("fdatasync before eviction")?;
    }
    for _ in 0..EVICT_PASSES {
        fadvise(file, 0, None, Advice::DontNeed).context("posix_fadvise(DONTNEED)")?;
    }
    Ok(())
}

/// Drops the cached pages of the file at `path`.
pub fn evict_path(path: &Path, sync: bool) -> Result<()> {
    let file = File::open(path).with_context(|| format!("failed to open {}", path.display()))?;
    evict(&file, sync).with_context(|| format!("failed to evict {}", path.display()))
}

/// Every regular file under `dir`, recursively, sorted. A file or directory that disappears
/// during the walk (a server deleting it) is skipped.
pub fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(dir) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("failed to list {}", dir.display())),
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("failed to list {}", dir.display()))?;
            let kind = match entry.file_type() {
                Ok(kind) => kind,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).context("failed to stat a directory entry"),
            };
            if kind.is_dir() {
                dirs.push(entry.path());
            } else if kind.is_file() {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Whether the page at `offset` is in the page cache; `None` past the end of the file.
/// A miss starts readahead of the page, so evict after probing.
pub fn page_cached(file: &File, offset: u64) -> Result<Option<bool>> {
    let mut page = [0u8; PAGE_BYTES];
    match preadv2(
        file,
        &mut [IoSliceMut::new(&mut page)],
        offset,
        ReadWriteFlags::NOWAIT,
    ) {
        Ok(0) => Ok(None),
        Ok(_) => Ok(Some(true)),
        Err(Errno::AGAIN) => Ok(Some(false)),
        Err(e) => Err(e).context("preadv2(RWF_NOWAIT) probe"),
    }
}

/// The offsets of `probes` pages spread evenly over a `len`-byte file, first and last page
/// included, without repeats.
fn probe_offsets(len: u64, probes: u64) -> Vec<u64> {
    let last_page = len.saturating_sub(1) / PAGE;
    let probes = probes.clamp(1, last_page + 1);
    (0..probes)
        .map(|i| {
            let page = if probes == 1 {
                0
            } else {
                last_page * i / (probes - 1)
            };
            page * PAGE
        })
        .collect()
}

/// Probes the pages at `offsets`: how many exist (are before the end), and which are cached.
fn cached_offsets(file: &File, offsets: &[u64]) -> Result<(u64, Vec<u64>)> {
    let mut probed = 0;
    let mut cached = Vec::new();
    for &offset in offsets {
        if let Some(hit) = page_cached(file, offset)? {
            probed += 1;
            if hit {
                cached.push(offset);
            }
        }
    }
    Ok((probed, cached))
}

/// Probed pages right after an eviction.
#[derive(Debug, Clone, Copy, Default)]
struct AfterEviction {
    probed: u64,
    /// Cached after the first eviction.
    cached_first: u64,
    /// Cached after the retries ([`RETRY_WAITS_MS`]).
    cached: u64,
}

/// Evicts `file`, probes `probes` pages and evicts again while some are cached. Only pages
/// found cached are probed again: a probe that missed has started a read of its page.
/// Blocking (it may wait up to the sum of [`RETRY_WAITS_MS`]).
#[expect(
    clippy::disallowed_methods,
    reason = "called only from blocking code (spawn_blocking), where a short sleep is the wait"
)]
fn evict_and_probe(file: &File, sync: bool, probes: u64) -> Result<AfterEviction> {
    evict(file, sync)?;
    let len = file
        .metadata()
        .context("failed to stat a probed file")?
        .len();
    let (probed, mut cached) = cached_offsets(file, &probe_offsets(len, probes))?;
    let cached_first = cached.len();
    for wait in RETRY_WAITS_MS {
        if cached.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(wait));
        evict(file, false)?;
        cached = cached_offsets(file, &cached)?.1;
    }
    Ok(AfterEviction {
        probed,
        cached_first: u64::try_from(cached_first).unwrap_or(u64::MAX),
        cached: u64::try_from(cached.len()).unwrap_or(u64::MAX),
    })
}

/// Waits for the reads that missing probes started, then evicts what they read. Blocking.
#[expect(
    clippy::disallowed_methods,
    reason = "called only from blocking code (spawn_blocking), where a short sleep is the wait"
)]
fn evict_after_probes(files: &[File]) -> Result<()> {
    std::thread::sleep(PROBE_READS_SETTLE);
    files.iter().try_for_each(|file| evict(file, false))
}

/// What a cold cell checked before it ran: its files were written back, evicted, probed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EvictionCheck {
    /// Files the cell evicts (before each op: all of them for quarryd, the worker's own for
    /// plain files).
    pub files: u64,
    /// First, middle and last page of every file, probed right after an eviction.
    pub probed_pages: u64,
    /// Probed pages still cached after the first eviction.
    pub cached_after_first_eviction: u64,
    /// Probed pages still cached after the retries (up to four more evictions over about
    /// 300 ms): 0 when eviction works.
    pub cached_after_eviction: u64,
}

impl EvictionCheck {
    /// Writes back and evicts each of `files`, probes three pages of each (evicting again
    /// while some are cached), then drops what the probes read. Afterwards the files are
    /// clean: a cell that only reads them can evict them without an fsync before each op.
    /// Blocking (it waits `PROBE_READS_SETTLE`).
    pub fn run(files: &[File]) -> Result<Self> {
        let mut check = Self::default();
        for file in files {
            let after = evict_and_probe(file, true, CHECK_PROBES)?;
            check.files += 1;
            check.probed_pages += after.probed;
            check.cached_after_first_eviction += after.cached_first;
            check.cached_after_eviction += after.cached;
        }
        evict_after_probes(files)?;
        Ok(check)
    }
}

/// The once-per-report proof that eviction works on this machine and disk.
#[derive(Debug, Clone, Serialize)]
pub struct SelfTest {
    /// How reads are made cold.
    pub method: &'static str,
    /// Whether eviction works here: every probed page cached after a read, none after the
    /// eviction. Cold ratios are `not_measured` unless this is true.
    pub eviction_works: bool,
    /// Size of the test file (the largest object size of the run).
    pub file_bytes: u64,
    /// Pages probed, spread over the file.
    pub probed_pages: u64,
    /// Probed pages cached after a full read.
    pub cached_after_read: u64,
    /// Probed pages cached after the first eviction.
    pub cached_after_first_eviction: u64,
    /// Probed pages cached after the retries (up to four more evictions over about 300 ms).
    pub cached_after_eviction: u64,
    /// A whole read from the page cache, in ms.
    pub warm_read_ms: f64,
    /// A whole read right after an eviction, in ms.
    pub cold_read_ms: f64,
    /// Why the test could not run, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Writes a `size`-byte file in `dir`, reads it warm, evicts it, probes it and reads it cold.
/// Never fails: a test that cannot run says so and reports eviction as not working.
pub fn self_test(dir: &Path, payload: &[u8]) -> SelfTest {
    let file_bytes = u64::try_from(payload.len()).unwrap_or(u64::MAX);
    run_self_test(dir, payload).unwrap_or_else(|error| SelfTest {
        method: METHOD,
        eviction_works: false,
        file_bytes,
        probed_pages: 0,
        cached_after_read: 0,
        cached_after_first_eviction: 0,
        cached_after_eviction: 0,
        warm_read_ms: 0.0,
        cold_read_ms: 0.0,
        error: Some(format!("{error:#}")),
    })
}

fn run_self_test(dir: &Path, payload: &[u8]) -> Result<SelfTest> {
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let path = dir.join("page-cache-self-test");
    let mut file =
        File::create(&path).with_context(|| format!("failed to create {}", path.display()))?;
    file.write_all(payload)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("failed to write {}", path.display()))?;
    drop(file);

    let read_whole = || -> Result<f64> {
        let start = Instant::now();
        let mut file = File::open(&path)?;
        let mut buf = vec![0u8; READ_CHUNK];
        while file.read(&mut buf)? > 0 {}
        Ok(round3(start.elapsed().as_secs_f64() * 1e3))
    };
    read_whole()?;
    let warm_read_ms = read_whole()?;
    let file = File::open(&path)?;
    let len = file.metadata()?.len();
    // Every probed page is cached here, so these probes start no reads.
    let (probed_pages, after_read) = cached_offsets(&file, &probe_offsets(len, SELF_TEST_PROBES))?;
    let cached_after_read = u64::try_from(after_read.len()).context("probe count overflows")?;
    let after_eviction = evict_and_probe(&file, false, SELF_TEST_PROBES)?;
    evict_after_probes(std::slice::from_ref(&file))?;
    let cold_read_ms = read_whole()?;
    evict(&file, false)?;
    drop(file);
    std::fs::remove_file(&path).with_context(|| format!("failed to remove {}", path.display()))?;

    Ok(SelfTest {
        method: METHOD,
        eviction_works: probed_pages > 0
            && cached_after_read == probed_pages
            && after_eviction.probed == probed_pages
            && after_eviction.cached == 0,
        file_bytes: u64::try_from(payload.len()).context("payload length overflows u64")?,
        probed_pages,
        cached_after_read,
        cached_after_first_eviction: after_eviction.cached_first,
        cached_after_eviction: after_eviction.cached,
        warm_read_ms,
        cold_read_ms,
        error: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_under_walks_subdirectories() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("ab/cd")).unwrap();
        std::fs::write(dir.path().join("ab/1"), b"x").unwrap();
        std::fs::write(dir.path().join("ab/cd/2"), b"y").unwrap();
        std::fs::write(dir.path().join("3"), b"z").unwrap();
        let files = files_under(dir.path()).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().to_str().unwrap())
            .collect();
        assert_eq!(names, ["3", "ab/1", "ab/cd/2"]);
        assert!(files_under(&dir.path().join("missing")).unwrap().is_empty());
    }

    /// A directory on the disk of the source tree: `/tmp` may be a tmpfs, whose pages
    /// cannot be evicted (they are the file).
    fn disk_dir() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(".page-cache-test-")
            .tempdir_in(env!("CARGO_MANIFEST_DIR"))
            .unwrap()
    }

    /// A read makes pages cached, an eviction drops them. (A filesystem without RWF_NOWAIT
    /// support fails the probe; such a machine reports `eviction_works: false` and the error
    /// instead.)
    #[test]
    fn eviction_drops_what_a_read_cached() {
        let dir = disk_dir();
        let payload = vec![5u8; 1 << 20];
        let test = self_test(dir.path(), &payload);
        assert_eq!(test.error, None);
        assert_eq!(test.probed_pages, SELF_TEST_PROBES);
        assert!(test.eviction_works, "{test:?}");
        assert!(!dir.path().join("page-cache-self-test").exists());
    }

    #[test]
    fn check_counts_files_and_pages() {
        let dir = disk_dir();
        let small = dir.path().join("small");
        let big = dir.path().join("big");
        std::fs::write(&small, b"tiny").unwrap();
        std::fs::write(&big, vec![1u8; 64 << 10]).unwrap();
        let files = [File::open(&small).unwrap(), File::open(&big).unwrap()];
        for f in &files {
            f.sync_all().unwrap();
        }
        let check = EvictionCheck::run(&files).unwrap();
        // One page in the small file, three distinct pages in the big one.
        assert_eq!((check.files, check.probed_pages), (2, 4));
        assert_eq!(check.cached_after_eviction, 0);
    }

    #[test]
    fn probes_cover_first_middle_and_last_page_once() {
        assert_eq!(probe_offsets(4, 3), [0]);
        assert_eq!(probe_offsets(PAGE + 1, 3), [0, PAGE]);
        assert_eq!(probe_offsets(16 * PAGE, 3), [0, 7 * PAGE, 15 * PAGE]);
        assert_eq!(probe_offsets(0, 3), [0]);
    }
}
