//! Desired state versus remote snapshot, to actions with field-level changes. Pure:
//! no I/O, no clock. Two plans make a pass: [`plan_deploy`] for the release commit
//! (make its content live) and [`plan_sync`] for the source commit (make its content
//! the newest version).

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::api::types::{Prompt, Version, VersionSpec};
use crate::config::DriftPolicy;
use crate::desired::{DesiredPrompt, PromptKey, SourceInfo};
use crate::normalize;
use crate::provenance;

/// What the remote looks like, as far as this pass needs to know.
#[derive(Debug, Clone, Default)]
pub struct Remote {
    /// Prompts by id.
    pub prompts: BTreeMap<String, Prompt>,
    /// Every version of some prompts (fetched only where a deploy needs to search).
    pub versions: HashMap<String, Vec<Version>>,
    /// Prompts a planned deploy will create, by name (dry runs only): they resolve to
    /// "exists, id not known yet".
    pub pending: HashMap<String, Prompt>,
}

impl Remote {
    pub fn new(prompts: impl IntoIterator<Item = Prompt>) -> Remote {
        let prompts = prompts
            .into_iter()
            .filter_map(|p| Some((p.id()?.to_owned(), p)))
            .collect();
        Remote {
            prompts,
            ..Remote::default()
        }
    }

    /// Ids of the prompts with exactly this name.
    pub fn ids_named(&self, name: &str) -> Vec<&str> {
        self.prompts
            .iter()
            .filter(|(_, p)| p.name.as_deref() == Some(name))
            .map(|(id, _)| id.as_str())
            .collect()
    }
}

/// A prompt to create before its first version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPrompt {
    pub name: String,
    pub description: Option<String>,
}

/// Prompt metadata to change; `None` fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
}

impl MetadataUpdate {
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.description.is_none()
    }
}

/// Where a desired prompt lives remotely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An existing prompt.
    Existing(String),
    /// No prompt has the file's name: create one.
    New(NewPrompt),
    /// A planned deploy creates it first (dry runs only).
    Pending(String),
}

impl Target {
    pub fn id(&self) -> Option<&str> {
        match self {
            Target::Existing(id) => Some(id),
            Target::New(_) | Target::Pending(_) => None,
        }
    }
}

/// How a new content version gets to the remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionWrite {
    /// Create a version (it becomes the draft and freezes the ones before).
    Create,
    /// Overwrite this draft in place: it is a copy the server made of the committed
    /// version when it was committed (respan-api.md 4.5, second reading).
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

/// The release a deploy plan is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRef {
    pub tag: String,
    pub source: SourceInfo,
}

/// How the release content becomes live for one prompt.
#[derive(Debug, Clone, PartialEq)]
pub enum DeployStep {
    /// The release content is live already.
    AlreadyLive {
        version: u64,
    },
    Deploy {
        target: DeployTarget,
        live_before: Option<u64>,
    },
    Skipped {
        reason: SkipReason,
    },
    Failed {
        error: String,
    },
}

/// Which version goes live.
#[derive(Debug, Clone, PartialEq)]
pub enum DeployTarget {
    /// A version with the release content exists; commit it first when it is the draft.
    Existing { version: u64, commit: bool },
    /// No version has the release content: create it (then commit and deploy it).
    Create {
        spec: Box<VersionSpec>,
        digest: String,
    },
}

/// One prompt file of the release commit and how it goes live.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployItem {
    pub path: String,
    pub key: PromptKey,
    pub target: Option<Target>,
    pub step: DeployStep,
}

impl DeployItem {
    /// A deploy of an existing version older than the live one.
    pub fn is_rollback(&self) -> bool {
        matches!(
            self.step,
            DeployStep::Deploy {
                target: DeployTarget::Existing { version, .. },
                live_before: Some(live),
            } if version < live
        )
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
    prompts
        .iter()
        .zip(targets)
        .map(|(desired, target)| {
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
        .collect()
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
    let digest = normalize::digest(&desired.spec);
    let current = remote_prompt.and_then(|p| p.current_version.as_ref());
    let content = match current {
        Some(current) if matches_version(&desired.spec, &digest, current) => None,
        _ => {
            let live = remote_prompt.and_then(|p| p.live_version.as_ref());
            Some(content_change(desired, source, digest, current, live))
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

fn content_change(
    desired: &DesiredPrompt,
    source: &SourceInfo,
    digest: String,
    current: Option<&Version>,
    live: Option<&Version>,
) -> ContentChange {
    let mut spec = desired.spec.clone();
    spec.description = Some(provenance::describe(source, &digest));
    let ours = |v: &Version| v.description().and_then(provenance::parse);
    let write = match (current, live) {
        (Some(current), Some(live))
            if !current.readonly()
                && current.number == live.number + 1
                && ours(current).is_some()
                && ours(current).map(|p| p.digest) == ours(live).map(|p| p.digest) =>
        {
            VersionWrite::EditDraft(current.number)
        }
        _ => VersionWrite::Create,
    };
    // Drift: the newest version was not written by promptsync (or was edited after),
    // on a prompt that promptsync manages (its live version is ours).
    let drift = current.is_some_and(|current| match ours(current) {
        None => live.is_some_and(|l| ours(l).is_some()),
        Some(prov) => prov.digest == digest,
    });
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
    ContentChange {
        write,
        spec,
        digest,
        before: current.cloned(),
        fields,
        drift,
    }
}

/// Whether a remote version holds the desired content. A version promptsync made from
/// the same content (its provenance digest matches) is trusted for the fields the file
/// leaves out, so a server that fills other defaults never causes a new version; the
/// fields the file sets must still agree, so an edit made in place is seen.
pub fn matches_version(spec: &VersionSpec, digest: &str, version: &Version) -> bool {
    let ours = version
        .description()
        .and_then(provenance::parse)
        .is_some_and(|p| p.digest == digest);
    if !version.has_content() {
        return ours;
    }
    if ours {
        normalize::equal_explicit(spec, &version.fields)
    } else {
        normalize::equal_full(spec, &version.fields)
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

/// Resolve every prompt to its remote target; two files on one remote prompt fail both.
fn resolve_all(prompts: &[DesiredPrompt], remote: &Remote) -> Vec<Result<Target, String>> {
    let mut targets: Vec<Result<Target, String>> =
        prompts.iter().map(|p| resolve(&p.key, p, remote)).collect();
    let mut by_target: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (index, target) in targets.iter().enumerate() {
        let key = match target {
            Ok(Target::Existing(id)) => format!("id:{id}"),
            Ok(Target::New(new)) => format!("new:{}", new.name),
            Ok(Target::Pending(name)) => format!("new:{name}"),
            Err(_) => continue,
        };
        by_target.entry(key).or_default().push(index);
    }
    for indexes in by_target.values().filter(|v| v.len() > 1) {
        let paths: Vec<&str> = indexes.iter().map(|&i| prompts[i].path.as_str()).collect();
        for &index in indexes {
            let label = match &targets[index] {
                Ok(Target::Existing(id)) => format!("prompt {id}"),
                _ => format!("the new prompt {:?}", display_name(&prompts[index])),
            };
            targets[index] = Err(format!(
                "conflict: {} all resolve to {label}; neither is synced. Give each file its own prompt",
                paths.join(" and ")
            ));
        }
    }
    targets
}

fn resolve(key: &PromptKey, desired: &DesiredPrompt, remote: &Remote) -> Result<Target, String> {
    match key {
        PromptKey::Id(id) => {
            if remote.prompts.contains_key(id) {
                Ok(Target::Existing(id.clone()))
            } else {
                Err(format!(
                    "prompt_id {id:?} does not exist in Respan (deleted, or a typo?); \
                     remove prompt_id to create the prompt by name"
                ))
            }
        }
        PromptKey::Name(name) => match remote.ids_named(name).as_slice() {
            [] if remote.pending.contains_key(name) => Ok(Target::Pending(name.clone())),
            [] => Ok(Target::New(NewPrompt {
                name: name.clone(),
                description: desired.description.clone(),
            })),
            [id] => Ok(Target::Existing((*id).to_owned())),
            ids => Err(format!(
                "{} remote prompts are named {name:?} ({}); add `prompt_id:` to the file to pick one",
                ids.len(),
                ids.join(", ")
            )),
        },
    }
}

fn display_name(desired: &DesiredPrompt) -> &str {
    match &desired.key {
        PromptKey::Name(name) => name,
        PromptKey::Id(id) => desired.name.as_deref().unwrap_or(id),
    }
}

/// Plan the release commit: for each prompt, the version with its content and whether
/// it must be created, committed and deployed.
pub fn plan_deploy(
    prompts: &[DesiredPrompt],
    release: &ReleaseRef,
    remote: &Remote,
) -> Vec<DeployItem> {
    let targets = resolve_all(prompts, remote);
    prompts
        .iter()
        .zip(targets)
        .map(|(desired, target)| {
            let (target, step) = match target {
                Err(error) => (None, DeployStep::Failed { error }),
                Ok(target) => {
                    let step = deploy_step(desired, release, &target, remote);
                    (Some(target), step)
                }
            };
            DeployItem {
                path: desired.path.clone(),
                key: desired.key.clone(),
                target,
                step,
            }
        })
        .collect()
}

fn deploy_step(
    desired: &DesiredPrompt,
    release: &ReleaseRef,
    target: &Target,
    remote: &Remote,
) -> DeployStep {
    if !desired.sync {
        return DeployStep::Skipped {
            reason: SkipReason::SyncDisabled,
        };
    }
    let digest = normalize::digest(&desired.spec);
    let create = || {
        let mut spec = desired.spec.clone();
        spec.description = Some(provenance::describe(&release.source, &digest));
        DeployTarget::Create {
            spec: Box::new(spec),
            digest: digest.clone(),
        }
    };
    let Some(prompt) = target.id().and_then(|id| remote.prompts.get(id)) else {
        return DeployStep::Deploy {
            target: create(),
            live_before: None,
        };
    };
    let live = prompt.live_version.as_ref();
    if let Some(live) = live.filter(|v| matches_version(&desired.spec, &digest, v)) {
        return DeployStep::AlreadyLive {
            version: live.number,
        };
    }
    let versions = target
        .id()
        .and_then(|id| remote.versions.get(id))
        .map(Vec::as_slice)
        .unwrap_or_default();
    let current = prompt.current_version.as_ref();
    let found = current
        .into_iter()
        .chain(versions)
        .filter(|v| matches_version(&desired.spec, &digest, v))
        .max_by_key(|v| v.number);
    let target = match found {
        Some(version) => DeployTarget::Existing {
            version: version.number,
            commit: current.is_some_and(|c| c.number == version.number && !c.readonly()),
        },
        None => create(),
    };
    DeployStep::Deploy {
        target,
        live_before: live.map(|v| v.number),
    }
}

/// Ids of the prompts whose version lists a deploy of `prompts` must search: those
/// that exist and whose live and current versions both lack the release content.
pub fn version_searches(prompts: &[DesiredPrompt], remote: &Remote) -> Vec<String> {
    prompts
        .iter()
        .filter(|desired| desired.sync)
        .filter_map(|desired| match resolve(&desired.key, desired, remote) {
            Ok(Target::Existing(id)) => {
                let prompt = remote.prompts.get(&id)?;
                needs_version_list(desired, prompt).then_some(id)
            }
            _ => None,
        })
        .collect()
}

/// Whether a deploy search must list a prompt's versions: neither its live nor its
/// current version holds the release content.
pub fn needs_version_list(desired: &DesiredPrompt, prompt: &Prompt) -> bool {
    let digest = normalize::digest(&desired.spec);
    ![
        prompt.live_version.as_ref(),
        prompt.current_version.as_ref(),
    ]
    .into_iter()
    .flatten()
    .any(|v| matches_version(&desired.spec, &digest, v))
}

/// What the remote will look like once the deploy items are applied, for planning the
/// source commit in a dry run: each prompt's newest version holds the release content.
pub fn simulate_deploy(remote: &Remote, items: &[DeployItem]) -> Remote {
    let mut after = remote.clone();
    for item in items {
        let DeployStep::Deploy { target, .. } = &item.step else {
            continue;
        };
        let current = item
            .target
            .as_ref()
            .and_then(Target::id)
            .and_then(|id| after.prompts.get(id))
            .and_then(|p| p.current_version.as_ref());
        let (number, mut fields) = match target {
            // Only a commit changes the newest version; a deploy alone does not.
            DeployTarget::Existing { commit: false, .. } => continue,
            DeployTarget::Existing { commit: true, .. } => match current {
                Some(v) => (v.number, v.fields.clone()),
                None => continue,
            },
            DeployTarget::Create { spec, .. } => {
                let number = current.map_or(1, |v| v.number + 1);
                let mut fields = normalize::spec_fields(spec);
                if let Some(description) = &spec.description {
                    fields.insert("description".into(), Value::String(description.clone()));
                }
                (number, fields)
            }
        };
        fields.insert("version".into(), Value::from(number));
        fields.insert("readonly".into(), Value::Bool(true));
        let version = Version { number, fields };
        match &item.target {
            Some(Target::Existing(id)) => {
                if let Some(prompt) = after.prompts.get_mut(id) {
                    prompt.current_version = Some(version.clone());
                    prompt.live_version = Some(version);
                }
            }
            Some(Target::New(new)) => {
                let mut prompt = Prompt::with_id("", &new.name);
                prompt.current_version = Some(version.clone());
                prompt.live_version = Some(version);
                after.pending.insert(new.name.clone(), prompt);
            }
            _ => {}
        }
    }
    after
}

#[cfg(test)]
mod tests;
