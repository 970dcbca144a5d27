//! The deploy plan: for each prompt of the release commit, the version that holds its
//! content and whether it must be created, committed and deployed; which version
//! lists that needs, and what the remote looks like after it (for a dry run).

use serde_json::Value;

use super::*;
use crate::api::types::{Prompt, Version, VersionSpec};
use crate::desired::{DesiredPrompt, PromptKey, SourceInfo};
use crate::normalize;
use crate::provenance;

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
    existing_where(prompts, remote, |desired, _, prompt| {
        needs_version_list(desired, prompt)
    })
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
