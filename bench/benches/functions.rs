// SPDX-License-Identifier: Apache-2.0
//! Criterion groups `instance` and `trigger_match`: the two fixed costs every request through a
//! storage function pays before any byte of the object moves.
//!
//! - `instance/backend_run`: one job of the `noop` module (`examples/functions/wat/noop.wat`, a
//!   `_start` that returns) through `WasmBackend::run`, awaited on the bench thread: wait for a
//!   pool slot, build the WASI context, instantiate from the pre-instantiated module, call
//!   `_start`, classify the ending and drop the store (the instance goes back to the pool).
//!   Target: at most 5 us at the median.
//! - `instance/pipeline`: the same job through `pipeline::start`, which spawns the job on a
//!   task and joins it, as the S3 front end does; the difference is the task's cost.
//!   `instance/pipeline_mt` runs it on a two-worker runtime, like quarryd, where the job runs on
//!   a worker thread and its end wakes the bench thread.
//! - `instance/wasmtime_floor` (context): wasmtime alone, configured as the pool configures it
//!   (pooling allocator with the default slots and memory, epoch interruption), with no WASI
//!   and no Quarry host state: `Store::new`, instantiate the pre-instantiated module, call
//!   `_start` on a fiber, drop. The gap to `backend_run` is the host's own setup per job.
//! - `trigger_match/{hit,miss}/{1000,100000}`: `TriggerIndex::matching` among 1,000 and
//!   100,000 triggers spread over 100 buckets and two events, with four prefix lengths and
//!   some suffixes. Both indexes have the same prefix lengths per (bucket, event), so the two
//!   counts differ only in the size of the hash maps: the cost must not grow with the count.
//!   A hit finds one trigger (an `Arc` cloned into a fresh `Vec`); a miss probes every prefix
//!   length and finds nothing. Target: at most 200 ns at the median with 100,000 triggers.
//!
//! Criterion's "median" is the median over samples of each sample's mean time per call; with
//! calls this short every sample holds many calls, so it is the typical cost, not a tail.
//! Run with `cargo bench -p quarry-bench --bench functions`; the medians land in
//! `target/criterion/<group>/<id>/new/estimates.json` (`median.point_estimate`, ns).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use quarry_interceptor::triggers::{Event, RangePolicy, TriggerIndex, TriggerRecord};
use quarry_offload::pipeline;
use quarry_offload::{
    Backend, ChunkStream, Effects, Flow, FunctionLimits, FunctionSpec, InvocationContext, Job,
    OutputSink, Variant, WasmBackend, WasmConfig,
};
use tokio::runtime::Runtime;

/// The module whose whole run is start, call and drop.
const NOOP_WAT: &str = include_str!("../../examples/functions/wat/noop.wat");

/// Buckets the triggers are spread over.
const BUCKETS: usize = 100;
/// Trigger counts compared.
const TRIGGER_COUNTS: [usize; 2] = [1_000, 100_000];

fn instance(c: &mut Criterion) {
    let backend = Arc::new(
        WasmBackend::new(&WasmConfig::default()).expect("the wasm pool starts with its defaults"),
    );
    let module = backend
        .compile(NOOP_WAT.as_bytes())
        .expect("noop.wat compiles");
    let function = Arc::new(FunctionSpec {
        name: "noop".to_owned(),
        version: 1,
        limits: FunctionLimits::default(),
        permissions: Vec::new(),
        variants: vec![Variant::Wasm(module)],
    });
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime builds on any machine that runs benches");
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime builds on any machine that runs benches");

    // One run outside the timing, so that a broken module fails loudly instead of measuring
    // an error path.
    current.block_on(run_direct(&backend, &function));
    current.block_on(run_pipeline(&backend, &function));

    let mut group = c.benchmark_group("instance");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("backend_run", |b| {
        b.iter(|| current.block_on(run_direct(&backend, &function)));
    });
    let floor = WasmtimeFloor::new();
    current.block_on(floor.run());
    group.bench_function("wasmtime_floor", |b| {
        b.iter(|| current.block_on(floor.run()));
    });
    let runtimes: [(&str, &Runtime); 2] = [("pipeline", &current), ("pipeline_mt", &multi)];
    for (name, rt) in runtimes {
        group.bench_function(name, |b| {
            b.iter(|| rt.block_on(run_pipeline(&backend, &function)));
        });
    }
    group.finish();
}

/// wasmtime with the pool's engine settings and nothing of Quarry's around it.
struct WasmtimeFloor {
    engine: wasmtime::Engine,
    pre: wasmtime::InstancePre<()>,
}

impl WasmtimeFloor {
    fn new() -> Self {
        let defaults = WasmConfig::default();
        let slots = defaults.max_instances;
        let mut pool = wasmtime::PoolingAllocationConfig::default();
        pool.total_core_instances(slots)
            .total_memories(slots)
            .total_tables(slots)
            .total_stacks(slots)
            .total_component_instances(0)
            .max_memory_size(
                usize::try_from(defaults.max_memory.as_u64()).expect("256 MiB fits in usize"),
            );
        let mut config = wasmtime::Config::new();
        config
            .epoch_interruption(true)
            .allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        let engine = wasmtime::Engine::new(&config).expect("the pool's engine settings are valid");
        let module = wasmtime::Module::new(&engine, NOOP_WAT).expect("noop.wat compiles");
        let pre = wasmtime::Linker::new(&engine)
            .instantiate_pre(&module)
            .expect("noop has no imports");
        Self { engine, pre }
    }

    async fn run(&self) {
        let mut store = wasmtime::Store::new(&self.engine, ());
        store.set_epoch_deadline(1);
        let instance = self
            .pre
            .instantiate_async(&mut store)
            .await
            .expect("noop instantiates");
        let start = instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .expect("noop exports _start");
        start
            .call_async(&mut store, ())
            .await
            .expect("noop returns");
    }
}

/// A job as the S3 front end makes one per request: fresh effects, the event's context.
fn job(function: &Arc<FunctionSpec>) -> Job {
    Job {
        function: Arc::clone(function),
        context: InvocationContext {
            event: "after-get".to_owned(),
            ..InvocationContext::default()
        },
        flow: Flow::Read,
        effects: Effects::new(),
        bucket: None,
        policy: quarry_offload::Policy::Auto,
    }
}

fn empty_input() -> ChunkStream {
    Box::pin(futures::stream::empty())
}

/// One job through `Backend::run`. The receiver lives until the job ends: a dropped receiver
/// means a client that went away, which the backend reports as a cancellation.
async fn run_direct(backend: &Arc<WasmBackend>, function: &Arc<FunctionSpec>) {
    let (sink, rx) = OutputSink::channel(1);
    let report = backend
        .run(job(function), empty_input(), sink)
        .await
        .expect("noop runs");
    drop(rx);
    black_box(report);
}

/// One job through `pipeline::start`: spawned on a task, output drained, joined.
async fn run_pipeline(backend: &Arc<WasmBackend>, function: &Arc<FunctionSpec>) {
    use futures::StreamExt as _;
    let dyn_backend: Arc<dyn Backend> = Arc::clone(backend) as Arc<dyn Backend>;
    let mut running = pipeline::start(dyn_backend, vec![job(function)], empty_input());
    while let Some(chunk) = running.output.next().await {
        black_box(chunk.expect("noop writes nothing and does not fail"));
    }
    black_box(running.done.await.expect("noop runs"));
}

fn trigger_match(c: &mut Criterion) {
    let mut group = c.benchmark_group("trigger_match");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    for count in TRIGGER_COUNTS {
        let index = TriggerIndex::build(triggers(count));
        assert_eq!(index.len(), count);
        // The longest prefix shape, so that a lookup probes every prefix length before it
        // reaches the one that hits; its suffix must match too.
        let hit_key = "archive/region-eu/t0003/2024/06/01/part-00042.csv";
        let miss_key = "archive/region-us/t0003/2024/06/01/part-00042.csv";
        let hit_bucket = bucket_name(3);
        let found = index.matching(&hit_bucket, Event::AfterGet, hit_key);
        assert_eq!(found.len(), 1, "the hit key matches exactly one trigger");
        assert!(
            index
                .matching(&hit_bucket, Event::AfterGet, miss_key)
                .is_empty()
        );
        group.bench_with_input(BenchmarkId::new("hit", count), &index, |b, index| {
            b.iter(|| index.matching(black_box(&hit_bucket), Event::AfterGet, black_box(hit_key)));
        });
        group.bench_with_input(BenchmarkId::new("miss", count), &index, |b, index| {
            b.iter(|| index.matching(black_box(&hit_bucket), Event::AfterGet, black_box(miss_key)));
        });
    }
    group.finish();
}

fn bucket_name(i: usize) -> String {
    format!("bucket-{i:03}")
}

/// `count` triggers: trigger `i` is on bucket `i % 100`; its number within the bucket `j`
/// picks the prefix shape (`j % 4`: 6, 11, 16 or 24 bytes), the event (`after-get` or
/// `put-done` by `j / 4 % 2`, so both events get every shape) and the suffix (`.csv`, none or
/// `.json` by `j % 3`). Prefixes are distinct within a bucket, so no two synchronous triggers
/// overlap, as `TriggerSet::add` requires.
fn triggers(count: usize) -> impl Iterator<Item = Arc<TriggerRecord>> {
    (0..count).map(|i| {
        let (bucket, j) = (i % BUCKETS, i / BUCKETS);
        let prefix = match j % 4 {
            0 => format!("t{j:04}/"),
            1 => format!("logs/t{j:04}/"),
            2 => format!("data/2024/t{j:04}/"),
            _ => format!("archive/region-eu/t{j:04}/"),
        };
        let suffix = match j % 3 {
            0 => ".csv",
            1 => "",
            _ => ".json",
        };
        let event = if j / 4 % 2 == 0 {
            Event::AfterGet
        } else {
            Event::PutDone
        };
        Arc::new(TriggerRecord {
            backend_class: None,
            id: u64::try_from(i).expect("trigger counts fit in u64"),
            bucket: bucket_name(bucket),
            event,
            prefix,
            suffix: suffix.to_owned(),
            functions: vec!["identity".to_owned()],
            params: Default::default(),
            range: RangePolicy::Refuse,
            created: SystemTime::UNIX_EPOCH,
        })
    })
}

criterion_group!(benches, instance, trigger_match);
criterion_main!(benches);
