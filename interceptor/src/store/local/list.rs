// SPDX-License-Identifier: Apache-2.0
//! Listings: objects (ListObjects V1/V2) and multipart uploads.
//!
//! Object listing is a range scan of `objects` in bytewise key order, starting at the prefix
//! or just after `start_after`. With a delimiter, the first key of a group yields its common
//! prefix and the scan then seeks to the prefix's byte successor, so a group costs one seek,
//! not one step per key in it. Entries (keys and common prefixes) count alike toward
//! `max_keys`, and only entries strictly after `start_after` are returned, which makes both a
//! key and a common prefix valid continuation markers.

use std::ops::Bound;
use std::sync::Arc;

use redb::ReadOnlyTable;

use super::index::{
    self, BUCKETS, OBJECTS, ObjectRecord, UPLOADS, UploadRecord, decode, index_err,
};
use super::{Inner, blocking};
use crate::store::{ListPage, ListRequest, ListUploadsRequest, StoreError, UploadsPage};

/// Lists objects.
pub(super) async fn list_objects(
    inner: &Arc<Inner>,
    bucket: &str,
    request: &ListRequest,
) -> Result<ListPage, StoreError> {
    let inner = Arc::clone(inner);
    let bucket = bucket.to_owned();
    let request = request.clone();
    blocking(move || {
        let txn = inner.db.begin_read().map_err(index_err("begin read"))?;
        let buckets = txn.open_table(BUCKETS).map_err(index_err("open buckets"))?;
        index::require_bucket(&buckets, &bucket)?;
        let objects = txn.open_table(OBJECTS).map_err(index_err("open objects"))?;
        scan_objects(&objects, &bucket, &request)
    })
    .await
}

/// Where the next range scan starts.
enum Seek {
    /// At this key, inclusive.
    At(Vec<u8>),
    /// Strictly after this key.
    After(Vec<u8>),
}

/// One page of a listing out of the objects table.
fn scan_objects(
    objects: &ReadOnlyTable<(&'static str, &'static [u8]), &'static [u8]>,
    bucket: &str,
    request: &ListRequest,
) -> Result<ListPage, StoreError> {
    let mut page = ListPage::default();
    if request.max_keys == 0 {
        return Ok(page);
    }
    let prefix = request.prefix.as_bytes();
    let delimiter = request
        .delimiter
        .as_deref()
        .filter(|d| !d.is_empty())
        .map(str::as_bytes);
    let after = request.start_after.as_deref().map(str::as_bytes);
    let next_bucket = format!("{bucket}\0");
    let upper = Bound::Excluded((next_bucket.as_str(), &b""[..]));
    let mut seek = match after {
        Some(after) if after >= prefix => Seek::After(after.to_vec()),
        _ => Seek::At(prefix.to_vec()),
    };
    let mut count = 0usize;
    let mut last: Option<String> = None;
    'scan: loop {
        let lower = match &seek {
            Seek::At(k) => Bound::Included((bucket, k.as_slice())),
            Seek::After(k) => Bound::Excluded((bucket, k.as_slice())),
        };
        let range = objects
            .range((lower, upper))
            .map_err(index_err("scan objects"))?;
        for entry in range {
            let (k, v) = entry.map_err(index_err("scan objects"))?;
            let key = k.value().1;
            // Keys starting with the prefix form one interval that the scan started in.
            if !key.starts_with(prefix) {
                break 'scan;
            }
            let group = delimiter.and_then(|d| common_prefix(key, prefix.len(), d));
            let Some(group) = group else {
                if count == request.max_keys {
                    page.is_truncated = true;
                    break 'scan;
                }
                let record: ObjectRecord = decode(v.value())?;
                last = Some(record.meta.key.clone());
                page.objects.push(record.meta);
                count += 1;
                continue;
            };
            if after.is_none_or(|after| group > after) {
                if count == request.max_keys {
                    page.is_truncated = true;
                    break 'scan;
                }
                let group = utf8(group)?;
                last = Some(group.clone());
                page.common_prefixes.push(group);
                count += 1;
            }
            match successor(group) {
                Some(next) => {
                    seek = Seek::At(next);
                    continue 'scan;
                }
                None => break 'scan,
            }
        }
        break;
    }
    if page.is_truncated {
        page.next_marker = last;
    }
    Ok(page)
}

/// The common prefix of `key` (the key up to and including the first `delimiter` after the
/// first `skip` bytes), if it has one.
fn common_prefix<'k>(key: &'k [u8], skip: usize, delimiter: &[u8]) -> Option<&'k [u8]> {
    let rest = &key[skip..];
    let at = rest.windows(delimiter.len()).position(|w| w == delimiter)?;
    Some(&key[..skip + at + delimiter.len()])
}

/// The least byte string greater than every string starting with `bytes`, if any.
fn successor(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut next = bytes.to_vec();
    while let Some(last) = next.pop() {
        if last < u8::MAX {
            next.push(last + 1);
            return Some(next);
        }
    }
    None
}

/// Keys and prefixes cut at a delimiter are UTF-8 (the delimiter is a whole UTF-8 string).
fn utf8(bytes: &[u8]) -> Result<String, StoreError> {
    String::from_utf8(bytes.to_vec()).map_err(|e| StoreError::index("decode key", e))
}

/// Lists the multipart uploads of a bucket.
pub(super) async fn list_uploads(
    inner: &Arc<Inner>,
    bucket: &str,
    request: &ListUploadsRequest,
) -> Result<UploadsPage, StoreError> {
    let inner = Arc::clone(inner);
    let bucket = bucket.to_owned();
    let request = request.clone();
    blocking(move || {
        let txn = inner.db.begin_read().map_err(index_err("begin read"))?;
        let buckets = txn.open_table(BUCKETS).map_err(index_err("open buckets"))?;
        index::require_bucket(&buckets, &bucket)?;
        let uploads = txn.open_table(UPLOADS).map_err(index_err("open uploads"))?;
        scan_uploads(&uploads, &bucket, &request)
    })
    .await
}

/// One page of uploads: by key, then upload id, after the markers.
fn scan_uploads(
    uploads: &ReadOnlyTable<(&'static str, &'static str, &'static str), &'static [u8]>,
    bucket: &str,
    request: &ListUploadsRequest,
) -> Result<UploadsPage, StoreError> {
    let mut page = UploadsPage::default();
    if request.max_uploads == 0 {
        return Ok(page);
    }
    let prefix = request.prefix.as_str();
    let key_marker = request.key_marker.as_deref();
    let start = key_marker.filter(|m| *m > prefix).unwrap_or(prefix);
    let next_bucket = format!("{bucket}\0");
    let range = uploads
        .range((bucket, start, "")..(next_bucket.as_str(), "", ""))
        .map_err(index_err("scan uploads"))?;
    for entry in range {
        let (k, v) = entry.map_err(index_err("scan uploads"))?;
        let (_, key, upload_id) = k.value();
        if !key.starts_with(prefix) {
            break;
        }
        if key_marker == Some(key) {
            // Uploads of the marker key itself come only after an upload id marker.
            match request.upload_id_marker.as_deref() {
                Some(id_marker) if upload_id > id_marker => {}
                _ => continue,
            }
        }
        if page.uploads.len() == request.max_uploads {
            page.is_truncated = true;
            break;
        }
        let record: UploadRecord = decode(v.value())?;
        page.uploads.push(record.info);
    }
    if page.is_truncated
        && let Some(last) = page.uploads.last()
    {
        page.next_key_marker = Some(last.key.clone());
        page.next_upload_id_marker = Some(last.upload_id.clone());
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefix_cuts_after_the_first_delimiter_past_the_prefix() {
        assert_eq!(common_prefix(b"a/b/c", 0, b"/"), Some(&b"a/"[..]));
        assert_eq!(common_prefix(b"a/b/c", 2, b"/"), Some(&b"a/b/"[..]));
        assert_eq!(common_prefix(b"a/b/c", 4, b"/"), None);
        assert_eq!(common_prefix(b"x--y", 0, b"--"), Some(&b"x--"[..]));
    }

    #[test]
    fn successor_is_the_least_string_past_every_extension() {
        assert_eq!(successor(b"a/"), Some(b"a0".to_vec()));
        assert_eq!(successor(&[b'a', 0xFF]), Some(b"b".to_vec()));
        assert_eq!(successor(&[0xFF, 0xFF]), None);
    }
}
