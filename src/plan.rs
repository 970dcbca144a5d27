//! Desired state versus remote snapshot, to actions with field-level changes. Pure:
//! no I/O, no clock. Two plans make a pass: [`plan_deploy`] for the release commit
//! (make its content live) and [`plan_sync`] for the source commit (make its content
//! the newest version).
//!
//! Here: where each file resolves remotely ([`targets`]: by id, by name, a new
//! prompt), whether a version holds a file's content ([`matches_version`]), and which
//! version lists a sync must read. The remote model is `remote`, the sync plan
//! `sync`, the deploy plan `deploy`, what to read again before writing `fresh`.

use std::collections::{BTreeMap, HashMap};

use crate::api::types::{Prompt, Version, VersionSpec};
use crate::desired::{DesiredPrompt, PromptKey};
use crate::normalize;
use crate::provenance;

mod deploy;
mod remote;
mod sync;

pub use deploy::{
    DeployItem, DeployStep, DeployTarget, ReleaseRef, plan_deploy, simulate_deploy,
    version_searches,
};
pub use remote::{History, Remote};
pub use sync::{
    ContentChange, SkipReason, SyncItem, SyncStep, VersionWrite, plan_alone, plan_sync,
};

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

/// Whether a remote version holds the desired content. A version promptsync made from
/// the same content (its provenance digest matches) is trusted for the fields the file
/// leaves out, so a server that fills other defaults never causes a new version; the
/// fields the file sets must still agree, so an edit made in place is seen.
pub fn matches_version(spec: &VersionSpec, digest: &str, version: &Version) -> bool {
    let ours = is_ours(version, digest);
    if !version.has_content() {
        return ours;
    }
    if ours {
        normalize::equal_explicit(spec, &version.fields)
    } else {
        normalize::equal_full(spec, &version.fields)
    }
}

/// Whether `version` carries promptsync's provenance for content of this digest.
fn is_ours(version: &Version, digest: &str) -> bool {
    provenance_of(version).is_some_and(|p| p.digest == digest)
}

/// Whether a sync of a file with this content (`spec`, its `digest`) may create a
/// version on `prompt`, as far as the prompt alone tells: not when its newest version
/// carries promptsync's provenance for this digest (unless that version was edited in
/// place since, which only a comparison of its content tells, left to the plan), nor
/// when it holds the same content made by hand; otherwise yes.
pub fn may_create_on(prompt: &Prompt, spec: &VersionSpec, digest: &str) -> bool {
    match &prompt.current_version {
        None => true,
        Some(version) if is_ours(version, digest) => false,
        Some(version) => !matches_version(spec, digest, version),
    }
}

fn provenance_of(version: &Version) -> Option<provenance::Provenance> {
    version.description().and_then(provenance::parse)
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

/// Ids of the prompts whose version history the sync plan needs to tell drift from
/// adoption: those whose newest version differs from the file and carries no
/// provenance, while their live version (if any) carries none either. Prompts whose
/// history is known already are left out.
pub fn history_searches(prompts: &[DesiredPrompt], remote: &Remote) -> Vec<String> {
    existing_where(prompts, remote, |desired, id, prompt| {
        if remote.versions.contains_key(id) {
            return false;
        }
        let Some(current) = prompt.current_version.as_ref() else {
            return false;
        };
        let foreign = |v: &Version| provenance_of(v).is_none();
        foreign(current)
            && !matches_version(&desired.spec, desired.digest(), current)
            && prompt.live_version.as_ref().is_none_or(foreign)
    })
}

/// The ids of the existing remote prompts the files that sync resolve to, where
/// `keep` says so (the version-list searches of both plans).
fn existing_where(
    prompts: &[DesiredPrompt],
    remote: &Remote,
    keep: impl Fn(&DesiredPrompt, &str, &Prompt) -> bool,
) -> Vec<String> {
    let names = remote.ids_by_name();
    prompts
        .iter()
        .filter(|desired| desired.sync)
        .filter_map(
            |desired| match resolve(&desired.key, desired, remote, &names) {
                Ok(Target::Existing(id)) => {
                    let prompt = remote.prompts.get(&id)?;
                    keep(desired, &id, prompt).then_some(id)
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

mod fresh;
pub use fresh::{Writes, deploy_writes, sync_writes};

#[cfg(test)]
mod tests;
