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

use std::collections::{BTreeSet, HashMap};

use tracing::Instrument;

use crate::api::{ApiError, Arrived, Client, InFull, MayWrite};
use crate::apply::{self, Observer, Outcome};
use crate::baseline::Baseline;
use crate::config::{DriftPolicy, Settings};
use crate::deploy::Release;
use crate::desired::{DesiredPrompt, DesiredSet, LoadCache, PromptKey, SourceInfo, SourceRev};
use crate::plan::{self, DeployStep, ReleaseRef, Remote, SyncItem};

/// What a pass should do.
#[derive(Debug, Clone)]
pub(crate) struct PassOptions {
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
    pub(crate) fn command_line(
        source: SourceRev,
        dry_run: bool,
        deploy: bool,
        unmanaged: bool,
    ) -> Self {
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

mod early;
mod reader;
mod source;

pub(crate) use crate::pass::{Pass, PassError, Unmanaged};
use early::{Early, Taken};
use reader::{Reader, Touched, touched};
use source::load;

/// Run one pass. Per-prompt failures are in the returned [`Pass`]; a problem that ends
/// the pass (unreadable repository, unreachable API, a refused key) is a [`PassError`]
/// with the part of the pass done before it.
pub(crate) async fn run(
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
pub(crate) async fn deploy_only(
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

/// A pass, with the writer of the versions that go out as their page arrives running
/// beside it from the listing's start to the pass's end.
async fn run_pass(
    settings: &Settings,
    client: &Client,
    options: &PassOptions,
    halves: Halves,
    observer: &dyn Observer,
) -> Result<Pass, PassError> {
    let limit = settings.api.max_in_flight.max(1);
    let (early, arrivals, written) = Early::new();
    let writer = early::write(arrivals, client, limit, observer, written);
    let pass = run_beside(settings, client, options, halves, observer, &early);
    tokio::join!(pass, writer).0
}

async fn run_beside(
    settings: &Settings,
    client: &Client,
    options: &PassOptions,
    halves: Halves,
    observer: &dyn Observer,
    early: &Early,
) -> Result<Pass, PassError> {
    let suspended = settings.sync.suspend;
    let apply = !options.dry_run && !suspended;
    // The account-wide listing (for the unmanaged prompts, and the snapshot with
    // them) does not depend on the files: it runs while they are read. Once they are
    // read, a pass that plans every file has the prompts they name read in full as
    // their pages arrive, not after the last one.
    let in_full = std::sync::OnceLock::new();
    let account = async {
        let listed = if options.unmanaged {
            Some(client.list_account(&in_full).await)
        } else {
            None
        };
        early.close();
        listed
    };
    let loaded = async {
        let loaded = load(settings, options, halves).await;
        if let Ok((source, release)) = &loaded {
            if apply {
                let commit = source.source.commit.as_deref();
                observer.read(commit.filter(|_| !source.source.worktree));
            }
            if applying(options.since.as_deref(), settings, release.as_ref()).is_none() {
                // Only a pass that may write has a second read to spare.
                let arrived = (apply && halves == Halves::Both)
                    .then(|| early.on_arrival(source, release.as_ref(), settings.sync.drift));
                let named = named(source, release.as_ref(), apply.then_some(early), arrived);
                let _ = in_full.set(std::sync::Arc::new(named));
            }
        }
        loaded
    };
    let (loaded, account) = tokio::join!(loaded, account);
    let (source, release) = loaded.map_err(|err| PassError::new(err, None))?;
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
        fresh: reader::Freshness::Fresh,
        again: None,
        failed_reads: Vec::new(),
    };
    let result = reconcile(
        &mut pass,
        &mut reader,
        settings,
        options.since.as_deref(),
        (apply, halves),
        (observer, early),
    )
    .await;
    // Written as its page arrived, by a pass that ended before its plan took it.
    pass.sync.extend(early.written().await.rest());
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
    (observer, early): (&dyn Observer, &Early),
) -> Result<(), ApiError> {
    let client = reader.client;
    let limit = reader.limit;
    // An incremental pass: the release and settings are as they were, so only the
    // prompts that changed since the baseline need a look, unless one of them touches
    // the identity of a prompt it carries (see `incremental`).
    let baseline = applying(since, settings, pass.release.as_ref());
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
        // The deploy plans on what the listing's last round read again.
        reader.settle(&mut remote).await?;
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
    let source = &pass.source.source;
    let drift = settings.sync.drift;
    let mut items = plan_sync(reader, &mut remote, sources, source, drift).await?;
    // Planned while what the listing's last round read again was on its way.
    if reader.settle(&mut remote).await? {
        items = plan_sync(reader, &mut remote, sources, source, drift).await?;
    }
    // What went out as its page arrived is not read again: that read was its page.
    let mut writes = plan::sync_writes(&items);
    writes.ids.retain(|id| !early.took(id));
    if apply && reader.refresh(&writes, &mut remote).await? {
        items = plan_sync(reader, &mut remote, sources, source, drift).await?;
    }
    if apply {
        // Sent beside these, and kept in their place once all are done.
        let sent = |item: &SyncItem| early.took_file(&item.path);
        observer.planned(items.iter().filter(|i| i.is_change() && !sent(i)).count());
        let mut outcomes = apply::apply_sync(client, &items, &sent, limit, observer).await;
        early.written().await.into_plan(&mut items, &mut outcomes);
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
    if apply {
        // Its owner decides when it is freed (a one-shot command leaves it to exit).
        pass.remote = remote;
    }
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

/// The sync plan of `sources` on `remote`, with the version histories it needs read
/// first.
async fn plan_sync(
    reader: &mut Reader<'_>,
    remote: &mut Remote,
    sources: &[DesiredPrompt],
    source: &SourceInfo,
    drift: DriftPolicy,
) -> Result<Vec<SyncItem>, ApiError> {
    let searches = plan::history_searches(sources, remote);
    reader.histories(&searches, remote).await?;
    Ok(cpu(|| plan::plan_sync(sources, source, remote, drift)))
}

/// The baseline of an incremental pass: `since`, when the release and the settings
/// are as they were.
fn applying<'b>(
    since: Option<&'b Baseline>,
    settings: &Settings,
    release: Option<&(Release, DesiredSet)>,
) -> Option<&'b Baseline> {
    let release_id = release.map(|(r, _)| (r.tag.as_str(), r.commit.as_str()));
    since.filter(|baseline| baseline.applies(settings, release_id))
}

/// The prompts a pass that plans every file reads: those its source and release name;
/// when the pass may write, read in one round (`one_round`), or else those it may
/// write read again beside the listing's last round (`may_write`), but for the ones
/// written as their page arrived (`early`, told of each by `arrived`).
fn named(
    source: &DesiredSet,
    release: Option<&(Release, DesiredSet)>,
    early: Option<&Early>,
    arrived: Option<Arrived>,
) -> InFull {
    let release_prompts = release
        .map(|(_, set)| set.prompts.as_slice())
        .unwrap_or_default();
    let (ids, names) = keys(source.prompts.iter().chain(release_prompts));
    InFull {
        ids,
        names,
        one_round: early.is_some(),
        may_write: early.map(|early| may_write(&source.prompts, early.taken())),
        arrived,
    }
}

/// Whether the sync of `source` may create a version on a prompt: a file that syncs
/// names it (by id or by name), it was not written as its page arrived, and its
/// newest version is neither that file's (its provenance) nor the same content made
/// by hand (`plan::may_create_on`). A version of ours edited in place since is not
/// told from the provenance: what the plan then writes that this did not say is read
/// again before writing.
fn may_write(source: &[DesiredPrompt], early: Taken) -> MayWrite {
    let mut by_id: HashMap<String, Vec<DesiredPrompt>> = HashMap::new();
    let mut by_name: HashMap<String, Vec<DesiredPrompt>> = HashMap::new();
    for desired in source.iter().filter(|desired| desired.sync) {
        let (map, key) = match &desired.key {
            PromptKey::Id(id) => (&mut by_id, id),
            PromptKey::Name(name) => (&mut by_name, name),
        };
        map.entry(key.clone()).or_default().push(desired.clone());
    }
    Box::new(move |prompt| {
        if prompt.id().is_some_and(|id| early.took(id)) {
            return false;
        }
        let by_id = prompt.id().and_then(|id| by_id.get(id));
        let by_name = prompt.name.as_ref().and_then(|name| by_name.get(name));
        by_id
            .into_iter()
            .chain(by_name)
            .flatten()
            .any(|desired| plan::may_create_on(prompt, &desired.spec, desired.digest()))
    })
}

/// The remote prompts that `prompts` name: by id, and by name.
fn keys<'p>(
    prompts: impl Iterator<Item = &'p DesiredPrompt>,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut ids, mut names) = (BTreeSet::new(), BTreeSet::new());
    for desired in prompts {
        match &desired.key {
            PromptKey::Id(id) => ids.insert(id.clone()),
            PromptKey::Name(name) => names.insert(name.clone()),
        };
    }
    (ids, names)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::{Applied, Failed};

    fn ok() -> Option<Outcome> {
        Some(Ok(Applied {
            prompt_id: "prm_a".into(),
            version: Some(1),
            created_prompt: false,
            created_version: false,
        }))
    }

    fn failed(error: ApiError) -> Option<Outcome> {
        Some(Err(Failed::from(error)))
    }

    fn refused() -> ApiError {
        ApiError::Unauthorized {
            target: crate::api::Target {
                method: "POST",
                path: "/api/prompts/".into(),
            },
            status: 401,
            detail: "no".into(),
        }
    }

    /// Items not applied are not counted; a refused key ends the run, another failure
    /// fails its prompt only.
    #[test]
    fn outcomes_are_counted_and_only_a_refused_key_ends_the_run() {
        let outcomes = vec![ok(), None, failed(ApiError::NotAttempted("x".into())), ok()];
        assert_eq!(count(outcomes.iter()), (2, 1));
        assert!(stalled(&outcomes).is_ok());
        let mut refused_too = outcomes;
        refused_too.push(failed(refused()));
        assert!(matches!(
            stalled(&refused_too),
            Err(ApiError::Unauthorized { status: 401, .. })
        ));
    }
}
