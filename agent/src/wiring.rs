// SPDX-License-Identifier: Apache-2.0
//! The composition root: from a validated config to running listeners, in one linear
//! sequence (open the store, open the catalog of functions, triggers and events, start the
//! WebAssembly pool and the event worker, build the S3 and admin services, bind, serve, report
//! ready).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use prometheus::Registry;
use quarry_interceptor::events::{EventError, EventQueue, spawn_worker};
use quarry_interceptor::functions::catalog::{Catalog, CatalogError};
use quarry_interceptor::functions::{
    FunctionError, FunctionRegistry, KernelCompiler, KernelLookup, NodeKernels, UserKernelError,
};
use quarry_interceptor::hooks::Hooks;
use quarry_interceptor::metrics::{FunctionMetrics, S3Metrics};
use quarry_interceptor::s3::{S3Frontend, S3ServiceConfig, build_service};
use quarry_interceptor::triggers::{TriggerError, TriggerSet};
use quarry_interceptor::{LocalStore, ObjectStore, StoreError};
use quarry_offload::{
    Backend, BackendError, NativeBackend, Scheduler, SchedulerMetrics, WasmBackend,
};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::admin::{AdminService, NodeInfo};
use crate::config::{ConfigError, EnvSource, QuarryConfig, placement_map, validate};
use crate::credentials::{self, CredentialsError, RootCredentials};
use crate::devices;
use crate::server::{self, HttpSettings};
use crate::simulated;
use crate::systemd;

/// How long a client may take to send a request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Credentials could not be read or stored.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The data directory could not be created.
    #[error("failed to create the data directory {path}; create it or pass --data-dir")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error("failed to open the store in {path}")]
    Store {
        /// The data directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: StoreError,
    },
    /// The catalog of functions, triggers and events could not be opened.
    #[error("failed to open the function catalog {path}")]
    Catalog {
        /// The catalog file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: CatalogError,
    },
    /// The WebAssembly worker pool could not be set up.
    #[error(
        "failed to start the WebAssembly worker pool; lower functions.wasm.max_instances or functions.wasm.max_memory if memory cannot be reserved"
    )]
    Wasm(#[source] BackendError),
    /// The native-kernel worker pool could not be started.
    #[error("failed to start the native kernel worker pool (functions.native)")]
    Native(#[source] BackendError),
    /// A `[[devices]]` entry could not be built.
    #[error(transparent)]
    SimulatedDevice(#[from] simulated::SimulatedDeviceError),
    /// A deployed function could not be loaded.
    #[error("failed to load the deployed functions from {path}")]
    Functions {
        /// The functions directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: FunctionError,
    },
    /// The registered kernels could not be loaded.
    #[error("failed to load the registered kernels from {path}")]
    Kernels {
        /// The kernels directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: UserKernelError,
    },
    /// The registered eBPF programs could not be loaded.
    #[error("failed to load the registered eBPF programs from {path}")]
    Ebpf {
        /// The programs directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: quarry_interceptor::functions::UserEbpfError,
    },
    /// The triggers could not be loaded.
    #[error("failed to load the triggers from the catalog")]
    Triggers(#[source] TriggerError),
    /// Event intents left by a crash could not be recovered.
    #[error("failed to recover the event queue")]
    Events(#[source] EventError),
    /// A listener could not be bound.
    #[error(
        "failed to listen on {addr} for the {what}; free the port or choose another with {flag}"
    )]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The flag that changes it.
        flag: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Metrics could not be registered (a programming error).
    #[error("failed to register metrics")]
    Metrics(#[source] prometheus::Error),
    /// A start-up task panicked.
    #[error("a start-up task failed")]
    Join(#[source] tokio::task::JoinError),
}

/// A started node: its bound addresses and the handle to stop it.
#[derive(Debug)]
pub struct RunningNode {
    /// Bound S3 address (useful with port 0).
    pub s3_addr: SocketAddr,
    /// Bound admin address.
    pub admin_addr: SocketAddr,
    /// The root credentials in effect.
    pub credentials: RootCredentials,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    event_worker: JoinHandle<()>,
    grace: Duration,
}

impl RunningNode {
    /// Stops accepting, drains in-flight requests (bounded by `server.shutdown_grace`), stops
    /// the event worker, and returns when both listeners are closed and the deliveries in
    /// progress have finished (or the grace period is over).
    pub async fn shutdown(self) {
        let deadline = tokio::time::Instant::now() + self.grace;
        // One token stops the listeners and the event worker: no new deliveries start, and the
        // ones in progress finish alongside the requests in flight.
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        if tokio::time::timeout_at(deadline, self.event_worker)
            .await
            .is_err()
        {
            // Their records stay in the queue and are delivered again after the restart.
            warn!("grace period over; abandoning the event deliveries in progress");
        }
    }
}

/// Starts a node from `cfg`, with environment overrides from `env`.
pub async fn start(cfg: QuarryConfig, env: &dyn EnvSource) -> Result<RunningNode, StartError> {
    validate(&cfg, env)?;
    let dir_err = |source| StartError::DataDir {
        path: cfg.server.data_dir.clone(),
        source,
    };
    std::fs::create_dir_all(&cfg.server.data_dir).map_err(dir_err)?;
    // Absolute from here on, so logs and `quarry status` name the directory unambiguously.
    let data_dir = std::fs::canonicalize(&cfg.server.data_dir).map_err(dir_err)?;
    let credentials = credentials::resolve_root(&cfg, env)?;
    let admin_token = credentials::resolve_admin_token(&cfg, env)?;

    let store = LocalStore::open(&data_dir, cfg.store.clone())
        .await
        .map_err(|source| StartError::Store {
            path: data_dir.clone(),
            source,
        })?;
    let read_engine = store.read_engine().clone();
    let io_metrics = store.io_metrics().map_err(StartError::Metrics)?;
    let store: Arc<dyn ObjectStore> = Arc::new(store);

    info!("Initializing functions, triggers and the event queue");
    let opencl = {
        let config = cfg.functions.opencl.clone();
        let data_dir = data_dir.clone();
        tokio::task::spawn_blocking(move || devices::discover(&config, &data_dir))
            .await
            .map_err(StartError::Join)?
    };
    let compiler = Arc::clone(&opencl.compiler);
    let parts = {
        let data_dir = data_dir.clone();
        let wasm = cfg.functions.wasm.clone();
        tokio::task::spawn_blocking(move || open_catalog(&data_dir, &wasm, compiler))
            .await
            .map_err(StartError::Join)??
    };
    let registry = Registry::new();
    let native = Arc::new(NativeBackend::new(&cfg.functions.native).map_err(StartError::Native)?);
    let simulated = simulated::build(&cfg.devices, &native)?;
    let mut backends: Vec<Arc<dyn Backend>> = vec![native, parts.wasm];
    backends.extend(
        opencl
            .backends
            .into_iter()
            .map(|b| Arc::new(b) as Arc<dyn Backend>),
    );
    backends.extend(simulated);
    let scheduler_metrics = SchedulerMetrics::register(&registry).map_err(StartError::Metrics)?;
    let scheduler = Arc::new(
        Scheduler::new(backends, cfg.functions.scheduler.clone()).with_metrics(scheduler_metrics),
    );
    if cfg.functions.scheduler.calibrate {
        // In the background: jobs are placed on default rates until it is done, and on
        // measured ones from then on.
        let scheduler = Arc::clone(&scheduler);
        tokio::spawn(async move {
            scheduler.calibrate_builtin().await;
        });
    }
    let backend: Arc<dyn Backend> = Arc::clone(&scheduler) as Arc<dyn Backend>;
    registry
        .register(Box::new(io_metrics))
        .map_err(StartError::Metrics)?;
    let events = Arc::new(EventQueue::new(parts.catalog, cfg.events.clone()));
    let function_metrics = FunctionMetrics::register(&registry).map_err(StartError::Metrics)?;
    let hooks = Hooks::new(
        parts.functions,
        parts.triggers,
        Arc::clone(&events),
        backend,
        Arc::clone(&store),
    )
    .with_metrics(function_metrics)
    .with_placement(placement_map(&cfg.placement));
    let hooks = Arc::new(hooks);
    let (ready, dropped) = events
        .recover(|record| {
            let hooks = Arc::clone(&hooks);
            async move { hooks.may_have_happened(&record).await }
        })
        .await
        .map_err(StartError::Events)?;
    info!(
        ready,
        dropped, "recovered the event intents left by the last run"
    );
    let deliver = hooks.deliver();

    let metrics = S3Metrics::register(&registry).map_err(StartError::Metrics)?;
    let frontend = S3Frontend::new(Arc::clone(&store), cfg.s3.limits.clone(), metrics.clone())
        .with_hooks(Arc::clone(&hooks));
    let service_config = S3ServiceConfig {
        access_key: credentials.access_key.clone(),
        secret_key: credentials.secret_key.expose().to_owned(),
        anonymous_read_buckets: cfg.s3.anonymous_read_buckets.clone(),
        max_xml_body_bytes: usize::try_from(cfg.s3.limits.max_xml_body.as_u64())
            .unwrap_or(usize::MAX),
    };
    let s3_service = build_service(frontend, &service_config, metrics);

    let s3_listener = bind("S3 endpoint", cfg.server.listen, "--listen").await?;
    let admin_listener = bind("admin API", cfg.server.admin_listen, "--admin-listen").await?;
    let s3_addr = local_addr(&s3_listener, "S3 endpoint", cfg.server.listen, "--listen")?;
    let admin_addr = local_addr(
        &admin_listener,
        "admin API",
        cfg.server.admin_listen,
        "--admin-listen",
    )?;
    let info = NodeInfo {
        s3_endpoint: format!("http://{s3_addr}"),
        admin_endpoint: format!("http://{admin_addr}"),
        data_dir: data_dir.clone(),
        read_engine: Some(read_engine),
    };
    let admin_service = AdminService::new(
        registry,
        Arc::clone(&store),
        admin_token.token.clone(),
        info,
        hooks,
        parts.kernels,
        scheduler,
    );

    let settings = HttpSettings {
        max_header_bytes: usize::try_from(cfg.server.max_header_bytes.as_u64())
            .unwrap_or(usize::MAX),
        header_read_timeout: HEADER_READ_TIMEOUT,
        shutdown_grace: cfg.server.shutdown_grace,
    };
    let shutdown = CancellationToken::new();
    let event_worker = spawn_worker(events, deliver, shutdown.clone());
    let mut tasks = vec![
        tokio::spawn(server::serve(
            "s3",
            s3_listener,
            s3_service,
            settings,
            shutdown.clone(),
        )),
        tokio::spawn(server::serve(
            "admin",
            admin_listener,
            admin_service,
            settings,
            shutdown.clone(),
        )),
    ];
    if let Some(interval) = systemd::watchdog_interval() {
        tasks.push(tokio::spawn(systemd::run_watchdog(
            interval,
            shutdown.clone(),
        )));
    }

    info!(
        s3 = %format!("http://{s3_addr}"),
        admin = %format!("http://{admin_addr}"),
        data_dir = %data_dir.display(),
        access_key = %credentials.access_key,
        credentials_from = %credentials.origin,
        admin_token_from = %admin_token.origin,
        "quarryd ready"
    );
    systemd::notify_ready(&format!("serving S3 on {s3_addr}"));
    Ok(RunningNode {
        s3_addr,
        admin_addr,
        credentials,
        shutdown,
        tasks,
        event_worker,
        grace: cfg.server.shutdown_grace,
    })
}

/// What [`open_catalog`] opens.
struct CatalogParts {
    catalog: Arc<Catalog>,
    wasm: Arc<WasmBackend>,
    kernels: Arc<NodeKernels>,
    functions: Arc<FunctionRegistry>,
    triggers: Arc<TriggerSet>,
}

/// Opens the catalog in `data_dir`, starts the WebAssembly pool and loads the deployed
/// functions (compiled artifacts, or compiling again) and the triggers. Blocking.
fn open_catalog(
    data_dir: &std::path::Path,
    wasm: &quarry_offload::WasmConfig,
    compiler: Arc<dyn KernelCompiler>,
) -> Result<CatalogParts, StartError> {
    let catalog = Catalog::open(data_dir).map_err(|source| StartError::Catalog {
        path: data_dir.join("catalog.redb"),
        source,
    })?;
    let catalog = Arc::new(catalog);
    let backend = Arc::new(WasmBackend::new(wasm).map_err(StartError::Wasm)?);
    let kernels_dir = data_dir.join("kernels");
    let kernels = NodeKernels::open(Arc::clone(&catalog), kernels_dir.clone(), compiler).map_err(
        |source| StartError::Kernels {
            path: kernels_dir,
            source,
        },
    )?;
    let kernels = Arc::new(kernels);
    let ebpf_dir = data_dir.join("ebpf");
    let ebpf = quarry_interceptor::functions::NodeEbpf::open(
        Arc::clone(&catalog),
        ebpf_dir.clone(),
        quarry_ebpf::Limits::default(),
    )
    .map_err(|source| StartError::Ebpf {
        path: ebpf_dir,
        source,
    })?;
    let functions_dir = data_dir.join("functions");
    let functions = FunctionRegistry::open(
        Arc::clone(&catalog),
        functions_dir.clone(),
        Arc::clone(&backend),
        Arc::clone(&kernels) as Arc<dyn KernelLookup>,
        Arc::new(ebpf),
    )
    .map_err(|source| StartError::Functions {
        path: functions_dir,
        source,
    })?;
    let triggers = TriggerSet::open(Arc::clone(&catalog)).map_err(StartError::Triggers)?;
    Ok(CatalogParts {
        catalog,
        wasm: backend,
        kernels,
        functions: Arc::new(functions),
        triggers: Arc::new(triggers),
    })
}

async fn bind(
    what: &'static str,
    addr: SocketAddr,
    flag: &'static str,
) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind {
            what,
            addr,
            flag,
            source,
        })
}

fn local_addr(
    listener: &TcpListener,
    what: &'static str,
    addr: SocketAddr,
    flag: &'static str,
) -> Result<SocketAddr, StartError> {
    listener.local_addr().map_err(|source| StartError::Bind {
        what,
        addr,
        flag,
        source,
    })
}
