// SPDX-License-Identifier: Apache-2.0
//! Model test: random operation sequences run against `LocalStore` and `MemStore` and a plain
//! `BTreeMap` model; every result (bodies, ETags, errors, listing pages) must agree.
//!
//! Keys come from a tiny alphabet (`a`, `b`, `/`) so that overwrites, prefixes, delimiters and
//! common-prefix groups collide often. Half the PUTs declare their length, so `LocalStore`
//! stores those up to `INLINE_MAX` bytes inline and every other one in a data file, and
//! overwrites, deletes and completions cross between the two. `Reopen` drops and reopens the
//! `LocalStore` on the same directory; after it nothing may change, and recovery must have
//! found nothing to reclaim.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use md5::{Digest, Md5};
use proptest::prelude::*;
use quarry_interceptor::config::StoreLimits;
use quarry_interceptor::store::testing::{body_from, md5_hex, pattern, try_read_body};
use quarry_interceptor::store::{
    ByteRange, CompletedPart, ListRequest, ObjectAttrs, PutOptions, PutPrecondition,
};
use quarry_interceptor::{LocalStore, MemStore, ObjectStore, StoreError};

const BUCKET: &str = "model";
const MAX_OBJECT: usize = 256;
const MIN_PART: usize = 8;
const MAX_PART: usize = 128;
const INLINE_MAX: usize = 32;

fn limits() -> StoreLimits {
    StoreLimits {
        max_object_size: bytesize::ByteSize::b(MAX_OBJECT as u64),
        min_part_size: bytesize::ByteSize::b(MIN_PART as u64),
        max_part_size: bytesize::ByteSize::b(MAX_PART as u64),
        inline_max: bytesize::ByteSize::b(INLINE_MAX as u64),
        // Bodies stay far below one read buffer: a small pool keeps each reopen cheap.
        read_buffers: 8,
        ..StoreLimits::default()
    }
}

#[derive(Debug, Clone)]
enum Op {
    Put {
        key: String,
        len: usize,
        seed: u64,
        if_absent: bool,
        declared: bool,
    },
    Delete {
        key: String,
    },
    Get {
        key: String,
        range: Option<ByteRange>,
    },
    List {
        prefix: String,
        delimiter: bool,
        max_keys: usize,
    },
    Multipart {
        key: String,
        parts: Vec<(u32, usize)>,
        listed: Vec<u32>,
        bad_etag: bool,
        abort: bool,
    },
    Reopen,
}

fn key() -> impl Strategy<Value = String> {
    "[ab/]{1,4}"
}

fn op() -> impl Strategy<Value = Op> {
    let range = prop_oneof![
        (0u64..300, proptest::option::of(0u64..300))
            .prop_map(|(first, last)| ByteRange::FromTo { first, last }),
        (0u64..300).prop_map(|length| ByteRange::Suffix { length }),
    ];
    // Mostly small bodies, some over the limits.
    let part_len = prop_oneof![4 => 0usize..20, 1 => 120usize..140];
    let put_len = prop_oneof![4 => 0usize..64, 1 => 200usize..300];
    let if_absent = proptest::bool::weighted(0.2);
    prop_oneof![
        6 => (key(), put_len, any::<u64>(), if_absent, any::<bool>())
            .prop_map(|(key, len, seed, if_absent, declared)| {
                Op::Put { key, len, seed, if_absent, declared }
            }),
        2 => key().prop_map(|key| Op::Delete { key }),
        3 => (key(), proptest::option::of(range)).prop_map(|(key, range)| Op::Get { key, range }),
        3 => ("[ab/]{0,2}", any::<bool>(), 0usize..5)
            .prop_map(|(prefix, delimiter, max_keys)| Op::List { prefix, delimiter, max_keys }),
        2 => (
            key(),
            proptest::collection::vec((1u32..=4, part_len), 0..5),
            proptest::collection::vec(0u32..=5, 0..4),
            proptest::bool::weighted(0.1),
            proptest::bool::weighted(0.15),
        )
            .prop_map(|(key, parts, listed, bad_etag, abort)| {
                Op::Multipart { key, parts, listed, bad_etag, abort }
            }),
        1 => Just(Op::Reopen),
    ]
}

/// An error reduced to its variant name, which is what the stores must agree on.
fn kind(err: &StoreError) -> String {
    let debug = format!("{err:?}");
    debug
        .split([' ', '{', '('])
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A listing page as the model computes it: entry names (keys and prefixes), truncation, marker.
#[derive(Debug, PartialEq, Eq)]
struct Page {
    keys: Vec<(String, u64, String)>,
    prefixes: Vec<String>,
    truncated: bool,
    next: Option<String>,
}

#[derive(Debug, Default)]
struct Model {
    /// key → (body, etag)
    objects: BTreeMap<String, (Vec<u8>, String)>,
}

impl Model {
    fn put(&mut self, key: &str, body: Vec<u8>, if_absent: bool) -> Result<String, String> {
        if body.len() > MAX_OBJECT {
            return Err("EntityTooLarge".into());
        }
        if if_absent && self.objects.contains_key(key) {
            return Err("PreconditionFailed".into());
        }
        let etag = md5_hex(&body);
        self.objects.insert(key.to_owned(), (body, etag.clone()));
        Ok(etag)
    }

    fn get(&self, key: &str, range: Option<ByteRange>) -> Result<Vec<u8>, String> {
        let (body, _) = self.objects.get(key).ok_or("NoSuchKey")?;
        let Some(range) = range else {
            return Ok(body.clone());
        };
        let r = range.resolve(body.len() as u64).map_err(|e| kind(&e))?;
        let start = usize::try_from(r.start).expect("small object");
        let len = usize::try_from(r.len).expect("small object");
        Ok(body[start..start + len].to_vec())
    }

    fn list(&self, prefix: &str, delimiter: Option<&str>, after: Option<&str>, max: usize) -> Page {
        let mut entries: Vec<(String, Option<(u64, String)>)> = Vec::new();
        for (key, (body, etag)) in &self.objects {
            if !key.starts_with(prefix) || after.is_some_and(|a| key.as_str() <= a) {
                continue;
            }
            let rest = &key[prefix.len()..];
            let entry = match delimiter.and_then(|d| rest.find(d).map(|i| i + d.len())) {
                Some(end) => (key[..prefix.len() + end].to_owned(), None),
                None => (key.clone(), Some((body.len() as u64, etag.clone()))),
            };
            let seen = entries.iter().any(|(name, _)| *name == entry.0);
            if !seen && after.is_none_or(|a| entry.0.as_str() > a) {
                entries.push(entry);
            }
        }
        entries.sort();
        let truncated = max > 0 && entries.len() > max;
        entries.truncate(max);
        let next = if truncated {
            entries.last().map(|(n, _)| n.clone())
        } else {
            None
        };
        let mut page = Page {
            keys: Vec::new(),
            prefixes: Vec::new(),
            truncated,
            next,
        };
        for (name, object) in entries {
            match object {
                Some((size, etag)) => page.keys.push((name, size, etag)),
                None => page.prefixes.push(name),
            }
        }
        page
    }

    /// What completing an upload with these stored parts and this list must give.
    fn complete(
        &mut self,
        key: &str,
        stored: &BTreeMap<u32, Vec<u8>>,
        listed: &[CompletedPart],
    ) -> Result<String, String> {
        if listed.is_empty()
            || listed
                .iter()
                .any(|p| !(1..=10_000).contains(&p.part_number))
        {
            return Err("InvalidPartList".into());
        }
        if listed
            .windows(2)
            .any(|w| w[0].part_number >= w[1].part_number)
        {
            return Err("InvalidPartOrder".into());
        }
        let mut bodies = Vec::new();
        for part in listed {
            match stored.get(&part.part_number) {
                Some(body) if md5_hex(body) == part.etag => bodies.push(body.clone()),
                _ => return Err("InvalidPart".into()),
            }
        }
        if bodies[..bodies.len() - 1]
            .iter()
            .any(|b| b.len() < MIN_PART)
        {
            return Err("EntityTooSmall".into());
        }
        let whole = bodies.concat();
        if whole.len() > MAX_OBJECT {
            return Err("EntityTooLarge".into());
        }
        let mut digests = Vec::new();
        for body in &bodies {
            digests.extend_from_slice(&Md5::digest(body));
        }
        let etag = format!("{}-{}", hex::encode(Md5::digest(&digests)), bodies.len());
        self.objects.insert(key.to_owned(), (whole, etag.clone()));
        Ok(etag)
    }
}

/// Runs one op against a store and checks it against the model's answer.
async fn check_op(
    store: &dyn ObjectStore,
    model: &mut Model,
    op: &Op,
    who: &str,
) -> Result<(), TestCaseError> {
    match op {
        Op::Put {
            key,
            len,
            seed,
            if_absent,
            declared,
        } => {
            let body = pattern(*len, *seed);
            let precondition = if *if_absent {
                PutPrecondition::IfAbsent
            } else {
                PutPrecondition::None
            };
            let options = PutOptions {
                precondition,
                expected_len: declared.then_some(*len as u64),
                ..PutOptions::default()
            };
            let got = store
                .put_object(BUCKET, key, body_from(body.clone()), options)
                .await;
            let got = got.map(|m| m.etag).map_err(|e| kind(&e));
            prop_assert_eq!(got, model.put(key, body, *if_absent), "{}: {:?}", who, op);
        }
        Op::Delete { key } => {
            store
                .delete_object(BUCKET, key)
                .await
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            model.objects.remove(key);
        }
        Op::Get { key, range } => {
            let got = match store.get_object(BUCKET, key, *range).await {
                Ok(reader) => Ok(try_read_body(reader.body)
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?),
                Err(e) => Err(kind(&e)),
            };
            prop_assert_eq!(got, model.get(key, *range), "{}: {:?}", who, op);
        }
        Op::List {
            prefix,
            delimiter,
            max_keys,
        } => {
            let delimiter = delimiter.then_some("/");
            let mut after: Option<String> = None;
            for _ in 0..100 {
                let request = ListRequest {
                    prefix: prefix.clone(),
                    delimiter: delimiter.map(str::to_owned),
                    start_after: after.clone(),
                    max_keys: *max_keys,
                };
                let page = store
                    .list_objects(BUCKET, &request)
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let got = Page {
                    keys: page
                        .objects
                        .iter()
                        .map(|o| (o.key.clone(), o.size, o.etag.clone()))
                        .collect(),
                    prefixes: page.common_prefixes.clone(),
                    truncated: page.is_truncated,
                    next: page.next_marker.clone(),
                };
                let want = model.list(prefix, delimiter, after.as_deref(), *max_keys);
                prop_assert_eq!(&got, &want, "{}: {:?} after {:?}", who, op, after);
                if !got.truncated {
                    break;
                }
                after = got.next;
            }
        }
        Op::Multipart {
            key,
            parts,
            listed,
            bad_etag,
            abort,
        } => {
            check_multipart(store, model, key, parts, listed, *bad_etag, *abort, who).await?;
        }
        Op::Reopen => {}
    }
    Ok(())
}

#[allow(clippy::too_many_arguments, reason = "one flat call per generated op")]
async fn check_multipart(
    store: &dyn ObjectStore,
    model: &mut Model,
    key: &str,
    parts: &[(u32, usize)],
    listed: &[u32],
    bad_etag: bool,
    abort: bool,
    who: &str,
) -> Result<(), TestCaseError> {
    let fail = |e: StoreError| TestCaseError::fail(format!("{who}: {e}"));
    let id = store
        .create_multipart(BUCKET, key, ObjectAttrs::default())
        .await
        .map_err(fail)?;
    let mut stored: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    for (i, (number, len)) in parts.iter().enumerate() {
        let body = pattern(*len, u64::from(*number) * 1000 + i as u64);
        let got = store
            .upload_part(
                BUCKET,
                key,
                &id,
                *number,
                body_from(body.clone()),
                PutOptions::default(),
            )
            .await;
        let want = if body.len() > MAX_PART {
            Err("EntityTooLarge".to_owned())
        } else {
            Ok(md5_hex(&body))
        };
        prop_assert_eq!(
            got.map(|p| p.etag).map_err(|e| kind(&e)),
            want.clone(),
            "{}: part {}",
            who,
            number
        );
        if want.is_ok() {
            stored.insert(*number, body);
        }
    }
    if abort {
        store
            .abort_multipart(BUCKET, key, &id)
            .await
            .map_err(fail)?;
        return Ok(());
    }
    let mut completed: Vec<CompletedPart> = listed
        .iter()
        .map(|n| CompletedPart {
            part_number: *n,
            etag: stored
                .get(n)
                .map(|b| md5_hex(b))
                .unwrap_or_else(|| "0".repeat(32)),
        })
        .collect();
    if bad_etag && let Some(first) = completed.first_mut() {
        first.etag = md5_hex(b"wrong");
    }
    let got = store
        .complete_multipart(BUCKET, key, &id, &completed, PutPrecondition::None)
        .await;
    let want = model.complete(key, &stored, &completed);
    let failed = want.is_err();
    prop_assert_eq!(
        got.map(|m| m.etag).map_err(|e| kind(&e)),
        want,
        "{}: complete {:?}",
        who,
        completed
    );
    if failed {
        // A refused completion leaves the upload open; abort it so listings stay comparable.
        store
            .abort_multipart(BUCKET, key, &id)
            .await
            .map_err(fail)?;
    }
    Ok(())
}

fn files_on_disk(data_dir: &Path) -> BTreeSet<std::path::PathBuf> {
    let mut out = BTreeSet::new();
    for shard in std::fs::read_dir(data_dir).expect("read data dir") {
        for file in std::fs::read_dir(shard.expect("shard").path()).expect("read shard") {
            out.insert(file.expect("entry").path());
        }
    }
    out
}

async fn run_case(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut local = LocalStore::open(dir.path(), limits()).await.expect("open");
    let mem = MemStore::new(limits());
    local.create_bucket(BUCKET).await.expect("create bucket");
    mem.create_bucket(BUCKET).await.expect("create bucket");
    let (mut local_model, mut mem_model) = (Model::default(), Model::default());
    for op in &ops {
        if let Op::Reopen = op {
            drop(local);
            local = LocalStore::open(dir.path(), limits())
                .await
                .expect("reopen");
            let report = local.recovery_report();
            prop_assert_eq!(
                report.orphan_files + report.stray_files + report.missing_files,
                0
            );
        }
        check_op(&local, &mut local_model, op, "LocalStore").await?;
        check_op(&mem, &mut mem_model, op, "MemStore").await?;
    }
    let referenced = local.referenced_files().await.expect("referenced files");
    prop_assert_eq!(
        files_on_disk(local.data_dir()),
        referenced,
        "data files are exactly those the index references"
    );
    let usage = local.usage().await.expect("usage");
    prop_assert_eq!(usage.objects, local_model.objects.len() as u64);
    prop_assert_eq!(usage.uploads, 0);
    Ok(())
}

proptest! {
    // Modest: each case opens a store and fsyncs every write; 24 cases take ~20 s on 2 cores.
    #![proptest_config(ProptestConfig {
        cases: 24,
        max_shrink_iters: 200,
        ..ProptestConfig::default()
    })]

    #[test]
    fn local_and_memory_stores_agree_with_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(run_case(ops))?;
    }
}
