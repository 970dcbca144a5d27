//! A local, stateful emulator of the Respan prompts API (formerly Keywords AI), for
//! promptsync's tests and zero-setup trials. It follows promptsync's API contract
//! (`respan-api.md`, whose section numbers the comments cite), served with axum over
//! real HTTP: every prompts endpoint with its
//! trailing slash, status codes and JSON shapes; the lifecycle rules of section 4 with
//! the knobs of 4.13; request validation; Bearer auth; state in memory or persisted
//! atomically to a file; latency, injected failures, dropped replies and a rate limit;
//! a request log; and a test-only admin endpoint ([`admin`] documents it).
//!
//! [`start`] serves on a bound listener inside the caller's tokio runtime and prints
//! nothing; `promptsync emulator` and `sync --emulator` are built on it.
//!
//! Layout: `routes` (HTTP API, auth), `store` (state and lifecycle rules, pure),
//! `validate` (request bodies), `filters` (list filters and sorting), `paging`,
//! `model` (records and their JSON), `presets` (response-format presets), `knobs`, `faults` (latency, failures, rate limit:
//! the model), `inject` (the layer that applies them), `killable` (cut connections), `hostile` (endless pages, huge, broken, trickling bodies, redirects; `rewrite` corrupts replies), `reqlog` (request log), `persist` (state file), `statefile` (its lock and bounded read), `admin`, `reply`
//! (error bodies). Knows nothing about git, prompt files or the API client.

pub mod admin;
mod faults;
mod filters;
mod hostile;
mod inject;
mod killable;
mod knobs;
mod model;
mod paging;
mod persist;
mod presets;
mod reply;
mod reqlog;
mod rewrite;
mod routes;
mod statefile;
mod store;
mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use faults::{FaultKind, FaultRule, Latency, RateLimit};
pub use knobs::{
    CommitMode, CountMode, CreateDeploy, DEFAULT_MODEL, DeleteLive, DeployDraft, EditReadonly,
    FillDefaults, Knobs,
};
pub use reqlog::RequestRecord;

use faults::Faults;
use killable::{Connection, KillableListener};
use persist::Persister;
use reqlog::RequestLog;
use routes::Auth;
use store::Store;

/// How long a shutdown waits for requests in flight before it cuts them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How to run an emulator. The default: in memory, any Bearer key, the section-4.13
/// defaults, no faults, the admin endpoint on.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Persist state to this file (atomically) and resume from it; `None` keeps state
    /// in memory only.
    pub state_file: Option<PathBuf>,
    /// Answer a change only once it is in the state file (default). `false` answers at
    /// once and saves in the background: much faster for large states; a kill may
    /// lose the newest changes but never tears the file; shutdown saves everything.
    pub durable_writes: bool,
    /// Accepted Bearer keys; empty accepts any key.
    pub api_keys: Vec<String>,
    /// Keys answered with 403 (accepted as known, refused as not permitted).
    pub forbidden_keys: Vec<String>,
    pub knobs: Knobs,
    pub latency: Latency,
    pub rate_limit: Option<RateLimit>,
    /// Faults armed at start.
    pub faults: Vec<FaultRule>,
    /// Serve the test-only admin endpoint under `/_emulator/`.
    pub admin: bool,
    /// Request-log records kept (the oldest go first).
    pub request_log_capacity: usize,
    /// With a state file: how long to wait for another emulator that holds it (zero:
    /// fail at once, naming that emulator).
    pub state_lock_wait: Duration,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            state_file: None,
            durable_writes: true,
            api_keys: Vec::new(),
            forbidden_keys: Vec::new(),
            knobs: Knobs::default(),
            latency: Latency::default(),
            rate_limit: None,
            faults: Vec::new(),
            admin: true,
            request_log_capacity: 100_000,
            state_lock_wait: Duration::ZERO,
        }
    }
}

/// Why the emulator could not start, run or stop cleanly.
#[derive(Debug, Error)]
pub enum EmulatorError {
    #[error(
        "cannot listen on {addr}: {source}; pick another address or port (port 0 picks a free one)"
    )]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot read the listener's address: {0}")]
    LocalAddr(#[source] std::io::Error),

    #[error("cannot read the emulator state file {path}: {source}; check its permissions")]
    ReadState {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "the emulator state file {path} is not usable: {reason}; move it away to start with \
         an empty state, or restore a good copy"
    )]
    InvalidState { path: PathBuf, reason: String },

    #[error("the emulator state file {path} is {what}, not a regular file; give --state a file")]
    StateNotAFile { path: PathBuf, what: &'static str },

    #[error(
        "the emulator state file {path} is in use by another emulator ({holder}); stop it, \
         or give this one another --state file"
    )]
    StateLocked { path: PathBuf, holder: String },

    #[error(
        "cannot create the lock file {path} beside the emulator state file: {source}; check \
         that its directory exists and is writable"
    )]
    LockState {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "cannot write the emulator state file {path}: {source}; check that its directory \
         exists and is writable"
    )]
    WriteState {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid emulator setting: {0}")]
    Config(String),

    #[error("the emulator server failed: {0}")]
    Serve(#[source] std::io::Error),

    #[error("an emulator task failed: {0}")]
    Task(String),

    #[error("cannot start the emulator's async runtime: {0}")]
    Runtime(#[source] std::io::Error),

    #[error("cannot listen for shutdown signals: {0}")]
    Signal(#[source] std::io::Error),
}

/// State shared by the handlers, the layers and the admin endpoint.
#[derive(Debug)]
pub(crate) struct App {
    addr: SocketAddr,
    store: Arc<Mutex<Store>>,
    knobs: Mutex<Knobs>,
    faults: Faults,
    log: RequestLog,
    auth: Auth,
    persister: Option<Persister>,
}

impl App {
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn knobs(&self) -> Knobs {
        *self.knobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_knobs(&self, knobs: Knobs) {
        *self.knobs.lock().unwrap_or_else(PoisonError::into_inner) = knobs;
    }

    /// Wait until the store up to `generation` is on disk (at once in memory mode or
    /// with deferred writes).
    async fn persisted(&self, generation: u64) -> Result<(), String> {
        match &self.persister {
            Some(persister) => persister.after_change(generation).await,
            None => Ok(()),
        }
    }
}

/// An emulator serving in the background. Dropping it stops the server; call
/// [`RunningEmulator::shutdown`] to wait for that and for the state to be flushed.
#[derive(Debug)]
pub struct RunningEmulator {
    addr: SocketAddr,
    app: Arc<App>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl RunningEmulator {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://HOST:PORT`, the value for `RESPAN_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop accepting, let requests in flight finish (cut after a grace period), and
    /// flush the state file.
    pub async fn shutdown(mut self) -> Result<(), EmulatorError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut server) = self.server.take() {
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
                Ok(joined) => joined
                    .map_err(|e| EmulatorError::Task(e.to_string()))?
                    .map_err(EmulatorError::Serve)?,
                Err(_) => {
                    tracing::warn!(grace = ?SHUTDOWN_GRACE, "requests still running at shutdown; cutting them");
                    server.abort();
                }
            }
        }
        if let Some(persister) = &self.app.persister {
            persister.finish().await?;
        }
        tracing::debug!(addr = %self.addr, "emulator stopped");
        Ok(())
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Lock the state file, load it (or create it empty) and start its writer.
async fn open_state(
    path: PathBuf,
    config: &EmulatorConfig,
    addr: SocketAddr,
    store: &Arc<Mutex<Store>>,
) -> Result<Persister, EmulatorError> {
    let wait = config.state_lock_wait;
    let (lock, loaded) = tokio::task::spawn_blocking({
        let path = path.clone();
        move || {
            // A device or a FIFO is refused before a lock file appears beside it.
            statefile::check_kind(&path)?;
            let holder = format!(
                "pid {} serving http://{addr}, since {}",
                std::process::id(),
                time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            );
            let lock = statefile::lock(&path, wait, &holder)?;
            // Only the holder of the lock may clean up after a killed writer.
            persist::remove_stale_temps(&path);
            let loaded = persist::load(&path)?;
            if loaded.is_none() {
                // Create it now, so that a bad directory fails at start, not at the
                // first change.
                let bytes = persist::encode(&Store::default())
                    .map_err(|e| EmulatorError::Task(e.to_string()))?;
                persist::write_atomic(&path, &bytes).map_err(|source| {
                    EmulatorError::WriteState {
                        path: path.clone(),
                        source,
                    }
                })?;
            }
            Ok::<_, EmulatorError>((lock, loaded))
        }
    })
    .await
    .map_err(|e| EmulatorError::Task(e.to_string()))??;
    if let Some(loaded) = loaded {
        *store.lock().unwrap_or_else(PoisonError::into_inner) = loaded;
    }
    let snapshot_of = Arc::clone(store);
    let snapshot: persist::Snapshot = Box::new(move || {
        let store = snapshot_of.lock().unwrap_or_else(PoisonError::into_inner);
        persist::encode(&store)
            .map(|bytes| (store.generation(), bytes))
            .map_err(|e| e.to_string())
    });
    let generation = store
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .generation();
    Ok(Persister::start(
        path,
        generation,
        snapshot,
        config.durable_writes,
        lock,
    ))
}

/// Serve on an already-bound listener; returns once the server accepts connections.
/// Prints nothing; logs with tracing.
pub async fn start(
    config: EmulatorConfig,
    listener: TcpListener,
) -> Result<RunningEmulator, EmulatorError> {
    let addr = listener.local_addr().map_err(EmulatorError::LocalAddr)?;
    let faults = Faults::default();
    faults.set_latency(config.latency);
    faults
        .set_rate_limit(config.rate_limit)
        .map_err(EmulatorError::Config)?;
    faults
        .add_all(config.faults.clone())
        .map_err(EmulatorError::Config)?;
    let store = Arc::new(Mutex::new(Store::default()));
    let persister = match config.state_file.clone() {
        Some(path) => Some(open_state(path, &config, addr, &store).await?),
        None => None,
    };
    let app = Arc::new(App {
        addr,
        store,
        knobs: Mutex::new(config.knobs),
        faults,
        log: RequestLog::new(config.request_log_capacity),
        auth: Auth {
            keys: config.api_keys.iter().cloned().collect(),
            forbidden: config.forbidden_keys.iter().cloned().collect(),
        },
        persister,
    });
    let mut router = routes::router(&app);
    if config.admin {
        router = router.merge(admin::router());
    }
    let service = router
        .with_state(Arc::clone(&app))
        .into_make_service_with_connect_info::<Connection>();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(KillableListener(listener), service)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .into_future(),
    );
    tracing::debug!(
        %addr,
        state_file = ?config.state_file,
        any_key = config.api_keys.is_empty(),
        admin = config.admin,
        "emulator serving"
    );
    Ok(RunningEmulator {
        addr,
        app,
        stop: Some(stop),
        server: Some(server),
    })
}
