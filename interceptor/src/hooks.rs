// SPDX-License-Identifier: Apache-2.0
//! Request hooks: the glue between S3 requests, triggers and function chains.
//!
//! The front end asks [`Hooks::sync_chain`] whether a request is intercepted (a trigger on
//! `before-get`, `after-get` or `put`, or an explicit `x-quarry-function`), starts the chain
//! with [`Hooks::start`], and for operations that fire asynchronous events records intents
//! ([`Hooks::async_triggers`], [`EventQueue`]). The event worker delivers through
//! [`Hooks::deliver`].
//!
//! At most one chain intercepts a data flow. When a request names functions explicitly and a
//! synchronous trigger also matches, they form one chain: on GET the trigger's functions run
//! first and the explicit ones transform their output; on PUT the explicit ones run first and
//! the trigger's (typically validation) see the final bytes. Params: function defaults, then
//! the trigger's, then the request's; later wins.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use quarry_offload::pipeline::{self, Running};
use quarry_offload::{
    Backend, BackendId, BucketAccess, ChunkStream, DataLocation, Effects, Flow, HostError,
    InvocationContext, Job, ObjectFacts, Policy,
};

use crate::events::{Deliver, EventQueue, EventRecord};
use crate::functions::{Deployed, FunctionRegistry};
use crate::metrics::FunctionMetrics;
use crate::store::{ByteRange, ObjectStore, PutOptions, StoreError};
use crate::triggers::{Event, RangePolicy, TriggerRecord, TriggerSet};

/// Why a request's functions could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// A named function is not deployed.
    #[error("no function named {name:?} is deployed{}", trigger.map(|t| format!(" (trigger {t} names it)")).unwrap_or_default())]
    NoSuchFunction {
        /// The name.
        name: String,
        /// The trigger that named it, if a trigger did.
        trigger: Option<u64>,
    },
    /// A pipeline is too long.
    #[error("at most {max} functions per request")]
    TooManyFunctions {
        /// The limit.
        max: usize,
    },
}

/// Where a chain came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A trigger, possibly with explicit functions added.
    Trigger(u64),
    /// Only the request's `x-quarry-function`.
    Explicit,
}

/// The functions that intercept one request, resolved to deployed versions.
#[derive(Debug, Clone)]
pub struct Chain {
    /// Stages in order.
    pub stages: Vec<Arc<Deployed>>,
    /// The trigger's params.
    pub trigger_params: BTreeMap<String, String>,
    /// The request's params.
    pub explicit_params: BTreeMap<String, String>,
    /// Where it came from.
    pub origin: Origin,
    /// Range requests over its output.
    pub range: RangePolicy,
    /// The trigger's placement policy, if it set one.
    pub trigger_backend_class: Option<String>,
    /// The request's placement policy (`x-quarry-backend-class`), if it gave one.
    pub explicit_backend_class: Option<String>,
}

impl Chain {
    /// Where `stage` may run: the request's policy, else the trigger's, else the function's,
    /// else `auto`. Texts were checked when they were given; one that no longer parses (an
    /// older catalog) counts as `auto`, with a warning.
    pub fn policy_for(&self, stage: &Deployed) -> Policy {
        let Some(text) = self
            .explicit_backend_class
            .as_deref()
            .or(self.trigger_backend_class.as_deref())
            .or(stage.record.backend_class.as_deref())
        else {
            return Policy::Auto;
        };
        text.parse().unwrap_or_else(|e| {
            tracing::warn!(function = %stage.record.name, "placement policy ignored: {e}");
            Policy::Auto
        })
    }

    /// `name@vN` of each stage, comma-separated: the value of `x-quarry-function` in responses.
    pub fn label(&self) -> String {
        self.stages
            .iter()
            .map(|d| d.spec.label())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The hooks of one node.
pub struct Hooks {
    /// Deployed functions.
    pub registry: Arc<FunctionRegistry>,
    /// Triggers.
    pub triggers: Arc<TriggerSet>,
    /// The async event queue.
    pub events: Arc<EventQueue>,
    backend: Arc<dyn Backend>,
    store: Arc<dyn ObjectStore>,
    metrics: Option<FunctionMetrics>,
    /// Buckets placed on a device's namespace, by bucket name.
    placement: BTreeMap<String, BackendId>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks").finish_non_exhaustive()
    }
}

impl Hooks {
    /// Hooks over these parts.
    pub fn new(
        registry: Arc<FunctionRegistry>,
        triggers: Arc<TriggerSet>,
        events: Arc<EventQueue>,
        backend: Arc<dyn Backend>,
        store: Arc<dyn ObjectStore>,
    ) -> Self {
        Self {
            registry,
            triggers,
            events,
            backend,
            store,
            metrics: None,
            placement: BTreeMap::new(),
        }
    }

    /// Places `bucket`'s objects on the namespace of device `device` for the cost model: a
    /// chain reading them starts with its input on that device.
    #[must_use]
    pub fn with_placement(mut self, placement: BTreeMap<String, BackendId>) -> Self {
        self.placement = placement;
        self
    }

    /// Where a chain's first stage finds its input: on the bucket's device when the flow
    /// reads the stored object, otherwise (a request body) the host.
    fn input_location(&self, bucket: &str, flow: Flow) -> DataLocation {
        match (flow, self.placement.get(bucket)) {
            (Flow::Read | Flow::AfterWrite, Some(device)) => DataLocation::Device(device.clone()),
            _ => DataLocation::Host,
        }
    }

    /// Records every run in `metrics`.
    pub fn with_metrics(mut self, metrics: FunctionMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The backend functions run on.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    fn resolve(
        &self,
        names: &[String],
        trigger: Option<u64>,
    ) -> Result<Vec<Arc<Deployed>>, HookError> {
        names
            .iter()
            .map(|name| {
                self.registry
                    .get(name)
                    .ok_or_else(|| HookError::NoSuchFunction {
                        name: name.clone(),
                        trigger,
                    })
            })
            .collect()
    }

    /// The chain that intercepts a request for `event` (`before-get`, `after-get` or `put`) on
    /// `bucket`/`key`, with the request's explicit functions (for `after-get` and `put`).
    pub fn sync_chain(
        &self,
        bucket: &str,
        key: &str,
        event: Event,
        explicit_functions: &[String],
        explicit_params: &BTreeMap<String, String>,
    ) -> Result<Option<Chain>, HookError> {
        let trigger = self
            .triggers
            .matching(bucket, event, key)
            .into_iter()
            .next();
        let explicit = if matches!(event, Event::AfterGet | Event::Put) {
            self.resolve(explicit_functions, None)?
        } else {
            Vec::new()
        };
        let chain = match trigger {
            None if explicit.is_empty() => return Ok(None),
            None => Chain {
                stages: explicit,
                trigger_params: BTreeMap::new(),
                explicit_params: explicit_params.clone(),
                origin: Origin::Explicit,
                range: RangePolicy::Transformed,
                trigger_backend_class: None,
                explicit_backend_class: None,
            },
            Some(t) => {
                let mut stages = self.resolve(&t.functions, Some(t.id))?;
                if event == Event::Put {
                    let mut first = explicit;
                    first.append(&mut stages);
                    stages = first;
                } else {
                    stages.extend(explicit);
                }
                Chain {
                    stages,
                    trigger_params: t.params.clone(),
                    explicit_params: explicit_params.clone(),
                    origin: Origin::Trigger(t.id),
                    range: t.range,
                    trigger_backend_class: t.backend_class.clone(),
                    explicit_backend_class: None,
                }
            }
        };
        if chain.stages.len() > crate::triggers::MAX_PIPELINE {
            return Err(HookError::TooManyFunctions {
                max: crate::triggers::MAX_PIPELINE,
            });
        }
        Ok(Some(chain))
    }

    /// Starts `chain` over `input`. All stages share one set of effects.
    pub fn start(
        &self,
        chain: &Chain,
        event: &str,
        flow: Flow,
        facts: ObjectFacts,
        input: ChunkStream,
    ) -> (Running, Arc<Effects>) {
        let effects = Effects::new();
        let bucket: Arc<dyn BucketAccess> = Arc::new(StoreBucket {
            store: Arc::clone(&self.store),
            bucket: facts.bucket.clone(),
        });
        let first_input = self.input_location(&facts.bucket, flow);
        let jobs = chain
            .stages
            .iter()
            .enumerate()
            .map(|(stage, deployed)| {
                let mut params = deployed.record.params.clone();
                params.extend(chain.trigger_params.clone());
                params.extend(chain.explicit_params.clone());
                let policy = chain.policy_for(deployed);
                Job {
                    function: Arc::clone(&deployed.spec),
                    context: InvocationContext {
                        event: event.to_owned(),
                        facts: facts.clone(),
                        params,
                        // Later stages read the previous stage's output in host memory.
                        location: if stage == 0 {
                            first_input.clone()
                        } else {
                            DataLocation::Host
                        },
                    },
                    flow,
                    effects: Arc::clone(&effects),
                    bucket: (!deployed.spec.permissions.is_empty()).then(|| Arc::clone(&bucket)),
                    policy,
                }
            })
            .collect();
        let mut running = pipeline::start(Arc::clone(&self.backend), jobs, input);
        if let Some(metrics) = self.metrics.clone() {
            let names: Vec<String> = chain.stages.iter().map(|d| d.record.name.clone()).collect();
            let done = running.done;
            running.done = Box::pin(async move {
                let result = done.await;
                match &result {
                    Ok(reports) => {
                        for (name, report) in names.iter().zip(reports) {
                            metrics.record_ok(name, report);
                        }
                    }
                    Err(e) => metrics.record_err(e),
                }
                result
            });
        }
        (running, effects)
    }

    /// Async triggers matching an operation that is about to run.
    pub fn async_triggers(&self, bucket: &str, key: &str, event: Event) -> Vec<Arc<TriggerRecord>> {
        if !self.triggers.watches(bucket) {
            return Vec::new();
        }
        self.triggers.matching(bucket, event, key)
    }

    /// Recovery: whether the operation behind an intent may have committed.
    pub async fn may_have_happened(&self, event: &EventRecord) -> bool {
        let found = self.store.head_object(&event.bucket, &event.key).await;
        match event.event {
            Event::Delete => matches!(found, Err(StoreError::NoSuchKey { .. })),
            _ => found.is_ok(),
        }
    }

    /// The event worker's delivery function.
    pub fn deliver(self: &Arc<Self>) -> Deliver {
        let hooks = Arc::clone(self);
        Arc::new(move |event| {
            let hooks = Arc::clone(&hooks);
            Box::pin(async move { hooks.deliver_one(event).await })
        })
    }

    async fn deliver_one(&self, event: EventRecord) -> Result<(), String> {
        let stages = self
            .resolve(&event.functions, Some(event.trigger))
            .map_err(|e| e.to_string())?;
        let chain = Chain {
            stages,
            trigger_params: event.params.clone(),
            explicit_params: BTreeMap::new(),
            origin: Origin::Trigger(event.trigger),
            range: RangePolicy::Refuse,
            trigger_backend_class: None,
            explicit_backend_class: None,
        };
        let mut facts = ObjectFacts {
            bucket: event.bucket.clone(),
            key: event.key.clone(),
            ..ObjectFacts::default()
        };
        let (input, flow): (ChunkStream, Flow) = match event.event {
            Event::Delete => (Box::pin(futures::stream::empty()), Flow::AfterDelete),
            _ => match self.store.get_object(&event.bucket, &event.key, None).await {
                Ok(reader) => {
                    facts.size = Some(reader.meta.size);
                    facts.etag = Some(reader.meta.etag.clone());
                    facts.content_type = reader.meta.attrs.content_type.clone();
                    facts.metadata = reader.meta.attrs.user_metadata.clone();
                    (reader.body, Flow::AfterWrite)
                }
                Err(StoreError::NoSuchKey { .. } | StoreError::NoSuchBucket { .. }) => {
                    tracing::info!(event = event.id, bucket = %event.bucket, key = %event.key, "event skipped: the object is gone");
                    return Ok(());
                }
                Err(e) => return Err(format!("cannot read the object: {e}")),
            },
        };
        let etag = facts.etag.clone();
        let (running, effects) = self.start(&chain, event.event.as_str(), flow, facts, input);
        let mut output = running.output;
        while output.next().await.is_some() {}
        running.done.await.map_err(|e| e.to_string())?;
        let metadata = effects.snapshot().metadata;
        if let (false, Some(etag)) = (metadata.is_empty(), etag) {
            match self
                .store
                .update_metadata(&event.bucket, &event.key, &etag, metadata)
                .await
            {
                Ok(_) => {}
                Err(StoreError::PreconditionFailed { .. } | StoreError::NoSuchKey { .. }) => {
                    tracing::info!(event = event.id, key = %event.key, "metadata not applied: the object changed meanwhile");
                }
                Err(e) => return Err(format!("cannot update the object's metadata: {e}")),
            }
        }
        Ok(())
    }
}

/// A function's access to the trigger's bucket.
struct StoreBucket {
    store: Arc<dyn ObjectStore>,
    bucket: String,
}

fn host_error(err: StoreError) -> HostError {
    match err {
        StoreError::NoSuchKey { .. } => HostError::NotFound,
        StoreError::EntityTooLarge { .. } => HostError::TooLarge,
        StoreError::InvalidRange { .. } => HostError::Invalid("range".to_owned()),
        other => HostError::Io(other.to_string()),
    }
}

#[async_trait]
impl BucketAccess for StoreBucket {
    async fn size(&self, key: &str) -> Result<u64, HostError> {
        self.store
            .head_object(&self.bucket, key)
            .await
            .map(|m| m.size)
            .map_err(host_error)
    }

    async fn read(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, HostError> {
        if len == 0 {
            return Ok(Bytes::new());
        }
        let range = ByteRange::FromTo {
            first: offset,
            last: Some(offset.saturating_add(len - 1)),
        };
        let reader = match self.store.get_object(&self.bucket, key, Some(range)).await {
            Ok(r) => r,
            Err(StoreError::InvalidRange { .. }) => return Ok(Bytes::new()),
            Err(e) => return Err(host_error(e)),
        };
        let mut body = reader.body;
        let mut out = Vec::new();
        while let Some(chunk) = body.next().await {
            out.extend_from_slice(&chunk.map_err(|e| HostError::Io(e.to_string()))?);
        }
        Ok(Bytes::from(out))
    }

    async fn write(&self, key: &str, bytes: Bytes) -> Result<(), HostError> {
        if key.is_empty() || key.len() > 1024 {
            return Err(HostError::Invalid("key".to_owned()));
        }
        let options = PutOptions {
            expected_len: Some(bytes.len() as u64),
            ..PutOptions::default()
        };
        let body: crate::store::BodyStream =
            Box::pin(futures::stream::once(async move { Ok(bytes) }));
        self.store
            .put_object(&self.bucket, key, body, options)
            .await
            .map(|_| ())
            .map_err(host_error)
    }
}
