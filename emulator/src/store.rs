//! The emulator's state and the lifecycle rules of respan-api.md section 4: a new
//! version is the draft and freezes every earlier one; content edits to a read-only
//! version are refused (or fork); commit freezes the draft (or bumps); only committed
//! versions deploy (or the draft is auto-committed); at most one version is live; the
//! live version cannot be deleted (or can); bulk items run one by one, each its own
//! transaction. Every operation checks everything before it changes anything, so a
//! refused request leaves no trace. Pure: no I/O, no HTTP; [`Store::generation`] tells
//! the persistence layer that something changed. The bulk endpoint's envelope and
//! items are `bulk`'s.

mod bulk;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::filters::{Filter, Sort};
use super::knobs::{CommitMode, CreateDeploy, DeleteLive, DeployDraft, EditReadonly, Knobs};
use super::model::{EDITOR_EMAIL, PromptRecord, VersionRecord, format_time, slugify};
use super::presets::Presets;
use super::reply::Failure;
use super::validate::{PromptInput, VERSION_FIELDS, VersionInput};

/// Every prompt, deleted ones included (soft delete, 4.11).
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Store {
    next_seq: u64,
    prompts: Vec<PromptRecord>,
    /// Response-format presets (E16–E20).
    #[serde(default)]
    presets: Presets,
    #[serde(skip)]
    index: HashMap<String, usize>,
    #[serde(skip)]
    generation: u64,
    #[serde(skip)]
    last_time: Option<OffsetDateTime>,
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}{:016x}", fastrand::u64(..))
}

fn version_not_found(number: impl std::fmt::Display) -> Failure {
    Failure::detail(404, format!("Version {number} not found."))
}

fn draft_refused(number: u32) -> Failure {
    Failure::bad_request(format!(
        "Version {number} is a draft; commit it before deploying."
    ))
}

impl Store {
    /// Check a store read from a file and rebuild its index.
    pub(crate) fn restored(mut self) -> Result<Store, String> {
        self.index.clear();
        for (position, prompt) in self.prompts.iter().enumerate() {
            if self.index.insert(prompt.id.clone(), position).is_some() {
                return Err(format!("prompt id {} appears twice", prompt.id));
            }
            if prompt.seq >= self.next_seq {
                return Err(format!(
                    "prompt {} has seq {} >= next_seq",
                    prompt.id, prompt.seq
                ));
            }
            let numbers: Vec<u32> = prompt.versions.iter().map(|v| v.version).collect();
            if numbers.windows(2).any(|w| w[0] >= w[1]) {
                return Err(format!("versions of prompt {} are not in order", prompt.id));
            }
            if numbers.last().is_some_and(|n| *n >= prompt.next_version) {
                return Err(format!("prompt {} reuses a version number", prompt.id));
            }
            let drafts = prompt.versions.iter().filter(|v| !v.readonly).count();
            if drafts > 1 || (drafts == 1 && prompt.draft_index().is_none()) {
                return Err(format!(
                    "prompt {} has a draft below its newest version",
                    prompt.id
                ));
            }
            if prompt.live.is_some() && prompt.live_version().is_none() {
                return Err(format!("prompt {} is live on a missing version", prompt.id));
            }
        }
        Ok(self)
    }

    /// Increases with every change; the persistence layer saves up to it.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    fn changed(&mut self) {
        self.generation += 1;
    }

    /// Now, strictly after every earlier timestamp of this store.
    fn now(&mut self) -> String {
        let mut now = OffsetDateTime::now_utc();
        if let Some(last) = self.last_time
            && now <= last
        {
            now = last + time::Duration::microseconds(1);
        }
        self.last_time = Some(now);
        format_time(now)
    }

    /// Forget every prompt and preset (the admin reset).
    pub(crate) fn reset(&mut self) {
        self.prompts.clear();
        self.index.clear();
        self.presets = Presets::default();
        self.changed();
    }

    pub(crate) fn presets(&self) -> &Presets {
        &self.presets
    }

    /// Run a change on the presets with a fresh id and timestamp; a success counts as
    /// a change of the store.
    pub(crate) fn change_presets<T>(
        &mut self,
        op: impl FnOnce(&mut Presets, String, &str) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let now = self.now();
        let result = op(&mut self.presets, new_id("rfp_"), &now);
        if result.is_ok() {
            self.changed();
        }
        result
    }

    fn position(&self, id: &str) -> Result<usize, Failure> {
        self.index
            .get(id)
            .copied()
            .filter(|&i| !self.prompts[i].is_deleted())
            .ok_or_else(Failure::not_found)
    }

    fn prompt(&self, id: &str) -> Result<&PromptRecord, Failure> {
        self.position(id).map(|i| &self.prompts[i])
    }

    fn prompt_mut(&mut self, id: &str) -> Result<&mut PromptRecord, Failure> {
        let position = self.position(id)?;
        Ok(&mut self.prompts[position])
    }

    // --- prompts -------------------------------------------------------------------

    /// E2: a prompt with no version (4.2).
    pub(crate) fn create_prompt(&mut self, input: PromptInput) -> Value {
        let now = self.now();
        let mut id = new_id("prm_");
        while self.index.contains_key(&id) {
            id = new_id("prm_");
        }
        let name = input.name.unwrap_or_else(|| "Untitled".to_owned());
        let prompt = PromptRecord {
            id: id.clone(),
            seq: self.next_seq,
            prompt_slug: slugify(&name),
            name,
            description: input.description.flatten(),
            tags: Vec::new(),
            starred: false,
            creator_email: EDITOR_EMAIL.to_owned(),
            created_at: now.clone(),
            updated_at: now,
            deleted_at: None,
            next_version: 1,
            live: None,
            versions: Vec::new(),
        };
        self.next_seq += 1;
        let body = prompt.to_json();
        self.index.insert(id, self.prompts.len());
        self.prompts.push(prompt);
        self.changed();
        body
    }

    /// E1: the prompts `filter` selects, in `sort` order.
    pub(crate) fn select(&self, filter: &Filter, sort: &Sort) -> Vec<&PromptRecord> {
        let mut selected: Vec<&PromptRecord> =
            self.prompts.iter().filter(|p| filter.matches(p)).collect();
        selected.sort_by(|a, b| sort.compare(a, b));
        selected
    }

    /// E14: how many prompts `filter` selects.
    pub(crate) fn count(&self, filter: &Filter) -> usize {
        self.prompts.iter().filter(|p| filter.matches(p)).count()
    }

    /// E4.
    pub(crate) fn retrieve_prompt(&self, id: &str) -> Result<Value, Failure> {
        self.prompt(id).map(PromptRecord::to_json)
    }

    /// E5: name and description; `deploy: true` only behind `legacy_prompt_deploy`.
    pub(crate) fn update_prompt(
        &mut self,
        id: &str,
        input: PromptInput,
        knobs: Knobs,
    ) -> Result<Value, Failure> {
        let now = self.now();
        let prompt = self.prompt_mut(id)?;
        let legacy_deploy = if input.deploy && knobs.legacy_prompt_deploy {
            let newest_committed = prompt.versions.iter().rev().find(|v| v.readonly);
            let number = newest_committed
                .map(|v| v.version)
                .ok_or_else(|| Failure::bad_request("No read-only version to deploy."))?;
            Some(number)
        } else {
            None
        };
        if let Some(name) = input.name {
            prompt.name = name;
        }
        if let Some(description) = input.description {
            prompt.description = description;
        }
        if let Some(number) = legacy_deploy {
            prompt.live = Some(number);
        }
        prompt.updated_at = now;
        let body = prompt.update_json();
        self.changed();
        Ok(body)
    }

    /// E6: soft delete (4.11).
    pub(crate) fn delete_prompt(&mut self, id: &str) -> Result<(), Failure> {
        let now = self.now();
        let prompt = self.prompt_mut(id)?;
        prompt.deleted_at = Some(now.clone());
        prompt.updated_at = now;
        self.changed();
        Ok(())
    }

    // --- versions ------------------------------------------------------------------

    /// E7: a prompt's versions, oldest first, and its live number.
    pub(crate) fn versions(&self, id: &str) -> Result<(&[VersionRecord], Option<u32>), Failure> {
        let prompt = self.prompt(id)?;
        Ok((&prompt.versions, prompt.live))
    }

    /// E8: the new version is the draft; every earlier one becomes read-only (4.3).
    pub(crate) fn create_version(
        &mut self,
        id: &str,
        input: VersionInput,
        knobs: Knobs,
    ) -> Result<Value, Failure> {
        if input.deploy && knobs.create_deploy == CreateDeploy::Reject {
            return Err(Failure::field(
                "deploy",
                "A new version cannot be deployed on create; create it, commit it, then deploy it.",
            ));
        }
        let now = self.now();
        let prompt = self.prompt_mut(id)?;
        let mut fields = Map::new();
        for field in VERSION_FIELDS {
            let value = match input.fields.get(field) {
                Some(value) => value.clone(),
                None => knobs.default_for(field),
            };
            fields.insert(field.to_owned(), value);
        }
        store_messages(&mut fields, knobs);
        let number = append_draft(prompt, fields, &now);
        if input.deploy {
            // create_deploy = commit_and_deploy: frozen and live, no draft remains.
            if let Some(last) = prompt.versions.last_mut() {
                last.readonly = true;
            }
            prompt.live = Some(number);
        }
        let body = render(prompt, number);
        self.changed();
        Ok(body)
    }

    /// E9.
    pub(crate) fn retrieve_version(&self, id: &str, number: u32) -> Result<Value, Failure> {
        let prompt = self.prompt(id)?;
        prompt
            .version(number)
            .map(|v| v.to_json(prompt.live))
            .ok_or_else(|| version_not_found(number))
    }

    /// E10: edit the draft in place, refuse (or fork) edits to read-only versions, and
    /// with `deploy: true` deploy the result (4.4, 4.7). Checked in full before any
    /// change, so a refused deploy leaves the edit unapplied too.
    pub(crate) fn update_version(
        &mut self,
        id: &str,
        number: u32,
        input: VersionInput,
        knobs: Knobs,
    ) -> Result<Value, Failure> {
        let now = self.now();
        let prompt = self.prompt_mut(id)?;
        let index = prompt
            .index_of(number)
            .ok_or_else(|| version_not_found(number))?;
        let has_edits = !input.fields.is_empty();
        let readonly = prompt.versions[index].readonly;
        let fork = has_edits && readonly;
        if fork && knobs.edit_readonly == EditReadonly::Reject {
            return Err(Failure::bad_request(format!(
                "Version {number} is read-only."
            )));
        }
        let result_number = if fork { prompt.next_version } else { number };
        if input.deploy && (fork || !readonly) && knobs.deploy_draft == DeployDraft::Reject {
            return Err(draft_refused(result_number));
        }
        let mut changed = has_edits;
        if fork {
            let mut fields = prompt.versions[index].fields.clone();
            fields.extend(input.fields);
            store_messages(&mut fields, knobs);
            append_draft(prompt, fields, &now);
        } else if has_edits {
            let version = &mut prompt.versions[index];
            version.fields.extend(input.fields);
            store_messages(&mut version.fields, knobs);
            version.updated_at.clone_from(&now);
            prompt.updated_at.clone_from(&now);
        }
        if input.deploy {
            changed |= deploy_version(prompt, result_number, knobs, &now)?;
        }
        let body = render(prompt, result_number);
        if changed {
            self.changed();
        }
        Ok(body)
    }

    /// E11: the live version stays unless `delete_live = allow` (4.10).
    pub(crate) fn delete_version(
        &mut self,
        id: &str,
        number: u32,
        knobs: Knobs,
    ) -> Result<(), Failure> {
        let now = self.now();
        let prompt = self.prompt_mut(id)?;
        let index = prompt
            .index_of(number)
            .ok_or_else(|| version_not_found(number))?;
        if prompt.live == Some(number) {
            if knobs.delete_live == DeleteLive::Reject {
                return Err(Failure::bad_request("The live version cannot be deleted."));
            }
            prompt.live = None;
        }
        prompt.versions.remove(index);
        prompt.updated_at = now;
        self.changed();
        Ok(())
    }

    /// E12: freeze the draft (and with `commit_mode = bump` open N+1). Returns the
    /// committed version, short form.
    pub(crate) fn commit(
        &mut self,
        id: &str,
        description: Option<String>,
        knobs: Knobs,
    ) -> Result<Value, Failure> {
        let now = self.now();
        let prompt = self.prompt_mut(id)?;
        let number = commit_draft(prompt, description, knobs, &now)?;
        let body = render_short(prompt, number);
        self.changed();
        Ok(body)
    }

    /// E13: make a committed version live (4.6). Already live: 200, no change.
    pub(crate) fn deploy(&mut self, id: &str, number: i64, knobs: Knobs) -> Result<Value, Failure> {
        let now = self.now();
        let prompt = self.prompt_mut(id)?;
        let number = u32::try_from(number).map_err(|_| version_not_found(number))?;
        let changed = deploy_version(prompt, number, knobs, &now)?;
        let body = render_short(prompt, number);
        if changed {
            self.changed();
        }
        Ok(body)
    }
}

// --- rules shared by the endpoints and bulk --------------------------------------------

fn store_messages(fields: &mut Map<String, Value>, knobs: Knobs) {
    if let Some(messages) = fields.get_mut("messages") {
        *messages = knobs.store_messages(std::mem::take(messages));
    }
}

/// Append a new draft and freeze every earlier version (4.3). Returns its number.
fn append_draft(prompt: &mut PromptRecord, fields: Map<String, Value>, now: &str) -> u32 {
    for version in &mut prompt.versions {
        version.readonly = true;
    }
    let number = prompt.next_version;
    prompt.next_version += 1;
    prompt.versions.push(VersionRecord {
        id: new_id("pv_"),
        version: number,
        readonly: false,
        created_at: now.to_owned(),
        updated_at: now.to_owned(),
        fields,
    });
    prompt.updated_at = now.to_owned();
    number
}

/// Freeze the draft (4.5); a given description replaces the version's. With
/// `commit_mode = bump`, a new draft N+1 with the same content follows.
fn commit_draft(
    prompt: &mut PromptRecord,
    description: Option<String>,
    knobs: Knobs,
    now: &str,
) -> Result<u32, Failure> {
    let index = prompt
        .draft_index()
        .ok_or_else(|| Failure::bad_request("No draft version to commit."))?;
    let version = &mut prompt.versions[index];
    version.readonly = true;
    if let Some(description) = description {
        version
            .fields
            .insert("description".to_owned(), Value::String(description));
    }
    version.updated_at = now.to_owned();
    let number = version.version;
    let copy = version.fields.clone();
    prompt.updated_at = now.to_owned();
    if knobs.commit_mode == CommitMode::Bump {
        append_draft(prompt, copy, now);
    }
    Ok(number)
}

/// Make `number` live (4.6); a draft is refused or auto-committed per the knob.
/// Returns whether anything changed.
fn deploy_version(
    prompt: &mut PromptRecord,
    number: u32,
    knobs: Knobs,
    now: &str,
) -> Result<bool, Failure> {
    let version = prompt
        .version(number)
        .ok_or_else(|| version_not_found(number))?;
    if !version.readonly {
        if knobs.deploy_draft == DeployDraft::Reject {
            return Err(draft_refused(number));
        }
        commit_draft(prompt, None, knobs, now)?;
    } else if prompt.live == Some(number) {
        return Ok(false);
    }
    prompt.live = Some(number);
    prompt.updated_at = now.to_owned();
    Ok(true)
}

fn render(prompt: &PromptRecord, number: u32) -> Value {
    prompt
        .version(number)
        .map_or(Value::Null, |v| v.to_json(prompt.live))
}

fn render_short(prompt: &PromptRecord, number: u32) -> Value {
    prompt
        .version(number)
        .map_or(Value::Null, |v| v.short_json(prompt.live))
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
