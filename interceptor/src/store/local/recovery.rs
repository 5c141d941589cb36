// SPDX-License-Identifier: Apache-2.0
//! Opening the index and reclaiming what a crash left behind.
//!
//! Writes go data first, index second, and files become unreachable in the index before they
//! are deleted. So after a crash the only debris is data files no record references: bodies
//! and parts whose commit never happened, and files of replaced versions whose deletion never
//! ran. [`remove_orphans`] runs at open, before any operation, and removes them along with any
//! file whose name is not a data file id (temporary or foreign files). A referenced file that is
//! missing is reported, not repaired: reads of that object fail with `Corrupt`.
//!
//! Inline objects take no part: their bytes commit atomically with their record, so a crash
//! leaves no inline debris, and their records reference no file. A batch of the committer that
//! failed or crashed before its commit leaves the data files its requests wrote, all orphans.

use std::collections::HashSet;
use std::path::Path;

use redb::{Database, ReadableTable};
use serde::Serialize;
use tracing::{info, warn};

use super::data::{DataDir, io_err};
use super::index::{
    BUCKETS, FileId, INLINE, OBJECTS, ObjectRecord, PARTS, PartRecord, UPLOADS, decode, index_err,
};
use crate::store::StoreError;

/// What recovery found when the store opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RecoveryReport {
    /// Data files no index record referenced (removed).
    pub orphan_files: u64,
    /// Their total size in bytes.
    pub orphan_bytes: u64,
    /// Files under `data/` whose names are not data file ids, such as temporary files (removed).
    pub stray_files: u64,
    /// Data files the index references that do not exist (left as they are; reads fail).
    pub missing_files: u64,
}

/// Opens (or creates) the index and makes sure every table exists. Blocking.
pub(super) fn open_index(path: &Path) -> Result<Database, StoreError> {
    let db = Database::create(path).map_err(index_err("open index"))?;
    let txn = db.begin_write().map_err(index_err("begin write"))?;
    txn.open_table(BUCKETS)
        .map_err(index_err("create buckets table"))?;
    txn.open_table(OBJECTS)
        .map_err(index_err("create objects table"))?;
    txn.open_table(UPLOADS)
        .map_err(index_err("create uploads table"))?;
    txn.open_table(PARTS)
        .map_err(index_err("create parts table"))?;
    txn.open_table(INLINE)
        .map_err(index_err("create inline table"))?;
    txn.commit().map_err(index_err("commit table creation"))?;
    Ok(db)
}

/// Every data file id the index references (inline objects reference none). Blocking;
/// O(objects + parts).
pub(super) fn referenced_ids(db: &Database) -> Result<HashSet<FileId>, StoreError> {
    let txn = db.begin_read().map_err(index_err("begin read"))?;
    let mut ids = HashSet::new();
    let objects = txn.open_table(OBJECTS).map_err(index_err("open objects"))?;
    for entry in objects.iter().map_err(index_err("scan objects"))? {
        let (_, value) = entry.map_err(index_err("scan objects"))?;
        let record: ObjectRecord = decode(value.value())?;
        ids.extend(record.files());
    }
    let parts = txn.open_table(PARTS).map_err(index_err("open parts"))?;
    for entry in parts.iter().map_err(index_err("scan parts"))? {
        let (_, value) = entry.map_err(index_err("scan parts"))?;
        let record: PartRecord = decode(value.value())?;
        ids.insert(record.file);
    }
    Ok(ids)
}

/// Removes unreferenced and stray files under `data/` and reports what it found. Blocking;
/// runs before the store serves anything, so no write can be in flight.
pub(super) fn remove_orphans(db: &Database, data: &DataDir) -> Result<RecoveryReport, StoreError> {
    let referenced = referenced_ids(db)?;
    let mut present = HashSet::with_capacity(referenced.len());
    let mut report = RecoveryReport::default();
    let root = data.root();
    for shard in std::fs::read_dir(root).map_err(io_err("list data directory", root))? {
        let shard = shard.map_err(io_err("list data directory", root))?;
        let shard_path = shard.path();
        let is_shard = shard.file_type().is_ok_and(|t| t.is_dir())
            && shard.file_name().to_str().is_some_and(is_shard_name);
        if !is_shard {
            let path = shard_path.display();
            warn!(path = %path, "unexpected entry in the data directory, left alone");
            continue;
        }
        let entries = std::fs::read_dir(&shard_path).map_err(io_err("list shard", &shard_path))?;
        for entry in entries {
            let entry = entry.map_err(io_err("list shard", &shard_path))?;
            let path = entry.path();
            let id = entry
                .file_name()
                .to_str()
                .and_then(FileId::parse)
                .filter(|id| Some(id.shard().as_str()) == shard.file_name().to_str());
            match id {
                Some(id) if referenced.contains(&id) => {
                    present.insert(id);
                    continue;
                }
                Some(_) => {
                    report.orphan_files += 1;
                    report.orphan_bytes += entry.metadata().map_or(0, |m| m.len());
                }
                None if entry.file_type().is_ok_and(|t| t.is_file()) => report.stray_files += 1,
                None => {
                    warn!(path = %path.display(), "unexpected entry in a data shard, left alone");
                    continue;
                }
            }
            std::fs::remove_file(&path).map_err(io_err("remove orphan data file", &path))?;
        }
    }
    for missing in referenced.difference(&present) {
        report.missing_files += 1;
        let path = data.path(*missing);
        warn!(path = %path.display(), "data file referenced by the index is missing");
    }
    info!(
        orphan_files = report.orphan_files,
        orphan_bytes = report.orphan_bytes,
        stray_files = report.stray_files,
        missing_files = report.missing_files,
        referenced_files = referenced.len(),
        "store recovery finished"
    );
    Ok(report)
}

/// Shard directories are named by two lowercase hex digits.
fn is_shard_name(name: &str) -> bool {
    name.len() == 2
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
