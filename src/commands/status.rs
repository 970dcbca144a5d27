//! `promptsync status`: what is where, read-only. Without `--prompt`: a dry-run pass
//! with the whole account listed, shown as one row per prompt file and the unmanaged
//! prompts. With `--prompt NAME_OR_ID`: that prompt's versions, newest first, each with
//! the commit, subject and tags it came from: the prompt's history read as git history.

use std::collections::BTreeMap;

use crate::Error;
use crate::api::Client;
use crate::apply::Unobserved;
use crate::cli::{GlobalArgs, OutputFormat, StatusArgs};
use crate::commands::ExitStatus;
use crate::config::{DEFAULT_TARGET, Settings};
use crate::desired::SourceRev;
use crate::gitrepo::GitRepo;
use crate::reconcile::{self, PassOptions};
use crate::report::pass::{Mode, PassReport};
use crate::report::status::{HistoryReport, StatusReport};
use crate::report::{self, Grouped};

pub(super) fn run(global: &GlobalArgs, args: StatusArgs) -> Result<ExitStatus, Error> {
    let (mut settings, rev) = super::source::prepare(global, &args.source)?;
    if settings.has_targets() || args.remote.targets.iter().any(|t| t != DEFAULT_TARGET) {
        return by_target(&settings, &args, &rev);
    }
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let local = if args.remote.emulator {
            Some(super::local::start_local_emulator(&mut settings).await?)
        } else {
            None
        };
        let client = Client::new(&settings.api)?;
        let status = match &args.prompt {
            Some(prompt) => history(&settings, &client, prompt, args.output).await,
            None => overview(&settings, &client, &args, rev).await,
        };
        if let Some(local) = local {
            local.shutdown().await?;
        }
        status
    })
}

/// With `[targets]`: the overview of each target named (every one by default), read
/// at once, grouped (text: a heading per target; JSON: `{"targets": [...]}`, each
/// with its `target`); the exit status is the worst of them.
fn by_target(settings: &Settings, args: &StatusArgs, rev: &SourceRev) -> Result<ExitStatus, Error> {
    if args.remote.emulator {
        return Err(Error::Usage(
            "--emulator is one local account; it does not take [targets]".to_owned(),
        ));
    }
    let targets = settings.select(&args.remote.targets)?;
    if args.prompt.is_some() && targets.len() != 1 {
        return Err(Error::Usage(
            "--prompt reads one project's history: name one target with --target NAME".to_owned(),
        ));
    }
    let runtime = super::runtime()?;
    runtime.block_on(async {
        if let Some(prompt) = &args.prompt
            && let Some(target) = targets.first()
        {
            let client = Client::new(&target.api)?;
            return history(target, &client, prompt, args.output).await;
        }
        let reads = futures_util::future::join_all(targets.iter().map(|target| async move {
            let client = Client::new(&target.api)?;
            read(target, &client, args, rev.clone()).await
        }))
        .await;
        let mut grouped = Grouped::new(args.output == OutputFormat::Json);
        let mut status = ExitStatus::Success;
        let mut errors = Vec::new();
        for (target, read) in targets.iter().zip(reads) {
            let name = target.target.as_str();
            match read {
                Ok(report) => {
                    grouped.push(name, &report);
                    status = worse(status, exit_status(&report, args));
                }
                Err(err) => {
                    grouped.push_error(name, &err);
                    errors.push(format!("target {name}: {}", crate::failure::chain(&err)));
                }
            }
        }
        grouped.print()?;
        if errors.is_empty() {
            Ok(status)
        } else {
            Err(Error::Targets(errors.join("; ")))
        }
    })
}

async fn overview(
    settings: &crate::config::Settings,
    client: &Client,
    args: &StatusArgs,
    rev: SourceRev,
) -> Result<ExitStatus, Error> {
    let report = read(settings, client, args, rev).await?;
    report::print(&report, args.output == OutputFormat::Json)?;
    Ok(exit_status(&report, args))
}

/// The status of one project: a dry-run pass with the whole account listed.
async fn read(
    settings: &crate::config::Settings,
    client: &Client,
    args: &StatusArgs,
    rev: SourceRev,
) -> Result<StatusReport, Error> {
    let options = PassOptions::command_line(rev, true, !args.remote.no_deploy, true);
    let pass = reconcile::run(settings, client, &options, &Unobserved)
        .await
        .map_err(|err| err.error)?;
    let invalid = PassReport::new(&pass, Mode::Plan, false).invalid_files;
    Ok(StatusReport::new(&pass, invalid))
}

/// The worse of two targets' exit statuses: a failure over changes over success.
fn worse(a: ExitStatus, b: ExitStatus) -> ExitStatus {
    match (a, b) {
        (ExitStatus::Failure, _) | (_, ExitStatus::Failure) => ExitStatus::Failure,
        (ExitStatus::Changes, _) | (_, ExitStatus::Changes) => ExitStatus::Changes,
        _ => ExitStatus::Success,
    }
}

/// 1 when a file is invalid (or a prompt failed); 2 with `--detailed-exitcode` when
/// a prompt is out of sync; else 0.
fn exit_status(report: &StatusReport, args: &StatusArgs) -> ExitStatus {
    if report.has_errors() {
        ExitStatus::Failure
    } else if report.out_of_sync() && args.detailed_exitcode {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    }
}

async fn history(
    settings: &crate::config::Settings,
    client: &Client,
    asked: &str,
    output: OutputFormat,
) -> Result<ExitStatus, Error> {
    let found = super::pull::named(client, &[asked.to_owned()]).await?;
    let Some((_, found)) = found.into_iter().next() else {
        return Ok(ExitStatus::Failure);
    };
    let prompt = found.map_err(Error::Usage)?;
    let id = prompt.id().unwrap_or_default().to_owned();
    let versions = client.list_versions(&id).await?;
    let repo = settings.repo.clone();
    let tags = tokio::task::spawn_blocking(move || tags_by_commit(&repo))
        .await
        .map_err(|err| Error::Internal(err.to_string()))?;
    let report = HistoryReport::new(
        &id,
        prompt.name.as_deref(),
        &versions.items,
        prompt.live_version.as_ref().map(|v| v.number),
        &tags,
    );
    report::print(&report, output == OutputFormat::Json)?;
    Ok(ExitStatus::Success)
}

/// Tag names by the commit they lead to (none outside a repository).
fn tags_by_commit(repo: &std::path::Path) -> BTreeMap<String, Vec<String>> {
    let mut tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Ok(scan) = GitRepo::open(repo).and_then(|repo| repo.tags()) {
        for tag in scan.tags {
            tags.entry(tag.commit).or_default().push(tag.name);
        }
    }
    tags
}
