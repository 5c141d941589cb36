// SPDX-License-Identifier: Apache-2.0
//! Conformance checks for object and upload listings.

use super::put_bytes;
use crate::store::{
    ListPage, ListRequest, ListUploadsRequest, ObjectAttrs, ObjectStore, UploadInfo,
};

const BUCKET: &str = "conf-list";
const KEYS: &[&str] = &[
    "a", "a/1", "a/2", "a/b/1", "a/b/2", "a0", "b", "b/x", "c/", "c/d/e", "c/f", "d", "x--1--2",
    "x--3",
];

/// A listing case: prefix, delimiter, `start_after`, then the expected keys and prefixes.
type Case = (
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    &'static [&'static str],
    &'static [&'static str],
);

/// A page as one ordered list of entry names (keys and common prefixes merged).
fn entries(page: &ListPage) -> Vec<String> {
    let mut all: Vec<String> = page.objects.iter().map(|o| o.key.clone()).collect();
    all.extend(page.common_prefixes.iter().cloned());
    all.sort();
    all
}

async fn list(
    store: &dyn ObjectStore,
    prefix: &str,
    delimiter: Option<&str>,
    start_after: Option<&str>,
    max_keys: usize,
) -> ListPage {
    let request = ListRequest {
        prefix: prefix.to_owned(),
        delimiter: delimiter.map(str::to_owned),
        start_after: start_after.map(str::to_owned),
        max_keys,
    };
    store
        .list_objects(BUCKET, &request)
        .await
        .expect("list objects")
}

/// Prefix, delimiter, `start_after` (a key or a common prefix) and `max_keys = 0`.
pub(super) async fn prefix_and_delimiter(store: &dyn ObjectStore) {
    store.create_bucket(BUCKET).await.expect("create bucket");
    for key in KEYS {
        put_bytes(store, BUCKET, key, key.as_bytes()).await;
    }
    let all = list(store, "", None, None, 1000).await;
    let keys: Vec<&str> = all.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, KEYS, "plain listing is every key in byte order");
    assert!(!all.is_truncated && all.next_marker.is_none() && all.common_prefixes.is_empty());
    assert_eq!(all.objects[1].size, 3, "listing carries metadata");

    let cases: &[Case] = &[
        (
            "",
            Some("/"),
            None,
            &["a", "a0", "b", "d", "x--1--2", "x--3"],
            &["a/", "b/", "c/"],
        ),
        ("a/", Some("/"), None, &["a/1", "a/2"], &["a/b/"]),
        (
            "a",
            None,
            None,
            &["a", "a/1", "a/2", "a/b/1", "a/b/2", "a0"],
            &[],
        ),
        ("c/", Some("/"), None, &["c/", "c/f"], &["c/d/"]),
        ("x--", Some("--"), None, &["x--3"], &["x--1--"]),
        ("zzz", Some("/"), None, &[], &[]),
        (
            "",
            Some("/"),
            Some("a/2"),
            &["a0", "b", "d", "x--1--2", "x--3"],
            &["b/", "c/"],
        ),
        (
            "",
            Some("/"),
            Some("b/"),
            &["d", "x--1--2", "x--3"],
            &["c/"],
        ),
        (
            "",
            None,
            Some("c/d/e"),
            &["c/f", "d", "x--1--2", "x--3"],
            &[],
        ),
        ("a/", Some("/"), Some("0"), &["a/1", "a/2"], &["a/b/"]),
        ("a/", None, Some("b"), &[], &[]),
    ];
    for (prefix, delimiter, after, objects, prefixes) in cases {
        let page = list(store, prefix, *delimiter, *after, 1000).await;
        let got: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
        let what = format!("prefix {prefix:?} delimiter {delimiter:?} start_after {after:?}");
        assert_eq!(got, *objects, "{what}: objects");
        assert_eq!(page.common_prefixes, *prefixes, "{what}: common prefixes");
        assert!(
            !page.is_truncated && page.next_marker.is_none(),
            "{what}: not truncated"
        );
    }

    let zero = list(store, "", Some("/"), None, 0).await;
    assert!(zero.objects.is_empty() && zero.common_prefixes.is_empty());
    assert!(
        !zero.is_truncated && zero.next_marker.is_none(),
        "max_keys 0 is an empty, whole page"
    );
}

/// Paging with `next_marker` as `start_after` visits every entry once, in order.
pub(super) async fn pagination(store: &dyn ObjectStore) {
    for (prefix, delimiter) in [
        ("", None),
        ("", Some("/")),
        ("a", Some("/")),
        ("c/", Some("/")),
    ] {
        let whole = entries(&list(store, prefix, delimiter, None, 1000).await);
        for max_keys in 1..=4 {
            let what = format!("prefix {prefix:?} delimiter {delimiter:?} max_keys {max_keys}");
            let mut seen = Vec::new();
            let mut marker: Option<String> = None;
            loop {
                let page = list(store, prefix, delimiter, marker.as_deref(), max_keys).await;
                let names = entries(&page);
                assert!(names.len() <= max_keys, "{what}: page too long");
                seen.extend(names.iter().cloned());
                if !page.is_truncated {
                    assert!(
                        page.next_marker.is_none(),
                        "{what}: marker on the last page"
                    );
                    break;
                }
                assert_eq!(names.len(), max_keys, "{what}: truncated page is full");
                assert_eq!(
                    page.next_marker.as_ref(),
                    names.last(),
                    "{what}: marker is last entry"
                );
                assert!(seen.len() <= whole.len(), "{what}: paging does not end");
                marker = page.next_marker;
            }
            assert_eq!(seen, whole, "{what}: pages cover the listing once");
        }
    }
}

/// ListMultipartUploads: order, prefix, markers, paging.
pub(super) async fn uploads(store: &dyn ObjectStore) {
    let b = "conf-uploads";
    store.create_bucket(b).await.expect("create bucket");
    for key in ["a", "a", "b", "c/d"] {
        store
            .create_multipart(b, key, ObjectAttrs::default())
            .await
            .expect("create upload");
    }
    let request = |prefix: &str, key_marker: Option<&str>, id_marker: Option<&str>, max: usize| {
        ListUploadsRequest {
            prefix: prefix.to_owned(),
            key_marker: key_marker.map(str::to_owned),
            upload_id_marker: id_marker.map(str::to_owned),
            max_uploads: max,
        }
    };
    let ids = |uploads: &[UploadInfo]| -> Vec<(String, String)> {
        uploads
            .iter()
            .map(|u| (u.key.clone(), u.upload_id.clone()))
            .collect()
    };
    let all = store
        .list_uploads(b, &request("", None, None, 1000))
        .await
        .expect("list uploads");
    let all = ids(&all.uploads);
    assert_eq!(all.len(), 4);
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted, "uploads are listed by key, then upload id");

    let page = store
        .list_uploads(b, &request("c", None, None, 1000))
        .await
        .expect("list");
    assert_eq!(ids(&page.uploads), all[3..]);
    let page = store
        .list_uploads(b, &request("", Some("a"), None, 1000))
        .await
        .expect("list");
    assert_eq!(
        ids(&page.uploads),
        all[2..],
        "key marker alone skips that key's uploads"
    );
    let first_a = all[0].1.as_str();
    let page = store
        .list_uploads(b, &request("", Some("a"), Some(first_a), 1000))
        .await;
    assert_eq!(
        ids(&page.expect("list").uploads),
        all[1..],
        "upload id marker within the key"
    );
    let zero = store
        .list_uploads(b, &request("", None, None, 0))
        .await
        .expect("list");
    assert!(zero.uploads.is_empty() && !zero.is_truncated);

    let mut seen = Vec::new();
    let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
    loop {
        let req = request("", key_marker.as_deref(), id_marker.as_deref(), 1);
        let page = store
            .list_uploads(b, &req)
            .await
            .expect("list uploads page");
        seen.extend(ids(&page.uploads));
        if !page.is_truncated {
            break;
        }
        assert!(seen.len() <= all.len(), "upload paging does not end");
        (key_marker, id_marker) = (page.next_key_marker, page.next_upload_id_marker);
    }
    assert_eq!(seen, all, "upload pages cover every upload once");
}
