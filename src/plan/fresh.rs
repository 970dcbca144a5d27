//! Reading the remote again just before writing (pure). A pass plans on a snapshot
//! read at its start; a second writer (a CI job beside the daemon) may create the same
//! prompt or version in between, and the API has no lock or conditional request to stop
//! the second create. So before a pass creates anything, the prompts it creates on are
//! read again ([`Writes`]: by id, and by name for new prompts), merged into the snapshot
//! ([`Remote::refresh`]), and when they changed the plan is made again: the other
//! writer's prompt is found by name, its version by content (the provenance digest).
//! What remains is the last round trip before each create.

use std::collections::BTreeSet;

use super::{
    DeployItem, DeployStep, DeployTarget, Remote, SyncItem, SyncStep, Target, VersionWrite,
};
use crate::api::types::{Prompt, Version};

/// The remote prompts a plan creates something on: existing prompts (by id) that get
/// a new version, and names that get a new prompt.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Writes {
    pub ids: BTreeSet<String>,
    pub names: BTreeSet<String>,
}

impl Writes {
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.names.is_empty()
    }

    fn target(&mut self, target: Option<&Target>, creates_version: bool) {
        match target {
            Some(Target::New(new)) => {
                self.names.insert(new.name.clone());
            }
            Some(Target::Existing(id)) if creates_version => {
                self.ids.insert(id.clone());
            }
            _ => {}
        }
    }
}

/// What a sync plan creates: new prompts, and new versions (an edit of the server's
/// draft copy, or metadata, is the same whoever sends it twice).
pub fn sync_writes(items: &[SyncItem]) -> Writes {
    let mut writes = Writes::default();
    for item in items {
        if let SyncStep::Change { content, .. } = &item.step {
            let version = content
                .as_ref()
                .is_some_and(|c| c.write == VersionWrite::Create);
            writes.target(item.target.as_ref(), version);
        }
    }
    writes
}

/// What a deploy plan creates: prompts and release versions that do not exist yet.
pub fn deploy_writes(items: &[DeployItem]) -> Writes {
    let mut writes = Writes::default();
    for item in items {
        if let DeployStep::Deploy { target, .. } = &item.step {
            let version = matches!(target, DeployTarget::Create { .. });
            writes.target(item.target.as_ref(), version);
        }
    }
    writes
}

impl Remote {
    /// Merge prompts read again (`fresh`, read for `writes`) into this snapshot; whether
    /// anything differs from what the snapshot held (a prompt that appeared, a newest
    /// or live version that moved, one that could not be read this time), in which
    /// case the plan must be made again. A prompt read again drops its version list,
    /// which may be stale too.
    pub fn refresh(&mut self, writes: &Writes, fresh: Remote) -> bool {
        let mut changed = false;
        // An id asked for that did not come back was deleted meanwhile: its file
        // fails, as it would on a snapshot that never had it.
        for id in &writes.ids {
            if !fresh.prompts.contains_key(id) && !fresh.unreadable.contains_key(id) {
                changed = true;
                self.prompts.remove(id);
                self.versions.remove(id);
            }
        }
        for (id, prompt) in fresh.prompts {
            if !self.prompts.get(&id).is_some_and(|old| same(old, &prompt)) {
                changed = true;
                self.versions.remove(&id);
            }
            self.unreadable.remove(&id);
            self.prompts.insert(id, prompt);
        }
        for (id, reason) in fresh.unreadable {
            changed = true;
            self.unreadable.insert(id, reason);
        }
        for (name, reason) in fresh.unreadable_names {
            changed = true;
            self.unreadable_names.insert(name, reason);
        }
        changed
    }
}

/// Whether two reads of a prompt show the same state for planning: its name and its
/// newest and live versions.
fn same(old: &Prompt, new: &Prompt) -> bool {
    let number = |v: &Option<Version>| v.as_ref().map(|v| v.number);
    old.name == new.name
        && old.description == new.description
        && number(&old.current_version) == number(&new.current_version)
        && number(&old.live_version) == number(&new.live_version)
}
