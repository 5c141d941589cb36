// SPDX-License-Identifier: Apache-2.0
//! Conformance checks for multipart uploads.

use bytes::Bytes;
use md5::{Digest, Md5};

use super::{
    assert_err, body_from, body_from_chunks, conformance_limits, get_bytes, md5_hex, md5_raw,
    pattern, put_bytes, read_all,
};
use crate::store::{
    ByteRange, CompletedPart, ListPartsRequest, ListUploadsRequest, ObjectAttrs, ObjectStore,
    PartInfo, PutOptions, PutPrecondition, StoreError,
};

const BUCKET: &str = "conf-mpu";
const KIB: usize = 1024;

async fn upload(store: &dyn ObjectStore, key: &str, id: &str, n: u32, data: &[u8]) -> PartInfo {
    let chunks = data.chunks(1500).map(Bytes::copy_from_slice).collect();
    let part = store.upload_part(
        BUCKET,
        key,
        id,
        n,
        body_from_chunks(chunks),
        PutOptions::default(),
    );
    let part = part
        .await
        .unwrap_or_else(|e| panic!("upload part {n} of {key}: {e}"));
    assert_eq!((part.part_number, part.size), (n, data.len() as u64));
    assert_eq!(part.etag, md5_hex(data));
    part
}

fn completed(parts: &[&PartInfo]) -> Vec<CompletedPart> {
    parts
        .iter()
        .map(|p| CompletedPart {
            part_number: p.part_number,
            etag: p.etag.clone(),
        })
        .collect()
}

fn cp(part_number: u32, etag: &str) -> CompletedPart {
    CompletedPart {
        part_number,
        etag: etag.to_owned(),
    }
}

/// S3's multipart ETag over the parts' bodies.
fn multipart_etag(bodies: &[&[u8]]) -> String {
    let mut digests = Vec::new();
    for body in bodies {
        digests.extend_from_slice(&md5_raw(body));
    }
    format!("{}-{}", hex::encode(Md5::digest(&digests)), bodies.len())
}

async fn complete_ok(store: &dyn ObjectStore, key: &str, id: &str, parts: &[CompletedPart]) {
    let done = store
        .complete_multipart(BUCKET, key, id, parts, PutPrecondition::None)
        .await;
    done.unwrap_or_else(|e| panic!("complete {key}: {e}"));
}

/// Create, upload, list, complete; the object is the listed parts in order.
pub(super) async fn happy_path(store: &dyn ObjectStore) {
    store.create_bucket(BUCKET).await.expect("create bucket");
    let attrs = ObjectAttrs {
        content_type: Some("video/mp4".into()),
        ..ObjectAttrs::default()
    };
    let id = store
        .create_multipart(BUCKET, "big", attrs.clone())
        .await
        .expect("create upload");
    let bodies = [pattern(6 * KIB, 10), pattern(5 * KIB, 11), pattern(100, 12)];
    let p1 = upload(store, "big", &id, 1, &bodies[0]).await;
    let p2 = upload(store, "big", &id, 2, &bodies[1]).await;
    let p3 = upload(store, "big", &id, 3, &bodies[2]).await;

    let all_parts = ListPartsRequest {
        max_parts: 100,
        ..Default::default()
    };
    let listed = store
        .list_parts(BUCKET, "big", &id, &all_parts)
        .await
        .expect("list parts");
    assert_eq!(listed.parts, vec![p1.clone(), p2.clone(), p3.clone()]);
    assert_eq!(listed.attrs, attrs);
    assert!(!listed.is_truncated);
    let all_uploads = ListUploadsRequest {
        max_uploads: 100,
        ..Default::default()
    };
    let uploads = store
        .list_uploads(BUCKET, &all_uploads)
        .await
        .expect("list uploads");
    assert!(
        uploads
            .uploads
            .iter()
            .any(|u| u.upload_id == id && u.key == "big")
    );

    let mut parts = completed(&[&p1, &p2, &p3]);
    parts[1].etag = format!("\"{}\"", parts[1].etag); // clients often send ETags quoted
    let meta = store
        .complete_multipart(BUCKET, "big", &id, &parts, PutPrecondition::None)
        .await;
    let meta = meta.expect("complete");
    let whole: Vec<u8> = bodies.concat();
    assert_eq!(meta.size, whole.len() as u64);
    assert_eq!(
        meta.etag,
        multipart_etag(&[&bodies[0], &bodies[1], &bodies[2]])
    );
    assert_eq!(meta.parts_count, Some(3));
    assert_eq!(meta.attrs, attrs);
    assert_eq!(store.head_object(BUCKET, "big").await.expect("head"), meta);
    assert_eq!(get_bytes(store, BUCKET, "big").await, whole);
    for (first, last) in [
        (6 * KIB - 5, 6 * KIB + 5),
        (6 * KIB - 1, 11 * KIB + 50),
        (0, 11 * KIB + 99),
    ] {
        let range = ByteRange::FromTo {
            first: first as u64,
            last: Some(last as u64),
        };
        let reader = store
            .get_object(BUCKET, "big", Some(range))
            .await
            .expect("range across parts");
        assert_eq!(
            read_all(reader).await,
            &whole[first..=last],
            "range {first}-{last}"
        );
    }
    assert_err!(
        store
            .list_parts(BUCKET, "big", &id, &ListPartsRequest::default())
            .await,
        StoreError::NoSuchUpload { .. }
    );

    // One small part is a valid upload; parts left out of the list are dropped.
    let id = store
        .create_multipart(BUCKET, "one", ObjectAttrs::default())
        .await
        .expect("create");
    let p = upload(store, "one", &id, 7, b"tiny").await;
    complete_ok(store, "one", &id, &completed(&[&p])).await;
    assert_eq!(get_bytes(store, BUCKET, "one").await, b"tiny");
    assert_eq!(
        store.head_object(BUCKET, "one").await.expect("head").etag,
        multipart_etag(&[b"tiny"])
    );

    let id = store
        .create_multipart(BUCKET, "one", ObjectAttrs::default())
        .await
        .expect("create");
    let a = upload(store, "one", &id, 1, &bodies[0]).await;
    upload(store, "one", &id, 2, &bodies[1]).await;
    let c = upload(store, "one", &id, 3, &bodies[2]).await;
    complete_ok(store, "one", &id, &completed(&[&a, &c])).await;
    assert_eq!(
        get_bytes(store, BUCKET, "one").await,
        [&bodies[0][..], &bodies[2][..]].concat()
    );

    // Re-uploading a part number replaces the part.
    let id = store
        .create_multipart(BUCKET, "again", ObjectAttrs::default())
        .await
        .expect("create");
    let old = upload(store, "again", &id, 1, b"first").await;
    let new = upload(store, "again", &id, 1, b"second").await;
    let stale = completed(&[&old]);
    let stale = store
        .complete_multipart(BUCKET, "again", &id, &stale, PutPrecondition::None)
        .await;
    assert_err!(stale, StoreError::InvalidPart { part_number: 1 });
    let listed = store
        .list_parts(BUCKET, "again", &id, &all_parts)
        .await
        .expect("list parts");
    assert_eq!(listed.parts, vec![new.clone()]);

    // Completion honours its precondition and leaves the upload open when it fails.
    put_bytes(store, BUCKET, "again", b"existing").await;
    let parts = completed(&[&new]);
    let refused = store.complete_multipart(BUCKET, "again", &id, &parts, PutPrecondition::IfAbsent);
    assert_err!(refused.await, StoreError::PreconditionFailed { .. });
    assert_eq!(get_bytes(store, BUCKET, "again").await, b"existing");
    complete_ok(store, "again", &id, &completed(&[&new])).await;
    assert_eq!(get_bytes(store, BUCKET, "again").await, b"second");
}

/// Each completion and part error, with the upload intact afterwards.
pub(super) async fn errors(store: &dyn ObjectStore) {
    let id = store
        .create_multipart(BUCKET, "err", ObjectAttrs::default())
        .await
        .expect("create");
    let p1 = upload(store, "err", &id, 1, &pattern(6 * KIB, 20)).await;
    let p2 = upload(store, "err", &id, 2, b"small").await;
    let p3 = upload(store, "err", &id, 3, &pattern(6 * KIB, 21)).await;
    let complete = |parts: Vec<CompletedPart>| {
        let id = id.clone();
        async move {
            store
                .complete_multipart(BUCKET, "err", &id, &parts, PutPrecondition::None)
                .await
        }
    };
    assert_err!(complete(vec![]).await, StoreError::InvalidPartList { .. });
    assert_err!(
        complete(vec![cp(0, &p1.etag)]).await,
        StoreError::InvalidPartList { .. }
    );
    assert_err!(
        complete(vec![cp(10_001, &p1.etag)]).await,
        StoreError::InvalidPartList { .. }
    );
    assert_err!(
        complete(completed(&[&p2, &p1])).await,
        StoreError::InvalidPartOrder
    );
    assert_err!(
        complete(completed(&[&p1, &p1])).await,
        StoreError::InvalidPartOrder
    );
    assert_err!(
        complete(vec![cp(1, &p1.etag), cp(4, &p1.etag)]).await,
        StoreError::InvalidPart { part_number: 4 }
    );
    assert_err!(
        complete(vec![cp(1, &p2.etag)]).await,
        StoreError::InvalidPart { part_number: 1 }
    );
    let too_small = complete(completed(&[&p1, &p2, &p3])).await;
    assert_err!(
        too_small,
        StoreError::EntityTooSmall {
            part_number: 2,
            size: 5,
            ..
        }
    );

    let part = |n: u32, body, options| store.upload_part(BUCKET, "err", &id, n, body, options);
    assert_err!(
        part(0, body_from(&b"x"[..]), PutOptions::default()).await,
        StoreError::InvalidPartList { .. }
    );
    assert_err!(
        part(10_001, body_from(&b"x"[..]), PutOptions::default()).await,
        StoreError::InvalidPartList { .. }
    );
    let max_part = conformance_limits().max_part_size.as_u64();
    let huge = vec![0u8; usize::try_from(max_part).expect("small limit") + 1];
    assert_err!(
        part(4, body_from(huge), PutOptions::default()).await,
        StoreError::EntityTooLarge { .. }
    );
    let bad_md5 = PutOptions {
        content_md5: Some(md5_raw(b"nope")),
        ..PutOptions::default()
    };
    assert_err!(
        part(4, body_from(&b"x"[..]), bad_md5).await,
        StoreError::BadDigest
    );
    let short = PutOptions {
        expected_len: Some(2),
        ..PutOptions::default()
    };
    assert_err!(
        part(2, body_from(&b"x"[..]), short).await,
        StoreError::IncompleteBody { .. }
    );

    let all = ListPartsRequest {
        max_parts: 100,
        ..Default::default()
    };
    let listed = store
        .list_parts(BUCKET, "err", &id, &all)
        .await
        .expect("list parts");
    assert_eq!(
        listed.parts,
        vec![p1.clone(), p2.clone(), p3.clone()],
        "failed calls changed no part"
    );
    assert_err!(
        store.head_object(BUCKET, "err").await,
        StoreError::NoSuchKey { .. }
    );
    complete(completed(&[&p1, &p2]))
        .await
        .expect("a small last part is fine");

    // Too large in total.
    let id = store
        .create_multipart(BUCKET, "huge", ObjectAttrs::default())
        .await
        .expect("create");
    let a = upload(store, "huge", &id, 1, &pattern(60 * KIB, 22)).await;
    let b = upload(store, "huge", &id, 2, &pattern(60 * KIB, 23)).await;
    let parts = completed(&[&a, &b]);
    let done = store
        .complete_multipart(BUCKET, "huge", &id, &parts, PutPrecondition::None)
        .await;
    assert_err!(done, StoreError::EntityTooLarge { .. });

    // Unknown uploads, and a real id under the wrong key.
    for (key, upload_id) in [("huge", "0000"), ("other-key", id.as_str())] {
        let up = store.upload_part(
            BUCKET,
            key,
            upload_id,
            1,
            body_from(&b"x"[..]),
            PutOptions::default(),
        );
        assert_err!(up.await, StoreError::NoSuchUpload { .. });
        let parts = [cp(1, &a.etag)];
        let done = store.complete_multipart(BUCKET, key, upload_id, &parts, PutPrecondition::None);
        assert_err!(done.await, StoreError::NoSuchUpload { .. });
        assert_err!(
            store.list_parts(BUCKET, key, upload_id, &all).await,
            StoreError::NoSuchUpload { .. }
        );
        assert_err!(
            store.abort_multipart(BUCKET, key, upload_id).await,
            StoreError::NoSuchUpload { .. }
        );
    }
    store
        .abort_multipart(BUCKET, "huge", &id)
        .await
        .expect("abort");
}

/// ListParts paging; abort; deleting a bucket aborts its uploads.
pub(super) async fn parts_and_aborts(store: &dyn ObjectStore) {
    let id = store
        .create_multipart(BUCKET, "paged", ObjectAttrs::default())
        .await
        .expect("create");
    for n in 1..=5 {
        upload(store, "paged", &id, n, &[u8::try_from(n).expect("small")]).await;
    }
    let page = |marker: u32, max: usize| {
        let id = id.clone();
        async move {
            let request = ListPartsRequest {
                part_number_marker: marker,
                max_parts: max,
            };
            store
                .list_parts(BUCKET, "paged", &id, &request)
                .await
                .expect("list parts")
        }
    };
    let numbers = |parts: &[PartInfo]| parts.iter().map(|p| p.part_number).collect::<Vec<_>>();
    let first = page(0, 2).await;
    assert_eq!(
        (
            numbers(&first.parts),
            first.is_truncated,
            first.next_part_number_marker
        ),
        (vec![1, 2], true, Some(2))
    );
    let second = page(2, 2).await;
    assert_eq!(
        (
            numbers(&second.parts),
            second.is_truncated,
            second.next_part_number_marker
        ),
        (vec![3, 4], true, Some(4))
    );
    let last = page(4, 2).await;
    assert_eq!(
        (
            numbers(&last.parts),
            last.is_truncated,
            last.next_part_number_marker
        ),
        (vec![5], false, None)
    );
    let zero = page(0, 0).await;
    assert!(zero.parts.is_empty() && !zero.is_truncated);

    store
        .abort_multipart(BUCKET, "paged", &id)
        .await
        .expect("abort");
    assert_err!(
        store
            .list_parts(BUCKET, "paged", &id, &ListPartsRequest::default())
            .await,
        StoreError::NoSuchUpload { .. }
    );
    let up = store.upload_part(
        BUCKET,
        "paged",
        &id,
        1,
        body_from(&b"x"[..]),
        PutOptions::default(),
    );
    assert_err!(up.await, StoreError::NoSuchUpload { .. });
    assert_err!(
        store.abort_multipart(BUCKET, "paged", &id).await,
        StoreError::NoSuchUpload { .. }
    );

    let b = "conf-mpu-drop";
    store.create_bucket(b).await.expect("create bucket");
    let id = store
        .create_multipart(b, "k", ObjectAttrs::default())
        .await
        .expect("create upload");
    let part = store.upload_part(b, "k", &id, 1, body_from(&b"x"[..]), PutOptions::default());
    part.await.expect("upload part");
    store
        .delete_bucket(b)
        .await
        .expect("a bucket with only uploads can be deleted");
    store.create_bucket(b).await.expect("recreate bucket");
    let all_uploads = ListUploadsRequest {
        max_uploads: 10,
        ..Default::default()
    };
    let uploads = store
        .list_uploads(b, &all_uploads)
        .await
        .expect("list uploads");
    assert!(uploads.uploads.is_empty(), "uploads were aborted");
    assert_err!(
        store
            .list_parts(b, "k", &id, &ListPartsRequest::default())
            .await,
        StoreError::NoSuchUpload { .. }
    );
    store.delete_bucket(b).await.expect("delete bucket");
}
