// SPDX-License-Identifier: Apache-2.0
//! Triggers: a bucket, an optional key prefix and suffix, an event, a function or a pipeline of
//! functions, and implicit params. Persisted in the catalog; matched through [`TriggerIndex`].
//!
//! Synchronous events (`before-get`, `after-get`, `put`) intercept a data flow, and at most one
//! trigger may intercept a flow: adding one whose bucket, event, prefix and suffix overlap an
//! existing synchronous trigger is refused, naming it. Asynchronous events (`put-done`,
//! `delete`, `copy`) may have any number of triggers; each gets its own event.

mod index;

pub use self::index::TriggerIndex;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::functions::catalog::{
    Catalog, CatalogError, TRIGGERS, all_by_id, db_err, encode, next_id,
};

/// Most functions in one pipeline.
pub const MAX_PIPELINE: usize = 8;
/// Most triggers on a node.
pub const MAX_TRIGGERS: usize = 1_000_000;

/// The object operations a trigger can bind to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    /// Before a GET reads the object: may rewrite the key, redirect, deny, set headers.
    BeforeGet,
    /// A GET's body on its way out: transforms it.
    AfterGet,
    /// A PUT's body before the write: may transform, validate or reject it.
    Put,
    /// After a PUT (or multipart completion) committed; asynchronous.
    PutDone,
    /// After a DELETE committed; asynchronous.
    Delete,
    /// After a COPY committed (on the destination); asynchronous.
    Copy,
}

impl Event {
    /// Number of events.
    pub const COUNT: usize = 6;
    /// Every event.
    pub const ALL: [Self; Self::COUNT] = [
        Self::BeforeGet,
        Self::AfterGet,
        Self::Put,
        Self::PutDone,
        Self::Delete,
        Self::Copy,
    ];

    /// The kebab-case name used in the API, CLI and `QUARRY_EVENT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BeforeGet => "before-get",
            Self::AfterGet => "after-get",
            Self::Put => "put",
            Self::PutDone => "put-done",
            Self::Delete => "delete",
            Self::Copy => "copy",
        }
    }

    /// Whether the event intercepts a request (as opposed to running after commit).
    pub fn is_sync(self) -> bool {
        matches!(self, Self::BeforeGet | Self::AfterGet | Self::Put)
    }

    pub(crate) fn slot(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Event {
    type Err = TriggerError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| TriggerError::Invalid {
                message: format!(
                    "unknown event {s:?}; use one of before-get, after-get, put, put-done, delete, copy"
                ),
            })
    }
}

/// What a Range request on a transformed object gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RangePolicy {
    /// `400 InvalidRequest` naming the trigger (the default).
    #[default]
    Refuse,
    /// The range is served over the transformed bytes (`Content-Range: bytes a-b/*`).
    Transformed,
}

/// A trigger as the catalog keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerRecord {
    /// Its id.
    pub id: u64,
    /// The bucket it watches.
    pub bucket: String,
    /// The event it binds to.
    pub event: Event,
    /// Keys must start with this.
    pub prefix: String,
    /// Keys must end with this.
    pub suffix: String,
    /// The function, or the pipeline in order.
    pub functions: Vec<String>,
    /// Implicit params (over the function's defaults; explicit request params win).
    pub params: BTreeMap<String, String>,
    /// Range requests on objects it transforms (`after-get` only).
    #[serde(default)]
    pub range: RangePolicy,
    /// Where its functions run (over each function's own setting; the request's
    /// `x-quarry-backend-class` wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_class: Option<String>,
    /// When it was added.
    pub created: SystemTime,
}

impl TriggerRecord {
    /// Whether this trigger and `other` can match the same request.
    fn overlaps(&self, other: &TriggerSpec) -> bool {
        self.bucket == other.bucket
            && self.event == other.event
            && (self.prefix.starts_with(&other.prefix) || other.prefix.starts_with(&self.prefix))
            && (self.suffix.ends_with(&other.suffix) || other.suffix.ends_with(&self.suffix))
    }
}

/// A trigger to add.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSpec {
    /// The bucket.
    pub bucket: String,
    /// The event.
    pub event: Event,
    /// Key prefix.
    #[serde(default)]
    pub prefix: String,
    /// Key suffix.
    #[serde(default)]
    pub suffix: String,
    /// Function or pipeline.
    pub functions: Vec<String>,
    /// Implicit params.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Range policy.
    #[serde(default)]
    pub range: RangePolicy,
    /// Placement policy for its functions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_class: Option<String>,
}

/// Why a trigger operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// The trigger is not acceptable.
    #[error("invalid trigger: {message}")]
    Invalid {
        /// What is wrong.
        message: String,
    },
    /// It overlaps a synchronous trigger.
    #[error(
        "trigger overlaps trigger {existing} (bucket {bucket}, event {event}): at most one trigger may intercept a request; narrow the prefix or suffix, or remove trigger {existing}"
    )]
    Overlap {
        /// The existing trigger.
        existing: u64,
        /// Its bucket.
        bucket: String,
        /// The event.
        event: Event,
    },
    /// No trigger with that id.
    #[error("no trigger with id {id}")]
    NoSuchTrigger {
        /// The id.
        id: u64,
    },
    /// The catalog failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// Every trigger: persisted records and the index requests match against.
#[derive(Debug)]
pub struct TriggerSet {
    catalog: Arc<Catalog>,
    state: RwLock<Arc<Snapshot>>,
    write: std::sync::Mutex<()>,
}

/// Records and index, replaced together on change.
#[derive(Debug, Default)]
struct Snapshot {
    records: Vec<Arc<TriggerRecord>>,
    index: TriggerIndex,
}

impl TriggerSet {
    /// Loads every trigger from the catalog.
    pub fn open(catalog: Arc<Catalog>) -> Result<Self, TriggerError> {
        let records: Vec<TriggerRecord> = catalog.read(|txn| {
            let table = txn.open_table(TRIGGERS).map_err(db_err("open triggers"))?;
            all_by_id(&table, "triggers")
        })?;
        let set = Self {
            catalog,
            state: RwLock::new(Arc::default()),
            write: std::sync::Mutex::new(()),
        };
        set.publish(records.into_iter().map(Arc::new).collect());
        Ok(set)
    }

    /// Triggers matching a request, in id order.
    pub fn matching(&self, bucket: &str, event: Event, key: &str) -> Vec<Arc<TriggerRecord>> {
        let state = self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.index.is_empty() {
            return Vec::new();
        }
        state.index.matching(bucket, event, key)
    }

    /// Whether any trigger watches `bucket`.
    pub fn watches(&self, bucket: &str) -> bool {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .index
            .has_bucket(bucket)
    }

    /// Every trigger, by id.
    pub fn list(&self) -> Vec<TriggerRecord> {
        let state = self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.records.iter().map(|t| (**t).clone()).collect()
    }

    /// Ids of the triggers that use `function`.
    pub fn users_of(&self, function: &str) -> Vec<u64> {
        let state = self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state
            .records
            .iter()
            .filter(|t| t.functions.iter().any(|f| f == function))
            .map(|t| t.id)
            .collect()
    }

    /// Adds a trigger after checking it; `function_exists` says whether a name is deployed.
    pub fn add(
        &self,
        spec: TriggerSpec,
        function_exists: impl Fn(&str) -> bool,
    ) -> Result<TriggerRecord, TriggerError> {
        let invalid = |message: String| TriggerError::Invalid { message };
        if spec.functions.is_empty() {
            return Err(invalid("name at least one function".to_owned()));
        }
        if spec.functions.len() > MAX_PIPELINE {
            return Err(invalid(format!(
                "a pipeline has at most {MAX_PIPELINE} functions"
            )));
        }
        if let Some(missing) = spec.functions.iter().find(|f| !function_exists(f)) {
            return Err(invalid(format!(
                "no function named {missing:?} is deployed (quarry fn deploy)"
            )));
        }
        if let Some(text) = &spec.backend_class {
            text.parse::<quarry_offload::Policy>()
                .map_err(|e| invalid(e.to_string()))?;
        }
        if spec.range == RangePolicy::Transformed && spec.event != Event::AfterGet {
            return Err(invalid(
                "range = transformed applies to after-get triggers only".to_owned(),
            ));
        }
        if spec.prefix.len() > 1024 || spec.suffix.len() > 1024 {
            return Err(invalid(
                "prefix and suffix are at most 1024 bytes".to_owned(),
            ));
        }
        let _guard = self
            .write
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = Arc::clone(
            &self
                .state
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if current.records.len() >= MAX_TRIGGERS {
            return Err(invalid(format!(
                "the node holds the maximum of {MAX_TRIGGERS} triggers"
            )));
        }
        if spec.event.is_sync()
            && let Some(existing) = current.records.iter().find(|t| t.overlaps(&spec))
        {
            return Err(TriggerError::Overlap {
                existing: existing.id,
                bucket: spec.bucket,
                event: spec.event,
            });
        }
        let record = self.catalog.write(true, |txn| {
            let id = next_id(txn, "trigger")?;
            let record = TriggerRecord {
                id,
                bucket: spec.bucket,
                event: spec.event,
                prefix: spec.prefix,
                suffix: spec.suffix,
                functions: spec.functions,
                params: spec.params,
                range: spec.range,
                backend_class: spec.backend_class,
                created: SystemTime::now(),
            };
            let mut table = txn.open_table(TRIGGERS).map_err(db_err("open triggers"))?;
            table
                .insert(id, encode(&record).as_slice())
                .map_err(db_err("write trigger"))?;
            Ok(record)
        })?;
        let mut records = current.records.clone();
        records.push(Arc::new(record.clone()));
        self.publish(records);
        tracing::info!(trigger = record.id, bucket = %record.bucket, event = %record.event, functions = ?record.functions, "added trigger");
        Ok(record)
    }

    /// Removes trigger `id`.
    pub fn remove(&self, id: u64) -> Result<TriggerRecord, TriggerError> {
        let _guard = self
            .write
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = Arc::clone(
            &self
                .state
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let Some(found) = current.records.iter().find(|t| t.id == id).cloned() else {
            return Err(TriggerError::NoSuchTrigger { id });
        };
        self.catalog.write(true, |txn| {
            let mut table = txn.open_table(TRIGGERS).map_err(db_err("open triggers"))?;
            table.remove(id).map_err(db_err("remove trigger"))?;
            Ok(())
        })?;
        let records = current
            .records
            .iter()
            .filter(|t| t.id != id)
            .cloned()
            .collect();
        self.publish(records);
        tracing::info!(trigger = id, "removed trigger");
        Ok((*found).clone())
    }

    fn publish(&self, records: Vec<Arc<TriggerRecord>>) {
        let index = TriggerIndex::build(records.iter().cloned());
        *self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Arc::new(Snapshot { records, index });
    }
}
