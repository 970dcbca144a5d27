//! `promptsync watch`: the daemon's edge. Loads the settings, sets up JSON logs when
//! stderr is not a terminal, binds the probe port, turns SIGTERM/SIGINT into the
//! daemon's two-stage shutdown (the first lets the running pass finish within
//! `watch.shutdown_timeout`, a second one or the deadline forces), and maps how the
//! daemon ended to the exit status. `--emulator` runs a local emulator in the process.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::cli::{GlobalArgs, LogFormat, WatchArgs};
use crate::commands::ExitStatus;
use crate::config::{Overrides, Settings};
use crate::daemon::{self, Exit, LoadSettings};
use crate::desired::SourceRev;
use crate::gitrepo::GitRepo;
use crate::secret::ApiKey;

pub fn run(global: &GlobalArgs, args: WatchArgs) -> Result<ExitStatus, Error> {
    let overrides = Overrides {
        listen: args.listen,
        source_url: args.source.url.clone(),
    };
    let global = repository_as_configured(global);
    let mut settings = Settings::load(&global, &overrides)?;
    if settings.source.is_some() {
        // The daemon's poll worker and webhooks come with issue 19's second half.
        return Err(Error::NotImplemented(
            "`watch` with a remote source (source.url, --source)",
        ));
    }
    let mut log = settings.log.clone();
    if log.format_is_default && !std::io::stderr().is_terminal() {
        log.format = LogFormat::Json;
    }
    crate::logging::init(&log)?;
    crate::memory::limit_arenas();
    let runtime = super::runtime()?;
    let exit = runtime.block_on(async {
        let local = if args.remote.emulator {
            Some(super::sync::start_local_emulator(&mut settings).await?)
        } else {
            None
        };
        // Every reload keeps the emulator's address and key.
        let pinned: Option<(url::Url, ApiKey)> = local.as_ref().and_then(|_| {
            settings
                .api
                .api_key
                .clone()
                .map(|key| (settings.api.base_url.clone(), key))
        });
        let load: LoadSettings = Box::new(move || {
            let mut settings = Settings::load(&global, &overrides)?;
            if let Some((url, key)) = &pinned {
                settings.api.base_url = url.clone();
                settings.api.api_key = Some(key.clone());
            }
            Ok(settings)
        });
        let listener = if args.once {
            None
        } else {
            let addr = settings.watch.listen;
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
            Some(listener)
        };
        let shutdown = CancellationToken::new();
        let force = CancellationToken::new();
        let signals = tokio::spawn(two_stage_shutdown(
            shutdown.clone(),
            force.clone(),
            settings.watch.shutdown_timeout,
        ));
        let config = daemon::Config {
            source: if args.source.worktree {
                SourceRev::Worktree
            } else {
                SourceRev::Commit(args.source.rev.clone())
            },
            deploy: !args.remote.no_deploy,
            once: args.once,
            listener,
            load: Arc::new(load),
            settings,
        };
        let exit = daemon::run(config, shutdown, force).await;
        signals.abort();
        if let Some(local) = local {
            local.shutdown().await?;
        }
        exit
    });
    // A dropped pass may leave a blocking read behind; it is safe to abandon.
    runtime.shutdown_timeout(Duration::from_millis(200));
    Ok(match exit? {
        Exit::Stopped => {
            tracing::info!("stopped");
            ExitStatus::Success
        }
        Exit::Forced => ExitStatus::Failure,
        Exit::Once { ok: true } => ExitStatus::Success,
        Exit::Once { ok: false } => ExitStatus::Failure,
    })
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

/// SIGTERM or SIGINT cancels `shutdown`; a second one, or `deadline` after the first,
/// cancels `force`.
async fn two_stage_shutdown(
    shutdown: CancellationToken,
    force: CancellationToken,
    deadline: Duration,
) {
    let mut signals = match Signals::new() {
        Ok(signals) => signals,
        Err(err) => {
            tracing::error!(error = %err, "cannot listen for SIGTERM/SIGINT");
            return;
        }
    };
    let name = signals.next().await;
    tracing::info!(
        signal = name,
        deadline_ms = u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
        "shutting down: no new passes; a running pass may finish (a second signal exits at once)"
    );
    shutdown.cancel();
    tokio::select! {
        name = signals.next() => tracing::warn!(signal = name, "second signal: exiting now"),
        () = tokio::time::sleep(deadline) => tracing::warn!("shutdown deadline reached: exiting now"),
    }
    force.cancel();
}

/// SIGTERM and SIGINT.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    #[cfg(not(unix))]
    fn new() -> std::io::Result<Signals> {
        Ok(Signals {})
    }

    #[cfg(unix)]
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }

    #[cfg(not(unix))]
    async fn next(&mut self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "ctrl-c"
    }
}
