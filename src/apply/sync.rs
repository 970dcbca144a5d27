//! Applying a sync plan: each changed prompt created when new, its metadata updated,
//! its new version created (or the server's draft copy edited), at most
//! `api.max_in_flight` at once.

use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::stream::{self, StreamExt};
use serde_json::json;
use tracing::Instrument;

use super::*;
use crate::api::types::UpdatePrompt;
use crate::api::{ApiError, Client};
use crate::normalize;
use crate::plan::{self, ContentChange, SyncItem, SyncStep, VersionWrite};

/// Apply the changes of a sync plan; one outcome per item that is a change, `None`
/// for the others and for those `sent` says are sent otherwise (written as their
/// page arrived, `reconcile`). Only changes take in-flight slots, and they finish in
/// any order, so changes scattered among unchanged prompts still run `limit` at a
/// time.
pub(crate) async fn apply_sync(
    client: &Client,
    items: &[SyncItem],
    sent: &(dyn Fn(&SyncItem) -> bool + Sync),
    limit: usize,
    observer: &dyn Observer,
) -> Vec<Option<Outcome>> {
    let stalled = AtomicBool::new(false);
    let changes = items
        .iter()
        .enumerate()
        .filter(|(_, item)| item.is_change() && !sent(item));
    let done: Vec<(usize, Outcome)> = stream::iter(changes)
        .map(|(index, item)| {
            let stalled = &stalled;
            async move { (index, apply_one(client, item, stalled, observer).await) }
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

/// Apply sync items as they come (planned one by one as their prompts were read),
/// `limit` at a time: each with its outcome, in the order they finished.
pub(crate) async fn apply_as_they_come(
    client: &Client,
    items: impl futures_util::Stream<Item = SyncItem>,
    limit: usize,
    observer: &dyn Observer,
) -> Vec<(SyncItem, Outcome)> {
    let stalled = AtomicBool::new(false);
    items
        .map(|item| {
            let stalled = &stalled;
            async move {
                let outcome = apply_one(client, &item, stalled, observer).await;
                (item, outcome)
            }
        })
        .buffer_unordered(limit.max(1))
        .collect()
        .await
}

/// Apply one change item (nothing is sent once an earlier one was refused), in its
/// prompt's span, and tell the observer.
async fn apply_one(
    client: &Client,
    item: &SyncItem,
    stalled: &AtomicBool,
    observer: &dyn Observer,
) -> Outcome {
    let outcome = match &item.step {
        _ if stalled.load(Ordering::Relaxed) => Err(Failed::from(ApiError::NotAttempted(
            "an earlier request was refused".into(),
        ))),
        SyncStep::Change { metadata, content } => {
            let span = tracing::info_span!("prompt", path = %item.path);
            sync_item(client, item, metadata, content.as_ref())
                .instrument(span)
                .await
        }
        _ => Err(Failed::from(ApiError::NotAttempted(
            "the plan has no change for this item (a bug: please report it)".into(),
        ))),
    };
    if outcome.as_ref().is_err_and(Failed::stops_run) {
        stalled.store(true, Ordering::Relaxed);
    }
    observer.applied();
    outcome
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
