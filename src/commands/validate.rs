//! `promptsync validate`: offline checks of prompt files. No API key, no network.

use crate::Error;
use crate::cli::{GlobalArgs, OutputFormat, ValidateArgs};
use crate::commands::ExitStatus;
use crate::config::{Overrides, Settings};
use crate::desired::{self, SourceRev};
use crate::gitrepo::{GitError, GitRepo};
use crate::report::{self, Stdout};

/// Check the working tree's prompt files (default), a commit's (`--rev`), or the files
/// and directories named; print every finding; exit 1 when any file is invalid.
pub(super) fn run(global: &GlobalArgs, args: ValidateArgs) -> Result<ExitStatus, Error> {
    // No API settings: a missing key file or a bad base URL cannot stop a check that
    // never calls the API.
    let settings = Settings::load_offline(&super::at_repo_root(global), &Overrides::default())?;
    crate::logging::init(&settings.log)?;
    let repo = match GitRepo::open(&settings.repo) {
        Ok(repo) => Some(repo),
        // Files named on the command line can be checked outside any repository.
        Err(GitError::NotARepository { .. }) if !args.paths.is_empty() => None,
        Err(err) => return Err(err.into()),
    };
    let set = match (&repo, args.rev) {
        (Some(repo), Some(rev)) => desired::load(repo, &SourceRev::Commit(rev), &settings.prompts)?,
        (Some(repo), None) if args.paths.is_empty() => {
            desired::load(repo, &SourceRev::Worktree, &settings.prompts)?
        }
        (repo, _) => {
            let root = repo
                .as_ref()
                .map_or_else(|| settings.repo.clone(), |repo| repo.root().to_owned());
            desired::load_paths(&root, repo.as_ref(), &args.paths, &settings.prompts)?
        }
    };
    let summary = report::validate::Summary::of(&set);
    tracing::debug!(
        files = summary.files,
        errors = summary.errors,
        warnings = summary.warnings,
        "validation done"
    );
    report::print(
        &report::validate::Findings(&set),
        args.output == OutputFormat::Json,
    )?;
    // GitHub Actions: each finding as an annotation (not beside a JSON document).
    if let Some(github) = super::github(global).filter(|_| args.output == OutputFormat::Text) {
        github
            .annotate(
                &mut Stdout::new(),
                &github.findings_annotations(&set.diagnostics),
            )
            .map_err(|source| Error::Io {
                what: "writing the GitHub annotations to stdout".to_owned(),
                source,
            })?;
    }
    Ok(if set.has_errors() {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}
