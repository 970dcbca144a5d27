//! The daemon's workers, started under the [`Supervisor`]: the probe server (serving
//! the socket the command bound, again at each restart), the file watcher with its
//! debouncer (the key-file and configuration watches included), and the SIGHUP
//! listener. Each makes its task anew at every start; what they share with the loop
//! (the slot, the status, the watch set) outlives them. Knows nothing of a pass.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::config::WatchSettings;

use super::metrics::Metrics;
use super::server;
use super::status::{self, Status};
use super::supervise::Supervisor;
use super::trigger::{Reason, Triggers};
use super::watcher::{self, WatchSet};

/// What the workers share with the loop.
pub(super) struct Shared {
    /// The probe server's socket, when there is one.
    pub listener: Option<TcpListener>,
    pub status: Arc<Status>,
    pub metrics: Arc<Metrics>,
    pub triggers: Triggers,
    pub stop: CancellationToken,
    pub watch: WatchSettings,
    pub watch_set: watch::Receiver<Arc<WatchSet>>,
    pub applied: Arc<watch::Sender<u64>>,
    /// The remote source, when there is one: its worker looks at the remote.
    pub remote: Option<Arc<super::source::Remote>>,
    /// The webhooks' secret files.
    pub hooks: crate::config::HookSettings,
}

/// Start every worker under `supervisor`.
pub(super) fn start(supervisor: &mut Supervisor, shared: Shared) -> Result<(), Error> {
    let Shared {
        listener,
        status,
        metrics,
        triggers,
        stop,
        watch: watch_settings,
        watch_set: watch_set_rx,
        applied: applied_tx,
        remote,
        hooks,
    } = shared;
    if let Some(listener) = listener {
        // Each start of the server serves the same bound socket.
        let socket = listener.into_std().map_err(|source| Error::Io {
            what: "cannot hand the probe port to the server".into(),
            source,
        })?;
        // One door for the daemon's life: the rate limit of forced passes holds
        // across restarts of the server.
        let shared = Arc::new(server::Shared {
            status: Arc::clone(&status),
            metrics: Arc::clone(&metrics),
            triggers: triggers.clone(),
            door: super::door::Door::new(
                watch_settings.reconcile_token_file.clone(),
                watch_settings.reconcile_min_interval,
            ),
            hooks: Arc::new(super::hooks::Hooks::new(
                remote.clone(),
                hooks,
                Arc::clone(&metrics),
            )),
        });
        let max_connections = crate::fdlimit::connection_cap(crate::fdlimit::soft_limit());
        let stop = stop.clone();
        supervisor.add(
            "probe server",
            Box::new(move || {
                let socket = socket.try_clone();
                let shared = Arc::clone(&shared);
                let stop = stop.clone();
                Box::pin(async move {
                    let listener = socket
                        .and_then(TcpListener::from_std)
                        .map_err(|err| format!("cannot use the probe port: {err}"))?;
                    server::serve(listener, shared, max_connections, stop)
                        .await
                        .map_err(|err| format!("the probe server stopped: {err}"))
                })
            }),
        );
    }
    let watcher_worker = (
        Arc::clone(&status),
        Arc::clone(&metrics),
        triggers.clone(),
        stop.clone(),
    );
    supervisor.add(
        status::WATCHER,
        Box::new(move || {
            let (status, metrics, triggers, stop) = &watcher_worker;
            let (reasons, reasons_rx) = mpsc::channel(256);
            let source = watcher::Source {
                set: watch_set_rx.clone(),
                applied: Arc::clone(&applied_tx),
                poll: watch_settings.poll,
                poll_interval: watch_settings.poll_interval,
                status: Arc::clone(status),
                metrics: Arc::clone(metrics),
            };
            let debounce = watcher::debounce(
                reasons_rx,
                triggers.clone(),
                watch_settings.debounce,
                stop.clone(),
            );
            let stop = stop.clone();
            Box::pin(async move {
                // The debouncer ends when the source does (its sender goes), or at
                // the stop: the source's result is the worker's.
                tokio::pin!(debounce);
                tokio::select! {
                    biased;
                    watched = source.run(reasons, stop) => watched,
                    () = &mut debounce => Err("the debouncer ended".to_owned()),
                }
            })
        }),
    );
    if let Some(remote) = remote {
        let (source_triggers, source_stop) = (triggers.clone(), stop.clone());
        supervisor.add(
            "source",
            Box::new(move || {
                Box::pin(super::source::run(
                    Arc::clone(&remote),
                    source_triggers.clone(),
                    source_stop.clone(),
                ))
            }),
        );
    }
    let (sighup_triggers, sighup_stop) = (triggers.clone(), stop.clone());
    supervisor.add(
        "sighup",
        Box::new(move || Box::pin(sighup(sighup_triggers.clone(), sighup_stop.clone()))),
    );
    Ok(())
}

/// SIGHUP asks for a pass now.
async fn sighup(triggers: Triggers, stop: CancellationToken) -> Result<(), String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups =
        signal(SignalKind::hangup()).map_err(|err| format!("cannot listen for SIGHUP: {err}"))?;
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            got = hangups.recv() => {
                if got.is_none() {
                    return Err("the SIGHUP stream ended".to_owned());
                }
                tracing::info!("SIGHUP: reconciling now");
                triggers.fire(Reason::Signal);
            }
        }
    }
}
