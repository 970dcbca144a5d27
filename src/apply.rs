//! Run plans through the API client with bounded concurrency. One prompt's failure
//! does not stop the others; a stalled error (a refused key) stops the items not yet
//! started. Every change that is not safe to resend carries a recovery that re-reads
//! the remote, so a lost reply never leads to a duplicate. A failed item keeps what it
//! had done (the prompt it created, the version it created) so the pass can re-read
//! it and the report can show it. Knows nothing about git.

use crate::api::types::{CommitBody, CreatePrompt, Prompt, Version, VersionSpec};
use crate::api::{ApiError, Client, filter_in};
use crate::plan::{self, NewPrompt, Target};

mod deploy;
mod progress;
mod sync;

pub(crate) use deploy::{apply_deploy, confirm_live};
pub(crate) use progress::ProgressLog;
pub(crate) use sync::{apply_as_they_come, apply_sync};

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

pub(crate) type Outcome = Result<Applied, Failed>;

/// What applying reports as it goes: a progress bar for the CLI, metrics for the
/// daemon. Every method has a default that does nothing.
pub(crate) trait Observer: Send + Sync {
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
pub(crate) struct Unobserved;

impl Observer for Unobserved {}

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
