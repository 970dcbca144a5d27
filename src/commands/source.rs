//! The settings and the revision that `sync`, `plan` and `status` read: the local
//! clone as configured (`--repo`, `--rev`, `--worktree`), or a remote source
//! (`[source]`, `--source URL`), looked at first. In remote mode the operator's layers
//! (`--config`, the environment, flags) are read first, and logging starts from them;
//! the mirror is brought up to date; then the repository's own `promptsync.toml` is
//! read from the branch tip (unless `--config` replaces it, as in local mode) and may
//! choose other release tags, which are then fetched too.

use crate::Error;
use crate::cli::{GlobalArgs, SourceArgs};
use crate::config::{Invocation, Overrides, Settings};
use crate::desired::SourceRev;
use crate::remote_source::look_and_load;
use crate::source::Source;

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
    let invocation = Invocation::from(global);
    let (mut settings, look) = look_and_load(&invocation, &overrides, &operator, &source)?;
    settings.repo = look.mirror;
    Ok((settings, SourceRev::Commit(look.commit)))
}
