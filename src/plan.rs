//! Desired state versus remote snapshot, to actions with field-level changes. Pure:
//! no I/O, no clock. Two plans make a pass: [`plan_deploy`] for the release commit
//! (make its content live) and [`plan_sync`] for the source commit (make its content
//! the newest version).

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::api::types::{Prompt, Version, VersionSpec};
use crate::config::DriftPolicy;
use crate::desired::parallel::{on_all_cores, threads_for};
use crate::desired::{DesiredPrompt, PromptKey, SourceInfo};
use crate::normalize;
use crate::provenance;

/// What the remote looks like, as far as this pass needs to know.
#[derive(Debug, Clone, Default)]
pub struct Remote {
    /// Prompts by id.
    pub prompts: BTreeMap<String, Prompt>,
    /// The version histories of some prompts, fetched only where a plan must search
    /// them ([`version_searches`], [`history_searches`]).
    pub versions: HashMap<String, History>,
    /// Prompts a planned deploy will create, by name (dry runs only): they resolve to
    /// "exists, id not known yet".
    pub pending: HashMap<String, Prompt>,
    /// Remote prompts this pass could not read (or read again) in full, by id, with
    /// the reason. Files on them fail rather than act on a guess.
    pub unreadable: BTreeMap<String, String>,
    /// Names of listed prompts that could not be read, with the reason: files with
    /// such a name fail rather than create a second prompt of that name.
    pub unreadable_names: BTreeMap<String, String>,
}

/// Every version of one prompt, newest first, as far as it could be read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub versions: Vec<Version>,
    /// Why part of it is missing (a failed request, items that could not be read).
    pub incomplete: Option<String>,
}

impl History {
    /// Whether any version carries promptsync's provenance.
    fn has_ours(&self) -> bool {
        self.versions.iter().any(|v| provenance_of(v).is_some())
    }
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

    /// Add listed prompts (those without a usable id are never listed: the list
    /// reports them as problems).
    pub fn add(&mut self, prompts: impl IntoIterator<Item = Prompt>) {
        self.prompts.extend(
            prompts
                .into_iter()
                .filter_map(|p| Some((p.id()?.to_owned(), p))),
        );
    }

    /// Note that prompt `id` (named `name`, when known) could not be read: `reason`.
    pub fn mark_unreadable(&mut self, id: Option<&str>, name: Option<&str>, reason: &str) {
        if let Some(id) = id {
            self.unreadable.insert(id.to_owned(), reason.to_owned());
        }
        if let Some(name) = name {
            self.unreadable_names
                .insert(name.to_owned(), reason.to_owned());
        }
    }

    /// The ids of the prompts by name, for resolving many names at once (one lookup
    /// each, not a scan of the account per name).
    pub fn ids_by_name(&self) -> HashMap<&str, Vec<&str>> {
        let mut names: HashMap<&str, Vec<&str>> = HashMap::new();
        for (id, prompt) in &self.prompts {
            if let Some(name) = prompt.name.as_deref() {
                names.entry(name).or_default().push(id.as_str());
            }
        }
        names
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
            Some(normalize::canonical(&current.fields) == normalize::canonical(&live.fields))
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

fn provenance_of(version: &Version) -> Option<provenance::Provenance> {
    version.description().and_then(provenance::parse)
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

/// Where each prompt resolves remotely, exactly as [`plan_sync`] resolves them (two
/// files on one remote prompt fail both): an incremental pass checks its changed
/// files against the prompts it carries with this.
pub fn targets(prompts: &[DesiredPrompt], remote: &Remote) -> Vec<Result<Target, String>> {
    resolve_all(prompts, remote)
}

/// Resolve every prompt to its remote target; two files on one remote prompt fail both.
fn resolve_all(prompts: &[DesiredPrompt], remote: &Remote) -> Vec<Result<Target, String>> {
    let names = remote.ids_by_name();
    let mut targets: Vec<Result<Target, String>> = prompts
        .iter()
        .map(|p| resolve(&p.key, p, remote, &names))
        .collect();
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

fn resolve(
    key: &PromptKey,
    desired: &DesiredPrompt,
    remote: &Remote,
    names: &HashMap<&str, Vec<&str>>,
) -> Result<Target, String> {
    let unreadable = |id: &str, reason: &str| {
        Err(format!(
            "cannot read remote prompt {id}: {reason}; nothing was sent for it"
        ))
    };
    match key {
        PromptKey::Id(id) => {
            if let Some(reason) = remote.unreadable.get(id) {
                unreadable(id, reason)
            } else if remote.prompts.contains_key(id) {
                Ok(Target::Existing(id.clone()))
            } else {
                Err(format!(
                    "prompt_id {id:?} does not exist in Respan (deleted, or a typo?); \
                     remove prompt_id to create the prompt by name"
                ))
            }
        }
        PromptKey::Name(name) => match names.get(name.as_str()).map_or(&[][..], Vec::as_slice) {
            _ if remote.unreadable_names.contains_key(name) => Err(format!(
                "cannot read the remote prompts named {name:?}: {}; nothing was sent, \
                 so that no second prompt of this name is created",
                remote.unreadable_names[name]
            )),
            [id] if remote.unreadable.contains_key(*id) => unreadable(id, &remote.unreadable[*id]),
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
    let digest = desired.digest().to_owned();
    let create = || {
        let mut spec = VersionSpec::clone(&desired.spec);
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
    let history = target.id().and_then(|id| remote.versions.get(id));
    let versions = history.map(|h| h.versions.as_slice()).unwrap_or_default();
    let current = prompt.current_version.as_ref();
    // A committed match wins over a draft: committing a draft freezes it, and under a
    // server that copies each committed version into a new draft (respan-api.md 4.5,
    // second reading) the draft may be that copy, so committing it would add a version.
    let found = current
        .into_iter()
        .chain(versions)
        .filter(|v| matches_version(&desired.spec, &digest, v))
        .max_by_key(|v| (v.readonly(), v.number));
    let target = match (found, history.and_then(|h| h.incomplete.as_deref())) {
        (Some(version), _) => DeployTarget::Existing {
            version: version.number,
            commit: current.is_some_and(|c| c.number == version.number && !c.readonly()),
        },
        // The version with the release content may be among those not read.
        (None, Some(reason)) => {
            return DeployStep::Failed {
                error: format!(
                    "cannot search the versions of {} for the release content: {reason}",
                    target.id().unwrap_or_default()
                ),
            };
        }
        (None, None) => create(),
    };
    DeployStep::Deploy {
        target,
        live_before: live.map(|v| v.number),
    }
}

/// Ids of the prompts whose version lists a deploy of `prompts` must search: those
/// that exist and whose live and current versions both lack the release content.
pub fn version_searches(prompts: &[DesiredPrompt], remote: &Remote) -> Vec<String> {
    let names = remote.ids_by_name();
    prompts
        .iter()
        .filter(|desired| desired.sync)
        .filter_map(
            |desired| match resolve(&desired.key, desired, remote, &names) {
                Ok(Target::Existing(id)) => {
                    let prompt = remote.prompts.get(&id)?;
                    needs_version_list(desired, prompt).then_some(id)
                }
                _ => None,
            },
        )
        .collect()
}

/// Ids of the prompts whose version history the sync plan needs to tell drift from
/// adoption: those whose newest version differs from the file and carries no
/// provenance, while their live version (if any) carries none either. Prompts whose
/// history is known already are left out.
pub fn history_searches(prompts: &[DesiredPrompt], remote: &Remote) -> Vec<String> {
    let names = remote.ids_by_name();
    prompts
        .iter()
        .filter(|desired| desired.sync)
        .filter_map(
            |desired| match resolve(&desired.key, desired, remote, &names) {
                Ok(Target::Existing(id)) if !remote.versions.contains_key(&id) => {
                    let prompt = remote.prompts.get(&id)?;
                    let current = prompt.current_version.as_ref()?;
                    let digest = desired.digest();
                    let foreign = |v: &Version| provenance_of(v).is_none();
                    let needed = foreign(current)
                        && !matches_version(&desired.spec, digest, current)
                        && prompt.live_version.as_ref().is_none_or(foreign);
                    needed.then_some(id)
                }
                _ => None,
            },
        )
        .collect()
}

/// Whether a deploy search must list a prompt's versions: neither its live nor its
/// current version holds the release content, or only the current one does and it is
/// a draft above other versions (a committed version below it may hold the content:
/// the one the server copied into this draft when it was committed, by a pass that
/// did not get to deploy it).
pub fn needs_version_list(desired: &DesiredPrompt, prompt: &Prompt) -> bool {
    let digest = desired.digest();
    let holds = |v: &&Version| matches_version(&desired.spec, digest, v);
    if prompt.live_version.as_ref().is_some_and(|v| holds(&v)) {
        return false;
    }
    match prompt.current_version.as_ref().filter(holds) {
        Some(current) => !current.readonly() && current.number > 1,
        None => true,
    }
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

mod fresh;
pub use fresh::{Writes, deploy_writes, sync_writes};

#[cfg(test)]
mod tests;
