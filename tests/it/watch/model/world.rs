//! The model of the model test: the prompt files of each commit as the test wrote
//! them, and what the rules of DESIGN.md say about them, worked out here without
//! promptsync: which files are invalid (broken YAML, or a `prompt_id` or `name` two
//! files write), where each valid file resolves on a given remote, which of them
//! conflict, and which writes a pass at a commit may make at all.

use std::collections::{BTreeMap, HashMap};

/// How many prompt file slots (`prompts/f<n>.prompt.yaml`) and content files
/// (`prompts/text/t<n>.md`) there are.
pub(super) const SLOTS: usize = 6;
pub(super) const CONTENTS: usize = 3;

/// How a file names its prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Key {
    /// `name: <n>` alone.
    Name(String),
    /// `prompt_id: <id>`.
    Id(String),
}

/// The `name` an id file writes beside its `prompt_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Meta {
    None,
    /// The prompt's first name (what `pull` writes).
    Orig,
    /// `Renamed <id>`: a rename, unique to the prompt.
    Renamed,
}

/// Where a file's system message comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Text {
    Inline(String),
    /// `content_file: text/t<n>.md`.
    Content(usize),
}

/// One prompt file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Spec {
    pub key: Key,
    pub meta: Meta,
    pub text: Text,
    /// Not YAML at all: an invalid file that names nothing.
    pub broken: bool,
}

/// The files of one commit.
#[derive(Debug, Clone, Default)]
pub(super) struct Tree {
    pub files: BTreeMap<usize, Spec>,
    pub contents: Vec<String>,
}

/// What one full pass says about a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    Invalid,
    Conflict,
    Failed,
    /// In sync with this remote prompt (`None`: one the pass creates).
    Synced(Option<String>),
}

pub(super) fn path_of(slot: usize) -> String {
    format!("prompts/f{slot}.prompt.yaml")
}

pub(super) fn content_path(n: usize) -> String {
    format!("prompts/text/t{n}.md")
}

/// The rename name of a prompt.
pub(super) fn renamed(id: &str) -> String {
    format!("Renamed {id}")
}

/// Everything the test did, commit by commit.
#[derive(Debug, Default)]
pub(super) struct World {
    pub tree: Tree,
    /// Every commit, in order: its id and its files.
    pub commits: Vec<(String, Tree)>,
    /// The first name of every prompt a file named by id.
    pub orig: HashMap<String, String>,
    /// For each prompt, the first commit (index into `commits`) with a file that
    /// renames it: before it, the prompt surely has its first name.
    pub first_rename: HashMap<String, usize>,
    /// The commits a release tag names: a deploy reads them at any later time, when
    /// a later commit may have renamed a prompt.
    pub tagged: std::collections::BTreeSet<usize>,
}

impl World {
    /// The text a file's prompt gets.
    pub(super) fn text_of(tree: &Tree, spec: &Spec) -> String {
        match &spec.text {
            Text::Inline(text) => text.clone(),
            Text::Content(n) => tree.contents[*n].clone(),
        }
    }

    /// The file as written to disk.
    pub(super) fn render(&self, spec: &Spec) -> String {
        if spec.broken {
            return "model: gpt-4o\nmessages: [\n".to_owned();
        }
        let mut out = String::new();
        if let Key::Id(id) = &spec.key {
            out.push_str(&format!("prompt_id: {id:?}\n"));
        }
        if let Some(name) = self.written_name(spec) {
            out.push_str(&format!("name: {name:?}\n"));
        }
        out.push_str("model: gpt-4o\nmessages:\n  - role: system\n");
        match &spec.text {
            Text::Inline(text) => out.push_str(&format!("    content: {text:?}\n")),
            Text::Content(n) => out.push_str(&format!("    content_file: text/t{n}.md\n")),
        }
        out
    }

    /// The `name` a file writes, if any.
    pub(super) fn written_name(&self, spec: &Spec) -> Option<String> {
        match (&spec.key, spec.meta) {
            (Key::Name(name), _) => Some(name.clone()),
            (Key::Id(_), Meta::None) => None,
            (Key::Id(id), Meta::Orig) => Some(self.orig[id].clone()),
            (Key::Id(id), Meta::Renamed) => Some(renamed(id)),
        }
    }

    /// Record the commit just made of the current tree.
    pub(super) fn committed(&mut self, id: String) {
        let index = self.commits.len();
        for spec in self.tree.files.values() {
            if let (Key::Id(prompt), Meta::Renamed) = (&spec.key, spec.meta) {
                self.first_rename.entry(prompt.clone()).or_insert(index);
            }
        }
        self.commits.push((id, self.tree.clone()));
    }

    /// The files of `tree` that load: not broken, and no `prompt_id` or `name` that
    /// another file writes too.
    pub(super) fn loadable(&self, tree: &Tree) -> Vec<usize> {
        let mut uses: HashMap<(u8, String), usize> = HashMap::new();
        for spec in tree.files.values().filter(|s| !s.broken) {
            for key in self.written_keys(spec) {
                *uses.entry(key).or_default() += 1;
            }
        }
        tree.files
            .iter()
            .filter(|(_, spec)| !spec.broken)
            .filter(|(_, spec)| self.written_keys(spec).iter().all(|k| uses[k] == 1))
            .map(|(slot, _)| *slot)
            .collect()
    }

    fn written_keys(&self, spec: &Spec) -> Vec<(u8, String)> {
        let mut keys = Vec::new();
        if let Key::Id(id) = &spec.key {
            keys.push((0, id.clone()));
        }
        if let Some(name) = self.written_name(spec) {
            keys.push((1, name));
        }
        keys
    }

    /// What one full pass on `tree` says about each file, on a remote whose prompts
    /// are `names` (id to current name).
    pub(super) fn verdicts(
        &self,
        tree: &Tree,
        names: &BTreeMap<String, String>,
    ) -> BTreeMap<usize, Verdict> {
        let loadable = self.loadable(tree);
        let mut verdicts: BTreeMap<usize, Verdict> = tree
            .files
            .keys()
            .map(|slot| (*slot, Verdict::Invalid))
            .collect();
        let mut targets: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for slot in loadable {
            let target = match &tree.files[&slot].key {
                Key::Id(id) => Some(Some(id.clone())),
                Key::Name(name) => {
                    let found: Vec<&String> = names
                        .iter()
                        .filter(|(_, n)| *n == name)
                        .map(|(id, _)| id)
                        .collect();
                    match found.as_slice() {
                        [] => Some(None),
                        [id] => Some(Some((*id).clone())),
                        _ => None,
                    }
                }
            };
            let Some(target) = target else {
                verdicts.insert(slot, Verdict::Failed);
                continue;
            };
            let label = match &target {
                Some(id) => format!("id:{id}"),
                None => match &tree.files[&slot].key {
                    Key::Name(name) => format!("new:{name}"),
                    Key::Id(id) => format!("id:{id}"),
                },
            };
            targets.entry(label).or_default().push(slot);
            verdicts.insert(slot, Verdict::Synced(target));
        }
        for slots in targets.values().filter(|s| s.len() > 1) {
            for slot in slots {
                verdicts.insert(*slot, Verdict::Conflict);
            }
        }
        verdicts
    }

    /// Whether a pass at commit `index` may write `text` onto prompt `id`: some file
    /// that loads there has that text and names the prompt (by id, or by its first
    /// name), and no two files that load there surely resolve to it (one by id, one
    /// by its first name while no file of an earlier commit renamed it, nor of any
    /// commit when a release tag names this one). `Err` says why not.
    pub(super) fn may_write(
        &self,
        index: usize,
        id: &str,
        orig: &str,
        text: &str,
    ) -> Result<(), String> {
        let tree = &self.commits[index].1;
        let loadable = self.loadable(tree);
        let names_it = |spec: &Spec| match &spec.key {
            Key::Id(x) => x == id,
            Key::Name(n) => n == orig,
        };
        let from = loadable
            .iter()
            .map(|slot| &tree.files[slot])
            .any(|spec| names_it(spec) && World::text_of(tree, spec) == text);
        if !from {
            return Err(format!(
                "no file that loads at commit #{index} gives {text:?} to {id} ({orig})"
            ));
        }
        let renamed_before = self
            .first_rename
            .get(id)
            .is_some_and(|first| *first < index || self.tagged.contains(&index));
        let sure: Vec<usize> = loadable
            .iter()
            .copied()
            .filter(|slot| match &tree.files[slot].key {
                Key::Id(x) => x == id,
                Key::Name(n) => n == orig && !renamed_before,
            })
            .collect();
        if sure.len() > 1 {
            return Err(format!(
                "files {sure:?} of commit #{index} all resolve to {id} ({orig}): a conflict, yet {text:?} was written"
            ));
        }
        Ok(())
    }
}
