//! `promptsync watch`: the daemon's edge. Installs the SIGTERM/SIGINT handlers before
//! anything that can block (from then on a signal is ours to act on, so every wait
//! gives way to it), loads the settings, sets up JSON logs when stderr is not a
//! terminal, binds the probe port, turns the signals into the daemon's two-stage
//! shutdown (the first lets the running pass finish within `watch.shutdown_timeout`, a
//! second one or the deadline forces), and maps how the daemon ended to the exit
//! status: 0 after a clean stop, 1 when a running pass was dropped (the deadline or a
//! second signal). `--emulator` runs a local emulator in the process.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::cli::{GlobalArgs, WatchArgs};
use crate::commands::ExitStatus;
use crate::config::{Overrides, Settings};
use crate::daemon::{self, Exit, LoadSettings};
use crate::desired::SourceRev;
use crate::gitrepo::GitRepo;
use crate::logging::LogFormat;
use crate::secret::ApiKey;

pub(super) fn run(global: &GlobalArgs, args: WatchArgs) -> Result<ExitStatus, Error> {
    let runtime = super::runtime()?;
    let exit = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let force = CancellationToken::new();
        // The deadline is known once the settings are: a signal before then starts
        // the shutdown all the same, and the deadline counts from it.
        let (deadline_tx, deadline) = watch::channel(None);
        let signals = Signals::new().map_err(|source| Error::Io {
            what: "cannot listen for SIGTERM/SIGINT".into(),
            source,
        })?;
        let signals = tokio::spawn(two_stage_shutdown(
            signals,
            shutdown.clone(),
            force.clone(),
            deadline,
        ));
        let exit = start_and_run(global, args, &shutdown, &force, deadline_tx).await;
        signals.abort();
        exit
    });
    // A dropped pass may leave a blocking read behind; it is safe to abandon.
    runtime.shutdown_timeout(Duration::from_millis(200));
    Ok(match exit? {
        Exit::Stopped => {
            tracing::info!(exit_code = 0, "stopped");
            ExitStatus::Success
        }
        Exit::Forced => {
            tracing::warn!(
                exit_code = 1,
                "stopped before the running work was done (it is safe to kill: the next start converges)"
            );
            ExitStatus::Failure
        }
        Exit::Once { ok: true } => ExitStatus::Success,
        Exit::Once { ok: false } => ExitStatus::Failure,
    })
}

/// Load the settings, set up logs, bind the probe port and run the daemon; every
/// step that may block gives way to `shutdown` and `force`.
async fn start_and_run(
    global: &GlobalArgs,
    args: WatchArgs,
    shutdown: &CancellationToken,
    force: &CancellationToken,
    deadline: watch::Sender<Option<Duration>>,
) -> Result<Exit, Error> {
    let overrides = Overrides {
        listen: args.listen,
        source_url: args.source.url.clone(),
    };
    let global = global.clone();
    let first = overrides.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        if Settings::wants_remote_source(&global, &first) {
            // The operator's layers alone until the first look brings the
            // repository's own configuration.
            return Settings::load_remote(&global, &first, None).map(|settings| (global, settings));
        }
        let global = repository_as_configured(&global);
        Settings::load(&global, &first).map(|settings| (global, settings))
    });
    let (global, settings) = tokio::select! {
        loaded = loaded => loaded.map_err(|err| Error::Internal(format!("loading the settings: {err}")))??,
        () = shutdown.cancelled() => return Ok(Exit::Stopped),
    };
    let names = args.remote.targets.clone();
    let mut targets = selected(&settings, &names)?;
    if args.remote.emulator && targets.len() > 1 {
        return Err(Error::Usage(
            "--emulator is one local account: pick one target with --target NAME".to_owned(),
        ));
    }
    let settings = &targets[0];
    let remote = settings.source.clone().map(|source| {
        Arc::new(daemon::source::Remote::new(
            crate::config::Invocation::from(&global),
            overrides.clone(),
            source,
        ))
    });
    deadline.send_replace(Some(settings.watch.shutdown_timeout));
    let mut log = settings.log.clone();
    if log.format_is_default && !std::io::stderr().is_terminal() {
        log.format = LogFormat::Json;
    }
    crate::logging::init(&log)?;
    crate::memory::limit_arenas();
    // The soft limit of 1024 open files many systems start with is far below what the
    // hard limit allows; the probe server's connection cap is derived from it.
    let raised = crate::fdlimit::raise();
    tracing::debug!(
        before = raised.before,
        after = raised.after,
        "open-file limit"
    );
    if let Some(file) = &settings.watch.reconcile_token_file {
        // A token file that cannot be read is a mistake to hear about now, not at the
        // first request from another host.
        crate::daemon::door::read_token(file)
            .map_err(|message| Error::Usage(format!("watch.reconcile_token_file: {message}")))?;
    }
    let listen = settings.watch.listen;
    let local = if args.remote.emulator {
        tokio::select! {
            started = super::local::start_local_emulator(&mut targets[0]) => Some(started?),
            () = shutdown.cancelled() => return Ok(Exit::Stopped),
        }
    } else {
        None
    };
    // Every reload keeps the emulator's address and key.
    let settings = &targets[0];
    let pinned: Option<(url::Url, ApiKey)> = local.as_ref().and_then(|_| {
        settings
            .api
            .api_key
            .clone()
            .map(|key| (settings.api.base_url.clone(), key))
    });
    let from = remote.clone();
    let load: LoadSettings = Box::new(move || {
        let mut targets = selected(
            &match &from {
                Some(remote) => remote.settings()?,
                None => Settings::load(&global, &overrides)?,
            },
            &names,
        )?;
        if let Some((url, key)) = &pinned {
            for settings in &mut targets {
                settings.api.base_url = url.clone();
                settings.api.api_key = Some(key.clone());
            }
        }
        Ok(targets)
    });
    let listener = if args.once {
        None
    } else {
        let addr = listen;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Io {
                what: format!(
                    "cannot listen on {addr} for the probe server (watch.listen, --listen)"
                ),
                source,
            })?;
        let bound = listener
            .local_addr()
            .map_or_else(|_| addr.to_string(), |a| a.to_string());
        tracing::info!(addr = %bound, "probe server listening");
        if !addr.ip().is_loopback() && targets[0].watch.reconcile_token_file.is_none() {
            tracing::info!(
                "POST /reconcile is answered for loopback peers only; set \
                 watch.reconcile_token_file to let other hosts force a pass with a token"
            );
        }
        Some(listener)
    };
    let config = daemon::Config {
        source: if args.source.worktree && remote.is_none() {
            SourceRev::Worktree
        } else {
            SourceRev::Commit(args.source.rev.clone())
        },
        deploy: !args.remote.no_deploy,
        once: args.once,
        listener,
        remote,
        load: Arc::new(load),
        targets,
    };
    let exit = daemon::run(config, shutdown.clone(), force.clone()).await;
    if let Some(local) = local {
        local.shutdown().await?;
    }
    exit
}

/// The targets the daemon syncs: those named with `--target`, or every one (`default`
/// alone without `[targets]`). One daemon runs them all: one read of the repository
/// per revision, a plan and apply per target.
fn selected(settings: &Settings, names: &[String]) -> Result<Vec<Settings>, Error> {
    let selected = settings.select(names)?;
    if selected.is_empty() {
        return Err(Error::Usage("watch: no target to sync".to_owned()));
    }
    Ok(selected)
}

/// The repository path as given when it is a symbolic link (a kubernetes git-sync
/// `--link`): the daemon must go through the link at every pass. Otherwise, as for
/// every command, the work tree root found from it.
fn repository_as_configured(global: &GlobalArgs) -> GlobalArgs {
    let given = global.repo.clone().unwrap_or_else(|| PathBuf::from("."));
    let mut global = global.clone();
    let is_link = std::fs::symlink_metadata(&given).is_ok_and(|m| m.file_type().is_symlink());
    if !is_link && let Ok(repo) = GitRepo::open(&given) {
        global.repo = Some(repo.root().to_owned());
    }
    global
}

/// SIGTERM or SIGINT cancels `shutdown`; a second one, or the deadline (once known,
/// counted from the first signal), cancels `force`.
async fn two_stage_shutdown(
    mut signals: Signals,
    shutdown: CancellationToken,
    force: CancellationToken,
    mut deadline: watch::Receiver<Option<Duration>>,
) {
    let name = signals.next().await;
    let first = tokio::time::Instant::now();
    let known = *deadline.borrow_and_update();
    tracing::info!(
        signal = name,
        deadline_ms = known.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        "shutting down: no new passes; a running pass may finish within watch.shutdown_timeout (a second signal drops it and exits at once, with code 1)"
    );
    shutdown.cancel();
    let expiry = async {
        let known = deadline
            .wait_for(Option::is_some)
            .await
            .map(|known| (*known).unwrap_or_default());
        let deadline = match known {
            Ok(deadline) => deadline,
            Err(_) => std::future::pending().await,
        };
        tokio::time::sleep_until(first + deadline).await;
        deadline
    };
    tokio::select! {
        name = signals.next() => tracing::warn!(
            signal = name,
            exit_code = 1,
            "second signal: the running pass, if any, is dropped and promptsync exits now with code 1 (a pass is safe to kill: the next start converges)"
        ),
        deadline = expiry => tracing::warn!(
            deadline_ms = u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
            exit_code = 1,
            "watch.shutdown_timeout passed with the pass still running: it is dropped and promptsync exits now with code 1 (the next start converges)"
        ),
    }
    force.cancel();
}

/// SIGTERM and SIGINT.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}
