//! One reconcile pass, end to end: load the desired state of the source commit (and of
//! the release commit when a release tag applies), read a snapshot of the remote in as
//! few requests as the API allows, plan, apply, and return what happened for the
//! report. It knows nothing about what triggered it (CLI, watcher, timer): the trigger
//! is only logged. Progress goes to an [`Observer`] (a progress bar for the CLI,
//! metrics for the daemon); a pass that cannot finish returns a [`PassError`] that says
//! what the caller should do next and keeps what the pass had done. A read that fails
//! for one prompt fails that prompt only; only a refused key ends the pass early. A
//! snapshot listing that fails (or cannot be trusted to be complete) fails the prompts
//! it was for, never reads as "nothing there"; a failed one also ends the pass with its
//! error once the other prompts have synced.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use futures_util::stream::{self, StreamExt};
use tracing::Instrument;

use crate::Error;
use crate::api::types::{AccountPrompt, ItemProblem, Listing, Prompt, Version};
use crate::api::{ApiError, Client, filter_in};
use crate::apply::{self, Observer, Outcome};
use crate::baseline::Baseline;
use crate::config::{Live, Settings};
use crate::deploy::{self, Release};
use crate::desired::parallel::{on_all_cores, threads_for};
use crate::desired::{self, DesiredPrompt, DesiredSet, LoadCache, PromptKey, SourceRev};
use crate::error::FailureClass;
use crate::gitrepo::GitRepo;
use crate::plan::{
    self, DeployItem, DeployStep, History, ReleaseRef, Remote, SyncItem, Target, Writes,
};

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
    /// List the whole account to find the remote prompts no file names.
    pub unmanaged: bool,
    /// What an earlier pass left in sync: when it still applies (same release, same
    /// settings), only the prompts that changed since are listed and planned.
    pub since: Option<std::sync::Arc<Baseline>>,
    /// The valid files of earlier loads, to take unchanged blobs from (the daemon's).
    pub cache: Option<std::sync::Arc<std::sync::Mutex<LoadCache>>>,
}

impl PassOptions {
    /// A one-shot pass of a command (`sync`, `plan`, `status`): no baseline, no cache.
    pub fn command_line(source: SourceRev, dry_run: bool, deploy: bool, unmanaged: bool) -> Self {
        PassOptions {
            source,
            dry_run,
            deploy,
            trigger: "command line",
            unmanaged,
            since: None,
            cache: None,
        }
    }
}

/// A remote prompt that no prompt file names.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unmanaged {
    pub prompt_id: String,
    pub name: Option<String>,
    /// Its live version, when one is deployed.
    pub live_version: Option<u64>,
    /// Its newest version.
    pub newest_version: Option<u64>,
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
    /// Problems no single prompt owns (a list item that names no prompt).
    pub warnings: Vec<String>,
    /// The remote prompts no file names, when asked for and the listing worked.
    pub unmanaged: Option<Vec<Unmanaged>>,
    /// The remote prompts the repository names, as read at the start of the pass, for
    /// reports that show what is where: kept only when no change is sent (a dry run).
    pub remote: Remote,
    /// Prompt files left out because they are as they were when last in sync (an
    /// incremental pass); they count as unchanged.
    pub carried: usize,
    /// The deploy gate's outcome, when `deploy.gate_command` ran before the deploy.
    pub gate: Option<crate::notify::gate::GateOutcome>,
    /// The reads that failed one prompt each (its version list, a version in full,
    /// reading it again after the deploy), for a caller that retries: whether one is
    /// worth it is the error's to say.
    pub failed_reads: Vec<ApiError>,
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
    run_halves(settings, client, options, Halves::Both, observer).await
}

/// Run the deploy half of a pass alone (`sync --deploy-only`, for tag pipelines): the
/// newest release tag's versions are found (created only where no version holds the
/// release content), committed if needed and made live; no version is written for the
/// source, which is not read (`options.source` and `options.deploy` are not used).
/// Without a release tag, or with `deploy.enabled = false`, it is a stalled
/// [`PassError`]: a deploy-only pass that deploys nothing is a mistake to report.
pub async fn deploy_only(
    settings: &Settings,
    client: &Client,
    options: &PassOptions,
    observer: &dyn Observer,
) -> Result<Pass, PassError> {
    run_halves(settings, client, options, Halves::DeployOnly, observer).await
}

/// Which halves of a pass run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Halves {
    /// Deploy the release, then sync the source: a pass.
    Both,
    /// Deploy the release alone.
    DeployOnly,
}

async fn run_halves(
    settings: &Settings,
    client: &Client,
    options: &PassOptions,
    halves: Halves,
    observer: &dyn Observer,
) -> Result<Pass, PassError> {
    let source = match (&options.source, halves) {
        (_, Halves::DeployOnly) => "release",
        (SourceRev::Commit(rev), Halves::Both) => rev.as_str(),
        (SourceRev::Worktree, Halves::Both) => "worktree",
    };
    let span = tracing::info_span!("reconcile", trigger = options.trigger, source);
    // Everything the pass reads from the server is held within one bound.
    let client = client.for_one_pass();
    run_pass(settings, &client, options, halves, observer)
        .instrument(span)
        .await
}

async fn run_pass(
    settings: &Settings,
    client: &Client,
    options: &PassOptions,
    halves: Halves,
    observer: &dyn Observer,
) -> Result<Pass, PassError> {
    // The account-wide listing (for the unmanaged prompts, and the snapshot with
    // them) does not depend on the files: it runs while they are read.
    let account = async {
        if options.unmanaged {
            Some(client.list_account().await)
        } else {
            None
        }
    };
    let (loaded, account) = tokio::join!(load(settings, options, halves), account);
    let (source, release) = loaded.map_err(|err| PassError::new(err, None))?;
    let suspended = settings.sync.suspend;
    let apply = !options.dry_run && !suspended;
    if suspended {
        tracing::warn!("suspend is set: planning only, no change is sent");
    }
    if apply {
        observer.read(
            source
                .source
                .commit
                .as_deref()
                .filter(|_| !source.source.worktree),
        );
    }
    let mut pass = Pass {
        source,
        release,
        dry_run: !apply,
        suspended,
        sync: Vec::new(),
        deploy: Vec::new(),
        warnings: Vec::new(),
        unmanaged: None,
        remote: Remote::default(),
        carried: 0,
        gate: None,
        failed_reads: Vec::new(),
    };
    let mut reader = Reader {
        client,
        limit: settings.api.max_in_flight.max(1),
        warnings: Vec::new(),
        account,
        unmanaged_found: None,
        failed_listing: None,
        stale: std::cell::Cell::new(false),
        failed_reads: Vec::new(),
    };
    let result = reconcile(
        &mut pass,
        &mut reader,
        settings,
        options.since.as_deref(),
        (apply, halves),
        observer,
    )
    .await;
    pass.warnings = reader.warnings;
    pass.failed_reads = reader.failed_reads;
    match result.and_then(|()| reader.failed_listing.map_or(Ok(()), Err)) {
        Ok(()) => Ok(pass),
        Err(err) => Err(PassError::new(err, Some(pass))),
    }
}

/// Snapshot, deploy, sync (unless deploy only): fills `pass` as it goes, so that what
/// was done before an error that ends the pass is kept.
async fn reconcile(
    pass: &mut Pass,
    reader: &mut Reader<'_>,
    settings: &Settings,
    since: Option<&Baseline>,
    (apply, halves): (bool, Halves),
    observer: &dyn Observer,
) -> Result<(), ApiError> {
    let client = reader.client;
    let limit = reader.limit;
    let release_id = pass
        .release
        .as_ref()
        .map(|(r, _)| (r.tag.as_str(), r.commit.as_str()));
    // An incremental pass: the release and settings are as they were, so only the
    // prompts that changed since the baseline need a look, unless one of them touches
    // the identity of a prompt it carries (see `incremental`).
    let baseline = since.filter(|baseline| baseline.applies(settings, release_id));
    let mut changed: Option<Vec<DesiredPrompt>> = baseline.and_then(|baseline| {
        let (changed, carried): (Vec<&DesiredPrompt>, Vec<&DesiredPrompt>) = pass
            .source
            .prompts
            .iter()
            .partition(|desired| !baseline.unchanged(desired));
        let carried_ids = baseline.carried_ids(carried);
        // A changed file that names a carried file's prompt by id conflicts with it.
        let clash = changed.iter().find_map(|desired| match &desired.key {
            PromptKey::Id(id) if carried_ids.contains(id.as_str()) => Some((*desired, id)),
            _ => None,
        });
        if let Some((desired, id)) = clash {
            full_plan_instead(&desired.path, id);
            return None;
        }
        Some(changed.into_iter().cloned().collect())
    });
    if let Some(changed) = &changed {
        pass.carried = pass.source.prompts.len() - changed.len();
        tracing::debug!(
            changed = changed.len(),
            carried = pass.carried,
            "incremental pass: only the prompts that changed are looked at"
        );
    }
    let sources: &[DesiredPrompt] = changed.as_deref().unwrap_or(&pass.source.prompts);
    let mut remote = reader
        .snapshot(sources, release_prompts(pass, changed.is_none()).as_deref())
        .await?;
    // A changed file whose name finds a prompt that a carried file syncs (or the
    // reverse: its id is one a carried name resolved to) conflicts with it: only a
    // plan of every file reaches the decision a full pass reaches.
    if let (Some(list), Some(baseline)) = (&changed, baseline) {
        let carried = pass
            .source
            .prompts
            .iter()
            .filter(|desired| baseline.unchanged(desired));
        let carried_ids = baseline.carried_ids(carried);
        let clash =
            plan::targets(list, &remote)
                .into_iter()
                .zip(list)
                .find_map(|(target, desired)| {
                    let id = target.ok()?.id()?.to_owned();
                    carried_ids
                        .contains(id.as_str())
                        .then(|| (desired.path.clone(), id))
                });
        if let Some((path, id)) = clash {
            full_plan_instead(&path, &id);
            changed = None;
            pass.carried = 0;
            // The snapshot below reads the changed prompts again: what the first said
            // about them would be said twice.
            reader.warnings.clear();
            reader.failed_reads.clear();
            remote = reader
                .snapshot(
                    &pass.source.prompts,
                    release_prompts(pass, changed.is_none()).as_deref(),
                )
                .await?;
        }
    }
    let sources: &[DesiredPrompt] = changed.as_deref().unwrap_or(&pass.source.prompts);
    tracing::debug!(
        prompts = sources.len(),
        remote = remote.prompts.len(),
        unreadable = remote.unreadable.len() + remote.unreadable_names.len(),
        release = pass.release.as_ref().map(|(r, _)| r.tag.as_str()),
        "loaded"
    );
    pass.unmanaged = reader.unmanaged_found.take();
    if !apply {
        pass.remote = remote.clone();
    }

    if let Some((release, set)) = pass.release.as_ref().filter(|_| changed.is_none()) {
        let searches = plan::version_searches(&set.prompts, &remote);
        reader.histories(&searches, &mut remote).await?;
        let release_ref = ReleaseRef {
            tag: release.tag.clone(),
            source: set.source.clone(),
        };
        let mut items = cpu(|| plan::plan_deploy(&set.prompts, &release_ref, &remote));
        if apply
            && reader
                .refresh(&plan::deploy_writes(&items), &mut remote)
                .await?
        {
            let searches = plan::version_searches(&set.prompts, &remote);
            let searches: Vec<String> = searches
                .into_iter()
                .filter(|id| !remote.versions.contains_key(id))
                .collect();
            reader.histories(&searches, &mut remote).await?;
            items = cpu(|| plan::plan_deploy(&set.prompts, &release_ref, &remote));
        }
        // The deploy gate runs before anything of the release is sent; a failed one
        // in `enforce` mode holds the whole deploy step (drafts still sync).
        if apply && let Some(gate) = &settings.deploy.gate {
            let going_live: Vec<String> = items
                .iter()
                .filter(|i| matches!(i.step, DeployStep::Deploy { .. }))
                .map(|i| i.path.clone())
                .collect();
            if !going_live.is_empty() {
                let facts = crate::notify::gate::ReleaseFacts {
                    target: settings.target.clone(),
                    tag: release.tag.clone(),
                    commit: release.commit.clone(),
                    source_commit: pass.source.source.commit.clone(),
                    prompt_files: going_live,
                };
                let outcome = crate::notify::gate::check(&settings.repo, gate, &facts).await;
                pass.gate = Some(outcome);
            }
        }
        if pass.gate.as_ref().is_some_and(|g| g.held) {
            pass.deploy = items.into_iter().map(|item| (item, None)).collect();
        } else if apply {
            observer.planned(
                items
                    .iter()
                    .filter(|i| matches!(i.step, DeployStep::Deploy { .. }))
                    .count(),
            );
            let mut outcomes = apply::apply_deploy(client, &items, &remote, limit, observer).await;
            let settled = async {
                stalled(&outcomes)?;
                // Every prompt the deploy step touched, failed or not, is read again,
                // so the sync half never plans on a snapshot the deploy made stale.
                reader
                    .reread(&touched(&items, &outcomes), &mut remote)
                    .await?;
                let again = apply::confirm_live(client, &mut outcomes, &remote).await;
                stalled(&outcomes)?;
                let again = Touched {
                    ids: again.into_iter().map(|id| (id, None)).collect(),
                    names: BTreeSet::new(),
                };
                reader.reread(&again, &mut remote).await
            };
            let settled = settled.await;
            pass.deploy = items.into_iter().zip(outcomes).collect();
            settled?;
        } else {
            remote = plan::simulate_deploy(&remote, &items);
            pass.deploy = items.into_iter().map(|item| (item, None)).collect();
        }
    }

    if halves == Halves::DeployOnly {
        let (written, failed) = count(pass.deploy.iter().map(|(_, o)| o));
        tracing::info!(written, failed, dry_run = !apply, "deployed (deploy only)");
        return Ok(());
    }
    let searches = plan::history_searches(sources, &remote);
    reader.histories(&searches, &mut remote).await?;
    let mut items =
        cpu(|| plan::plan_sync(sources, &pass.source.source, &remote, settings.sync.drift));
    if apply
        && reader
            .refresh(&plan::sync_writes(&items), &mut remote)
            .await?
    {
        let searches = plan::history_searches(sources, &remote);
        reader.histories(&searches, &mut remote).await?;
        items = cpu(|| plan::plan_sync(sources, &pass.source.source, &remote, settings.sync.drift));
    }
    if apply {
        observer.planned(items.iter().filter(|i| i.is_change()).count());
        let outcomes = apply::apply_sync(client, &items, limit, observer).await;
        let stalled = stalled(&outcomes);
        pass.sync = items.into_iter().zip(outcomes).collect();
        stalled?;
    } else {
        pass.sync = items.into_iter().map(|item| (item, None)).collect();
    }
    let (written, failed) = count(
        pass.deploy
            .iter()
            .map(|(_, o)| o)
            .chain(pass.sync.iter().map(|(_, o)| o)),
    );
    tracing::debug!(written, failed, dry_run = !apply, "reconciled");
    Ok(())
}

/// Run CPU-bound `work` (a plan of thousands of prompts) so that it stalls no other
/// task: on a multi-thread runtime its worker hands its other tasks on first
/// (`block_in_place`); elsewhere (a current-thread runtime, in tests) it just runs.
fn cpu<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// The release commit's prompts, when a release applies and the pass plans every
/// file (an incremental pass leaves the release alone: it is as the baseline left it).
fn release_prompts(pass: &Pass, every_file: bool) -> Option<Vec<DesiredPrompt>> {
    pass.release
        .as_ref()
        .filter(|_| every_file)
        .map(|(_, set)| set.prompts.clone())
}

/// Log that an incremental pass plans every file: the changed file at `path` shares
/// the remote prompt `id` with a file it would have carried.
fn full_plan_instead(path: &str, id: &str) {
    tracing::info!(
        file = path,
        prompt_id = id,
        "a changed file resolves to a prompt that an unchanged file syncs: planning every file"
    );
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
fn stalled(outcomes: &[Option<Outcome>]) -> Result<(), ApiError> {
    match outcomes
        .iter()
        .flatten()
        .find_map(|o| o.as_ref().err().filter(|f| f.stops_run()))
    {
        Some(failed) => Err(failed.error.clone()),
        None => Ok(()),
    }
}

/// Prompts to read again: by id (with the name, when known, so that a prompt that
/// cannot be read again is never created a second time by name), and by name where a
/// deploy may have created a prompt without learning its id.
#[derive(Debug, Default)]
struct Touched {
    ids: BTreeMap<String, Option<String>>,
    names: BTreeSet<String>,
}

/// The prompts the deploy step sent anything for, failed or not.
fn touched(items: &[DeployItem], outcomes: &[Option<Outcome>]) -> Touched {
    let mut touched = Touched::default();
    for (item, outcome) in items.iter().zip(outcomes) {
        if !matches!(item.step, DeployStep::Deploy { .. }) {
            continue;
        }
        let planned = item.target.as_ref().and_then(Target::id).map(str::to_owned);
        let id = match outcome {
            Some(Ok(applied)) => Some(applied.prompt_id.clone()),
            Some(Err(failed)) => failed.prompt_id.clone().or(planned),
            None => planned,
        };
        match (id, &item.target) {
            (Some(id), target) => {
                let name = match target {
                    Some(Target::New(new)) => Some(new.name.clone()),
                    _ => None,
                };
                touched.ids.insert(id, name);
            }
            (None, Some(Target::New(new))) => {
                touched.names.insert(new.name.clone());
            }
            (None, _) => {}
        }
    }
    touched
}

/// The desired state of the source, and of the release commit when a tag applies.
async fn load(
    settings: &Settings,
    options: &PassOptions,
    halves: Halves,
) -> Result<(DesiredSet, Option<(Release, DesiredSet)>), Error> {
    let settings = settings.clone();
    let options = options.clone();
    tokio::task::spawn_blocking(move || {
        // The repository path may be a link that kubernetes git-sync swaps to a new
        // worktree at any moment: read again when it moved during the read, so that
        // what is read is one revision, named as the link named it.
        for attempt in 1..=MOVED_RETRIES {
            let before = resolved(&settings.repo);
            let read = read_sources(&settings, &options, halves);
            if resolved(&settings.repo) == before {
                return read;
            }
            tracing::info!(attempt, repo = %settings.repo.display(), "the repository moved during the read (a git-sync swap?); reading it again");
        }
        read_sources(&settings, &options, halves)
    })
    .await
    .map_err(|err| Error::Internal(format!("loading the repository: {err}")))?
}

/// Reads of a repository whose path moved under them before one is stable.
const MOVED_RETRIES: u32 = 5;

/// Where `path` leads now, links followed (`None` when it leads nowhere).
fn resolved(path: &std::path::Path) -> Option<std::path::PathBuf> {
    std::fs::canonicalize(path).ok()
}

/// The desired state of the source and, when a release tag applies, of its commit.
fn read_sources(
    settings: &Settings,
    options: &PassOptions,
    halves: Halves,
) -> Result<(DesiredSet, Option<(Release, DesiredSet)>), Error> {
    let mut cache = options.cache.as_ref().map(|cache| {
        cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    });
    let read = match halves {
        Halves::Both => read_trees(settings, options, cache.as_deref_mut()),
        Halves::DeployOnly => read_release(settings, cache.as_deref_mut()),
    };
    if let Some(cache) = cache.as_deref_mut() {
        let reused = cache.sweep();
        tracing::debug!(
            reused,
            kept = cache.len(),
            "prompt files taken from the cache"
        );
    }
    read
}

/// [`read_sources`], with the cache.
fn read_trees(
    settings: &Settings,
    options: &PassOptions,
    mut cache: Option<&mut LoadCache>,
) -> Result<(DesiredSet, Option<(Release, DesiredSet)>), Error> {
    let repo = GitRepo::open(&settings.repo)?;
    let source = desired::load_with(
        &repo,
        &options.source,
        &settings.prompts,
        cache.as_deref_mut(),
    )?;
    if !(options.deploy && settings.deploy.enabled) || settings.deploy.live == Live::None {
        return Ok((source, None));
    }
    let release = match settings.deploy.live {
        Live::Branch => branch_release(&source, &options.source),
        _ => newest_release(&repo, settings)?,
    };
    let Some(release) = release else {
        return Ok((source, None));
    };
    tracing::debug!(tag = release.tag, commit = release.commit, "release");
    let set = if !source.source.worktree
        && source.source.commit.as_deref() == Some(release.commit.as_str())
    {
        source.clone()
    } else {
        desired::load_with(
            &repo,
            &SourceRev::Commit(release.commit.clone()),
            &settings.prompts,
            cache,
        )?
    };
    Ok((source, Some((release, set))))
}

/// A target with `live = "branch"`: the synced commit is the release (named by the
/// revision read, `HEAD` by default); none for the working tree.
fn branch_release(source: &DesiredSet, rev: &SourceRev) -> Option<Release> {
    let commit = source
        .source
        .commit
        .clone()
        .filter(|_| !source.source.worktree)?;
    let name = match rev {
        SourceRev::Commit(rev) => rev.clone(),
        SourceRev::Worktree => return None,
    };
    Some(Release {
        tag: name,
        commit,
        date: 0,
        annotated: false,
    })
}

/// The newest tag that matches `deploy.tags`, if any.
fn newest_release(repo: &GitRepo, settings: &Settings) -> Result<Option<Release>, Error> {
    let scan = repo.tags()?;
    for skipped in &scan.skipped {
        tracing::warn!(tag = skipped.name, reason = skipped.reason, "skipped tag");
    }
    let release = deploy::select_release(&scan.tags, &settings.deploy.tags)?;
    match &release {
        Some(release) => tracing::info!(tag = release.tag, commit = release.commit, "release"),
        None => tracing::debug!(patterns = ?settings.deploy.tags, "no release tag matches"),
    }
    Ok(release)
}

/// The release alone, for a deploy-only pass: its desired state, and as the source an
/// empty set that names the release commit (nothing of the source is synced).
fn read_release(
    settings: &Settings,
    cache: Option<&mut LoadCache>,
) -> Result<(DesiredSet, Option<(Release, DesiredSet)>), Error> {
    if !settings.deploy.enabled || settings.deploy.live == Live::None {
        return Err(deploy::DeployError::Disabled.into());
    }
    let repo = GitRepo::open(&settings.repo)?;
    let release = if settings.deploy.live == Live::Branch {
        let head = repo.resolve_commit("HEAD")?;
        Some(Release {
            tag: "HEAD".to_owned(),
            commit: head.id,
            date: 0,
            annotated: false,
        })
    } else {
        newest_release(&repo, settings)?
    };
    let release = release.ok_or_else(|| deploy::DeployError::NoRelease {
        patterns: settings.deploy.tags.join(", "),
    })?;
    let set = desired::load_with(
        &repo,
        &SourceRev::Commit(release.commit.clone()),
        &settings.prompts,
        cache,
    )?;
    let source = DesiredSet {
        source: set.source.clone(),
        prompts: Vec::new(),
        diagnostics: Vec::new(),
        files: Vec::new(),
    };
    Ok((source, Some((release, set))))
}

/// Reads of the remote for one pass. A read that fails for one prompt is recorded in
/// the [`Remote`] (the prompt's items then fail with the reason); only a stalled
/// error is returned, or a failure of the snapshot's list itself.
struct Reader<'a> {
    client: &'a Client,
    limit: usize,
    warnings: Vec<String>,
    /// The whole account, listed for the prompts no file names (when asked for), each
    /// prompt kept small until it is known whether a file names it.
    account: Option<Result<Listing<AccountPrompt>, ApiError>>,
    /// What that listing found.
    unmanaged_found: Option<Vec<Unmanaged>>,
    /// A snapshot listing that failed: the pass runs for the prompts it did not
    /// concern, then ends with this error (its class decides what comes next).
    failed_listing: Option<ApiError>,
    /// The snapshot is older than a round of reads: it came from the account listing
    /// (pages that ran while the files were read), or version lists were read or the
    /// deploy step wrote since. A write then reads its prompts again first
    /// ([`Reader::refresh`]).
    stale: std::cell::Cell<bool>,
    /// The reads that failed a prompt (see [`Pass::failed_reads`]).
    failed_reads: Vec<ApiError>,
}

/// What a prompt list was asked for, to attribute an item that names nothing.
#[derive(Debug, Clone, Copy)]
enum Asked<'a> {
    Ids(&'a BTreeSet<String>),
    Names(&'a BTreeSet<String>),
}

impl Reader<'_> {
    /// The remote prompts the repository names: listed by id and by name, 100 a page,
    /// with their current and live versions complete.
    async fn snapshot(
        &mut self,
        source: &[DesiredPrompt],
        release: Option<&[DesiredPrompt]>,
    ) -> Result<Remote, ApiError> {
        let mut ids = BTreeSet::new();
        let mut names = BTreeSet::new();
        for desired in source.iter().chain(release.into_iter().flatten()) {
            match &desired.key {
                PromptKey::Id(id) => ids.insert(id.clone()),
                PromptKey::Name(name) => names.insert(name.clone()),
            };
        }
        match self.account_snapshot(&ids, &names)? {
            // The whole account was listed for the unmanaged prompts: the snapshot
            // comes from that listing, at no extra request.
            Some(mut remote) => {
                self.stale.set(true);
                let failures = self.complete(remote.prompts.values_mut()).await?;
                for (id, reason) in failures {
                    remote.unreadable.insert(id, reason);
                }
                Ok(remote)
            }
            None => self.listed_remote(&ids, &names).await,
        }
    }

    /// The prompts with these ids or names, listed (100 a page, by id and by name at
    /// once) with their current and live versions complete.
    async fn listed_remote(
        &mut self,
        ids: &BTreeSet<String>,
        names: &BTreeSet<String>,
    ) -> Result<Remote, ApiError> {
        let (by_id, by_name) = tokio::join!(
            list_in(self.client, "prompt_id", ids),
            list_in(self.client, "name", names)
        );
        // With nothing else to sync, a failed listing ends the pass at once.
        let (by_id, by_name) = match (by_id, by_name) {
            (Err(err), _) if names.is_empty() => return Err(err),
            (_, Err(err)) if ids.is_empty() => return Err(err),
            (Err(err), Err(_)) => return Err(err),
            both => both,
        };
        let mut remote = Remote::default();
        let by_id = self.listing_or_hold(by_id, Asked::Ids(ids), &mut remote)?;
        let by_name = self.listing_or_hold(by_name, Asked::Names(names), &mut remote)?;
        self.distrust(&mut remote, &by_id, Asked::Ids(ids));
        self.distrust(&mut remote, &by_name, Asked::Names(names));
        remote.add(by_id.items.into_iter().chain(by_name.items));
        self.attribute(&mut remote, &by_id.problems, Asked::Ids(ids));
        self.attribute(&mut remote, &by_name.problems, Asked::Names(names));
        let failures = self.complete(remote.prompts.values_mut()).await?;
        for (id, reason) in failures {
            remote.unreadable.insert(id, reason);
        }
        Ok(remote)
    }

    /// A snapshot listing, or, when it failed while the other one worked, an empty one
    /// with every prompt it was asked for marked unreadable with the reason: those
    /// prompts fail, the others still sync, and the failure ends the pass once it has
    /// run ([`Reader::failed_listing`]). A failure that stops the run is returned.
    fn listing_or_hold(
        &mut self,
        listed: Result<Listing<Prompt>, ApiError>,
        asked: Asked<'_>,
        remote: &mut Remote,
    ) -> Result<Listing<Prompt>, ApiError> {
        let err = match listed {
            Ok(listing) => return Ok(listing),
            Err(err) if err.stops_run() => return Err(err),
            Err(err) => err,
        };
        tracing::warn!(error = %err, "a prompt list failed; the prompts it was for are not synced this pass");
        let reason = format!("the prompt list failed: {err}");
        let (keys, by_id) = match asked {
            Asked::Ids(ids) => (ids, true),
            Asked::Names(names) => (names, false),
        };
        hold_back(remote, keys.iter().cloned().collect(), by_id, &reason);
        self.failed_listing.get_or_insert(err);
        Ok(Listing::default())
    }

    /// A listing that may be missing items (its pages disagree with its `count`): every
    /// prompt asked for that it did not return is marked unreadable with the reason,
    /// so that none is taken as absent (and created again by name); the pass gets a
    /// warning. The prompts it did return are real and sync.
    fn distrust(&mut self, remote: &mut Remote, listing: &Listing<Prompt>, asked: Asked<'_>) {
        let Some(untrusted) = &listing.untrusted else {
            return;
        };
        let reason = format!("the prompt list is incomplete: {untrusted}");
        tracing::warn!(problem = %reason, "a prompt list cannot be trusted to be complete");
        let (missing, by_id): (Vec<String>, bool) = match asked {
            Asked::Ids(ids) => (
                ids.iter()
                    .filter(|id| !listing.items.iter().any(|p| p.id() == Some(id.as_str())))
                    .cloned()
                    .collect(),
                true,
            ),
            Asked::Names(names) => (
                names
                    .iter()
                    .filter(|name| !listing.items.iter().any(|p| p.name.as_ref() == Some(*name)))
                    .cloned()
                    .collect(),
                false,
            ),
        };
        if missing.is_empty() {
            return;
        }
        self.warnings.push(format!(
            "{reason}; the {} prompt(s) it did not return are not synced this pass",
            missing.len()
        ));
        hold_back(remote, missing, by_id, &reason);
    }

    /// Read again, just before a plan is applied, the prompts it creates something on
    /// (`plan::fresh`): whether they changed since the snapshot (another writer), in
    /// which case `remote` has their new state and the plan must be made again. One
    /// list request per 100 prompts and per kind (ids, names); nothing when the plan
    /// creates nothing, or when the snapshot is the filtered lists just read (a
    /// daemon's pass after a commit), which a second read would hardly make fresher.
    async fn refresh(&mut self, writes: &Writes, remote: &mut Remote) -> Result<bool, ApiError> {
        // A snapshot of one round of reads just taken is as fresh as a second read.
        if writes.is_empty() || !self.stale.get() {
            return Ok(false);
        }
        let fresh = self.listed_remote(&writes.ids, &writes.names).await?;
        self.stale.set(false);
        let changed = remote.refresh(writes, fresh);
        if changed {
            tracing::info!(
                prompts = writes.ids.len(),
                names = writes.names.len(),
                "the remote changed since it was read (another writer?): planning again"
            );
        }
        Ok(changed)
    }

    /// Record the list items that could not be read on the prompts they name. One
    /// that does not name what the list was asked for may be any prompt asked for
    /// that did not come back: those are marked too (so none is created twice), and
    /// the pass gets a warning.
    fn attribute(&mut self, remote: &mut Remote, problems: &[ItemProblem], asked: Asked<'_>) {
        for problem in problems {
            let reason = problem.to_string();
            tracing::warn!(
                prompt_id = problem.prompt_id,
                name = problem.name,
                problem = %reason,
                "a listed prompt could not be read"
            );
            remote.mark_unreadable(
                problem.prompt_id.as_deref(),
                problem.name.as_deref(),
                &reason,
            );
            let unnamed = match asked {
                Asked::Ids(ids) => {
                    let missing: Vec<String> = ids
                        .iter()
                        .filter(|id| !remote.prompts.contains_key(*id))
                        .cloned()
                        .collect();
                    problem.prompt_id.is_none().then_some((missing, true))
                }
                Asked::Names(names) => {
                    let known = remote.ids_by_name();
                    let missing: Vec<String> = names
                        .iter()
                        .filter(|name| !known.contains_key(name.as_str()))
                        .cloned()
                        .collect();
                    problem.name.is_none().then_some((missing, false))
                }
            };
            let Some((missing, by_id)) = unnamed else {
                continue;
            };
            self.warnings.push(format!(
                "the prompt list: {reason}; it names no prompt, so the {} prompt(s) the list did not return are not synced this pass",
                missing.len()
            ));
            hold_back(remote, missing, by_id, &reason);
        }
    }

    /// Fetch the full objects of current and live versions that came as summaries (a
    /// server may list `{version, model, updated_at}` only). Returns the prompts whose
    /// versions could not be read, with why.
    async fn complete<'p>(
        &mut self,
        prompts: impl Iterator<Item = &'p mut Prompt>,
    ) -> Result<Vec<(String, String)>, ApiError> {
        let mut slots: Vec<(String, &'p mut Version)> = Vec::new();
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
        let wanted: Vec<(usize, String, u64)> = slots
            .iter()
            .enumerate()
            .map(|(slot, (id, version))| (slot, id.clone(), version.number))
            .collect();
        let client = self.client;
        let fetched: Vec<(usize, Result<Version, ApiError>)> = stream::iter(wanted)
            .map(|(slot, id, number)| async move {
                let span = tracing::info_span!("prompt", prompt_id = %id, version = number);
                (slot, client.get_version(&id, number).instrument(span).await)
            })
            .buffer_unordered(self.limit)
            .collect()
            .await;
        let mut failures = Vec::new();
        for (slot, result) in fetched {
            let (id, version) = &mut slots[slot];
            match result {
                Ok(full) => **version = full,
                Err(err) if err.stops_run() => return Err(err),
                Err(err) => {
                    tracing::warn!(prompt_id = %id, version = version.number, error = %err, "cannot read a version in full");
                    self.failed_reads.push(err.clone());
                    failures.push((
                        id.clone(),
                        format!("reading v{} in full: {err}", version.number),
                    ));
                }
            }
        }
        Ok(failures)
    }

    /// Every version of the given prompts, concurrently, into `remote.versions`; a
    /// list that could not be read in full says why in its [`History`].
    async fn histories(&mut self, ids: &[String], remote: &mut Remote) -> Result<(), ApiError> {
        if !ids.is_empty() {
            // A round of reads later, the snapshot is older than a second read would be.
            self.stale.set(true);
        }
        let client = self.client;
        let listed = self.each(ids, |id| client.list_versions(id)).await;
        for (id, result) in listed {
            let history = match result {
                Err(err) if err.stops_run() => return Err(err),
                Err(err) => {
                    tracing::warn!(prompt_id = %id, error = %err, "cannot list the versions");
                    self.failed_reads.push(err.clone());
                    History {
                        versions: Vec::new(),
                        incomplete: Some(err.to_string()),
                    }
                }
                Ok(listing) => {
                    let mut problems: Vec<String> =
                        listing.problems.iter().map(ToString::to_string).collect();
                    for problem in &problems {
                        tracing::warn!(prompt_id = %id, problem, "a listed version could not be read");
                    }
                    if let Some(untrusted) = listing.untrusted {
                        tracing::warn!(prompt_id = %id, problem = %untrusted, "the version list cannot be trusted to be complete");
                        problems.push(format!("it is incomplete: {untrusted}"));
                    }
                    History {
                        versions: listing.items,
                        incomplete: (!problems.is_empty())
                            .then(|| format!("the version list: {}", problems.join("; "))),
                    }
                }
            };
            remote.versions.insert(id.clone(), history);
        }
        Ok(())
    }

    /// Read the given prompts again (after a deploy changed them or may have), by id
    /// (one request each, or the list endpoint when that takes fewer) and by name. A
    /// prompt that cannot be read again is marked unreadable: its sync would act on a
    /// stale snapshot.
    async fn reread(&mut self, touched: &Touched, remote: &mut Remote) -> Result<(), ApiError> {
        // It follows the deploy's writes: what was not read again is older now.
        if !touched.ids.is_empty() || !touched.names.is_empty() {
            self.stale.set(true);
        }
        let client = self.client;
        let mut fresh: Vec<Prompt> = Vec::new();
        let mut lost: Vec<(&String, String)> = Vec::new();
        if touched.ids.len() > self.limit {
            let ids: BTreeSet<String> = touched.ids.keys().cloned().collect();
            match client
                .list_prompts(&filter_in("prompt_id", ids.iter().cloned()))
                .await
            {
                Ok(listing) => fresh.extend(self.listed(listing, Asked::Ids(&ids), remote)),
                Err(err) if err.stops_run() => return Err(err),
                Err(err) => {
                    self.failed_reads.push(err.clone());
                    lost.extend(touched.ids.keys().map(|id| (id, err.to_string())));
                }
            }
            for id in touched.ids.keys() {
                if !fresh.iter().any(|p| p.id() == Some(id.as_str()))
                    && !lost.iter().any(|(lost, _)| *lost == id)
                {
                    lost.push((id, "not found".into()));
                }
            }
        } else {
            let got = self
                .each(touched.ids.keys(), |id| client.get_prompt(id))
                .await;
            for (id, result) in got {
                match result {
                    Ok(prompt) => fresh.push(prompt),
                    Err(err) if err.stops_run() => return Err(err),
                    Err(err) => {
                        self.failed_reads.push(err.clone());
                        lost.push((id, err.to_string()));
                    }
                }
            }
        }
        for (id, error) in lost {
            tracing::warn!(prompt_id = %id, error, "cannot read the prompt again after the deploy");
            let name = touched.ids[id]
                .clone()
                .or_else(|| remote.prompts.get(id).and_then(|p| p.name.clone()));
            let reason = format!("reading it again after the deploy: {error}");
            remote.mark_unreadable(Some(id), name.as_deref(), &reason);
        }
        if !touched.names.is_empty() {
            match client
                .list_prompts(&filter_in("name", touched.names.iter().cloned()))
                .await
            {
                Ok(listing) => {
                    fresh.extend(self.listed(listing, Asked::Names(&touched.names), remote));
                }
                Err(err) if err.stops_run() => return Err(err),
                Err(err) => {
                    self.failed_reads.push(err.clone());
                    let reason = format!("reading it again after the deploy: {err}");
                    for name in &touched.names {
                        remote.mark_unreadable(None, Some(name), &reason);
                    }
                }
            }
        }
        let failures = self.complete(fresh.iter_mut()).await?;
        for prompt in fresh {
            if let Some(id) = prompt.id().map(str::to_owned) {
                remote.versions.remove(&id);
                remote.unreadable.remove(&id);
                remote.prompts.insert(id, prompt);
            }
        }
        for (id, reason) in failures {
            remote.unreadable.insert(id, reason);
        }
        Ok(())
    }

    /// `read` for each prompt id, `limit` at a time, each in its prompt's span.
    async fn each<'i, T, Fut>(
        &self,
        ids: impl IntoIterator<Item = &'i String>,
        read: impl Fn(&'i String) -> Fut,
    ) -> Vec<(&'i String, Result<T, ApiError>)>
    where
        Fut: Future<Output = Result<T, ApiError>>,
    {
        stream::iter(ids)
            .map(|id| {
                let span = tracing::info_span!("prompt", prompt_id = %id);
                let read = read(id);
                async move { (id, read.instrument(span).await) }
            })
            .buffer_unordered(self.limit)
            .collect()
            .await
    }

    /// The whole account's listing, when it was asked for: the prompts named by `ids`
    /// or `names` make the snapshot, the others are the unmanaged prompts. `None` when
    /// not asked, or when the listing failed (a warning; the filtered lists are read
    /// instead).
    fn account_snapshot(
        &mut self,
        ids: &BTreeSet<String>,
        names: &BTreeSet<String>,
    ) -> Result<Option<Remote>, ApiError> {
        let Some(account) = self.account.take() else {
            return Ok(None);
        };
        let listing = match account {
            Ok(Listing {
                untrusted: Some(untrusted),
                ..
            }) => {
                self.warnings.push(format!(
                    "cannot list the whole account for unmanaged prompts: the listing is \
                     incomplete: {untrusted}"
                ));
                return Ok(None);
            }
            Ok(listing) => listing,
            Err(err) if err.stops_run() => return Err(err),
            Err(err) => {
                self.warnings.push(format!(
                    "cannot list the whole account for unmanaged prompts: {err}"
                ));
                return Ok(None);
            }
        };
        // The prompts the files name are read in full; of the others only what the
        // unmanaged report says is kept.
        let mut wanted = Vec::new();
        let mut unmanaged = Vec::new();
        for item in listing.items {
            if ids.contains(&item.prompt_id)
                || item.name.as_ref().is_some_and(|name| names.contains(name))
            {
                wanted.push(item);
            } else {
                unmanaged.push(Unmanaged {
                    prompt_id: item.prompt_id,
                    name: item.name,
                    live_version: item.live_version,
                    newest_version: item.current_version,
                });
            }
        }
        // Each named prompt's text is decoded on its own: on every core for thousands.
        let client = self.client;
        let threads = vec![(); threads_for(wanted.len())];
        // Once one fails the snapshot is not taken from this listing: the rest are not
        // decoded (nor counted against what the pass may hold).
        let failed = std::sync::atomic::AtomicBool::new(false);
        let decoded = cpu(|| {
            on_all_cores(wanted, threads, |(), item| {
                if failed.load(std::sync::atomic::Ordering::Relaxed) {
                    return None;
                }
                let read = client.full_prompt(&item);
                if read.is_err() {
                    failed.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                Some(read)
            })
        });
        let named = match decoded
            .into_iter()
            .flatten()
            .collect::<Result<Vec<Prompt>, ApiError>>()
        {
            Ok(named) => named,
            Err(err) => {
                self.warnings.push(format!(
                    "cannot list the whole account for unmanaged prompts: {err}"
                ));
                return Ok(None);
            }
        };
        let mut remote = Remote::new(named);
        self.attribute(&mut remote, &listing.problems, Asked::Ids(ids));
        self.attribute(&mut remote, &listing.problems, Asked::Names(names));
        self.unmanaged_found = Some(unmanaged);
        Ok(Some(remote))
    }

    /// The prompts of a listing, its problems recorded (and what it may miss).
    fn listed(
        &mut self,
        listing: Listing<Prompt>,
        asked: Asked<'_>,
        remote: &mut Remote,
    ) -> Vec<Prompt> {
        self.distrust(remote, &listing, asked);
        self.attribute(remote, &listing.problems, asked);
        listing.items
    }
}

/// Mark prompts asked for that a listing did not return (by id, or by name) unreadable
/// for `reason`, so that none is taken as absent and created again.
fn hold_back(remote: &mut Remote, missing: Vec<String>, by_id: bool, reason: &str) {
    let map = if by_id {
        &mut remote.unreadable
    } else {
        &mut remote.unreadable_names
    };
    for key in missing {
        map.entry(key).or_insert_with(|| reason.to_owned());
    }
}

/// The prompts whose `field` is one of `values` (none asked, none listed).
async fn list_in(
    client: &Client,
    field: &str,
    values: &BTreeSet<String>,
) -> Result<Listing<Prompt>, ApiError> {
    if values.is_empty() {
        return Ok(Listing::default());
    }
    client
        .list_prompts(&filter_in(field, values.iter().cloned()))
        .await
}
