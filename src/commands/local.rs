//! `--emulator`: the local emulator, run inside the process for one command, its state
//! kept under the repository's git directory.

use crate::Error;
use crate::config::Settings;
use crate::gitrepo::GitRepo;
use crate::secret::ApiKey;
use promptsync_emulator::{self as emulator, EmulatorConfig, RunningEmulator};

/// Start the emulator in this process (state in `.git/promptsync/emulator.json`) and
/// point the settings at it.
pub(super) async fn start_local_emulator(
    settings: &mut Settings,
) -> Result<RunningEmulator, Error> {
    let repo = settings.repo.clone();
    let git_dir =
        tokio::task::spawn_blocking(move || GitRepo::open(&repo).map(|r| r.git_dir().to_owned()))
            .await
            .map_err(|err| Error::Internal(err.to_string()))??;
    let state_dir = git_dir.join("promptsync");
    std::fs::create_dir_all(&state_dir).map_err(|source| Error::Io {
        what: format!("cannot create {}", state_dir.display()),
        source,
    })?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|source| Error::Io {
            what: "cannot bind a local port for the emulator".into(),
            source,
        })?;
    let state_file = state_dir.join("emulator.json");
    // Changes are answered at once and saved in the background; shutdown saves the rest.
    let config = EmulatorConfig {
        state_file: Some(state_file.clone()),
        durable_writes: false,
        admin: false,
        // Another `--emulator` command in this repository holds the state a while.
        state_lock_wait: std::time::Duration::from_secs(10),
        ..EmulatorConfig::default()
    };
    let running = emulator::start(config, listener).await?;
    let base_url = running.base_url();
    tracing::info!(url = %base_url, state = %state_file.display(), "using the local emulator, not Respan");
    settings.api.base_url =
        url::Url::parse(&base_url).map_err(|err| Error::Internal(err.to_string()))?;
    settings.api.api_key = Some(ApiKey::new("promptsync-local-emulator"));
    Ok(running)
}
