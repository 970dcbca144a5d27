//! A remote source as a pass uses it: a look at the remote (fetching what changed),
//! then the settings its branch tip holds (the repository's own `promptsync.toml`
//! read from the mirror, over the operator's layers), and the release tags those
//! settings name held in the mirror too. Blocking. Above both the settings and the
//! source (it joins them), below the commands and the daemon that use it.

use std::path::PathBuf;

use crate::Error;
use crate::config::{DEFAULT_CONFIG_FILE, Invocation, MAX_CONFIG_FILE_BYTES, Overrides, Settings};
use crate::source::{Look, Source, SourceError};

/// Look at the remote (fetching what changed), read the repository's own
/// `promptsync.toml` from the branch tip, load the settings with it, and hold the
/// release tags those settings name: the settings (their `repo` not yet pointed at the
/// mirror) and the look. `operator`: the settings of the operator's layers alone.
/// Blocking (the daemon's source worker runs it on a blocking thread).
pub(crate) fn look_and_load(
    invocation: &Invocation,
    overrides: &Overrides,
    operator: &Settings,
    source: &Source,
) -> Result<(Settings, Look), Error> {
    let look = source.look(&release_tags(operator))?;
    let settings = settings_at(invocation, overrides, source, &look.commit)?;
    let look = if release_tags(&settings) == release_tags(operator) {
        look
    } else {
        source.settle_tags(look, &release_tags(&settings))?
    };
    tracing::info!(
        url = %source.settings().url,
        branch = look.branch,
        commit = look.commit,
        fetched = look.fetched.len(),
        pruned = look.pruned.len(),
        mirror = %look.mirror.display(),
        "remote source"
    );
    Ok((settings, look))
}

/// The settings with the repository's own `promptsync.toml` as `commit` (in the
/// mirror) holds it; no network.
pub(crate) fn settings_at(
    invocation: &Invocation,
    overrides: &Overrides,
    source: &Source,
    commit: &str,
) -> Result<Settings, Error> {
    let tree_file = match source.read_file(commit, DEFAULT_CONFIG_FILE, MAX_CONFIG_FILE_BYTES)? {
        Some(bytes) => {
            let text = String::from_utf8(bytes).map_err(|err| SourceError::TreeFile {
                path: DEFAULT_CONFIG_FILE.to_owned(),
                commit: commit.to_owned(),
                detail: format!(
                    "it is not UTF-8 text (bad byte at offset {})",
                    err.utf8_error().valid_up_to()
                ),
            })?;
            let short = commit.get(..12).unwrap_or(commit);
            let label = PathBuf::from(format!("{DEFAULT_CONFIG_FILE}@{short}"));
            Some((label, text))
        }
        None => None,
    };
    Ok(Settings::load_remote(
        invocation.clone(),
        overrides,
        tree_file,
    )?)
}

/// The tag globs whose tags the mirror holds: none while deploying is off.
pub(crate) fn release_tags(settings: &Settings) -> Vec<String> {
    if settings.deploy.enabled {
        settings.deploy.tags.clone()
    } else {
        Vec::new()
    }
}
