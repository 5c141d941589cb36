// SPDX-License-Identifier: Apache-2.0
//! Conformance checks for buckets and whole objects.

use bytes::Bytes;

use super::{
    assert_err, body_from, body_from_chunks, conformance_limits, failing_body, get_bytes, md5_hex,
    md5_raw, pattern, put_bytes, read_all,
};
use crate::store::{
    ByteRange, ListRequest, ObjectAttrs, ObjectStore, PutOptions, PutPrecondition, StoreError,
};

/// Create, head, list, delete buckets; operations on a missing bucket.
pub(super) async fn buckets(store: &dyn ObjectStore) {
    let created = store.create_bucket("conf-b2").await.expect("create bucket");
    assert_eq!(created.name, "conf-b2");
    store.create_bucket("conf-b1").await.expect("create bucket");
    assert_eq!(
        store.head_bucket("conf-b2").await.expect("head bucket"),
        created
    );
    assert_err!(
        store.create_bucket("conf-b2").await,
        StoreError::BucketAlreadyExists { .. }
    );

    let names: Vec<String> = store
        .list_buckets()
        .await
        .expect("list buckets")
        .into_iter()
        .map(|b| b.name)
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "buckets are listed by name");
    assert!(names.contains(&"conf-b1".to_owned()) && names.contains(&"conf-b2".to_owned()));

    store
        .delete_bucket("conf-b1")
        .await
        .expect("delete empty bucket");
    assert_err!(
        store.head_bucket("conf-b1").await,
        StoreError::NoSuchBucket { .. }
    );
    assert_err!(
        store.delete_bucket("conf-b1").await,
        StoreError::NoSuchBucket { .. }
    );

    let missing = "conf-missing";
    let put = store
        .put_object(missing, "k", body_from(&b"x"[..]), PutOptions::default())
        .await;
    assert_err!(put, StoreError::NoSuchBucket { .. });
    assert_err!(
        store.get_object(missing, "k", None).await,
        StoreError::NoSuchBucket { .. }
    );
    assert_err!(
        store.head_object(missing, "k").await,
        StoreError::NoSuchBucket { .. }
    );
    assert_err!(
        store.delete_object(missing, "k").await,
        StoreError::NoSuchBucket { .. }
    );
    let request = ListRequest {
        max_keys: 10,
        ..Default::default()
    };
    assert_err!(
        store.list_objects(missing, &request).await,
        StoreError::NoSuchBucket { .. }
    );
    let upload = store
        .create_multipart(missing, "k", ObjectAttrs::default())
        .await;
    assert_err!(upload, StoreError::NoSuchBucket { .. });

    // A bucket with an object cannot be deleted; emptied, it can.
    put_bytes(store, "conf-b2", "k", b"v").await;
    assert_err!(
        store.delete_bucket("conf-b2").await,
        StoreError::BucketNotEmpty { .. }
    );
    store
        .delete_object("conf-b2", "k")
        .await
        .expect("delete object");
    store
        .delete_bucket("conf-b2")
        .await
        .expect("delete emptied bucket");
}

/// Put returns the metadata head and get return; bodies round-trip, chunked or not.
pub(super) async fn put_get_head(store: &dyn ObjectStore) {
    let b = "conf-objects";
    store.create_bucket(b).await.expect("create bucket");
    let data = pattern(20_000, 1);
    let attrs = ObjectAttrs {
        content_type: Some("text/plain".into()),
        cache_control: Some("no-cache".into()),
        user_metadata: [("colour".to_owned(), "blue".to_owned())].into(),
        ..ObjectAttrs::default()
    };
    let chunks: Vec<Bytes> = data.chunks(3000).map(Bytes::copy_from_slice).collect();
    let options = PutOptions {
        attrs: attrs.clone(),
        ..PutOptions::default()
    };
    let meta = store
        .put_object(b, "dir/a", body_from_chunks(chunks), options)
        .await
        .expect("put");
    assert_eq!(meta.key, "dir/a");
    assert_eq!(meta.size, 20_000);
    assert_eq!(meta.etag, md5_hex(&data));
    assert_eq!(meta.parts_count, None);
    assert_eq!(meta.attrs, attrs);
    assert_eq!(store.head_object(b, "dir/a").await.expect("head"), meta);

    let reader = store.get_object(b, "dir/a", None).await.expect("get");
    assert_eq!(reader.meta, meta);
    assert_eq!(reader.range, None);
    assert_eq!(read_all(reader).await, data);

    let empty = store.put_object(b, "empty", body_from(Bytes::new()), PutOptions::default());
    let empty = empty.await.expect("put empty object");
    assert_eq!(
        (empty.size, empty.etag.as_str()),
        (0, md5_hex(b"").as_str())
    );
    assert_eq!(get_bytes(store, b, "empty").await, b"");

    // Keys are data: path-like and odd keys are stored as given.
    for key in [
        "../escape",
        "/abs",
        "a//b",
        "dots/./..",
        "ünï/cödé",
        "sp ace\ttab",
    ] {
        put_bytes(store, b, key, key.as_bytes()).await;
        assert_eq!(
            get_bytes(store, b, key).await,
            key.as_bytes(),
            "key {key:?}"
        );
    }

    assert_err!(
        store.get_object(b, "nope", None).await,
        StoreError::NoSuchKey { .. }
    );
    assert_err!(
        store.head_object(b, "nope").await,
        StoreError::NoSuchKey { .. }
    );
}

/// Range reads: bounded, open-ended, suffix, clamped, unsatisfiable.
pub(super) async fn ranges(store: &dyn ObjectStore) {
    let b = "conf-objects";
    let data = pattern(10_000, 2);
    put_bytes(store, b, "ranged", &data).await;
    let cases: [(ByteRange, usize, usize); 5] = [
        (
            ByteRange::FromTo {
                first: 0,
                last: Some(0),
            },
            0,
            1,
        ),
        (
            ByteRange::FromTo {
                first: 100,
                last: Some(4_099),
            },
            100,
            4_000,
        ),
        (
            ByteRange::FromTo {
                first: 9_000,
                last: None,
            },
            9_000,
            1_000,
        ),
        (
            ByteRange::FromTo {
                first: 9_990,
                last: Some(50_000),
            },
            9_990,
            10,
        ),
        (ByteRange::Suffix { length: 300 }, 9_700, 300),
    ];
    for (range, start, len) in cases {
        let reader = store
            .get_object(b, "ranged", Some(range))
            .await
            .expect("range get");
        let resolved = reader.range.expect("range is reported");
        assert_eq!(
            (resolved.start, resolved.len),
            (start as u64, len as u64),
            "{range:?}"
        );
        assert_eq!(
            read_all(reader).await,
            &data[start..start + len],
            "{range:?}"
        );
    }
    let past_end = ByteRange::FromTo {
        first: 10_000,
        last: None,
    };
    let got = store.get_object(b, "ranged", Some(past_end)).await;
    assert_err!(got, StoreError::InvalidRange { size: 10_000 });
    let got = store
        .get_object(b, "empty", Some(ByteRange::Suffix { length: 1 }))
        .await;
    assert_err!(got, StoreError::InvalidRange { size: 0 });
}

/// A second put replaces the first whole; delete removes; deleting a missing key succeeds.
pub(super) async fn overwrite_and_delete(store: &dyn ObjectStore) {
    let b = "conf-objects";
    put_bytes(store, b, "over", &pattern(7_000, 3)).await;
    let attrs = ObjectAttrs {
        content_type: Some("b".into()),
        ..ObjectAttrs::default()
    };
    let options = PutOptions {
        attrs: attrs.clone(),
        ..PutOptions::default()
    };
    let second = pattern(100, 4);
    let meta = store
        .put_object(b, "over", body_from(second.clone()), options)
        .await
        .expect("put");
    assert_eq!(get_bytes(store, b, "over").await, second);
    assert_eq!(store.head_object(b, "over").await.expect("head"), meta);
    assert_eq!(meta.attrs, attrs);

    store.delete_object(b, "over").await.expect("delete");
    assert_err!(
        store.get_object(b, "over", None).await,
        StoreError::NoSuchKey { .. }
    );
    store
        .delete_object(b, "over")
        .await
        .expect("deleting a missing key succeeds");
}

/// A failing put: how to build it, and whether the error is the expected one.
struct FailingPut {
    what: &'static str,
    body: fn() -> crate::store::BodyStream,
    options: PutOptions,
    expected: fn(&StoreError) -> bool,
}

fn twelve() -> crate::store::BodyStream {
    body_from(&b"twelve bytes"[..])
}

fn too_big() -> crate::store::BodyStream {
    let max = conformance_limits().max_object_size.as_u64();
    body_from(vec![1u8; usize::try_from(max).expect("small limit") + 1])
}

/// Every failing put leaves the previous version (or absence) untouched.
pub(super) async fn failed_puts_store_nothing(store: &dyn ObjectStore) {
    let b = "conf-objects";
    let before = pattern(1_000, 5);
    put_bytes(store, b, "keep", &before).await;
    let max = conformance_limits().max_object_size.as_u64();
    let declared = |len| PutOptions {
        expected_len: Some(len),
        ..PutOptions::default()
    };
    let cases = [
        FailingPut {
            what: "body error",
            body: || failing_body(&b"partial"[..]),
            options: PutOptions::default(),
            expected: |e| matches!(e, StoreError::Body { .. }),
        },
        FailingPut {
            what: "too large",
            body: too_big,
            options: PutOptions::default(),
            expected: |e| matches!(e, StoreError::EntityTooLarge { .. }),
        },
        FailingPut {
            what: "declared too large",
            body: twelve,
            options: declared(max + 1),
            expected: |e| matches!(e, StoreError::EntityTooLarge { .. }),
        },
        FailingPut {
            what: "short body",
            body: twelve,
            options: declared(13),
            expected: |e| {
                matches!(
                    e,
                    StoreError::IncompleteBody {
                        expected: 13,
                        received: 12
                    }
                )
            },
        },
        FailingPut {
            what: "long body",
            body: twelve,
            options: declared(11),
            expected: |e| matches!(e, StoreError::IncompleteBody { expected: 11, .. }),
        },
        FailingPut {
            what: "bad digest",
            body: twelve,
            options: PutOptions {
                content_md5: Some(md5_raw(b"other")),
                ..PutOptions::default()
            },
            expected: |e| matches!(e, StoreError::BadDigest),
        },
    ];
    for case in cases {
        for key in ["keep", "never"] {
            let result = store
                .put_object(b, key, (case.body)(), case.options.clone())
                .await;
            match &result {
                Err(e) if (case.expected)(e) => {}
                other => panic!("{}: unexpected result {other:?}", case.what),
            }
        }
        assert_eq!(
            get_bytes(store, b, "keep").await,
            before,
            "{}: old version kept",
            case.what
        );
        let never = store.head_object(b, "never").await;
        assert!(
            matches!(never, Err(StoreError::NoSuchKey { .. })),
            "{}: {never:?}",
            case.what
        );
    }

    let data = b"twelve bytes";
    let options = PutOptions {
        expected_len: Some(12),
        content_md5: Some(md5_raw(data)),
        ..PutOptions::default()
    };
    let put = store.put_object(b, "digest-ok", twelve(), options).await;
    assert_eq!(put.expect("matching digest").etag, md5_hex(data));
}

/// Conditional writes: `If-None-Match: *` and `If-Match`.
pub(super) async fn preconditions(store: &dyn ObjectStore) {
    let b = "conf-objects";
    let if_absent = || PutOptions {
        precondition: PutPrecondition::IfAbsent,
        ..PutOptions::default()
    };
    let if_match = |etag: &str| PutOptions {
        precondition: PutPrecondition::IfMatch(etag.to_owned()),
        ..PutOptions::default()
    };
    let first = store
        .put_object(b, "cond", body_from(&b"one"[..]), if_absent())
        .await;
    let first = first.expect("if-absent on a missing key");
    let again = store
        .put_object(b, "cond", body_from(&b"two"[..]), if_absent())
        .await;
    assert_err!(again, StoreError::PreconditionFailed { .. });
    let wrong = store
        .put_object(b, "cond", body_from(&b"two"[..]), if_match("0123"))
        .await;
    assert_err!(wrong, StoreError::PreconditionFailed { .. });
    assert_eq!(get_bytes(store, b, "cond").await, b"one");

    let quoted = format!("\"{}\"", first.etag);
    let second = store
        .put_object(b, "cond", body_from(&b"two"[..]), if_match(&quoted))
        .await;
    let second = second.expect("if-match with the current etag (quoted)");
    assert_eq!(second.etag, md5_hex(b"two"));
    let stale = store
        .put_object(b, "cond", body_from(&b"three"[..]), if_match(&first.etag))
        .await;
    assert_err!(stale, StoreError::PreconditionFailed { .. });
    let any = store
        .put_object(b, "cond", body_from(&b"four"[..]), if_match("*"))
        .await;
    any.expect("if-match * on an existing key");
    assert_eq!(get_bytes(store, b, "cond").await, b"four");

    let missing = store
        .put_object(b, "cond-missing", body_from(&b"x"[..]), if_match("*"))
        .await;
    assert_err!(missing, StoreError::NoSuchKey { .. });
    assert_err!(
        store.head_object(b, "cond-missing").await,
        StoreError::NoSuchKey { .. }
    );
}

/// A reader opened before an overwrite or delete still reads the version it opened.
pub(super) async fn reads_see_the_version_they_opened(store: &dyn ObjectStore) {
    let b = "conf-objects";
    let old = pattern(50_000, 6);
    put_bytes(store, b, "snap", &old).await;
    let reader = store.get_object(b, "snap", None).await.expect("get");
    let ranged = store
        .get_object(b, "snap", Some(ByteRange::Suffix { length: 10 }))
        .await;
    let ranged = ranged.expect("range get");
    put_bytes(store, b, "snap", b"new").await;
    assert_eq!(read_all(reader).await, old);
    store.delete_object(b, "snap").await.expect("delete");
    assert_eq!(read_all(ranged).await, &old[old.len() - 10..]);
}

/// Concurrent puts to one key: all succeed and exactly one whole body remains.
pub(super) async fn concurrent_writers_leave_one_whole_winner(store: &dyn ObjectStore) {
    let b = "conf-objects";
    let bodies: Vec<Vec<u8>> = (0..8)
        .map(|i| pattern(30_000 + i * 10, 100 + i as u64))
        .collect();
    let puts = bodies.iter().map(|body| {
        let chunks = body.chunks(4096).map(Bytes::copy_from_slice).collect();
        store.put_object(b, "race", body_from_chunks(chunks), PutOptions::default())
    });
    for result in futures::future::join_all(puts).await {
        result.expect("concurrent put");
    }
    let winner = get_bytes(store, b, "race").await;
    assert!(
        bodies.contains(&winner),
        "the object is one of the bodies, whole"
    );
    let meta = store.head_object(b, "race").await.expect("head");
    assert_eq!(meta.etag, md5_hex(&winner));
    assert_eq!(meta.size, winner.len() as u64);
}

/// Usage counts buckets, objects, bytes and uploads.
pub(super) async fn usage_counts(store: &dyn ObjectStore) {
    let before = store.usage().await.expect("usage");
    let b = "conf-usage";
    store.create_bucket(b).await.expect("create bucket");
    put_bytes(store, b, "one", &[0u8; 100]).await;
    put_bytes(store, b, "two", &[0u8; 50]).await;
    put_bytes(store, b, "two", &[0u8; 20]).await;
    store
        .create_multipart(b, "up", ObjectAttrs::default())
        .await
        .expect("create upload");
    let after = store.usage().await.expect("usage");
    assert_eq!(after.buckets, before.buckets + 1);
    assert_eq!(after.objects, before.objects + 2);
    assert_eq!(after.object_bytes, before.object_bytes + 120);
    assert_eq!(after.uploads, before.uploads + 1);
}

/// Metadata updates: merged atomically into the current version when its ETag matches; data
/// and ETag unchanged; a stale ETag or a missing key is refused. Late metadata on a put is
/// merged before the commit.
pub(super) async fn metadata_updates(store: &dyn ObjectStore) {
    let b = "conf-objects";
    let options = PutOptions {
        attrs: ObjectAttrs {
            user_metadata: [("a".to_owned(), "1".to_owned())].into(),
            ..ObjectAttrs::default()
        },
        ..PutOptions::default()
    };
    let meta = store
        .put_object(b, "meta", body_from(&b"body"[..]), options)
        .await
        .expect("put");
    let update = [("lines".to_owned(), "3".to_owned())].into();
    let updated = store
        .update_metadata(b, "meta", &meta.etag, update)
        .await
        .expect("update with the current etag");
    assert_eq!(updated.etag, meta.etag);
    let head = store.head_object(b, "meta").await.expect("head");
    assert_eq!(head.attrs.user_metadata["a"], "1");
    assert_eq!(head.attrs.user_metadata["lines"], "3");
    assert_eq!(get_bytes(store, b, "meta").await, b"body");

    let stale = store
        .update_metadata(b, "meta", "0123", [("x".to_owned(), "y".to_owned())].into())
        .await;
    assert_err!(stale, StoreError::PreconditionFailed { .. });
    let missing = store
        .update_metadata(b, "meta-missing", &meta.etag, Default::default())
        .await;
    assert_err!(missing, StoreError::NoSuchKey { .. });

    for (key, len) in [("late-small", 10usize), ("late-large", 50_000)] {
        let effects = quarry_offload::Effects::new();
        let late = std::sync::Arc::clone(&effects);
        let body = body_from(pattern(len, 7));
        // The late entry is decided after the call starts, as a function does while streaming.
        effects
            .lock()
            .metadata
            .insert("late".to_owned(), "yes".to_owned());
        let options = PutOptions {
            expected_len: Some(len as u64),
            late_metadata: Some(late),
            ..PutOptions::default()
        };
        store.put_object(b, key, body, options).await.expect("put");
        let head = store.head_object(b, key).await.expect("head");
        assert_eq!(head.attrs.user_metadata["late"], "yes", "{key}");
    }
}
