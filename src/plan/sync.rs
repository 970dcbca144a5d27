//! The sync plan: for each prompt of the source commit, leave it, change it (a new
//! version, metadata), skip it, or fail it; what a changed prompt's new version is
//! and how it gets there (create, or edit the server's draft copy).

use super::*;
use crate::api::types::{Prompt, Version, VersionSpec};
use crate::config::DriftPolicy;
use crate::desired::parallel::{on_all_cores, threads_for};
use crate::desired::{DesiredPrompt, PromptKey, SourceInfo};
use crate::normalize;
use crate::provenance;

/// How a new content version gets to the remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionWrite {
    /// Create a version (it becomes the draft and freezes the ones before).
    Create,
    /// Overwrite this draft in place: it is the untouched copy the server made of the
    /// committed version below it when that was committed (respan-api.md 4.5, second
    /// reading), so nothing anyone wrote is lost.
    EditDraft(u64),
}

/// A content change for one prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct ContentChange {
    pub write: VersionWrite,
    /// The body to send, provenance description included.
    pub spec: VersionSpec,
    pub digest: String,
    /// The remote version replaced as the newest, with its fields (for the diff).
    pub before: Option<Version>,
    /// Content fields that differ from `before`.
    pub fields: Vec<&'static str>,
    /// The remote's newest version was changed outside promptsync.
    pub drift: bool,
}

/// Why nothing is sent for a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// `sync: false` in the file.
    SyncDisabled,
    /// Drift found and `drift = "report"`.
    DriftReported,
}

/// What to do for one prompt file of the source commit.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncStep {
    /// Remote already matches; `version` is the matching newest version.
    Unchanged {
        version: Option<u64>,
    },
    Change {
        metadata: MetadataUpdate,
        content: Option<ContentChange>,
    },
    Skipped {
        reason: SkipReason,
        /// The change that would have been made.
        content: Option<ContentChange>,
    },
    Failed {
        error: String,
    },
}

/// One prompt file of the source commit and what to do about it.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncItem {
    pub path: String,
    pub key: PromptKey,
    pub target: Option<Target>,
    pub step: SyncStep,
}

impl SyncItem {
    /// Whether applying this item would send a change request.
    pub fn is_change(&self) -> bool {
        match &self.step {
            SyncStep::Change { metadata, content } => !metadata.is_empty() || content.is_some(),
            _ => false,
        }
    }
}

/// Plan the source commit: for each prompt, leave it, change it, skip it, or fail it.
pub fn plan_sync(
    prompts: &[DesiredPrompt],
    source: &SourceInfo,
    remote: &Remote,
    drift: DriftPolicy,
) -> Vec<SyncItem> {
    let targets = resolve_all(prompts, remote);
    // Each prompt's step is its own (pure) work: on every core for thousands of them.
    let work: Vec<_> = prompts.iter().zip(targets).collect();
    let threads = vec![(); threads_for(work.len())];
    on_all_cores(work, threads, |(), (desired, target)| {
        let (target, step) = match target {
            Err(error) => (None, SyncStep::Failed { error }),
            Ok(target) => {
                let step = sync_step(desired, source, &target, remote, drift);
                (Some(target), step)
            }
        };
        SyncItem {
            path: desired.path.clone(),
            key: desired.key.clone(),
            target,
            step,
        }
    })
}

/// The sync item of `desired` planned on `prompt` alone, when it is a change the plan
/// needs nothing else for: the prompt's versions came in full, and no version history
/// is needed to tell drift from adoption. The whole pass's plan reaches the same item
/// when no other file names the prompt (`plan::tests::sync`): the pass writes it
/// as its page arrives (`reconcile::early`).
pub fn plan_alone(
    desired: &DesiredPrompt,
    source: &SourceInfo,
    prompt: &Prompt,
    drift: DriftPolicy,
) -> Option<SyncItem> {
    let complete = [&prompt.current_version, &prompt.live_version]
        .into_iter()
        .flatten()
        .all(|version| version.has_content());
    if !complete {
        return None;
    }
    let remote = Remote::new([prompt.clone()]);
    let files = std::slice::from_ref(desired);
    if !history_searches(files, &remote).is_empty() {
        return None;
    }
    plan_sync(files, source, &remote, drift)
        .pop()
        .filter(SyncItem::is_change)
}

fn sync_step(
    desired: &DesiredPrompt,
    source: &SourceInfo,
    target: &Target,
    remote: &Remote,
    drift: DriftPolicy,
) -> SyncStep {
    let remote_prompt = match target {
        Target::Existing(id) => remote.prompts.get(id),
        Target::Pending(name) => remote.pending.get(name),
        Target::New(_) => None,
    };
    let metadata = remote_prompt
        .map(|p| metadata_update(desired, p))
        .unwrap_or_default();
    let digest = desired.digest().to_owned();
    let current = remote_prompt.and_then(|p| p.current_version.as_ref());
    let content = match current {
        Some(current) if matches_version(&desired.spec, &digest, current) => None,
        _ => {
            let live = remote_prompt.and_then(|p| p.live_version.as_ref());
            let history = target.id().and_then(|id| remote.versions.get(id));
            match content_change(desired, source, digest, current, live, history) {
                Ok(change) => Some(change),
                Err(error) => return SyncStep::Failed { error },
            }
        }
    };
    if !desired.sync {
        return SyncStep::Skipped {
            reason: SkipReason::SyncDisabled,
            content,
        };
    }
    if drift == DriftPolicy::Report && content.as_ref().is_some_and(|c| c.drift) {
        return SyncStep::Skipped {
            reason: SkipReason::DriftReported,
            content,
        };
    }
    if metadata.is_empty() && content.is_none() && !matches!(target, Target::New(_)) {
        return SyncStep::Unchanged {
            version: current.map(|v| v.number),
        };
    }
    SyncStep::Change { metadata, content }
}

/// The change that makes `desired` the newest version; an error when whether the
/// remote was changed behind promptsync's back cannot be told.
fn content_change(
    desired: &DesiredPrompt,
    source: &SourceInfo,
    digest: String,
    current: Option<&Version>,
    live: Option<&Version>,
    history: Option<&History>,
) -> Result<ContentChange, String> {
    let mut spec = VersionSpec::clone(&desired.spec);
    spec.description = Some(provenance::describe(source, &digest));
    // A draft that claims to be the server's copy of the committed version below it:
    // edited in place only while its content is still exactly that version's.
    let copy = match (current, live) {
        (Some(current), Some(live)) if is_server_copy(current, live) => {
            Some(normalize::equal(&current.fields, &live.fields))
        }
        _ => None,
    };
    let write = match (copy, current) {
        (Some(true), Some(current)) => VersionWrite::EditDraft(current.number),
        _ => VersionWrite::Create,
    };
    // Drift: the newest version was changed outside promptsync: an edited copy, a
    // version of ours edited in place, or someone else's version on a prompt that
    // promptsync manages (one of its versions is ours).
    let drift = match current {
        None => false,
        Some(_) if copy == Some(false) => true,
        Some(current) => match provenance_of(current) {
            Some(prov) => prov.digest == digest,
            None => managed(current.number, live, history)?,
        },
    };
    let fields = match current {
        Some(current) => normalize::changed_fields(&current.fields, &normalize::spec_fields(&spec)),
        None => {
            let explicit = normalize::explicit(&spec);
            normalize::CONTENT_FIELDS
                .iter()
                .copied()
                .filter(|f| explicit.contains_key(*f))
                .collect()
        }
    };
    Ok(ContentChange {
        write,
        spec,
        digest,
        before: current.cloned(),
        fields,
        drift,
    })
}

/// Whether `draft` is (or claims to be) the copy the server made of `committed` when
/// it was committed: the draft right above it, with its provenance.
fn is_server_copy(draft: &Version, committed: &Version) -> bool {
    !draft.readonly()
        && committed.readonly()
        && draft.number == committed.number + 1
        && provenance_of(committed).is_some()
        && provenance_of(draft) == provenance_of(committed)
}

/// Whether promptsync wrote this prompt (so a newest version not of its making is
/// drift): its live version or any version in its history carries our provenance.
/// Without a history, the live version decides; with an incomplete one that shows
/// none of ours, it cannot be told.
fn managed(
    current: u64,
    live: Option<&Version>,
    history: Option<&History>,
) -> Result<bool, String> {
    if live.is_some_and(|l| provenance_of(l).is_some()) {
        return Ok(true);
    }
    match history {
        None => Ok(false),
        Some(history) if history.has_ours() => Ok(true),
        Some(History {
            incomplete: Some(reason),
            ..
        }) => Err(format!(
            "cannot tell whether v{current} was changed outside promptsync: \
             the prompt's version history could not be read ({reason})"
        )),
        Some(_) => Ok(false),
    }
}

fn metadata_update(desired: &DesiredPrompt, remote: &Prompt) -> MetadataUpdate {
    let differs = |want: &Option<String>, have: &Option<String>| {
        want.as_ref().filter(|w| Some(*w) != have.as_ref()).cloned()
    };
    MetadataUpdate {
        name: differs(&desired.name, &remote.name),
        description: differs(&desired.description, &remote.description),
    }
}
