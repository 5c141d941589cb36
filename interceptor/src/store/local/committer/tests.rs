// SPDX-License-Identifier: Apache-2.0
//! Committer tests: batch isolation (refusals, mid-request failures, panics, failpoints), the
//! fate of files, grouping up to `MAX_BATCH`, and shutdown.

use std::pin::Pin;

use redb::{ReadableTable, TableDefinition};

use super::*;
use crate::store::local::data::{self, BodyLimits};
use crate::store::local::index::index_err;
use crate::store::local::writer::{WriteEngine, WritePath};
use crate::store::testing::body_from;

const TABLE: TableDefinition<'static, &str, u64> = TableDefinition::new("t");

struct Fixture {
    _dir: tempfile::TempDir,
    db: Arc<Database>,
    data: DataDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("index.redb")).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(TABLE).unwrap();
    txn.commit().unwrap();
    let data = DataDir::new(dir.path().join("data"));
    data.create_layout().unwrap();
    Fixture {
        _dir: dir,
        db: Arc::new(db),
        data,
    }
}

type Apply = Box<dyn FnOnce(&WriteTransaction) -> Result<Applied<()>, StoreError> + Send>;

/// Writes `key = value` unconditionally.
fn set(key: &'static str, value: u64) -> Apply {
    Box::new(move |txn| {
        let mut t = txn.open_table(TABLE).map_err(index_err("open"))?;
        t.insert(key, value).map_err(index_err("insert"))?;
        Ok(Applied::wrote((), []))
    })
}

/// Writes `key = value` only if the key is absent (checks, then writes).
fn set_if_absent(key: &'static str, value: u64) -> Apply {
    Box::new(move |txn| {
        let mut t = txn.open_table(TABLE).map_err(index_err("open"))?;
        if t.get(key).map_err(index_err("get"))?.is_some() {
            return Err(StoreError::PreconditionFailed { key: key.into() });
        }
        t.insert(key, value).map_err(index_err("insert"))?;
        Ok(Applied::wrote((), []))
    })
}

/// Writes, then fails as an index error half-way would.
fn write_then_fail(key: &'static str) -> Apply {
    Box::new(move |txn| {
        let mut t = txn.open_table(TABLE).map_err(index_err("open"))?;
        t.insert(key, 1).map_err(index_err("insert"))?;
        Err(StoreError::index("insert", io::Error::other("disk gone")))
    })
}

fn keys(db: &Database) -> Vec<String> {
    let txn = db.begin_read().unwrap();
    let t = txn.open_table(TABLE).unwrap();
    t.iter()
        .unwrap()
        .map(|e| e.unwrap().0.value().to_owned())
        .collect()
}

/// Runs one batch of requests directly, as the committer thread would, and returns the
/// answers in order; a file handed back for removal is removed.
fn run(fx: &Fixture, requests: Vec<Commit<Apply>>) -> Vec<Answer> {
    run_with(fx, &Failpoints::new(), requests)
}

type Answer = Result<Committed<()>, Failure>;

fn run_with(fx: &Fixture, fps: &Failpoints, requests: Vec<Commit<Apply>>) -> Vec<Answer> {
    let (jobs, answers): (Vec<_>, Vec<_>) = requests
        .into_iter()
        .map(|c| into_job(c, fx.data.clone()))
        .unzip();
    run_batch(&fx.db, fps, jobs);
    answers
        .into_iter()
        .map(|mut a| a.try_recv().expect("every request is answered").0)
        .collect()
}

fn error(reply: &Answer) -> &StoreError {
    match reply {
        Err(Failure::Error(e)) => e,
        Err(Failure::Panic(_)) => panic!("request panicked"),
        Ok(_) => panic!("request succeeded"),
    }
}

async fn new_file(fx: &Fixture) -> NewFile {
    let limits = BodyLimits {
        max_len: 100,
        expected_len: None,
        content_md5: None,
    };
    let plain = WritePath {
        engine: WriteEngine::Plain,
        counters: Arc::default(),
    };
    data::write_body(&fx.data, &plain, body_from(&b"body"[..]), limits)
        .await
        .unwrap()
        .file
}

#[test]
fn refused_request_leaves_the_rest_of_its_batch_alone() {
    let fx = fixture();
    let answers = run(
        &fx,
        vec![
            Commit::new("a", set("a", 1)),
            Commit::new("a again", set_if_absent("a", 2)),
            Commit::new("b", set("b", 3)),
        ],
    );
    assert!(answers[0].is_ok());
    // The second sees the first one's write, as if it had committed before it.
    assert!(matches!(
        error(&answers[1]),
        StoreError::PreconditionFailed { .. }
    ));
    assert!(answers[2].is_ok());
    assert_eq!(keys(&fx.db), ["a", "b"]);
    let txn = fx.db.begin_read().unwrap();
    let t = txn.open_table(TABLE).unwrap();
    assert_eq!(t.get("a").unwrap().unwrap().value(), 1);
}

#[test]
fn failure_after_a_write_drops_the_whole_batch() {
    let fx = fixture();
    let answers = run(
        &fx,
        vec![
            Commit::new("a", set("a", 1)),
            Commit::new("c", write_then_fail("c")),
            Commit::new("b", set("b", 2)),
        ],
    );
    assert!(keys(&fx.db).is_empty(), "nothing of the batch committed");
    // The failing request gets its own error, the others the batch's.
    assert!(error(&answers[1]).to_string().contains("insert"));
    for other in [&answers[0], &answers[2]] {
        let e = error(other);
        assert!(!e.is_client_error(), "{e}");
    }
}

#[test]
fn panicking_request_fails_its_batch_and_carries_the_panic() {
    let fx = fixture();
    let boom: Apply = Box::new(|_| panic!("boom"));
    let answers = run(
        &fx,
        vec![Commit::new("a", set("a", 1)), Commit::new("boom", boom)],
    );
    assert!(keys(&fx.db).is_empty());
    assert!(matches!(answers[1], Err(Failure::Panic(_))));
    assert!(matches!(
        answers[0],
        Err(Failure::Error(StoreError::Index { .. }))
    ));
}

#[tokio::test]
async fn files_are_kept_on_commit_and_removed_when_refused() {
    let fx = fixture();
    let (kept, refused) = (new_file(&fx).await, new_file(&fx).await);
    let (kept_path, refused_path) = (fx.data.path(kept.id()), fx.data.path(refused.id()));
    let answers = run(
        &fx,
        vec![
            Commit::new("a", set("a", 1)).with_file(kept),
            Commit::new("a again", set_if_absent("a", 2)).with_file(refused),
        ],
    );
    assert!(answers[0].is_ok());
    assert!(answers[1].is_err());
    assert!(kept_path.exists());
    assert!(!refused_path.exists());
}

#[tokio::test]
async fn failpoint_before_commit_drops_the_batch_and_leaves_its_files() {
    let fx = fixture();
    let fps = Failpoints::new();
    fps.arm("put.before_index_commit");
    let (a, b) = (new_file(&fx).await, new_file(&fx).await);
    let paths = [fx.data.path(a.id()), fx.data.path(b.id())];
    let answers = run_with(
        &fx,
        &fps,
        vec![
            Commit::new("a", set("a", 1)).with_file(a),
            Commit::new("b", set("b", 2))
                .with_file(b)
                .with_failpoint("put.before_index_commit"),
        ],
    );
    assert!(keys(&fx.db).is_empty());
    assert!(Failpoints::is_crash(error(&answers[1])));
    assert!(answers[0].is_err());
    assert!(paths.iter().all(|p| p.exists()), "a crash removes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_requests_share_one_commit_of_at_most_max_batch() {
    let fx = fixture();
    let committer = Committer::start(Arc::clone(&fx.db), fx.data.clone(), Arc::default()).unwrap();
    // A first request holds the committer thread until the others are queued.
    let (started_tx, started) = mpsc::channel();
    let (release, gate) = mpsc::channel::<()>();
    let hold: Apply = Box::new(move |_| {
        started_tx.send(()).unwrap();
        gate.recv().unwrap();
        Ok(Applied::unchanged(()))
    });
    let mut held = Box::pin(committer.submit(Commit::new("hold", hold)));
    assert!(futures::poll!(held.as_mut()).is_pending());
    started.recv().unwrap();
    // Polling a submission once queues it.
    let n = MAX_BATCH + 1;
    let mut queued: Vec<Pin<Box<_>>> = (0..n)
        .map(|i| {
            let apply: Apply = Box::new(move |txn| {
                let mut t = txn.open_table(TABLE).map_err(index_err("open"))?;
                t.insert(format!("k{i:03}").as_str(), i as u64)
                    .map_err(index_err("insert"))?;
                Ok(Applied::wrote((), []))
            });
            Box::pin(committer.submit(Commit::new("set", apply)))
        })
        .collect();
    for submission in &mut queued {
        assert!(futures::poll!(submission.as_mut()).is_pending());
    }
    release.send(()).unwrap();
    held.await.unwrap();
    for answer in futures::future::join_all(queued).await {
        answer.unwrap();
    }
    assert_eq!(keys(&fx.db).len(), n);
    // The holder alone, then MAX_BATCH requests in one commit, then the one left over.
    let want = CommitStats {
        batches: 3,
        requests: n as u64 + 1,
    };
    assert_eq!(committer.stats(), want);
}

#[tokio::test]
async fn dropping_the_committer_finishes_what_is_queued_and_closes_the_index() {
    let fx = fixture();
    let committer = Committer::start(Arc::clone(&fx.db), fx.data.clone(), Arc::default()).unwrap();
    let mut submission = Box::pin(committer.submit(Commit::new("a", set("a", 1))));
    assert!(futures::poll!(submission.as_mut()).is_pending());
    drop(submission); // the caller goes away; the request still runs
    drop(committer);
    assert_eq!(keys(&fx.db), ["a"]);
    assert_eq!(
        Arc::strong_count(&fx.db),
        1,
        "the thread released the index"
    );
}
