//! Applying a deploy plan: the release content's version found or created and
//! committed for each prompt, then made live (in bulk, 100 at a time, where the API
//! allows), and what went live confirmed by reading it again.

use futures_util::stream::{self, StreamExt};
use tracing::Instrument;

use super::*;
use crate::api::types::{BulkItem, CommitBody};
use crate::api::{ApiError, Client};
use crate::plan::{self, DeployItem, DeployStep, DeployTarget};

/// Most items in one bulk request (respan-api.md 2.8).
const BULK_LIMIT: usize = 100;

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
pub(crate) async fn apply_deploy(
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
pub(crate) async fn confirm_live(
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

    fn ready(index: usize, commit: bool) -> Ready {
        Ready {
            index,
            prompt_id: format!("prm_{index}"),
            version: 1,
            created_prompt: false,
            created_version: false,
            commit,
            bulk: true,
        }
    }

    /// A bulk request holds at most 100 items, and a prompt whose version must be
    /// committed first takes two of them (commit, then deploy): never split apart.
    #[test]
    fn bulk_chunks_hold_at_most_a_hundred_items_and_keep_a_commit_with_its_deploy() {
        let plain: Vec<Ready> = (0..250).map(|i| ready(i, false)).collect();
        let sizes: Vec<usize> = chunk_for_bulk(&plain).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![100, 100, 50]);
        let committing: Vec<Ready> = (0..101).map(|i| ready(i, i % 2 == 0)).collect();
        let chunks = chunk_for_bulk(&committing);
        for chunk in &chunks {
            let items: usize = chunk.iter().map(|r| if r.commit { 2 } else { 1 }).sum();
            assert!(items <= BULK_LIMIT, "{items} items in one request");
        }
        assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), 101);
        assert!(chunk_for_bulk(&[]).is_empty());
    }

    /// What a deploy item did is kept whether it went on or failed.
    #[test]
    fn a_ready_item_says_what_it_did_when_it_fails_too() {
        let mut item = ready(3, true);
        item.created_version = true;
        let failed = item.failed(ApiError::NotAttempted("stopped".into()));
        assert_eq!(failed.prompt_id.as_deref(), Some("prm_3"));
        assert_eq!((failed.version, failed.created_version), (Some(1), true));
        assert_eq!(item.applied().version, Some(1));
    }
}
