//! The remote as a plan sees it: the prompts a pass read (by id, with their current
//! and live versions), the version lists it searched, and the prompts it could not
//! read; what a dry run's deploy would leave there is [`super::simulate_deploy`].

use std::collections::{BTreeMap, HashMap};

use super::*;
use crate::api::types::{Prompt, Version};

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
    pub(super) fn has_ours(&self) -> bool {
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
