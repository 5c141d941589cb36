// SPDX-License-Identifier: Apache-2.0
//! Reading an object: open its segment files (or take its inline bytes), then stream the
//! requested bytes.
//!
//! Opening comes first and is done for every needed segment before any byte is read: once a
//! file is open, a concurrent overwrite or delete that unlinks it no longer matters, so a
//! reader always sees one whole version. [`open_version`] re-reads the index and retries when
//! a file vanished between the index read and the open. An inline object has no file: its
//! bytes (the requested range of them) are copied out of the same read transaction that read
//! its record, which is the whole version, with nothing to retry.
//!
//! A body of at most one read buffer (`store.read_buffer_size`, 1 MiB by default) is read whole,
//! through the page cache, in the same blocking call that opened its files, so a small GET
//! costs one trip to the blocking pool. A larger one is streamed by the store's read engine
//! (`read_engine.rs`) through the read-ahead pipeline (`pipeline.rs`), its files switched to
//! `O_DIRECT` after they opened when `store.direct_io` and the body's page-cache residency say
//! so (`ReadPath::choose_direct`).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;

use bytes::Bytes;

use super::data::{DataDir, io_err};
use super::index::{self, FileId, OBJECTS, ObjectRecord, Segment, index_err};
use super::read_engine::ReadPath;
use super::{Inner, inline};
use crate::store::{BodyStream, ByteRange, ObjectMeta, ResolvedRange, StoreError};

/// Index reads before giving up on an object whose files keep vanishing under overwrites.
const OPEN_ATTEMPTS: usize = 8;

/// Part of one open data file to be read.
#[derive(Debug)]
pub(super) struct Piece {
    /// The open file.
    pub(super) file: File,
    /// Its path, for error messages.
    pub(super) path: PathBuf,
    /// The first byte to read.
    pub(super) offset: u64,
    /// Bytes to read.
    pub(super) len: u64,
    /// The file has `O_DIRECT` on (`ReadPath::choose_direct`): reads must be aligned.
    pub(super) direct: bool,
}

/// Where the bytes of an opened version come from.
#[derive(Debug)]
pub(super) enum Source {
    /// An inline object's bytes (the requested range of them), read with its record.
    Index(Bytes),
    /// Open data files, in order.
    Files(Vec<Piece>),
}

/// An object version with its bytes in hand: read already, or in files already open.
#[derive(Debug)]
pub(super) struct OpenedVersion {
    /// The version's metadata.
    pub(super) meta: ObjectMeta,
    /// The resolved range, when one was asked for.
    pub(super) range: Option<ResolvedRange>,
    /// The bytes of the range (or the whole version).
    pub(super) source: Source,
}

/// Reads the current version of a key and opens the files covering `range`, or takes its
/// inline bytes. Blocking.
pub(super) fn open_version(
    inner: &Inner,
    bucket: &str,
    key: &str,
    range: Option<ByteRange>,
) -> Result<OpenedVersion, StoreError> {
    let mut last_missing: Option<FileId> = None;
    for _ in 0..OPEN_ATTEMPTS {
        let current = read_current(inner, bucket, key, range)?;
        let (record, resolved) = match current {
            Current::Inline(opened) => return Ok(opened),
            Current::Files { record, range } => (record, range),
        };
        let (start, len) = resolved.map_or((0, record.meta.size), |r| (r.start, r.len));
        match open_pieces(&inner.data, &record.segments, start, len)? {
            Ok(mut pieces) => {
                inner.read.choose_direct(&mut pieces);
                return Ok(OpenedVersion {
                    meta: record.meta,
                    range: resolved,
                    source: Source::Files(pieces),
                });
            }
            // The same file missing from the same version twice is not a race: the index
            // only loses a file's last reference before the file is deleted.
            Err(missing) if last_missing == Some(missing) => {
                let path = inner.data.path(missing);
                return Err(corrupt(
                    bucket,
                    key,
                    format!("data file {} is missing", path.display()),
                ));
            }
            Err(missing) => last_missing = Some(missing),
        }
    }
    Err(corrupt(
        bucket,
        key,
        "data files kept vanishing under concurrent writes".to_owned(),
    ))
}

/// The current version as one read transaction saw it.
enum Current {
    /// An inline object, with its bytes: nothing left to open.
    Inline(OpenedVersion),
    /// A version in data files, with the range resolved against its size.
    Files {
        record: ObjectRecord,
        range: Option<ResolvedRange>,
    },
}

/// Reads the object record (in a fresh read transaction) and resolves the range; an inline
/// object's bytes come from the same transaction.
fn read_current(
    inner: &Inner,
    bucket: &str,
    key: &str,
    range: Option<ByteRange>,
) -> Result<Current, StoreError> {
    let txn = inner.db.begin_read().map_err(index_err("begin read"))?;
    let buckets = txn
        .open_table(index::BUCKETS)
        .map_err(index_err("open buckets"))?;
    index::require_bucket(&buckets, bucket)?;
    let objects = txn.open_table(OBJECTS).map_err(index_err("open objects"))?;
    let record =
        index::read_object(&objects, bucket, key)?.ok_or_else(|| StoreError::NoSuchKey {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        })?;
    let range = range.map(|r| r.resolve(record.meta.size)).transpose()?;
    if !record.is_inline() {
        return Ok(Current::Files { record, range });
    }
    let bytes = inline::read(&txn, bucket, key, &record, range)?;
    // Copied out of the read transaction's page (`inline::read`).
    inner.read.counters().add_copied(bytes.len());
    Ok(Current::Inline(OpenedVersion {
        meta: record.meta,
        range,
        source: Source::Index(bytes),
    }))
}

fn corrupt(bucket: &str, key: &str, detail: String) -> StoreError {
    StoreError::Corrupt {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        detail,
    }
}

/// Opens the segments overlapping `start..start + len`, without `O_DIRECT` (the read path
/// turns it on per body). `Ok(Err(id))` names a file that does not exist; any other failure is an error. A file
/// shorter than its segment is corrupt.
fn open_pieces(
    data: &DataDir,
    segments: &[Segment],
    start: u64,
    len: u64,
) -> Result<Result<Vec<Piece>, FileId>, StoreError> {
    let end = start + len;
    let mut pieces = Vec::new();
    let mut seg_start = 0u64;
    for seg in segments {
        let seg_end = seg_start + seg.len();
        if seg_end > start && seg_start < end && seg.len() > 0 {
            let &Segment::File {
                file: id,
                len: seg_len,
            } = seg
            else {
                // Only ever the single segment of an inline object, read with its record.
                return Err(StoreError::index(
                    "open data files",
                    io::Error::other("an inline segment among file segments"),
                ));
            };
            let path = data.path(id);
            let file = match File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Err(id)),
                Err(e) => return Err(io_err("open data file", &path)(e)),
            };
            let on_disk = file
                .metadata()
                .map_err(io_err("stat data file", &path))?
                .len();
            if on_disk < seg_len {
                return Err(StoreError::Io {
                    op: "check data file length",
                    path,
                    source: io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{on_disk} bytes on disk, {seg_len} recorded"),
                    ),
                });
            }
            let offset = start.saturating_sub(seg_start);
            let piece_end = end.min(seg_end) - seg_start;
            pieces.push(Piece {
                file,
                path,
                offset,
                len: piece_end - offset,
                direct: false,
            });
        }
        seg_start = seg_end;
    }
    Ok(Ok(pieces))
}

/// A body ready to hand out: read already, or open files for the read engine.
#[derive(Debug)]
pub(super) enum PreparedBody {
    /// The whole requested byte range, in memory.
    Whole(Bytes),
    /// Open pieces for the read engine.
    Pieces(Vec<Piece>),
}

/// Hands inline bytes on as they are, and reads small bodies (up to one read buffer) at
/// once, in the caller's blocking call: one trip to the blocking pool then serves a small GET
/// whole. Larger ones are left to the read engine. Blocking.
pub(super) fn prepare_body(source: Source, read: &ReadPath) -> Result<PreparedBody, StoreError> {
    let pieces = match source {
        Source::Index(bytes) => return Ok(PreparedBody::Whole(bytes)),
        Source::Files(pieces) => pieces,
    };
    let total: u64 = pieces.iter().map(|p| p.len).sum();
    if total > read.whole_max() {
        return Ok(PreparedBody::Pieces(pieces));
    }
    let mut buf = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for mut piece in pieces {
        let path = &piece.path;
        piece
            .file
            .seek(SeekFrom::Start(piece.offset))
            .map_err(io_err("seek data file", path))?;
        let before = buf.len();
        // Reads into the spare capacity without zeroing it first.
        (&mut piece.file)
            .take(piece.len)
            .read_to_end(&mut buf)
            .map_err(io_err("read data file", path))?;
        let got = (buf.len() - before) as u64;
        if got != piece.len {
            return Err(StoreError::Io {
                op: "read data file",
                path: piece.path,
                source: io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("data file ended {} bytes early", piece.len - got),
                ),
            });
        }
    }
    Ok(PreparedBody::Whole(Bytes::from(buf)))
}

/// The body stream of a prepared body.
pub(super) fn into_stream(body: PreparedBody, read: &ReadPath) -> BodyStream {
    match body {
        PreparedBody::Whole(bytes) if bytes.is_empty() => Box::pin(futures::stream::empty()),
        PreparedBody::Whole(bytes) => Box::pin(futures::stream::iter([Ok(bytes)])),
        PreparedBody::Pieces(pieces) => read.stream(pieces),
    }
}
