// SPDX-License-Identifier: Apache-2.0
//! The `loopback` target: the ceiling of the HTTP path itself.
//!
//! An HTTP/1.1 server on its own runtime and threads (as a separate daemon would have) that
//! answers the same presigned requests the S3 targets get, without checking them: a GET
//! returns the shared payload of the size named in the key straight from memory, a PUT reads
//! the body and drops it. No disk, no copy on the server side, no S3 logic. What quarryd
//! reaches against this is the share of the achievable loopback throughput it gets; what this
//! reaches against plain file reads bounds every HTTP server's ratio on the same machine.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{Context as _, Result};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Empty, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::options::parse_size;

type Body = BoxBody<Bytes, hyper::Error>;

/// A running loopback server; stops when dropped.
#[derive(Debug)]
pub struct LoopbackServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl LoopbackServer {
    /// Starts the server on `127.0.0.1` with `threads` worker threads, serving `payloads`
    /// (size, bytes) by size.
    pub fn start(payloads: &[(u64, Bytes)], threads: usize) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("loopback-server")
            .enable_all()
            .build()
            .context("failed to build the loopback server runtime")?;
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")
            .context("failed to bind the loopback server")?;
        std_listener
            .set_nonblocking(true)
            .context("failed to make the listener non-blocking")?;
        let addr = std_listener
            .local_addr()
            .context("failed to read the loopback address")?;
        let payloads: Arc<[(u64, Bytes)]> = payloads.into();
        let (shutdown, stop) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("loopback-accept".to_owned())
            .spawn(move || runtime.block_on(serve(std_listener, payloads, stop)))
            .context("failed to start the loopback server thread")?;
        Ok(Self {
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The endpoint's base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            // The server may have stopped already; then there is nobody to tell.
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            // A panicked server thread has nothing left to clean up.
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    payloads: Arc<[(u64, Bytes)]>,
    mut stop: oneshot::Receiver<()>,
) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let stream = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        // The client sets TCP_NODELAY; a server that does not would measure Nagle instead.
        let _ = stream.set_nodelay(true);
        let payloads = Arc::clone(&payloads);
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(request, Arc::clone(&payloads)));
            // A connection the client drops mid-request ends here; the cell reports it.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    request: Request<Incoming>,
    payloads: Arc<[(u64, Bytes)]>,
) -> Result<Response<Body>, Infallible> {
    let status_only = |status: StatusCode| {
        let mut response = Response::new(Empty::new().map_err(|never| match never {}).boxed());
        *response.status_mut() = status;
        Ok(response)
    };
    match *request.method() {
        Method::GET => match payload_for(request.uri().path(), &payloads) {
            Some(bytes) => Ok(Response::new(
                Full::new(bytes).map_err(|never| match never {}).boxed(),
            )),
            None => status_only(StatusCode::NOT_FOUND),
        },
        Method::PUT => match request.into_body().collect().await {
            Ok(_) => status_only(StatusCode::OK),
            Err(_) => status_only(StatusCode::BAD_REQUEST),
        },
        Method::DELETE => status_only(StatusCode::NO_CONTENT),
        _ => status_only(StatusCode::OK),
    }
}

/// The payload for a key `/<bucket>/<size label>-<slot>`.
fn payload_for(path: &str, payloads: &[(u64, Bytes)]) -> Option<Bytes> {
    let key = path.rsplit('/').next()?;
    let size = parse_size(key.rsplit_once('-')?.0).ok()?;
    payloads
        .iter()
        .find(|(s, _)| *s == size)
        .map(|(_, bytes)| bytes.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_their_payload_size() {
        let payloads = [
            (4096, Bytes::from_static(b"small")),
            (1 << 20, Bytes::from_static(b"large")),
        ];
        assert_eq!(
            payload_for("/quarry-bench/4KiB-3", &payloads),
            Some(Bytes::from_static(b"small"))
        );
        assert_eq!(
            payload_for("/quarry-bench/1MiB-0", &payloads),
            Some(Bytes::from_static(b"large"))
        );
        assert_eq!(payload_for("/quarry-bench/64MiB-0", &payloads), None);
        assert_eq!(payload_for("/quarry-bench", &payloads), None);
    }

    #[tokio::test]
    async fn server_answers_the_s3_client() {
        use crate::scenario::s3::{S3Endpoint, S3Target};
        use clap::Parser as _;
        let payload = Bytes::from(vec![1u8; 4096]);
        let server = LoopbackServer::start(&[(4096, payload.clone())], 1).unwrap();
        let endpoint = S3Endpoint {
            url: server.url().parse().unwrap(),
            region: "us-east-1".to_owned(),
            access_key: "a".to_owned(),
            secret_key: "b".to_owned(),
        };
        let crate::scenario::Cli::S3(options) =
            crate::scenario::Cli::parse_from(["scenario", "s3"])
        else {
            panic!("s3 parses as s3");
        };
        let client = S3Target::new(&endpoint, "quarry-bench", &options).unwrap();
        client.create_bucket().await.unwrap();
        client.warm_up(2).await.unwrap();
        assert_eq!(client.put("4KiB-0", payload).await.unwrap(), 4096);
        assert_eq!(client.get("4KiB-0", 4096).await.unwrap(), 4096);
        assert!(client.get("4KiB-0", 10).await.is_err());
        client.delete("4KiB-0").await.unwrap();
    }
}
