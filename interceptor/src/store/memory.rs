// SPDX-License-Identifier: Apache-2.0
//! `MemStore`: an in-memory [`ObjectStore`] for front-end tests and as a reference model.
//!
//! Everything lives in `BTreeMap`s behind one mutex, held only for short critical sections
//! (never across an await). It keeps the seam's semantics (limits, digests, preconditions,
//! multipart rules, listing) but is written to be obviously right rather than fast: listing
//! walks every key of the prefix, and bodies are collected whole before the commit. It shares
//! no code with `LocalStore`, so the conformance suite and the model tests compare two
//! independent implementations.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use md5::{Digest, Md5};

use crate::config::StoreLimits;
use crate::store::{
    BodyStream, BucketInfo, ByteRange, CompletedPart, ListPage, ListPartsRequest, ListRequest,
    ListUploadsRequest, ObjectAttrs, ObjectMeta, ObjectReader, ObjectStore, PartInfo, PartsPage,
    PutOptions, PutPrecondition, StoreError, StoreUsage, UploadInfo, UploadsPage,
};

/// An in-memory [`ObjectStore`]; nothing survives a drop.
#[derive(Debug, Default)]
pub struct MemStore {
    limits: StoreLimits,
    state: Mutex<BTreeMap<String, Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    info: BucketInfo,
    objects: BTreeMap<String, Object>,
    /// Keyed by (key, upload id): the ListMultipartUploads order.
    uploads: BTreeMap<(String, String), Upload>,
}

#[derive(Debug, Clone)]
struct Object {
    meta: ObjectMeta,
    data: Bytes,
}

#[derive(Debug)]
struct Upload {
    info: UploadInfo,
    attrs: ObjectAttrs,
    parts: BTreeMap<u32, Part>,
}

#[derive(Debug, Clone)]
struct Part {
    info: PartInfo,
    md5: [u8; 16],
    data: Bytes,
}

/// A listing entry before paging.
enum Entry<'a> {
    Key(&'a ObjectMeta),
    Prefix(String),
}

impl Entry<'_> {
    fn name(&self) -> &str {
        match self {
            Self::Key(meta) => &meta.key,
            Self::Prefix(prefix) => prefix,
        }
    }
}

impl MemStore {
    /// An empty store enforcing `limits`.
    pub fn new(limits: StoreLimits) -> Self {
        Self {
            limits,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Bucket>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn with_bucket<T>(
        &self,
        bucket: &str,
        f: impl FnOnce(&mut Bucket) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut state = self.lock();
        let b = state
            .get_mut(bucket)
            .ok_or_else(|| StoreError::NoSuchBucket {
                bucket: bucket.to_owned(),
            })?;
        f(b)
    }

    fn with_upload<T>(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        f: impl FnOnce(&mut Upload) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_bucket(bucket, |b| {
            let upload = b
                .uploads
                .get_mut(&(key.to_owned(), upload_id.to_owned()))
                .ok_or_else(|| StoreError::NoSuchUpload {
                    upload_id: upload_id.to_owned(),
                })?;
            f(upload)
        })
    }
}

/// Collects a body, enforcing the size limit, the declared length and the digest.
async fn collect_body(
    mut body: BodyStream,
    max_len: u64,
    options: &PutOptions,
) -> Result<(Bytes, [u8; 16]), StoreError> {
    if options
        .expected_len
        .is_some_and(|expected| expected > max_len)
    {
        return Err(StoreError::EntityTooLarge { limit: max_len });
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|source| StoreError::Body { source })?;
        buf.extend_from_slice(&chunk);
        let received = buf.len() as u64;
        if received > max_len {
            return Err(StoreError::EntityTooLarge { limit: max_len });
        }
        if let Some(expected) = options.expected_len
            && received > expected
        {
            return Err(StoreError::IncompleteBody { expected, received });
        }
    }
    let received = buf.len() as u64;
    if let Some(expected) = options.expected_len
        && expected != received
    {
        return Err(StoreError::IncompleteBody { expected, received });
    }
    let md5: [u8; 16] = Md5::digest(&buf).into();
    if options.content_md5.is_some_and(|want| want != md5) {
        return Err(StoreError::BadDigest);
    }
    Ok((buf.freeze(), md5))
}

/// The seam's precondition rules: `If-Match` on a missing key is `NoSuchKey`, `*` matches
/// any version, ETags compare unquoted.
fn check_precondition(
    current: Option<&Object>,
    precondition: &PutPrecondition,
    bucket: &str,
    key: &str,
) -> Result<(), StoreError> {
    let ok = match precondition {
        PutPrecondition::None => true,
        PutPrecondition::IfAbsent => current.is_none(),
        PutPrecondition::IfMatch(want) => {
            let Some(current) = current else {
                return Err(StoreError::NoSuchKey {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                });
            };
            let want = want.trim().trim_matches('"');
            want == "*" || want == current.meta.etag
        }
    };
    if ok {
        Ok(())
    } else {
        Err(StoreError::PreconditionFailed {
            key: key.to_owned(),
        })
    }
}

fn body_of(data: Bytes) -> BodyStream {
    if data.is_empty() {
        Box::pin(futures::stream::empty())
    } else {
        Box::pin(futures::stream::iter([Ok(data)]))
    }
}

fn valid_part_number(n: u32) -> bool {
    (1..=10_000).contains(&n)
}

/// Validates a CompleteMultipartUpload part list against the stored parts and the limits,
/// returning the chosen parts, in the seam's error order.
fn choose_parts(
    limits: &StoreLimits,
    stored: &BTreeMap<u32, Part>,
    listed: &[CompletedPart],
) -> Result<Vec<Part>, StoreError> {
    let mut chosen = Vec::new();
    for want in listed {
        let part = stored
            .get(&want.part_number)
            .filter(|p| p.info.etag == want.etag.trim().trim_matches('"'))
            .ok_or(StoreError::InvalidPart {
                part_number: want.part_number,
            })?;
        chosen.push(part.clone());
    }
    let min = limits.min_part_size.as_u64();
    for part in &chosen[..chosen.len() - 1] {
        if part.info.size < min {
            let (part_number, size) = (part.info.part_number, part.info.size);
            return Err(StoreError::EntityTooSmall {
                part_number,
                size,
                min,
            });
        }
    }
    let limit = limits.max_object_size.as_u64();
    if chosen.iter().map(|p| p.info.size).sum::<u64>() > limit {
        return Err(StoreError::EntityTooLarge { limit });
    }
    Ok(chosen)
}

// === impl ObjectStore ===

#[async_trait]
impl ObjectStore for MemStore {
    async fn create_bucket(&self, bucket: &str) -> Result<BucketInfo, StoreError> {
        let mut state = self.lock();
        if state.contains_key(bucket) {
            return Err(StoreError::BucketAlreadyExists {
                bucket: bucket.to_owned(),
            });
        }
        let info = BucketInfo {
            name: bucket.to_owned(),
            created: SystemTime::now(),
        };
        let b = Bucket {
            info: info.clone(),
            objects: BTreeMap::new(),
            uploads: BTreeMap::new(),
        };
        state.insert(bucket.to_owned(), b);
        Ok(info)
    }

    async fn delete_bucket(&self, bucket: &str) -> Result<(), StoreError> {
        let mut state = self.lock();
        let b = state.get(bucket).ok_or_else(|| StoreError::NoSuchBucket {
            bucket: bucket.to_owned(),
        })?;
        if !b.objects.is_empty() {
            return Err(StoreError::BucketNotEmpty {
                bucket: bucket.to_owned(),
            });
        }
        state.remove(bucket);
        Ok(())
    }

    async fn head_bucket(&self, bucket: &str) -> Result<BucketInfo, StoreError> {
        self.with_bucket(bucket, |b| Ok(b.info.clone()))
    }

    async fn list_buckets(&self) -> Result<Vec<BucketInfo>, StoreError> {
        Ok(self.lock().values().map(|b| b.info.clone()).collect())
    }

    async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectMeta, StoreError> {
        self.with_bucket(bucket, |b| match b.objects.get(key) {
            Some(o) => Ok(o.meta.clone()),
            None => Err(StoreError::NoSuchKey {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            }),
        })
    }

    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<ObjectReader, StoreError> {
        let object = self.with_bucket(bucket, |b| {
            b.objects
                .get(key)
                .cloned()
                .ok_or_else(|| StoreError::NoSuchKey {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                })
        })?;
        let range = range.map(|r| r.resolve(object.meta.size)).transpose()?;
        let data = match range {
            Some(r) => {
                let start = usize::try_from(r.start).unwrap_or(usize::MAX);
                let len = usize::try_from(r.len).unwrap_or(usize::MAX);
                object.data.slice(start..start + len)
            }
            None => object.data,
        };
        Ok(ObjectReader {
            meta: object.meta,
            range,
            body: body_of(data),
        })
    }

    async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: BodyStream,
        options: PutOptions,
    ) -> Result<ObjectMeta, StoreError> {
        self.with_bucket(bucket, |_| Ok(()))?;
        let (data, md5) =
            collect_body(body, self.limits.max_object_size.as_u64(), &options).await?;
        self.with_bucket(bucket, |b| {
            check_precondition(b.objects.get(key), &options.precondition, bucket, key)?;
            let meta = ObjectMeta {
                key: key.to_owned(),
                size: data.len() as u64,
                etag: hex::encode(md5),
                last_modified: SystemTime::now(),
                parts_count: None,
                attrs: options.final_attrs(),
            };
            b.objects.insert(
                key.to_owned(),
                Object {
                    meta: meta.clone(),
                    data,
                },
            );
            Ok(meta)
        })
    }

    async fn update_metadata(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
        metadata: BTreeMap<String, String>,
    ) -> Result<ObjectMeta, StoreError> {
        self.with_bucket(bucket, |b| {
            let object = b
                .objects
                .get_mut(key)
                .ok_or_else(|| StoreError::NoSuchKey {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                })?;
            if object.meta.etag != etag {
                return Err(StoreError::PreconditionFailed {
                    key: key.to_owned(),
                });
            }
            object.meta.attrs.user_metadata.extend(metadata);
            Ok(object.meta.clone())
        })
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        self.with_bucket(bucket, |b| {
            b.objects.remove(key);
            Ok(())
        })
    }

    async fn list_objects(
        &self,
        bucket: &str,
        request: &ListRequest,
    ) -> Result<ListPage, StoreError> {
        self.with_bucket(bucket, |b| Ok(list_page(&b.objects, request)))
    }

    async fn create_multipart(
        &self,
        bucket: &str,
        key: &str,
        attrs: ObjectAttrs,
    ) -> Result<String, StoreError> {
        self.with_bucket(bucket, |b| {
            let upload_id = uuid::Uuid::new_v4().simple().to_string();
            let info = UploadInfo {
                key: key.to_owned(),
                upload_id: upload_id.clone(),
                initiated: SystemTime::now(),
            };
            let upload = Upload {
                info,
                attrs,
                parts: BTreeMap::new(),
            };
            b.uploads
                .insert((key.to_owned(), upload_id.clone()), upload);
            Ok(upload_id)
        })
    }

    async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: BodyStream,
        options: PutOptions,
    ) -> Result<PartInfo, StoreError> {
        if !valid_part_number(part_number) {
            return Err(StoreError::InvalidPartList {
                reason: "part numbers must be 1 to 10000",
            });
        }
        self.with_upload(bucket, key, upload_id, |_| Ok(()))?;
        let max = self
            .limits
            .max_part_size
            .as_u64()
            .min(self.limits.max_object_size.as_u64());
        let (data, md5) = collect_body(body, max, &options).await?;
        let info = PartInfo {
            part_number,
            etag: hex::encode(md5),
            size: data.len() as u64,
            last_modified: SystemTime::now(),
        };
        self.with_upload(bucket, key, upload_id, |u| {
            u.parts.insert(
                part_number,
                Part {
                    info: info.clone(),
                    md5,
                    data,
                },
            );
            Ok(info)
        })
    }

    async fn complete_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
        precondition: PutPrecondition,
    ) -> Result<ObjectMeta, StoreError> {
        if parts.is_empty() {
            return Err(StoreError::InvalidPartList {
                reason: "the part list is empty",
            });
        }
        if !parts.iter().all(|p| valid_part_number(p.part_number)) {
            return Err(StoreError::InvalidPartList {
                reason: "part numbers must be 1 to 10000",
            });
        }
        if parts
            .windows(2)
            .any(|w| w[0].part_number >= w[1].part_number)
        {
            return Err(StoreError::InvalidPartOrder);
        }
        self.with_bucket(bucket, |b| {
            let upload_key = (key.to_owned(), upload_id.to_owned());
            let upload = b
                .uploads
                .get(&upload_key)
                .ok_or_else(|| StoreError::NoSuchUpload {
                    upload_id: upload_id.to_owned(),
                })?;
            let chosen = choose_parts(&self.limits, &upload.parts, parts)?;
            check_precondition(b.objects.get(key), &precondition, bucket, key)?;
            let mut digests = Vec::with_capacity(16 * chosen.len());
            let mut data = BytesMut::new();
            for part in &chosen {
                digests.extend_from_slice(&part.md5);
                data.extend_from_slice(&part.data);
            }
            let meta = ObjectMeta {
                key: key.to_owned(),
                size: data.len() as u64,
                etag: format!("{}-{}", hex::encode(Md5::digest(&digests)), chosen.len()),
                last_modified: SystemTime::now(),
                parts_count: u32::try_from(chosen.len()).ok(),
                attrs: upload.attrs.clone(),
            };
            b.uploads.remove(&upload_key);
            b.objects.insert(
                key.to_owned(),
                Object {
                    meta: meta.clone(),
                    data: data.freeze(),
                },
            );
            Ok(meta)
        })
    }

    async fn abort_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), StoreError> {
        self.with_bucket(bucket, |b| {
            match b.uploads.remove(&(key.to_owned(), upload_id.to_owned())) {
                Some(_) => Ok(()),
                None => Err(StoreError::NoSuchUpload {
                    upload_id: upload_id.to_owned(),
                }),
            }
        })
    }

    async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        request: &ListPartsRequest,
    ) -> Result<PartsPage, StoreError> {
        self.with_upload(bucket, key, upload_id, |u| {
            let mut after = u
                .parts
                .values()
                .filter(|p| p.info.part_number > request.part_number_marker);
            let parts: Vec<PartInfo> = after
                .by_ref()
                .take(request.max_parts)
                .map(|p| p.info.clone())
                .collect();
            let is_truncated = request.max_parts > 0 && after.next().is_some();
            let next_part_number_marker = if is_truncated {
                parts.last().map(|p| p.part_number)
            } else {
                None
            };
            Ok(PartsPage {
                parts,
                is_truncated,
                next_part_number_marker,
                attrs: u.attrs.clone(),
            })
        })
    }

    async fn list_uploads(
        &self,
        bucket: &str,
        request: &ListUploadsRequest,
    ) -> Result<UploadsPage, StoreError> {
        self.with_bucket(bucket, |b| {
            let mut page = UploadsPage::default();
            if request.max_uploads == 0 {
                return Ok(page);
            }
            let key_marker = request.key_marker.as_deref();
            let id_marker = request.upload_id_marker.as_deref();
            let mut matching = b.uploads.values().map(|u| &u.info).filter(|u| {
                u.key.starts_with(&request.prefix)
                    && match key_marker {
                        None => true,
                        Some(km) if u.key.as_str() == km => {
                            id_marker.is_some_and(|im| u.upload_id.as_str() > im)
                        }
                        Some(km) => u.key.as_str() > km,
                    }
            });
            page.uploads = matching
                .by_ref()
                .take(request.max_uploads)
                .cloned()
                .collect();
            page.is_truncated = matching.next().is_some();
            if page.is_truncated
                && let Some(last) = page.uploads.last()
            {
                page.next_key_marker = Some(last.key.clone());
                page.next_upload_id_marker = Some(last.upload_id.clone());
            }
            Ok(page)
        })
    }

    async fn usage(&self) -> Result<StoreUsage, StoreError> {
        let state = self.lock();
        let mut usage = StoreUsage {
            buckets: state.len() as u64,
            ..StoreUsage::default()
        };
        for b in state.values() {
            usage.objects += b.objects.len() as u64;
            usage.object_bytes += b.objects.values().map(|o| o.meta.size).sum::<u64>();
            usage.uploads += b.uploads.len() as u64;
        }
        Ok(usage)
    }
}

/// The straightforward listing: roll every key of the prefix up to its entry, keep entries
/// strictly after `start_after` (once each), and cut the page at `max_keys`.
fn list_page(objects: &BTreeMap<String, Object>, request: &ListRequest) -> ListPage {
    let mut page = ListPage::default();
    if request.max_keys == 0 {
        return page;
    }
    let delimiter = request.delimiter.as_deref().filter(|d| !d.is_empty());
    let after = request.start_after.as_deref();
    let mut entries: Vec<Entry<'_>> = Vec::new();
    for (key, object) in objects.range(request.prefix.clone()..) {
        if !key.starts_with(&request.prefix) {
            break;
        }
        let rest = &key[request.prefix.len()..];
        let entry = match delimiter.and_then(|d| rest.find(d).map(|at| (at, d.len()))) {
            Some((at, len)) => Entry::Prefix(key[..request.prefix.len() + at + len].to_owned()),
            None => Entry::Key(&object.meta),
        };
        let is_new = entries
            .last()
            .is_none_or(|last| last.name() != entry.name());
        if is_new && after.is_none_or(|after| entry.name() > after) {
            entries.push(entry);
        }
        if entries.len() > request.max_keys {
            break;
        }
    }
    page.is_truncated = entries.len() > request.max_keys;
    entries.truncate(request.max_keys);
    if page.is_truncated {
        page.next_marker = entries.last().map(|e| e.name().to_owned());
    }
    for entry in entries {
        match entry {
            Entry::Key(meta) => page.objects.push(meta.clone()),
            Entry::Prefix(prefix) => page.common_prefixes.push(prefix),
        }
    }
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{conformance, conformance_limits};

    #[tokio::test]
    async fn mem_store_passes_the_conformance_suite() {
        conformance(&MemStore::new(conformance_limits())).await;
    }
}
