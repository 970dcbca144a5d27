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
use crate::config::{DEFAULT_CONFIG_FILE, Overrides, Settings};
use crate::desired::SourceRev;
use crate::source::{Source, SourceError};

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
    let look = source.look(&release_tags(&operator))?;
    let tree_file = match source.read_file(&look.commit, DEFAULT_CONFIG_FILE)? {
        Some(bytes) => {
            let text = String::from_utf8(bytes).map_err(|err| SourceError::TreeFile {
                path: DEFAULT_CONFIG_FILE.to_owned(),
                commit: look.commit.clone(),
                detail: format!(
                    "it is not UTF-8 text (bad byte at offset {})",
                    err.utf8_error().valid_up_to()
                ),
            })?;
            let label = PathBuf::from(format!("{DEFAULT_CONFIG_FILE}@{}", &look.commit[..12]));
            Some((label, text))
        }
        None => None,
    };
    let mut settings = Settings::load_remote(global, &overrides, tree_file)?;
    let look = if release_tags(&settings) == release_tags(&operator) {
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
    settings.repo = look.mirror;
    Ok((settings, SourceRev::Commit(look.commit)))
}

/// The tag globs whose tags the mirror holds: none while deploying is off.
fn release_tags(settings: &Settings) -> Vec<String> {
    if settings.deploy.enabled {
        settings.deploy.tags.clone()
    } else {
        Vec::new()
    }
}
