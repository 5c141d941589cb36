// SPDX-License-Identifier: Apache-2.0
//! HTTP/1.1 listeners with a bounded graceful drain.
//!
//! On shutdown a listener stops accepting, asks every connection to finish its current
//! request and close, and waits up to the grace period; connections still busy then are
//! dropped (their requests fail; nothing half-written becomes visible, see the store's
//! durability invariant).

use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Connection settings of one listener.
#[derive(Debug, Clone, Copy)]
pub struct HttpSettings {
    /// Largest request head accepted (hyper's read buffer limit).
    pub max_header_bytes: usize,
    /// How long a client may take to send a request head.
    pub header_read_timeout: Duration,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
}

/// Serves `service` on `listener` until `shutdown` is cancelled, then drains.
pub async fn serve<S, B>(
    name: &'static str,
    listener: TcpListener,
    service: S,
    settings: HttpSettings,
    shutdown: CancellationToken,
) where
    S: Service<http::Request<Incoming>, Response = http::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = http1::Builder::new();
    builder
        .max_buf_size(settings.max_header_bytes)
        .timer(TokioTimer::new())
        .header_read_timeout(Some(settings.header_read_timeout));
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        warn!(listener = name, %error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let conn = builder.serve_connection(TokioIo::new(stream), service.clone());
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(error) = conn.await {
                        debug!(listener = name, %peer, %error, "connection ended with an error");
                    }
                });
            }
            () = shutdown.cancelled() => break,
        }
    }
    drop(listener);
    let open = graceful.count();
    info!(listener = name, open_connections = open, grace = ?settings.shutdown_grace, "draining");
    tokio::select! {
        () = graceful.shutdown() => info!(listener = name, "drained"),
        () = tokio::time::sleep(settings.shutdown_grace) => {
            warn!(listener = name, "grace period over; closing the remaining connections");
        }
    }
}
