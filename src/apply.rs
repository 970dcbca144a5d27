//! Run plans through the API client with bounded concurrency. One prompt's failure
//! does not stop the others; a stalled error (a refused key) stops the items not yet
//! started. Every change that is not safe to resend carries a recovery that re-reads
//! the remote, so a lost reply never leads to a duplicate. A failed item keeps what it
//! had done (the prompt it created, the version it created) so the pass can re-read
//! it and the report can show it. Knows nothing about git.

use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::stream::{self, StreamExt};
use serde_json::json;
use tracing::Instrument;

use crate::api::types::{
    BulkItem, CommitBody, CreatePrompt, Prompt, UpdatePrompt, Version, VersionSpec,
};
use crate::api::{ApiError, Client, filter_in};
use crate::normalize;
use crate::plan::{
    self, ContentChange, DeployItem, DeployStep, DeployTarget, NewPrompt, SyncItem, SyncStep,
    Target, VersionWrite,
};

/// Most items in one bulk request (respan-api.md 2.8).
const BULK_LIMIT: usize = 100;

/// What applying one item did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub prompt_id: String,
    /// The version created or edited (sync), or the version that went live (deploy).
    pub version: Option<u64>,
    /// The prompt was created by this item.
    pub created_prompt: bool,
    /// The deploy created the version with the release content.
    pub created_version: bool,
}

/// How applying one item failed, and what it had done before it failed.
#[derive(Debug, Clone)]
pub struct Failed {
    pub error: ApiError,
    /// The prompt's id, when known (it existed, or this item created it).
    pub prompt_id: Option<String>,
    /// The prompt was created by this item.
    pub created_prompt: bool,
    /// The version with the release content (a deploy's), when it was found or made.
    pub version: Option<u64>,
    /// That version was created by this item.
    pub created_version: bool,
    /// The version live when the deploy ended, when known.
    pub live: Option<u64>,
}

impl Failed {
    pub fn stops_run(&self) -> bool {
        self.error.stops_run()
    }
}

impl From<ApiError> for Failed {
    fn from(error: ApiError) -> Failed {
        Failed {
            error,
            prompt_id: None,
            created_prompt: false,
            version: None,
            created_version: false,
            live: None,
        }
    }
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

pub type Outcome = Result<Applied, Failed>;

/// What applying reports as it goes: a progress bar for the CLI, metrics for the
/// daemon. Every method has a default that does nothing.
pub trait Observer: Send + Sync {
    /// `changes` more change items will be applied.
    fn planned(&self, _changes: usize) {}
    /// One change item was applied (or failed).
    fn applied(&self) {}
    /// The pass read its source: the commit it syncs (`None`: the working tree). Comes
    /// before anything is planned or sent, and only when the pass will send.
    fn read(&self, _commit: Option<&str>) {}
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unobserved;

impl Observer for Unobserved {}

/// Progress as log lines, for where no progress bar can be drawn (CI logs, the
/// daemon): one line every [`PROGRESS_EVERY`] while changes are applied, with the
/// count and an estimate of the time left. A pass shorter than that logs nothing.
#[derive(Debug)]
pub struct ProgressLog {
    every: std::time::Duration,
    state: std::sync::Mutex<ProgressState>,
}

/// How often [`ProgressLog`] logs.
pub const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug)]
struct ProgressState {
    planned: usize,
    applied: usize,
    started: std::time::Instant,
    logged: std::time::Instant,
}

impl Default for ProgressLog {
    fn default() -> Self {
        ProgressLog::every(PROGRESS_EVERY)
    }
}

impl ProgressLog {
    /// A line at most every `every`.
    pub fn every(every: std::time::Duration) -> ProgressLog {
        let now = std::time::Instant::now();
        ProgressLog {
            every,
            state: std::sync::Mutex::new(ProgressState {
                planned: 0,
                applied: 0,
                started: now,
                logged: now,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ProgressState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Observer for ProgressLog {
    fn planned(&self, changes: usize) {
        let mut state = self.lock();
        if state.planned == 0 {
            state.started = std::time::Instant::now();
            state.logged = state.started;
        }
        state.planned += changes;
    }

    fn applied(&self) {
        let mut state = self.lock();
        state.applied += 1;
        let now = std::time::Instant::now();
        if now.duration_since(state.logged) < self.every || state.applied >= state.planned {
            return;
        }
        state.logged = now;
        let elapsed = now.duration_since(state.started).as_secs_f64();
        let left = elapsed / state.applied as f64 * (state.planned - state.applied) as f64;
        tracing::info!(
            applied = state.applied,
            planned = state.planned,
            eta_s = left.round() as u64,
            "applying changes: {} of {} done, about {}s left",
            state.applied,
            state.planned,
            left.round() as u64
        );
    }
}

/// Apply the changes of a sync plan; one outcome per item that is a change, `None`
/// for the others. Only changes take in-flight slots, and they finish in any order,
/// so changes scattered among unchanged prompts still run `limit` at a time.
pub async fn apply_sync(
    client: &Client,
    items: &[SyncItem],
    limit: usize,
    observer: &dyn Observer,
) -> Vec<Option<Outcome>> {
    let stalled = AtomicBool::new(false);
    let changes = items
        .iter()
        .enumerate()
        .filter_map(|(index, item)| match &item.step {
            SyncStep::Change { metadata, content } if item.is_change() => {
                Some((index, item, metadata, content.as_ref()))
            }
            _ => None,
        });
    let done: Vec<(usize, Outcome)> = stream::iter(changes)
        .map(|(index, item, metadata, content)| {
            let stalled = &stalled;
            async move {
                let span = tracing::info_span!("prompt", path = %item.path);
                let outcome = if stalled.load(Ordering::Relaxed) {
                    Err(Failed::from(ApiError::NotAttempted(
                        "an earlier request was refused".into(),
                    )))
                } else {
                    sync_item(client, item, metadata, content)
                        .instrument(span)
                        .await
                };
                if outcome.as_ref().is_err_and(Failed::stops_run) {
                    stalled.store(true, Ordering::Relaxed);
                }
                observer.applied();
                (index, outcome)
            }
        })
        .buffer_unordered(limit.max(1))
        .collect()
        .await;
    let mut outcomes: Vec<Option<Outcome>> = (0..items.len()).map(|_| None).collect();
    for (index, outcome) in done {
        outcomes[index] = Some(outcome);
    }
    outcomes
}

async fn sync_item(
    client: &Client,
    item: &SyncItem,
    metadata: &plan::MetadataUpdate,
    content: Option<&ContentChange>,
) -> Outcome {
    let (prompt_id, created_prompt) = ensure_prompt(client, item.target.as_ref()).await?;
    let failed = |error| Failed {
        prompt_id: Some(prompt_id.clone()),
        created_prompt,
        ..Failed::from(error)
    };
    let version = write_content(client, &prompt_id, metadata, content)
        .await
        .map_err(failed)?;
    Ok(Applied {
        prompt_id,
        version,
        created_prompt,
        created_version: false,
    })
}

/// The metadata and content changes of one sync item; the version written.
async fn write_content(
    client: &Client,
    prompt_id: &str,
    metadata: &plan::MetadataUpdate,
    content: Option<&ContentChange>,
) -> Result<Option<u64>, ApiError> {
    if !metadata.is_empty() {
        let body = UpdatePrompt {
            name: metadata.name.as_deref(),
            description: metadata.description.as_deref(),
        };
        client.update_prompt(prompt_id, &body).await?;
        tracing::debug!(prompt_id, "updated prompt metadata");
    }
    let Some(change) = content else {
        return Ok(None);
    };
    let written = match change.write {
        VersionWrite::Create => {
            create_version(client, prompt_id, &change.spec, &change.digest).await?
        }
        VersionWrite::EditDraft(number) => {
            let mut body = normalize::full_body(&change.spec);
            body.insert("description".into(), json!(change.spec.description));
            client.update_version(prompt_id, number, &body).await?
        }
    };
    if change.drift {
        tracing::warn!(
            prompt_id,
            version = written.number,
            "corrected drift: the remote was changed outside promptsync"
        );
    }
    tracing::debug!(prompt_id, version = written.number, fields = ?change.fields, "wrote version");
    Ok(Some(written.number))
}

/// The prompt's id, creating the prompt when the plan says it is new.
async fn ensure_prompt(
    client: &Client,
    target: Option<&Target>,
) -> Result<(String, bool), ApiError> {
    match target {
        Some(Target::Existing(id)) => Ok((id.clone(), false)),
        Some(Target::New(new)) => Ok((create_prompt(client, new).await?, true)),
        Some(Target::Pending(_)) | None => Err(ApiError::NotAttempted(
            "the plan has no remote prompt for this item (a bug: please report it)".into(),
        )),
    }
}

/// Create a prompt; after a lost reply, a prompt with its name that now exists is it.
async fn create_prompt(client: &Client, new: &NewPrompt) -> Result<String, ApiError> {
    let body = CreatePrompt {
        name: &new.name,
        description: new.description.as_deref(),
    };
    let recover = || async {
        let found = client
            .list_prompts(&filter_in("name", [new.name.clone()]))
            .await?;
        let prompt = found
            .items
            .into_iter()
            .find(|p| p.name.as_deref() == Some(new.name.as_str()));
        // An unreadable item may be the prompt, and an incomplete listing may have left
        // it out: creating another could duplicate it.
        let doubt = found.problems.first().map(ToString::to_string).or_else(|| {
            found
                .untrusted
                .map(|why| format!("the listing is incomplete: {why}"))
        });
        match (prompt, doubt) {
            (None, Some(doubt)) => Err(ApiError::Paging {
                target: crate::api::Target {
                    method: "POST",
                    path: "/api/prompts/list/".into(),
                },
                problem: format!("looking for {:?} after a lost reply: {doubt}", new.name),
            }),
            (prompt, _) => Ok(prompt),
        }
    };
    let prompt: Prompt = client.create_prompt(&body, recover).await?;
    let id = prompt.id().ok_or_else(|| ApiError::Decode {
        target: crate::api::Target {
            method: "POST",
            path: "/api/prompts/".into(),
        },
        reason: "the created prompt has no string `id`".into(),
    })?;
    tracing::debug!(prompt_id = id, name = new.name, "created prompt");
    Ok(id.to_owned())
}

/// Create a version; after a lost reply, the prompt's newest version holding this
/// content is it.
async fn create_version(
    client: &Client,
    prompt_id: &str,
    spec: &VersionSpec,
    digest: &str,
) -> Result<Version, ApiError> {
    let recover = || async {
        let Some(current) = current_with_content(client, prompt_id).await? else {
            return Ok(None);
        };
        Ok(plan::matches_version(spec, digest, &current).then_some(current))
    };
    client.create_version(prompt_id, spec, recover).await
}

/// The prompt's newest version with all its fields, or `None` when it has none.
async fn current_with_content(
    client: &Client,
    prompt_id: &str,
) -> Result<Option<Version>, ApiError> {
    let prompt = client.get_prompt(prompt_id).await?;
    match prompt.current_version {
        Some(v) if v.has_content() => Ok(Some(v)),
        Some(v) => client.get_version(prompt_id, v.number).await.map(Some),
        None => Ok(None),
    }
}

/// Commit the draft `number`; after a lost reply, that version being read-only means
/// the commit happened. The version's own description (its provenance) is kept.
async fn commit(client: &Client, prompt_id: &str, number: u64) -> Result<(), ApiError> {
    let recover = || async {
        let version = client.get_version(prompt_id, number).await?;
        Ok(version.readonly().then_some(version))
    };
    client
        .commit(prompt_id, &CommitBody { description: None }, recover)
        .await?;
    tracing::debug!(prompt_id, version = number, "committed");
    Ok(())
}

/// A deploy in progress: the prompt and version exist; commit and deploy remain.
#[derive(Debug, Clone)]
struct Ready {
    index: usize,
    prompt_id: String,
    version: u64,
    created_prompt: bool,
    created_version: bool,
    commit: bool,
    /// The bulk endpoint can do the rest: the version is (or will be, once
    /// committed) the newest committed one, which is what a bulk deploy makes live.
    bulk: bool,
}

impl Ready {
    fn applied(&self) -> Applied {
        Applied {
            prompt_id: self.prompt_id.clone(),
            version: Some(self.version),
            created_prompt: self.created_prompt,
            created_version: self.created_version,
        }
    }

    fn failed(&self, error: ApiError) -> Failed {
        Failed {
            error,
            prompt_id: Some(self.prompt_id.clone()),
            created_prompt: self.created_prompt,
            version: Some(self.version),
            created_version: self.created_version,
            live: None,
        }
    }
}

/// Apply a deploy plan: create missing prompts and versions, then commit and deploy,
/// through the bulk endpoint where it saves requests. A bulk item that fails is
/// finished with single requests, after reading its prompt again.
pub async fn apply_deploy(
    client: &Client,
    items: &[DeployItem],
    snapshot: &plan::Remote,
    limit: usize,
    observer: &dyn Observer,
) -> Vec<Option<Outcome>> {
    let mut outcomes: Vec<Option<Outcome>> = (0..items.len()).map(|_| None).collect();
    // Step 1: every prompt and version that must exist, concurrently.
    let deploys = items
        .iter()
        .enumerate()
        .filter_map(|(index, item)| match &item.step {
            DeployStep::Deploy {
                target,
                live_before,
            } => Some((index, item, target, *live_before)),
            _ => None,
        });
    let prepared: Vec<(usize, Result<Ready, Failed>)> = stream::iter(deploys)
        .map(|(index, item, target, live_before)| async move {
            if let (DeployTarget::Existing { version, .. }, Some(live)) = (target, live_before)
                && *version < live
            {
                tracing::warn!(path = %item.path, version, live, "rollback: deploying a version older than the live one");
            }
            let span = tracing::info_span!("prompt", path = %item.path);
            let result = prepare(client, index, item, target, snapshot)
                .instrument(span)
                .await;
            (index, result)
        })
        .buffer_unordered(limit.max(1))
        .collect()
        .await;
    let mut ready = Vec::new();
    for (index, result) in prepared {
        match result {
            Ok(r) => ready.push(r),
            Err(failed) => {
                outcomes[index] = Some(Err(failed));
                observer.applied();
            }
        }
    }
    ready.sort_by_key(|r| r.index);
    // Step 2: commits and deploys, in bulk where possible.
    let (bulk, single): (Vec<Ready>, Vec<Ready>) = ready.into_iter().partition(|r| r.bulk);
    let mut leftovers = Vec::new();
    for chunk in chunk_for_bulk(&bulk) {
        match run_bulk(client, chunk).await {
            Ok(results) => {
                for (ready, result) in chunk.iter().zip(results) {
                    match result {
                        Ok(()) => {
                            outcomes[ready.index] = Some(Ok(ready.applied()));
                            observer.applied();
                        }
                        Err(err) => {
                            tracing::warn!(prompt_id = ready.prompt_id, error = %err, "bulk item failed; finishing it with single requests");
                            leftovers.push(ready.clone());
                        }
                    }
                }
            }
            Err(err) if err.stops_run() => {
                for ready in chunk {
                    outcomes[ready.index] = Some(Err(ready.failed(err.clone())));
                    observer.applied();
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "bulk request failed; finishing its deploys one by one");
                leftovers.extend(chunk.iter().cloned());
            }
        }
    }
    let rest: Vec<(usize, Outcome)> = stream::iter(
        single
            .into_iter()
            .map(|r| (r, false))
            .chain(leftovers.into_iter().map(|r| (r, true))),
    )
    .map(|(ready, reread)| async move {
        let span = tracing::info_span!("prompt", prompt_id = %ready.prompt_id);
        let result = finish(client, &ready, reread)
            .instrument(span)
            .await
            .map(|()| ready.applied())
            .map_err(|err| ready.failed(err));
        (ready.index, result)
    })
    .buffer_unordered(limit.max(1))
    .collect()
    .await;
    for (index, result) in rest {
        outcomes[index] = Some(result);
        observer.applied();
    }
    outcomes
}

async fn prepare(
    client: &Client,
    index: usize,
    item: &DeployItem,
    target: &DeployTarget,
    snapshot: &plan::Remote,
) -> Result<Ready, Failed> {
    let (prompt_id, created_prompt) = ensure_prompt(client, item.target.as_ref()).await?;
    let remote = snapshot.prompts.get(&prompt_id);
    let current = remote.and_then(|p| p.current_version.as_ref());
    let (version, commit, created_version) = match target {
        DeployTarget::Existing { version, commit } => (*version, *commit, false),
        DeployTarget::Create { spec, digest } => {
            let created = create_version(client, &prompt_id, spec, digest)
                .await
                .map_err(|error| Failed {
                    prompt_id: Some(prompt_id.clone()),
                    created_prompt,
                    ..Failed::from(error)
                })?;
            tracing::debug!(
                prompt_id,
                version = created.number,
                "created the release version"
            );
            (created.number, !created.readonly(), true)
        }
    };
    // The newest committed version once `commit` is done: the one committed, or the
    // current version when it is committed, or the one below a draft.
    let newest_committed = match current {
        _ if commit => Some(version),
        Some(c) if c.readonly() => Some(c.number),
        Some(c) => c.number.checked_sub(1),
        None => None,
    };
    let bulk = newest_committed == Some(version)
        && (commit || matches!(target, DeployTarget::Existing { .. }));
    Ok(Ready {
        index,
        prompt_id,
        version,
        created_prompt,
        created_version,
        commit,
        bulk,
    })
}

/// Make sure each deploy left the planned version live, given the remote as read
/// again after the deploy step (a prompt that could not be read again is left as it
/// is: its sync fails anyway). A bulk deploy makes the newest committed version
/// live, and another writer (a person, CI and the daemon at once) may have committed
/// a newer one since the snapshot; a prompt whose live version is not the planned one
/// gets the planned one deployed with a single request, or, when that fails, an
/// outcome that says which version is live. Returns the ids of the prompts it changed
/// again, to be re-read.
pub async fn confirm_live(
    client: &Client,
    outcomes: &mut [Option<Outcome>],
    remote: &plan::Remote,
) -> Vec<String> {
    let mut changed = Vec::new();
    for outcome in outcomes.iter_mut() {
        let Some(Ok(applied)) = outcome.as_ref() else {
            continue;
        };
        let applied = applied.clone();
        let (Some(planned), Some(prompt)) =
            (applied.version, remote.prompts.get(&applied.prompt_id))
        else {
            continue;
        };
        if remote.unreadable.contains_key(&applied.prompt_id) {
            continue;
        }
        let live = prompt.live_version.as_ref().map(|v| v.number);
        if live == Some(planned) {
            continue;
        }
        let prompt_id = applied.prompt_id.as_str();
        let span = tracing::info_span!("prompt", prompt_id);
        tracing::warn!(parent: &span, planned, live, "another version is live than the one deployed (another writer?); deploying it again");
        let commit_first = prompt
            .current_version
            .as_ref()
            .is_some_and(|c| c.number == planned && !c.readonly());
        let redeploy = async {
            if commit_first {
                commit(client, prompt_id, planned).await?;
            }
            client.deploy(prompt_id, planned).await?;
            tracing::info!(version = planned, "deployed the planned version");
            Ok::<_, ApiError>(())
        };
        let result = redeploy.instrument(span).await;
        changed.push(applied.prompt_id.clone());
        if let Err(error) = result {
            *outcome = Some(Err(Failed {
                error,
                prompt_id: Some(applied.prompt_id),
                created_prompt: applied.created_prompt,
                version: Some(planned),
                created_version: applied.created_version,
                live,
            }));
        }
    }
    changed
}

/// Split bulk work so that no request exceeds the item limit and a prompt's items stay
/// in one request.
fn chunk_for_bulk(ready: &[Ready]) -> Vec<&[Ready]> {
    let mut chunks = Vec::new();
    let (mut start, mut items) = (0, 0);
    for (i, r) in ready.iter().enumerate() {
        let n = if r.commit { 2 } else { 1 };
        if items + n > BULK_LIMIT {
            chunks.push(&ready[start..i]);
            start = i;
            items = 0;
        }
        items += n;
    }
    if start < ready.len() {
        chunks.push(&ready[start..]);
    }
    chunks
}

/// One bulk request for `chunk`; per-prompt results.
async fn run_bulk(client: &Client, chunk: &[Ready]) -> Result<Vec<Result<(), ApiError>>, ApiError> {
    let mut requests = Vec::new();
    let mut owner = Vec::new();
    for (position, ready) in chunk.iter().enumerate() {
        if ready.commit {
            requests.push(BulkItem::Commit {
                prompt_id: ready.prompt_id.clone(),
                body: CommitBody { description: None },
            });
            owner.push(position);
        }
        requests.push(BulkItem::Deploy {
            prompt_id: ready.prompt_id.clone(),
        });
        owner.push(position);
    }
    let response = client.bulk(&requests).await?;
    let mut results: Vec<Result<(), ApiError>> = chunk.iter().map(|_| Ok(())).collect();
    for error in &response.errors {
        if let Some(&position) = owner.get(error.index) {
            let action = match &requests[error.index] {
                BulkItem::Commit { .. } => "commit",
                BulkItem::Deploy { .. } => "deploy",
            };
            results[position] = Err(ApiError::Rejected {
                target: crate::api::Target {
                    method: "POST",
                    path: "/api/prompts/bulk/".into(),
                },
                status: 422,
                detail: format!("{action} of {}: {}", chunk[position].prompt_id, error.error),
            });
        }
    }
    for (ready, result) in chunk.iter().zip(&results) {
        if result.is_ok() {
            tracing::debug!(
                prompt_id = ready.prompt_id,
                version = ready.version,
                "deployed (bulk)"
            );
        }
    }
    Ok(results)
}

/// Commit (when needed) and deploy one prompt with single requests. After a failed
/// bulk request the state is unknown, so it is read again first.
async fn finish(client: &Client, ready: &Ready, reread: bool) -> Result<(), ApiError> {
    let mut commit_needed = ready.commit;
    if reread {
        let prompt = client.get_prompt(&ready.prompt_id).await?;
        if prompt.live_version.as_ref().map(|v| v.number) == Some(ready.version) {
            return Ok(());
        }
        commit_needed = prompt
            .current_version
            .as_ref()
            .is_some_and(|c| c.number == ready.version && !c.readonly());
    }
    if commit_needed {
        commit(client, &ready.prompt_id, ready.version).await?;
    }
    client.deploy(&ready.prompt_id, ready.version).await?;
    tracing::debug!(
        prompt_id = ready.prompt_id,
        version = ready.version,
        "deployed"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_say_how_far_and_how_long() {
        let out = tempfile::NamedTempFile::new().unwrap();
        let settings = crate::config::LogSettings {
            format: crate::cli::LogFormat::Json,
            format_is_default: false,
            filter: "info".to_owned(),
        };
        let subscriber =
            crate::logging::subscriber(&settings, None, out.reopen().unwrap(), false).unwrap();
        tracing::subscriber::with_default(subscriber, || {
            let progress = ProgressLog::every(std::time::Duration::ZERO);
            progress.planned(4);
            for _ in 0..4 {
                progress.applied();
            }
        });
        let text = std::fs::read_to_string(out.path()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "none after the last change: {text}");
        assert!(
            lines[0].contains("\"applied\":1") && lines[0].contains("\"planned\":4"),
            "{text}"
        );
        assert!(lines[2].contains("3 of 4 done"), "{text}");
        assert!(lines[2].contains("\"eta_s\":"), "{text}");
    }

    #[test]
    fn a_short_pass_logs_no_progress() {
        let progress = ProgressLog::default();
        progress.planned(2);
        progress.applied();
        let state = progress.lock();
        assert_eq!(state.applied, 1);
        assert!(state.logged == state.started, "nothing was logged");
    }
}
