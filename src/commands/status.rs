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
use crate::report::Stdout;
use crate::report::pass::{Mode, PassReport};
use crate::report::status::{HistoryReport, StatusReport};

pub fn run(global: &GlobalArgs, args: StatusArgs) -> Result<ExitStatus, Error> {
    let (mut settings, rev) = super::source::prepare(global, &args.source)?;
    if settings.has_targets() || args.remote.targets.iter().any(|t| t != DEFAULT_TARGET) {
        return by_target(&settings, &args, &rev);
    }
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let local = if args.remote.emulator {
            Some(super::sync::start_local_emulator(&mut settings).await?)
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
            let options =
                PassOptions::command_line(rev.clone(), true, !args.remote.no_deploy, true);
            let pass = reconcile::run(target, &client, &options, &Unobserved)
                .await
                .map_err(|err| err.error)?;
            let invalid = PassReport::new(&pass, Mode::Plan, false).invalid_files;
            Ok::<_, Error>(StatusReport::new(&pass, invalid))
        }))
        .await;
        let mut text = String::new();
        let mut docs = Vec::new();
        let mut status = ExitStatus::Success;
        let mut errors = Vec::new();
        for (target, read) in targets.iter().zip(reads) {
            let name = target.target.as_str();
            text.push_str(&format!("== target {name} ==\n"));
            match read {
                Ok(report) => {
                    text.push_str(&report.to_text());
                    let mut doc = serde_json::to_value(&report).unwrap_or_default();
                    if let Some(map) = doc.as_object_mut() {
                        map.insert("target".to_owned(), name.into());
                    }
                    docs.push(doc);
                    if report.has_errors() {
                        status = ExitStatus::Failure;
                    } else if report.out_of_sync()
                        && args.detailed_exitcode
                        && status == ExitStatus::Success
                    {
                        status = ExitStatus::Changes;
                    }
                }
                Err(err) => {
                    let message = crate::error::chain(&err);
                    text.push_str(&format!("error: {message}\n"));
                    docs.push(serde_json::json!({
                        "target": name,
                        "error": { "class": err.class(), "message": message },
                    }));
                    errors.push(format!("target {name}: {message}"));
                }
            }
            if !text.ends_with('\n') {
                text.push('\n');
            }
        }
        print(
            args.output,
            &text,
            &serde_json::json!({ "format": 1, "targets": docs }),
        )?;
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
    let options = PassOptions::command_line(rev, true, !args.remote.no_deploy, true);
    let pass = reconcile::run(settings, client, &options, &Unobserved)
        .await
        .map_err(|err| err.error)?;
    let invalid = PassReport::new(&pass, Mode::Plan, false).invalid_files;
    let report = StatusReport::new(&pass, invalid);
    print(args.output, &report.to_text(), &report)?;
    Ok(if report.has_errors() {
        ExitStatus::Failure
    } else if report.out_of_sync() && args.detailed_exitcode {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
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
    print(output, &report.to_text(), &report)?;
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

fn print<T: serde::Serialize>(output: OutputFormat, text: &str, report: &T) -> Result<(), Error> {
    let mut out = Stdout::new();
    let written = match output {
        OutputFormat::Text => out.text(text),
        OutputFormat::Json => out.json(report),
    };
    written
        .and_then(|()| out.flush())
        .map_err(|source| Error::Io {
            what: "cannot write the report".into(),
            source,
        })
}
