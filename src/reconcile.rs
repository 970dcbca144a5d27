//! One reconcile pass, end to end: load the desired state of the source commit (and of
//! the release commit when a release tag applies), read a snapshot of the remote in as
//! few requests as the API allows, plan, apply, and return what happened for the
//! report. It knows nothing about what triggered it (CLI, watcher, timer): the trigger
//! is only logged. Progress goes to an [`Observer`] (a progress bar for the CLI,
//! metrics for the daemon); a pass that cannot finish returns a [`PassError`] that says
//! what the caller should do next and keeps what the pass had done.

use std::collections::BTreeSet;

use futures_util::stream::{self, StreamExt};
use tracing::Instrument;

use crate::Error;
use crate::api::types::{Listing, Prompt, Version};
use crate::api::{ApiError, Client, filter_in};
use crate::apply::{self, Observer, Outcome};
use crate::config::Settings;
use crate::deploy::{self, Release};
use crate::desired::{self, DesiredSet, PromptKey, SourceRev};
use crate::error::FailureClass;
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
}

/// A pass that ended before it was done, with what it had found and done so far.
#[derive(Debug)]
pub struct PassError {
    pub class: FailureClass,
    pub error: Error,
    /// The pass up to the failure; `None` when it failed before reading the source.
    pub partial: Option<Box<Pass>>,
}

impl PassError {
    fn new(error: impl Into<Error>, partial: Option<Pass>) -> PassError {
        let error = error.into();
        PassError {
            class: error.class(),
            error,
            partial: partial.map(Box::new),
        }
    }
}

impl std::fmt::Display for PassError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for PassError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.error)
    }
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

/// Run one pass. Per-prompt failures are in the returned [`Pass`]; a problem that ends
/// the pass (unreadable repository, unreachable API, a refused key) is a [`PassError`]
/// with the part of the pass done before it.
pub async fn run(
    settings: &Settings,
    client: &Client,
    options: &PassOptions,
    observer: &dyn Observer,
) -> Result<Pass, PassError> {
    let source = match &options.source {
        SourceRev::Commit(rev) => rev.as_str(),
        SourceRev::Worktree => "worktree",
    };
    let span = tracing::info_span!("reconcile", trigger = options.trigger, source);
    run_pass(settings, client, options, observer)
        .instrument(span)
        .await
}

async fn run_pass(
    settings: &Settings,
    client: &Client,
    options: &PassOptions,
    observer: &dyn Observer,
) -> Result<Pass, PassError> {
    let (source, release) = load(settings, options)
        .await
        .map_err(|err| PassError::new(err, None))?;
    let suspended = settings.sync.suspend;
    let apply = !options.dry_run && !suspended;
    if suspended {
        tracing::warn!("suspend is set: planning only, no change is sent");
    }
    let mut pass = Pass {
        source,
        release,
        dry_run: !apply,
        suspended,
        sync: Vec::new(),
        deploy: Vec::new(),
    };
    let limit = settings.api.max_in_flight;
    let release_set = pass.release.as_ref().map(|(_, set)| set);
    let mut remote = match snapshot(client, &pass.source, release_set, limit).await {
        Ok(remote) => remote,
        Err(err) => return Err(PassError::new(err, Some(pass))),
    };
    tracing::info!(
        prompts = pass.source.prompts.len(),
        remote = remote.prompts.len(),
        release = pass.release.as_ref().map(|(r, _)| r.tag.as_str()),
        "loaded"
    );

    if let Some((release, set)) = &pass.release {
        let searches = plan::version_searches(&set.prompts, &remote);
        match list_versions(client, &searches, limit).await {
            Ok(versions) => remote.versions = versions,
            Err(err) => return Err(PassError::new(err, Some(pass))),
        }
        let release_ref = ReleaseRef {
            tag: release.tag.clone(),
            source: set.source.clone(),
        };
        let items = plan::plan_deploy(&set.prompts, &release_ref, &remote);
        if apply {
            observer.planned(
                items
                    .iter()
                    .filter(|i| matches!(i.step, DeployStep::Deploy { .. }))
                    .count(),
            );
            let outcomes = apply::apply_deploy(client, &items, &remote, limit, observer).await;
            let stalled = stalled(&outcomes);
            let touched: Vec<String> = outcomes
                .iter()
                .flatten()
                .filter_map(|o| o.as_ref().ok().map(|a| a.prompt_id.clone()))
                .collect();
            pass.deploy = items.into_iter().zip(outcomes).collect();
            if let Some(err) = stalled {
                return Err(PassError::new(err, Some(pass)));
            }
            let refreshed = async {
                let mut refreshed = apply::refresh(client, &touched, limit).await?;
                complete_versions(client, refreshed.iter_mut(), limit).await?;
                Ok::<_, ApiError>(refreshed)
            };
            match refreshed.await {
                Ok(refreshed) => {
                    for prompt in refreshed {
                        if let Some(id) = prompt.id() {
                            remote.prompts.insert(id.to_owned(), prompt);
                        }
                    }
                }
                Err(err) => return Err(PassError::new(err, Some(pass))),
            }
        } else {
            remote = plan::simulate_deploy(&remote, &items);
            pass.deploy = items.into_iter().map(|item| (item, None)).collect();
        }
    }

    let items = plan::plan_sync(
        &pass.source.prompts,
        &pass.source.source,
        &remote,
        settings.sync.drift,
    );
    if apply {
        observer.planned(items.iter().filter(|i| i.is_change()).count());
        let outcomes = apply::apply_sync(client, &items, limit, observer).await;
        let stalled = stalled(&outcomes);
        pass.sync = items.into_iter().zip(outcomes).collect();
        if let Some(err) = stalled {
            return Err(PassError::new(err, Some(pass)));
        }
    } else {
        pass.sync = items.into_iter().map(|item| (item, None)).collect();
    }
    let (written, failed) = count(
        pass.deploy
            .iter()
            .map(|(_, o)| o)
            .chain(pass.sync.iter().map(|(_, o)| o)),
    );
    tracing::info!(written, failed, dry_run = !apply, "reconciled");
    Ok(pass)
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
fn stalled(outcomes: &[Option<Outcome>]) -> Option<ApiError> {
    outcomes
        .iter()
        .flatten()
        .find_map(|o| o.as_ref().err().filter(|e| e.is_stalled()))
        .cloned()
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
            return Ok(Listing::default());
        }
        client
            .list_prompts(&filter_in("prompt_id", ids.iter().cloned()))
            .await
    };
    let by_name = async {
        if names.is_empty() {
            return Ok(Listing::default());
        }
        client
            .list_prompts(&filter_in("name", names.iter().cloned()))
            .await
    };
    let (by_id, by_name) = tokio::try_join!(by_id, by_name)?;
    let (by_id, by_name) = (apply::whole(by_id)?, apply::whole(by_name)?);
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
        .map(|id| async move {
            let listing = client.list_versions(id).await?;
            apply::whole(listing).map(|v| (id.clone(), v))
        })
        .buffered(limit.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}
