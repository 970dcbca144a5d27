//! `promptsync emulator`: serve the local Respan-compatible prompts API until SIGINT
//! or SIGTERM, then stop cleanly with the state flushed. Prints one line to stdout
//! once ready (`promptsync emulator listening on http://ADDR`); logs the rest.

use std::net::SocketAddr;

use serde_json::{Map, Value};
use tokio::net::TcpListener;

use crate::Error;
use crate::cli::{EmulatorArgs, GlobalArgs};
use crate::commands::ExitStatus;
use crate::logging::LogSettings;
use crate::report::Stdout;
use promptsync_emulator::{
    self as emulator, EmulatorConfig, EmulatorError, FaultRule, Knobs, Latency, RateLimit,
};

pub(super) fn run(global: &GlobalArgs, args: EmulatorArgs) -> Result<ExitStatus, Error> {
    crate::logging::init(&LogSettings::from_global(global))?;
    crate::fdlimit::raise();
    let listen = args.listen;
    let config = config_from(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(EmulatorError::Runtime)?;
    runtime.block_on(serve(config, listen))?;
    Ok(ExitStatus::Success)
}

/// Turn the flags into a configuration, refusing bad knobs and fault rules.
fn config_from(args: EmulatorArgs) -> Result<EmulatorConfig, EmulatorError> {
    let mut patch = Map::new();
    for knob in &args.knobs {
        let (name, value) = knob.split_once('=').ok_or_else(|| {
            EmulatorError::Config(format!("--knob takes NAME=VALUE, got `{knob}`"))
        })?;
        // `true`, `12` and `"x"` are JSON; a bare word is a string.
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
        patch.insert(name.trim().to_owned(), value);
    }
    let knobs = Knobs::default()
        .patched(&patch)
        .map_err(|e| EmulatorError::Config(format!("--knob: {e}")))?;
    let faults = args
        .faults
        .iter()
        .map(|text| {
            serde_json::from_str::<FaultRule>(text)
                .map_err(|e| EmulatorError::Config(format!("--fault `{text}`: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(EmulatorConfig {
        state_file: args.state,
        durable_writes: !args.deferred_writes,
        api_keys: args.api_keys,
        forbidden_keys: args.forbidden_keys,
        knobs,
        latency: Latency {
            fixed_ms: args.latency_ms,
            jitter_ms: args.jitter_ms,
        },
        rate_limit: args.rate_limit.map(|requests| RateLimit {
            requests,
            window_ms: args.rate_window_ms,
        }),
        faults,
        admin: !args.no_admin,
        ..EmulatorConfig::default()
    })
}

async fn serve(config: EmulatorConfig, listen: SocketAddr) -> Result<(), Error> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| EmulatorError::Bind {
            addr: listen,
            source,
        })?;
    let any_key = config.api_keys.is_empty();
    let state_file = config.state_file.clone();
    let running = emulator::start(config, listener).await?;
    match &state_file {
        Some(path) => tracing::info!(state = %path.display(), "emulator state persisted to a file"),
        None => tracing::info!("emulator state kept in memory only"),
    }
    if any_key {
        tracing::warn!("no --api-key given: any Bearer key is accepted");
    }
    {
        let mut out = Stdout::new();
        out.line(&format!(
            "promptsync emulator listening on {}",
            running.base_url()
        ))
        .and_then(|()| out.flush())
        .map_err(|source| Error::Io {
            what: "cannot write the emulator address to stdout".to_owned(),
            source,
        })?;
    }
    shutdown_signal().await?;
    tracing::info!("shutdown signal received; stopping the emulator");
    running.shutdown().await?;
    tracing::info!("emulator stopped");
    Ok(())
}

async fn shutdown_signal() -> Result<(), EmulatorError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).map_err(EmulatorError::Signal)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(EmulatorError::Signal)?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};
    use promptsync_emulator::{CommitMode, FaultKind};

    fn args(extra: &[&str]) -> EmulatorArgs {
        let cli = Cli::parse_from([&["promptsync", "emulator"], extra].concat());
        match cli.command {
            Some(Command::Emulator(args)) => args,
            other => panic!("not the emulator: {other:?}"),
        }
    }

    #[test]
    fn flags_become_a_config() {
        let config = config_from(args(&[
            "--knob",
            "commit_mode=bump",
            "--knob",
            "require_model=true",
            "--latency-ms",
            "5",
            "--rate-limit",
            "10",
            "--fault",
            r#"{"kind": "drop_after", "method": "POST"}"#,
            "--api-key",
            "k1",
            "--no-admin",
        ]))
        .unwrap();
        assert_eq!(config.knobs.commit_mode, CommitMode::Bump);
        assert!(config.knobs.require_model);
        assert_eq!(config.latency.fixed_ms, 5);
        assert_eq!(
            config.rate_limit.map(|r| (r.requests, r.window_ms)),
            Some((10, 1000))
        );
        assert_eq!(config.faults[0].kind, FaultKind::DropAfter);
        assert_eq!(config.api_keys, ["k1"]);
        assert!(!config.admin);
        assert!(config.state_file.is_none());
    }

    #[test]
    fn bad_flags_say_what_is_wrong() {
        for (flags, expected) in [
            (vec!["--knob", "commit_mode"], "NAME=VALUE"),
            (
                vec!["--knob", "comit_mode=bump"],
                "unknown knob `comit_mode`",
            ),
            (vec!["--knob", "commit_mode=sideways"], "sideways"),
            (vec!["--fault", "{\"kind\": \"explode\"}"], "--fault"),
        ] {
            let err = config_from(args(&flags)).unwrap_err().to_string();
            assert!(err.contains(expected), "{flags:?}: {err}");
        }
    }
}
