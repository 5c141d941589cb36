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
//! A body of at most 1 MiB is read whole in the same blocking call that opened its files, so a
//! small GET costs one trip to the blocking pool. A larger one comes from one blocking task per
//! reader that reads 1 MiB chunks straight into fresh buffers (no zeroing, no copy afterwards)
//! and hands them over a small bounded channel: the channel bounds memory per reader and lets
//! disk reads overlap the consumer. The task holds a blocking-pool thread while its consumer is
//! slow, so the pool size bounds concurrent large reads.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use tokio::sync::mpsc;

use super::data::{DataDir, io_err};
use super::index::{self, FileId, OBJECTS, ObjectRecord, Segment, index_err};
use super::{Inner, inline};
use crate::store::{BodyStream, ByteRange, ObjectMeta, ResolvedRange, StoreError};

/// Bytes per read and per chunk of the body stream.
const READ_CHUNK: u64 = 1 << 20;
/// Bodies up to this size are read whole when opened, without a reader task.
const READ_WHOLE_MAX: u64 = READ_CHUNK;
/// Chunks a reader may run ahead of its consumer.
const READ_AHEAD: usize = 4;
/// Index reads before giving up on an object whose files keep vanishing under overwrites.
const OPEN_ATTEMPTS: usize = 8;

/// Part of one open data file to be read.
#[derive(Debug)]
pub(super) struct Piece {
    file: File,
    path: PathBuf,
    offset: u64,
    len: u64,
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
            Ok(pieces) => {
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

/// Opens the segments overlapping `start..start + len`. `Ok(Err(id))` names a file that does
/// not exist; any other failure is an error. A file shorter than its segment is corrupt.
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
            });
        }
        seg_start = seg_end;
    }
    Ok(Ok(pieces))
}

/// A body ready to hand out: read already, or open files for a reader task.
#[derive(Debug)]
pub(super) enum PreparedBody {
    /// The whole requested byte range, in memory.
    Whole(Bytes),
    /// Open pieces for [`stream_pieces`].
    Pieces(Vec<Piece>),
}

/// Hands inline bytes on as they are, and reads small bodies (up to [`READ_WHOLE_MAX`]) at
/// once, in the caller's blocking call: one trip to the blocking pool then serves a small GET
/// whole. Larger ones are left to a reader task. Blocking.
pub(super) fn prepare_body(source: Source) -> Result<PreparedBody, StoreError> {
    let pieces = match source {
        Source::Index(bytes) => return Ok(PreparedBody::Whole(bytes)),
        Source::Files(pieces) => pieces,
    };
    let total: u64 = pieces.iter().map(|p| p.len).sum();
    if total > READ_WHOLE_MAX {
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
pub(super) fn into_stream(body: PreparedBody) -> BodyStream {
    match body {
        PreparedBody::Whole(bytes) if bytes.is_empty() => Box::pin(futures::stream::empty()),
        PreparedBody::Whole(bytes) => Box::pin(futures::stream::iter([Ok(bytes)])),
        PreparedBody::Pieces(pieces) => stream_pieces(pieces),
    }
}

/// Streams the pieces' bytes from a blocking reader task.
fn stream_pieces(pieces: Vec<Piece>) -> BodyStream {
    if pieces.iter().all(|p| p.len == 0) {
        return Box::pin(futures::stream::empty());
    }
    let (tx, rx) = mpsc::channel(READ_AHEAD);
    // Detached: the task ends when the pieces are read or the consumer drops the stream.
    drop(tokio::task::spawn_blocking(move || {
        read_pieces(pieces, &tx)
    }));
    Box::pin(ChunkStream { rx })
}

/// The consumer's end of a reader task's channel.
struct ChunkStream {
    rx: mpsc::Receiver<io::Result<Bytes>>,
}

impl Stream for ChunkStream {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// The reader task body. Blocking.
fn read_pieces(pieces: Vec<Piece>, tx: &mpsc::Sender<io::Result<Bytes>>) {
    for mut piece in pieces {
        if let Err(e) = piece.file.seek(SeekFrom::Start(piece.offset)) {
            let _ = tx.blocking_send(Err(e));
            return;
        }
        let mut remaining = piece.len;
        while remaining > 0 {
            let want = remaining.min(READ_CHUNK);
            let chunk = match read_chunk(&mut piece.file, want) {
                Ok(chunk) => chunk,
                Err(e) => {
                    let msg = format!("failed to read data file {}: {e}", piece.path.display());
                    let _ = tx.blocking_send(Err(io::Error::new(e.kind(), msg)));
                    return;
                }
            };
            remaining -= want;
            if tx.blocking_send(Ok(chunk)).is_err() {
                return; // the consumer went away
            }
        }
    }
}

/// Reads exactly `want` bytes (at most [`READ_CHUNK`]) into a new buffer.
///
/// One `read` of the whole chunk: `read_to_end` on a `Take` would start at 8 KiB and double,
/// which costs several syscalls per chunk and, on a cold file, several round trips to the disk.
/// Zeroing the buffer first costs far less than the read.
fn read_chunk(file: &mut File, want: u64) -> io::Result<Bytes> {
    let cap = usize::try_from(want).map_err(io::Error::other)?;
    let mut buf = vec![0u8; cap];
    file.read_exact(&mut buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "data file ended before its recorded length",
            )
        } else {
            e
        }
    })?;
    Ok(Bytes::from(buf))
}
