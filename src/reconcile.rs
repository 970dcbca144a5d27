//! One reconcile pass, end to end: load the desired state of the source commit (and of
//! the release commit when a release tag applies), read a snapshot of the remote in as
//! few requests as the API allows, plan, apply, and return what happened for the
//! report. It knows nothing about what triggered it (CLI, watcher, timer): the trigger
//! is only logged.

use std::collections::BTreeSet;

use futures_util::stream::{self, StreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle};
use tracing::Instrument;

use crate::Error;
use crate::api::types::{Prompt, Version};
use crate::api::{ApiError, Client, filter_in};
use crate::apply::{self, Outcome};
use crate::config::Settings;
use crate::deploy::{self, Release};
use crate::desired::{self, DesiredSet, PromptKey, SourceRev};
use crate::gitrepo::GitRepo;
use crate::plan::{self, DeployItem, DeployStep, ReleaseRef, Remote, SyncItem};

/// What a pass should do.
#[derive(Debug, Clone)]
pub struct PassOptions {
    pub source: SourceRev,
    /// Plan only: no change request is sent.
    pub dry_run: bool,
    /// Deploy the release tag (off with `--no-deploy`; settings can switch it off too).
    pub deploy: bool,
    /// What started the pass, for the logs only.
    pub trigger: &'static str,
    /// Draw a progress bar on stderr while changes are applied (only shown when
    /// stderr is a terminal).
    pub progress: bool,
}

/// Everything a pass found and did, for the report.
#[derive(Debug)]
pub struct Pass {
    pub source: DesiredSet,
    /// The release tag that decides what is live, with its commit's desired state.
    pub release: Option<(Release, DesiredSet)>,
    /// No change was sent: a dry run, or `suspend` is set.
    pub dry_run: bool,
    pub suspended: bool,
    pub sync: Vec<(SyncItem, Option<Outcome>)>,
    pub deploy: Vec<(DeployItem, Option<Outcome>)>,
}

/// Run one pass. A run-fatal problem (unreadable repository, unreachable API, a
/// refused key) is an `Err`; per-prompt failures are in the returned [`Pass`].
pub async fn run(
    settings: &Settings,
    client: &Client,
    options: &PassOptions,
) -> Result<Pass, Error> {
    let source = match &options.source {
        SourceRev::Commit(rev) => rev.as_str(),
        SourceRev::Worktree => "worktree",
    };
    let span = tracing::info_span!("reconcile", trigger = options.trigger, source);
    run_pass(settings, client, options).instrument(span).await
}

async fn run_pass(
    settings: &Settings,
    client: &Client,
    options: &PassOptions,
) -> Result<Pass, Error> {
    let (source, release) = load(settings, options).await?;
    let suspended = settings.sync.suspend;
    let apply = !options.dry_run && !suspended;
    if suspended {
        tracing::warn!("suspend is set: planning only, no change is sent");
    }
    let limit = settings.api.max_in_flight;
    let mut remote = snapshot(client, &source, release.as_ref().map(|(_, set)| set), limit).await?;
    tracing::info!(
        prompts = source.prompts.len(),
        remote = remote.prompts.len(),
        release = release.as_ref().map(|(r, _)| r.tag.as_str()),
        "loaded"
    );

    let progress = if options.progress && apply {
        // Cleared when dropped, however the pass ends.
        ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr())
            .with_style(
                ProgressStyle::with_template("{spinner} {pos}/{len} changes applied {wide_bar}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            )
            .with_finish(ProgressFinish::AndClear)
    } else {
        ProgressBar::hidden()
    };
    let mut deploy_entries = Vec::new();
    if let Some((release, set)) = &release {
        let searches = plan::version_searches(&set.prompts, &remote);
        remote.versions = list_versions(client, &searches, limit).await?;
        let release_ref = ReleaseRef {
            tag: release.tag.clone(),
            source: set.source.clone(),
        };
        let items = plan::plan_deploy(&set.prompts, &release_ref, &remote);
        let outcomes = if apply {
            progress.inc_length(
                items
                    .iter()
                    .filter(|i| matches!(i.step, DeployStep::Deploy { .. }))
                    .count() as u64,
            );
            let outcomes = apply::apply_deploy(client, &items, &remote, limit, &progress).await;
            stop_if_stalled(&outcomes)?;
            let touched: Vec<String> = outcomes
                .iter()
                .flatten()
                .filter_map(|o| o.as_ref().ok().map(|a| a.prompt_id.clone()))
                .collect();
            let mut refreshed = apply::refresh(client, &touched, limit).await?;
            complete_versions(client, refreshed.iter_mut(), limit).await?;
            for prompt in refreshed {
                if let Some(id) = prompt.id() {
                    remote.prompts.insert(id.to_owned(), prompt);
                }
            }
            outcomes
        } else {
            remote = plan::simulate_deploy(&remote, &items);
            items.iter().map(|_| None).collect()
        };
        deploy_entries = items.into_iter().zip(outcomes).collect();
    }

    let items = plan::plan_sync(
        &source.prompts,
        &source.source,
        &remote,
        settings.sync.drift,
    );
    let outcomes = if apply {
        progress.inc_length(items.iter().filter(|i| i.is_change()).count() as u64);
        let outcomes = apply::apply_sync(client, &items, limit, &progress).await;
        drop(progress);
        stop_if_stalled(&outcomes)?;
        outcomes
    } else {
        items.iter().map(|_| None).collect()
    };
    let (written, failed) = count(deploy_entries.iter().map(|(_, o)| o).chain(&outcomes));
    tracing::info!(written, failed, dry_run = !apply, "reconciled");
    Ok(Pass {
        source,
        release,
        dry_run: !apply,
        suspended,
        sync: items.into_iter().zip(outcomes).collect(),
        deploy: deploy_entries,
    })
}

/// How many applied items succeeded and failed.
fn count<'a>(outcomes: impl Iterator<Item = &'a Option<Outcome>>) -> (usize, usize) {
    outcomes
        .flatten()
        .fold((0, 0), |(ok, err), outcome| match outcome {
            Ok(_) => (ok + 1, err),
            Err(_) => (ok, err + 1),
        })
}

/// A refused key ends the run: every other request would be refused too.
fn stop_if_stalled(outcomes: &[Option<Outcome>]) -> Result<(), Error> {
    let stalled = outcomes
        .iter()
        .flatten()
        .find_map(|o| o.as_ref().err().filter(|e| e.is_stalled()));
    match stalled {
        Some(err) => Err(Error::Api(err.clone())),
        None => Ok(()),
    }
}

/// The desired state of the source, and of the release commit when a tag applies.
async fn load(
    settings: &Settings,
    options: &PassOptions,
) -> Result<(DesiredSet, Option<(Release, DesiredSet)>), Error> {
    let settings = settings.clone();
    let options = options.clone();
    tokio::task::spawn_blocking(move || {
        let repo = GitRepo::open(&settings.repo)?;
        let source = desired::load(&repo, &options.source, &settings.prompts)?;
        if !(options.deploy && settings.deploy.enabled) {
            return Ok((source, None));
        }
        let scan = repo.tags()?;
        for skipped in &scan.skipped {
            tracing::warn!(tag = skipped.name, reason = skipped.reason, "skipped tag");
        }
        let Some(release) = deploy::select_release(&scan.tags, &settings.deploy.tags)? else {
            tracing::debug!(patterns = ?settings.deploy.tags, "no release tag matches");
            return Ok((source, None));
        };
        tracing::info!(tag = release.tag, commit = release.commit, "release");
        let set = if !source.source.worktree
            && source.source.commit.as_deref() == Some(release.commit.as_str())
        {
            source.clone()
        } else {
            desired::load(
                &repo,
                &SourceRev::Commit(release.commit.clone()),
                &settings.prompts,
            )?
        };
        Ok((source, Some((release, set))))
    })
    .await
    .map_err(|err| Error::Internal(format!("loading the repository: {err}")))?
}

/// The remote prompts the repository names: listed by id and by name, 100 a page,
/// with their current and live versions complete.
async fn snapshot(
    client: &Client,
    source: &DesiredSet,
    release: Option<&DesiredSet>,
    limit: usize,
) -> Result<Remote, ApiError> {
    let mut ids = BTreeSet::new();
    let mut names = BTreeSet::new();
    for desired in source
        .prompts
        .iter()
        .chain(release.into_iter().flat_map(|s| &s.prompts))
    {
        match &desired.key {
            PromptKey::Id(id) => ids.insert(id.clone()),
            PromptKey::Name(name) => names.insert(name.clone()),
        };
    }
    let by_id = async {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        client
            .list_prompts(&filter_in("prompt_id", ids.iter().cloned()))
            .await
    };
    let by_name = async {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        client
            .list_prompts(&filter_in("name", names.iter().cloned()))
            .await
    };
    let (by_id, by_name) = tokio::try_join!(by_id, by_name)?;
    let mut remote = Remote::new(by_id.into_iter().chain(by_name));
    complete_versions(client, remote.prompts.values_mut(), limit).await?;
    Ok(remote)
}

/// Fetch the full objects of current and live versions that came as summaries (a
/// server may list `{version, model, updated_at}` only).
async fn complete_versions<'a>(
    client: &Client,
    prompts: impl Iterator<Item = &'a mut Prompt>,
    limit: usize,
) -> Result<(), ApiError> {
    let mut slots: Vec<(String, &'a mut Version)> = Vec::new();
    for prompt in prompts {
        let Some(id) = prompt.id().map(str::to_owned) else {
            continue;
        };
        for version in [&mut prompt.current_version, &mut prompt.live_version]
            .into_iter()
            .flatten()
        {
            if !version.has_content() {
                slots.push((id.clone(), version));
            }
        }
    }
    let fetched: Vec<Result<Version, ApiError>> = stream::iter(&slots)
        .map(|(id, version)| client.get_version(id, version.number))
        .buffered(limit.max(1))
        .collect()
        .await;
    for ((_, slot), full) in slots.into_iter().zip(fetched) {
        *slot = full?;
    }
    Ok(())
}

/// Every version of the given prompts, concurrently.
async fn list_versions(
    client: &Client,
    ids: &[String],
    limit: usize,
) -> Result<std::collections::HashMap<String, Vec<Version>>, ApiError> {
    stream::iter(ids)
        .map(|id| async move { client.list_versions(id).await.map(|v| (id.clone(), v)) })
        .buffered(limit.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}
