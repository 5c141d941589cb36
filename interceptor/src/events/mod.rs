// SPDX-License-Identifier: Apache-2.0
//! The durable queue of asynchronous trigger events (`put-done`, `delete`, `copy`).
//!
//! Delivery is at least once after commit. Before the store operation runs, the front end
//! records an *intent* for each matching trigger (one durable catalog commit); after the
//! operation commits it marks them *ready*, or drops them if the operation failed. Those two
//! later writes are not fsync'd: if a crash loses them, recovery at start looks at the object
//! (present for `put-done`/`copy`, absent for `delete`) and makes the intent ready when the
//! operation may have happened. So an acknowledged operation never loses its event; an
//! operation that did not happen may still deliver one (for example when the key already
//! existed). Delivery and deletion of the record are not atomic either: a crash between them
//! delivers the event again. Functions bound to async events must tolerate duplicates.
//!
//! Failed deliveries are retried with exponential backoff ([`EventConfig`]); after the last
//! attempt the event moves to the dead-letter list with the failure, where `quarry events
//! retry ID` puts it back.

mod retry;
mod worker;

pub use self::retry::EventConfig;
pub use self::worker::{Deliver, spawn_worker};

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::functions::catalog::{
    Catalog, CatalogError, DEAD, EVENTS, all_by_id, db_err, decode, encode, next_id,
};
use crate::triggers::{Event, TriggerRecord};

/// Where an event is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventState {
    /// Recorded before the operation; not yet known to have committed.
    Intent,
    /// The operation committed; waiting for (re)delivery.
    Ready,
    /// Delivery failed on every attempt.
    Dead,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Its id.
    pub id: u64,
    /// The trigger that produced it.
    pub trigger: u64,
    /// The event.
    pub event: Event,
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// The function or pipeline to run.
    pub functions: Vec<String>,
    /// The trigger's params.
    pub params: BTreeMap<String, String>,
    /// Where it is.
    pub state: EventState,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Milliseconds since the epoch when it may be tried next.
    pub next_attempt_ms: u64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was recorded.
    pub created: SystemTime,
}

/// The events waiting and the dead letters, for the admin API.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EventsView {
    /// Intents and ready events, by id.
    pub pending: Vec<EventRecord>,
    /// Dead letters, by id.
    pub dead: Vec<EventRecord>,
}

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// No dead letter with that id.
    #[error("no dead-lettered event with id {id} (quarry events ls lists them)")]
    NoSuchEvent {
        /// The id.
        id: u64,
    },
    /// The catalog failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// The queue.
#[derive(Debug)]
pub struct EventQueue {
    catalog: Arc<Catalog>,
    config: EventConfig,
    wake: Notify,
}

fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

impl EventQueue {
    /// The queue in `catalog`.
    pub fn new(catalog: Arc<Catalog>, config: EventConfig) -> Self {
        Self {
            catalog,
            config,
            wake: Notify::new(),
        }
    }

    /// The retry policy.
    pub fn config(&self) -> &EventConfig {
        &self.config
    }

    /// Records intents for `triggers` on `bucket`/`key`, durably, before the operation runs.
    pub fn record_intents(
        &self,
        triggers: &[Arc<TriggerRecord>],
        bucket: &str,
        key: &str,
    ) -> Result<Vec<u64>, EventError> {
        if triggers.is_empty() {
            return Ok(Vec::new());
        }
        let ids = self.catalog.write(true, |txn| {
            let mut table = txn.open_table(EVENTS).map_err(db_err("open events"))?;
            let mut ids = Vec::with_capacity(triggers.len());
            for trigger in triggers {
                let id = next_id(txn, "event")?;
                let record = EventRecord {
                    id,
                    trigger: trigger.id,
                    event: trigger.event,
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                    functions: trigger.functions.clone(),
                    params: trigger.params.clone(),
                    state: EventState::Intent,
                    attempts: 0,
                    next_attempt_ms: 0,
                    last_error: None,
                    created: SystemTime::now(),
                };
                table
                    .insert(id, encode(&record).as_slice())
                    .map_err(db_err("write event"))?;
                ids.push(id);
            }
            Ok(ids)
        })?;
        Ok(ids)
    }

    /// The operation committed: the intents become ready and the worker wakes.
    pub fn commit(&self, ids: &[u64]) -> Result<(), EventError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.update(ids, false, |mut record| {
            record.state = EventState::Ready;
            Some(record)
        })?;
        self.wake.notify_one();
        Ok(())
    }

    /// The operation failed: the intents are dropped.
    pub fn abandon(&self, ids: &[u64]) -> Result<(), EventError> {
        self.update(ids, false, |_| None)
    }

    /// Recovery at start: each intent left by a crash becomes ready when `may_have_happened`
    /// says the operation could have committed, and is dropped otherwise. Returns (ready,
    /// dropped).
    pub async fn recover<F, Fut>(&self, may_have_happened: F) -> Result<(usize, usize), EventError>
    where
        F: Fn(EventRecord) -> Fut,
        Fut: Future<Output = bool>,
    {
        let intents: Vec<EventRecord> = self
            .pending()?
            .into_iter()
            .filter(|e| e.state == EventState::Intent)
            .collect();
        let (mut ready, mut dropped) = (Vec::new(), Vec::new());
        for intent in intents {
            let id = intent.id;
            if may_have_happened(intent).await {
                ready.push(id);
            } else {
                dropped.push(id);
            }
        }
        self.update(&ready, true, |mut r| {
            r.state = EventState::Ready;
            Some(r)
        })?;
        self.update(&dropped, true, |_| None)?;
        Ok((ready.len(), dropped.len()))
    }

    /// Ready events whose time has come, at most `limit`, oldest first; and when the next one
    /// not yet due will be.
    pub fn due(&self, limit: usize) -> Result<(Vec<EventRecord>, Option<Duration>), EventError> {
        let now = now_ms();
        let mut due = Vec::new();
        let mut next: Option<u64> = None;
        for record in self.pending()? {
            if record.state != EventState::Ready {
                continue;
            }
            if record.next_attempt_ms <= now {
                if due.len() < limit {
                    due.push(record);
                }
            } else {
                next = Some(next.map_or(record.next_attempt_ms, |n| n.min(record.next_attempt_ms)));
            }
        }
        Ok((
            due,
            next.map(|n| Duration::from_millis(n.saturating_sub(now))),
        ))
    }

    /// The event was delivered.
    pub fn delivered(&self, id: u64) -> Result<(), EventError> {
        self.update(&[id], false, |_| None)
    }

    /// The event failed: retried after the backoff, or dead-lettered after the last attempt.
    pub fn failed(&self, id: u64, reason: &str) -> Result<EventState, EventError> {
        let config = self.config.clone();
        let mut outcome = EventState::Ready;
        self.catalog.write(true, |txn| {
            let mut events = txn.open_table(EVENTS).map_err(db_err("open events"))?;
            let Some(bytes) = events
                .get(id)
                .map_err(db_err("read event"))?
                .map(|v| v.value().to_vec())
            else {
                return Ok(());
            };
            let mut record: EventRecord = decode("events", &bytes)?;
            record.attempts += 1;
            record.last_error = Some(reason.to_owned());
            if record.attempts >= config.max_attempts {
                record.state = EventState::Dead;
                outcome = EventState::Dead;
                events.remove(id).map_err(db_err("remove event"))?;
                let mut dead = txn.open_table(DEAD).map_err(db_err("open dead letters"))?;
                dead.insert(id, encode(&record).as_slice())
                    .map_err(db_err("write dead letter"))?;
            } else {
                let wait = config.backoff(record.attempts);
                record.next_attempt_ms =
                    now_ms().saturating_add(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
                events
                    .insert(id, encode(&record).as_slice())
                    .map_err(db_err("write event"))?;
            }
            Ok(())
        })?;
        if outcome == EventState::Dead {
            tracing::warn!(
                event = id,
                "event moved to the dead-letter list after its last attempt: {reason}"
            );
        }
        Ok(outcome)
    }

    /// Puts dead letter `id` back in the queue with its attempts reset.
    pub fn retry(&self, id: u64) -> Result<EventRecord, EventError> {
        let record = self.catalog.write(true, |txn| {
            let mut dead = txn.open_table(DEAD).map_err(db_err("open dead letters"))?;
            let Some(bytes) = dead
                .remove(id)
                .map_err(db_err("remove dead letter"))?
                .map(|v| v.value().to_vec())
            else {
                return Ok(None);
            };
            let mut record: EventRecord = decode("dead_letters", &bytes)?;
            record.state = EventState::Ready;
            record.attempts = 0;
            record.next_attempt_ms = 0;
            let mut events = txn.open_table(EVENTS).map_err(db_err("open events"))?;
            events
                .insert(id, encode(&record).as_slice())
                .map_err(db_err("write event"))?;
            Ok(Some(record))
        })?;
        let record = record.ok_or(EventError::NoSuchEvent { id })?;
        self.wake.notify_one();
        Ok(record)
    }

    /// Pending events and dead letters.
    pub fn list(&self) -> Result<EventsView, EventError> {
        let dead = self.catalog.read(|txn| {
            let table = txn.open_table(DEAD).map_err(db_err("open dead letters"))?;
            all_by_id(&table, "dead_letters")
        })?;
        Ok(EventsView {
            pending: self.pending()?,
            dead,
        })
    }

    /// Waits until an event may have become ready.
    pub(crate) async fn wait(&self, at_most: Duration) {
        let _ = tokio::time::timeout(at_most, self.wake.notified()).await;
    }

    fn pending(&self) -> Result<Vec<EventRecord>, EventError> {
        Ok(self.catalog.read(|txn| {
            let table = txn.open_table(EVENTS).map_err(db_err("open events"))?;
            all_by_id(&table, "events")
        })?)
    }

    /// Rewrites (`Some`) or removes (`None`) each of `ids`.
    fn update(
        &self,
        ids: &[u64],
        durable: bool,
        f: impl Fn(EventRecord) -> Option<EventRecord>,
    ) -> Result<(), EventError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.catalog.write(durable, |txn| {
            let mut table = txn.open_table(EVENTS).map_err(db_err("open events"))?;
            for &id in ids {
                let Some(bytes) = table
                    .get(id)
                    .map_err(db_err("read event"))?
                    .map(|v| v.value().to_vec())
                else {
                    continue;
                };
                match f(decode("events", &bytes)?) {
                    Some(record) => {
                        table
                            .insert(id, encode(&record).as_slice())
                            .map_err(db_err("write event"))?;
                    }
                    None => {
                        table.remove(id).map_err(db_err("remove event"))?;
                    }
                }
            }
            Ok(())
        })?;
        Ok(())
    }
}
