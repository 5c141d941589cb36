// SPDX-License-Identifier: Apache-2.0
//! The delivery loop: takes due events from the queue and delivers up to `concurrency` at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{EventQueue, EventRecord};

/// Delivers one event: `Ok` when done, `Err` with the reason to record otherwise.
pub type Deliver = Arc<
    dyn Fn(EventRecord) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync,
>;

/// The longest the loop sleeps without looking at the queue.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// Runs the delivery loop until `stop` is cancelled; deliveries in progress then finish.
pub fn spawn_worker(
    queue: Arc<EventQueue>,
    deliver: Deliver,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let concurrency = queue.config().concurrency.max(1);
        let mut running: JoinSet<()> = JoinSet::new();
        let mut in_flight: std::collections::HashSet<u64> = std::collections::HashSet::new();
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
        loop {
            while let Ok(id) = done_rx.try_recv() {
                in_flight.remove(&id);
            }
            while running.try_join_next().is_some() {}
            let free = concurrency.saturating_sub(in_flight.len());
            let mut next_wait = IDLE_POLL;
            if free > 0 {
                match queue.due(free + in_flight.len()) {
                    Ok((due, next)) => {
                        if let Some(next) = next {
                            next_wait = next_wait.min(next);
                        }
                        let fresh: Vec<EventRecord> = due
                            .into_iter()
                            .filter(|e| !in_flight.contains(&e.id))
                            .take(free)
                            .collect();
                        for event in fresh {
                            in_flight.insert(event.id);
                            let queue = Arc::clone(&queue);
                            let deliver = Arc::clone(&deliver);
                            let done = done_tx.clone();
                            running.spawn(async move {
                                let id = event.id;
                                let outcome = deliver(event).await;
                                let result = match outcome {
                                    Ok(()) => queue.delivered(id).map(|_| ()),
                                    Err(reason) => {
                                        tracing::info!(
                                            event = id,
                                            "event delivery failed: {reason}"
                                        );
                                        queue.failed(id, &reason).map(|_| ())
                                    }
                                };
                                if let Err(e) = result {
                                    tracing::error!(
                                        event = id,
                                        "cannot record the event's outcome: {e}"
                                    );
                                }
                                let _ = done.send(id);
                            });
                        }
                    }
                    Err(e) => tracing::error!("cannot read the event queue: {e}"),
                }
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = queue.wait(next_wait) => {}
                Some(id) = done_rx.recv() => { in_flight.remove(&id); }
            }
        }
        while running.join_next().await.is_some() {}
    })
}
