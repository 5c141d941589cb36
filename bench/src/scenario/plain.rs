// SPDX-License-Identifier: Apache-2.0
//! The baseline: plain files in the same directory tree as quarryd's data.
//!
//! A PUT is `create + write_all (+ fsync)` of one file per worker; a GET is `open + read` in
//! 256 KiB chunks into a reused buffer, from the page cache (`get_warm`) or, after the file
//! was evicted from it, from the disk (`get_cold`, see `page_cache`). Each op runs whole on the blocking pool, the cheapest
//! way tokio offers to do file I/O, so the baseline is what the disk and page cache give, not
//! what an async wrapper costs. Files are overwritten in place (truncate), which is one
//! metadata update cheaper than the store's write-then-rename: the baseline errs on the fast
//! side.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, ensure};
use bytes::Bytes;

/// Read buffer size of the baseline GET.
const READ_CHUNK: usize = 256 * 1024;

/// Plain file I/O in one directory.
#[derive(Debug, Clone)]
pub struct PlainTarget {
    dir: PathBuf,
}

impl PlainTarget {
    /// Uses (and creates) `dir`.
    pub fn new(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// The directory the files live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of file `name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes `payload` to file `name`, then fsyncs it when `fsync` is set; returns the bytes
    /// written.
    pub async fn put(&self, name: &str, payload: Bytes, fsync: bool) -> Result<u64> {
        let path = self.path(name);
        tokio::task::spawn_blocking(move || {
            let mut file = File::create(&path)
                .with_context(|| format!("failed to create {}", path.display()))?;
            file.write_all(&payload)
                .with_context(|| format!("failed to write {}", path.display()))?;
            if fsync {
                file.sync_all()
                    .with_context(|| format!("failed to fsync {}", path.display()))?;
            }
            u64::try_from(payload.len()).context("payload length overflows u64")
        })
        .await
        .context("plain write task panicked")?
    }

    /// Reads file `name` to its end; fails unless it has `expected_len` bytes.
    pub async fn get(&self, name: &str, expected_len: u64) -> Result<u64> {
        let path = self.path(name);
        tokio::task::spawn_blocking(move || {
            let mut file =
                File::open(&path).with_context(|| format!("failed to open {}", path.display()))?;
            let mut buf = vec![0u8; READ_CHUNK];
            let mut total = 0u64;
            loop {
                let n = file
                    .read(&mut buf)
                    .with_context(|| format!("failed to read {}", path.display()))?;
                if n == 0 {
                    break;
                }
                total += u64::try_from(n).context("read length overflows u64")?;
            }
            ensure!(
                total == expected_len,
                "{} has {total} bytes, expected {expected_len}",
                path.display()
            );
            Ok(total)
        })
        .await
        .context("plain read task panicked")?
    }

    /// Fsyncs files written without fsync, outside any timed span, so that their write-back
    /// does not land in the next cell's numbers.
    pub async fn flush<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let paths: Vec<PathBuf> = names.into_iter().map(|n| self.path(n)).collect();
        tokio::task::spawn_blocking(move || {
            for path in paths {
                File::open(&path)
                    .and_then(|f| f.sync_all())
                    .with_context(|| format!("failed to fsync {}", path.display()))?;
            }
            anyhow::Ok(())
        })
        .await
        .context("plain flush task panicked")?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn written_file_reads_back_with_its_length() {
        let dir = tempfile::tempdir().unwrap();
        let target = PlainTarget::new(&dir.path().join("plain")).unwrap();
        let payload = Bytes::from(vec![7u8; 300_000]);
        assert_eq!(
            target.put("a", payload.clone(), true).await.unwrap(),
            300_000
        );
        assert_eq!(target.put("b", payload, false).await.unwrap(), 300_000);
        target.flush(["b"]).await.unwrap();
        assert_eq!(target.get("a", 300_000).await.unwrap(), 300_000);
        assert!(target.get("b", 1).await.is_err());
    }
}
