//! Run plans through the API client with bounded concurrency. One prompt's failure
//! does not stop the others; a stalled error (a refused key) stops the items not yet
//! started. Every change that is not safe to resend carries a recovery that re-reads
//! the remote, so a lost reply never leads to a duplicate. Knows nothing about git.

use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::stream::{self, StreamExt};
use serde_json::json;
use tracing::Instrument;

use crate::api::types::{
    BulkItem, CommitBody, CreatePrompt, Listing, Prompt, UpdatePrompt, Version, VersionSpec,
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
    /// The version created, edited or deployed.
    pub version: Option<u64>,
    /// The prompt was created by this item.
    pub created_prompt: bool,
}

pub type Outcome = Result<Applied, ApiError>;

/// What applying reports as it goes: a progress bar for the CLI, metrics for the
/// daemon. Every method has a default that does nothing.
pub trait Observer: Send + Sync {
    /// `changes` more change items will be applied.
    fn planned(&self, _changes: usize) {}
    /// One change item was applied (or failed).
    fn applied(&self) {}
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unobserved;

impl Observer for Unobserved {}

/// Apply the changes of a sync plan; one outcome per item that is a change, `None`
/// for the others.
pub async fn apply_sync(
    client: &Client,
    items: &[SyncItem],
    limit: usize,
    observer: &dyn Observer,
) -> Vec<Option<Outcome>> {
    let stalled = AtomicBool::new(false);
    stream::iter(items)
        .map(|item| {
            let stalled = &stalled;
            async move {
                if !item.is_change() {
                    return None;
                }
                let SyncStep::Change { metadata, content } = &item.step else {
                    return None;
                };
                let span = tracing::info_span!("prompt", path = %item.path);
                let outcome = if stalled.load(Ordering::Relaxed) {
                    Err(ApiError::NotAttempted(
                        "an earlier request was refused".into(),
                    ))
                } else {
                    sync_item(client, item, metadata, content.as_ref())
                        .instrument(span)
                        .await
                };
                if outcome.as_ref().is_err_and(ApiError::is_stalled) {
                    stalled.store(true, Ordering::Relaxed);
                }
                observer.applied();
                Some(outcome)
            }
        })
        .buffered(limit.max(1))
        .collect()
        .await
}

async fn sync_item(
    client: &Client,
    item: &SyncItem,
    metadata: &plan::MetadataUpdate,
    content: Option<&ContentChange>,
) -> Outcome {
    let (prompt_id, created_prompt) = ensure_prompt(client, item.target.as_ref()).await?;
    if !metadata.is_empty() {
        let body = UpdatePrompt {
            name: metadata.name.as_deref(),
            description: metadata.description.as_deref(),
        };
        client.update_prompt(&prompt_id, &body).await?;
        tracing::debug!(prompt_id, "updated prompt metadata");
    }
    let mut version = None;
    if let Some(change) = content {
        let written = match change.write {
            VersionWrite::Create => {
                create_version(client, &prompt_id, &change.spec, &change.digest).await?
            }
            VersionWrite::EditDraft(number) => {
                let mut body = normalize::full_body(&change.spec);
                body.insert("description".into(), json!(change.spec.description));
                client.update_version(&prompt_id, number, &body).await?
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
        version = Some(written.number);
    }
    Ok(Applied {
        prompt_id,
        version,
        created_prompt,
    })
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
        let found = whole(
            client
                .list_prompts(&filter_in("name", [new.name.clone()]))
                .await?,
        )?;
        Ok(found
            .into_iter()
            .find(|p| p.name.as_deref() == Some(new.name.as_str())))
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
    commit: bool,
    /// The bulk endpoint can do the rest: the version is (or will be, once
    /// committed) the newest committed one, which is what a bulk deploy makes live.
    bulk: bool,
}

/// Apply a deploy plan: create missing prompts and versions, then commit and deploy,
/// through the bulk endpoint where it saves requests.
pub async fn apply_deploy(
    client: &Client,
    items: &[DeployItem],
    snapshot: &plan::Remote,
    limit: usize,
    observer: &dyn Observer,
) -> Vec<Option<Outcome>> {
    let mut outcomes: Vec<Option<Outcome>> = (0..items.len()).map(|_| None).collect();
    // Step 1: every prompt and version that must exist, concurrently.
    let prepared: Vec<(usize, Result<Ready, ApiError>)> = stream::iter(items.iter().enumerate())
        .filter_map(|(index, item)| async move {
            let DeployStep::Deploy { target, live_before } = &item.step else {
                return None;
            };
            if let (DeployTarget::Existing { version, .. }, Some(live)) = (target, live_before)
                && version < live
            {
                tracing::warn!(path = %item.path, version, live, "rollback: deploying a version older than the live one");
            }
            Some((index, item, target))
        })
        .map(|(index, item, target)| async move {
            let span = tracing::info_span!("prompt", path = %item.path);
            let result = prepare(client, index, item, target, snapshot)
                .instrument(span)
                .await;
            (index, result)
        })
        .buffered(limit.max(1))
        .collect()
        .await;
    let mut ready = Vec::new();
    for (index, result) in prepared {
        match result {
            Ok(r) => ready.push(r),
            Err(err) => {
                outcomes[index] = Some(Err(err));
                observer.applied();
            }
        }
    }
    // Step 2: commits and deploys, in bulk where possible.
    let (bulk, single): (Vec<Ready>, Vec<Ready>) = ready.into_iter().partition(|r| r.bulk);
    let mut leftovers = Vec::new();
    for chunk in chunk_for_bulk(&bulk) {
        match run_bulk(client, chunk).await {
            Ok(results) => {
                for (ready, result) in chunk.iter().zip(results) {
                    outcomes[ready.index] = Some(result.map(|()| applied(ready)));
                    observer.applied();
                }
            }
            Err(err) if err.is_stalled() => {
                for ready in chunk {
                    outcomes[ready.index] = Some(Err(err.clone()));
                    observer.applied();
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "bulk request failed; finishing its deploys one by one");
                leftovers.extend(chunk.iter().cloned().map(|r| (r, true)));
            }
        }
    }
    let rest: Vec<(usize, Outcome)> =
        stream::iter(single.into_iter().map(|r| (r, false)).chain(leftovers))
            .map(|(ready, reread)| async move {
                let result = finish(client, &ready, reread)
                    .await
                    .map(|()| applied(&ready));
                (ready.index, result)
            })
            .buffered(limit.max(1))
            .collect()
            .await;
    for (index, result) in rest {
        outcomes[index] = Some(result);
        observer.applied();
    }
    outcomes
}

fn applied(ready: &Ready) -> Applied {
    Applied {
        prompt_id: ready.prompt_id.clone(),
        version: Some(ready.version),
        created_prompt: ready.created_prompt,
    }
}

async fn prepare(
    client: &Client,
    index: usize,
    item: &DeployItem,
    target: &DeployTarget,
    snapshot: &plan::Remote,
) -> Result<Ready, ApiError> {
    let (prompt_id, created_prompt) = ensure_prompt(client, item.target.as_ref()).await?;
    let remote = snapshot.prompts.get(&prompt_id);
    let current = remote.and_then(|p| p.current_version.as_ref());
    let (version, commit) = match target {
        DeployTarget::Existing { version, commit } => (*version, *commit),
        DeployTarget::Create { spec, digest } => {
            let created = create_version(client, &prompt_id, spec, digest).await?;
            tracing::debug!(
                prompt_id,
                version = created.number,
                "created the release version"
            );
            (created.number, !created.readonly())
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
        commit,
        bulk,
    })
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

/// Read the current state of the given prompts again (after a deploy changed them).
pub async fn refresh(
    client: &Client,
    ids: &[String],
    limit: usize,
) -> Result<Vec<Prompt>, ApiError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    if ids.len() > limit {
        return client
            .list_prompts(&filter_in("prompt_id", ids.iter().cloned()))
            .await
            .and_then(whole);
    }
    stream::iter(ids)
        .map(|id| client.get_prompt(id))
        .buffered(limit.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// The items of a listing, or an error for the first item that could not be read.
pub(crate) fn whole<T>(listing: Listing<T>) -> Result<Vec<T>, ApiError> {
    match listing.problems.first() {
        Some(problem) => Err(ApiError::Decode {
            target: crate::api::Target {
                method: "GET",
                path: "a list".into(),
            },
            reason: problem.to_string(),
        }),
        None => Ok(listing.items),
    }
}
