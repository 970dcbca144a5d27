//! What the daemon keeps between passes so that a commit costs the files it changed,
//! not the repository: each valid prompt file of a commit's tree, keyed by its path
//! and blob id (and the blob ids of its `content_file`s), with the desired prompt and
//! warnings it gave. A file whose blobs are as they were is not read or parsed again.
//! Only regular files of commit trees are kept (the working tree has no content ids);
//! invalid files are always read again, so their findings are fresh.

use std::collections::{HashMap, HashSet};

use git2::Oid;

use super::DesiredPrompt;
use crate::diagnostic::Diagnostic;
use crate::discover::FileTree;

/// Valid prompt files of earlier loads, by path.
#[derive(Debug, Default)]
pub struct LoadCache {
    files: HashMap<String, Cached>,
    /// Paths used or stored since the last [`LoadCache::sweep`].
    used: HashSet<String>,
    /// Files taken from the cache since then.
    reused: usize,
}

/// One valid prompt file as loaded from a commit.
#[derive(Debug, Clone)]
pub(super) struct Cached {
    /// The prompt file's blob.
    pub(super) blob: Oid,
    /// Its content files: as written, where that led, and the blob read there.
    pub(super) content: Vec<ContentBlob>,
    /// `prompt_id` and `name` as written, for the conflict check across files.
    pub(super) keys: [Option<String>; 2],
    pub(super) desired: DesiredPrompt,
    /// Its warnings (a valid file has no error).
    pub(super) diagnostics: Vec<Diagnostic>,
}

#[derive(Debug, Clone)]
pub(super) struct ContentBlob {
    pub(super) relative: String,
    pub(super) resolved: String,
    pub(super) blob: Oid,
}

impl LoadCache {
    /// How many files it holds.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Whether the file at `path` of `tree` is kept and none of its blobs changed
    /// (counted as used).
    pub(super) fn fresh(&mut self, tree: &FileTree<'_>, path: &str) -> bool {
        let Some(cached) = self.files.get(path) else {
            return false;
        };
        let fresh = tree.blob_id(path) == Some(cached.blob)
            && cached.content.iter().all(|content| {
                tree.resolve(path, &content.relative)
                    .is_ok_and(|resolved| resolved == content.resolved)
                    && tree.blob_id(&content.resolved) == Some(content.blob)
            });
        if fresh {
            self.used.insert(path.to_owned());
            self.reused += 1;
        }
        fresh
    }

    /// The kept file at `path`, as it is (see [`LoadCache::fresh`]).
    pub(super) fn peek(&self, path: &str) -> Option<&Cached> {
        self.files.get(path)
    }

    pub(super) fn insert(&mut self, path: &str, cached: Cached) {
        self.used.insert(path.to_owned());
        self.files.insert(path.to_owned(), cached);
    }

    /// Forget the files no load used since the last sweep (deleted, renamed, or now
    /// invalid). Called once a pass, after every tree it reads. Returns how many files
    /// were taken from the cache meanwhile.
    pub fn sweep(&mut self) -> usize {
        let used = std::mem::take(&mut self.used);
        self.files.retain(|path, _| used.contains(path));
        std::mem::take(&mut self.reused)
    }
}
