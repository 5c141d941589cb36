// SPDX-License-Identifier: Apache-2.0
//! The wasmtime engine with its instance pool, and the thread that advances its epoch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::config::WasmConfig;

/// An engine whose instances come from a pool of `max_instances` pre-reserved slots, each with
/// room for `max_memory` of linear memory, interrupted at every epoch tick.
pub(super) fn engine(config: &WasmConfig) -> wasmtime::Result<Engine> {
    let slots = config.max_instances;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_core_instances(slots)
        .total_memories(slots)
        .total_tables(slots)
        .total_stacks(slots)
        .total_component_instances(0)
        .max_memory_size(usize::try_from(config.max_memory.as_u64()).unwrap_or(usize::MAX));
    let mut cfg = Config::new();
    cfg.epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&cfg)
}

/// Increments the engine's epoch every tick until dropped.
pub(super) struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub(super) fn start(engine: Engine, tick: Duration) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("wasm-epoch".to_owned())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    #[allow(
                        clippy::disallowed_methods,
                        reason = "a dedicated thread, not a runtime worker"
                    )]
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
