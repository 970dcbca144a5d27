//! The settings and the revision that `sync`, `plan` and `status` read: the local
//! clone as configured (`--repo`, `--rev`, `--worktree`), or a remote source
//! (`[source]`, `--source URL`), looked at first. In remote mode the operator's layers
//! (`--config`, the environment, flags) are read first, and logging starts from them;
//! the mirror is brought up to date; then the repository's own `promptsync.toml` is
//! read from the branch tip (unless `--config` replaces it, as in local mode) and may
//! choose other release tags, which are then fetched too.

use std::path::PathBuf;

use crate::Error;
use crate::cli::{GlobalArgs, SourceArgs};
use crate::config::{DEFAULT_CONFIG_FILE, MAX_CONFIG_FILE_BYTES, Overrides, Settings};
use crate::desired::SourceRev;
use crate::source::{Look, Source, SourceError};

/// Load the settings (starting logging) and bring a remote source's mirror up to
/// date; the settings then point at the mirror and the revision is its branch tip.
pub(super) fn prepare(
    global: &GlobalArgs,
    args: &SourceArgs,
) -> Result<(Settings, SourceRev), Error> {
    let overrides = Overrides {
        source_url: args.url.clone(),
        ..Overrides::default()
    };
    if !Settings::wants_remote_source(global, &overrides) {
        let settings = super::load_settings(global, &overrides)?;
        crate::logging::init(&settings.log)?;
        let rev = if args.worktree {
            SourceRev::Worktree
        } else {
            SourceRev::Commit(args.rev.clone())
        };
        return Ok((settings, rev));
    }
    let operator = Settings::load_remote(global, &overrides, None)?;
    crate::logging::init(&operator.log)?;
    let Some(source_settings) = operator.source.clone() else {
        return Err(Error::Internal(
            "a remote source was asked for, but the settings hold none".into(),
        ));
    };
    let source = Source::new(source_settings);
    let (mut settings, look) = look_and_load(global, &overrides, &operator, &source)?;
    settings.repo = look.mirror;
    Ok((settings, SourceRev::Commit(look.commit)))
}

/// Look at the remote (fetching what changed), read the repository's own
/// `promptsync.toml` from the branch tip, load the settings with it, and hold the
/// release tags those settings name: the settings (their `repo` not yet pointed at the
/// mirror) and the look. `operator`: the settings of the operator's layers alone.
/// Blocking (the daemon's source worker runs it on a blocking thread).
pub(crate) fn look_and_load(
    global: &GlobalArgs,
    overrides: &Overrides,
    operator: &Settings,
    source: &Source,
) -> Result<(Settings, Look), Error> {
    let look = source.look(&release_tags(operator))?;
    let settings = settings_at(global, overrides, source, &look.commit)?;
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
    global: &GlobalArgs,
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
    Ok(Settings::load_remote(global, overrides, tree_file)?)
}

/// The tag globs whose tags the mirror holds: none while deploying is off.
pub(crate) fn release_tags(settings: &Settings) -> Vec<String> {
    if settings.deploy.enabled {
        settings.deploy.tags.clone()
    } else {
        Vec::new()
    }
}
