//! What the daemon keeps between passes so that a commit costs the files it changed,
//! not the repository: each valid prompt file of a commit's tree, keyed by its path
//! and blob id (and the blob ids of its `content_file`s), with the desired prompt and
//! warnings it gave. A file whose blobs are as they were is not read or parsed again.
//! Only regular files of commit trees are kept (the working tree has no content ids);
//! invalid files are always read again, so their findings are fresh.

use std::cell::Cell;
use std::collections::HashMap;

use foldhash::fast::RandomState;
use git2::Oid;

use super::DesiredPrompt;
use crate::diagnostic::Diagnostic;
use crate::discover::FileTree;

/// Valid prompt files of earlier loads, by path. Looked up several times a file on
/// every pass, so hashed with foldhash (paths are the repository's, not a stranger's).
#[derive(Debug, Default)]
pub struct LoadCache {
    files: HashMap<String, Entry, RandomState>,
    /// Files taken from the cache since the last [`LoadCache::sweep`].
    reused: Cell<usize>,
    /// Files stored since the last [`LoadCache::compact`].
    stored: usize,
}

#[derive(Debug)]
struct Entry {
    cached: Cached,
    /// Used or stored since the last [`LoadCache::sweep`].
    used: Cell<bool>,
}

/// One valid prompt file as loaded from a commit.
#[derive(Debug, Clone)]
pub(super) struct Cached {
    /// The prompt file's blob.
    pub(super) blob: Oid,
    /// Its content files: as written, where that led, and the blob read there.
    pub(super) content: Vec<ContentBlob>,
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

    /// The file at `path` of `tree`, when it is kept and none of its blobs changed
    /// (counted as used).
    pub(super) fn fresh(&self, tree: &FileTree<'_>, path: &str) -> Option<&Cached> {
        let entry = self.files.get(path)?;
        let cached = &entry.cached;
        let fresh = tree.blob_id(path) == Some(cached.blob)
            && cached.content.iter().all(|content| {
                tree.resolve(path, &content.relative)
                    .is_ok_and(|resolved| resolved == content.resolved)
                    && tree.blob_id(&content.resolved) == Some(content.blob)
            });
        if !fresh {
            return None;
        }
        entry.used.set(true);
        self.reused.set(self.reused.get() + 1);
        Some(cached)
    }

    /// The kept file at `path`, as it is (see [`LoadCache::fresh`]).
    #[cfg(test)]
    fn peek(&self, path: &str) -> Option<&Cached> {
        self.files.get(path).map(|entry| &entry.cached)
    }

    pub(super) fn insert(&mut self, path: &str, cached: Cached) {
        self.files.insert(
            path.to_owned(),
            Entry {
                cached,
                used: Cell::new(true),
            },
        );
        self.stored += 1;
    }

    /// Forget the files no load used since the last sweep (deleted, renamed, or now
    /// invalid). Called once a pass, after every tree it reads. Returns how many files
    /// were taken from the cache meanwhile.
    pub fn sweep(&mut self) -> usize {
        self.files.retain(|_, entry| entry.used.take());
        self.reused.take()
    }

    /// Copy what the cache keeps into fresh allocations and free the old ones, when a
    /// quarter of it or more was stored since the last call (a first pass, a large
    /// commit; not a commit of a few files, whose pass stays as cheap as its change).
    /// The entries a load makes are allocated among its temporaries (file bytes,
    /// parse trees); once those are freed, the scattered entries keep most of the
    /// heap's pages resident. Copied at a quiet moment, they fill the free space
    /// densely, and the pages left empty can go back to the system
    /// (`memory::release`): with 1,000 files, 1.2 MiB less resident. Returns whether
    /// it copied.
    pub fn compact(&mut self) -> bool {
        let stored = std::mem::take(&mut self.stored);
        if stored == 0 || stored * 4 < self.files.len() {
            return false;
        }
        let old = std::mem::take(&mut self.files);
        let mut files = HashMap::with_capacity_and_hasher(old.len(), RandomState::default());
        for (path, entry) in &old {
            let mut cached = entry.cached.clone();
            // A deep copy: the prompt may be shared with a pass that has ended.
            cached.desired = entry.cached.desired.deep_copy();
            files.insert(
                path.clone(),
                Entry {
                    cached,
                    used: entry.used.clone(),
                },
            );
        }
        drop(old);
        self.files = files;
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::api::types::VersionSpec;
    use crate::desired::PromptKey;

    fn cached(name: &str) -> Cached {
        let spec = VersionSpec {
            model: Some("gpt-4o".into()),
            ..VersionSpec::default()
        };
        let desired = DesiredPrompt::new(
            format!("{name}.prompt.yaml"),
            PromptKey::Name(name.into()),
            Some(name.into()),
            None,
            true,
            spec,
        );
        Cached {
            blob: Oid::hash_object(git2::ObjectType::Blob, name.as_bytes()).unwrap(),
            content: Vec::new(),
            desired,
            diagnostics: Vec::new(),
        }
    }

    #[test]
    fn compact_copies_the_entries_after_a_large_store_only() {
        let mut cache = LoadCache::default();
        for name in ["A", "B", "C", "D", "E", "F", "G", "H"] {
            cache.insert(
                &format!("{}.prompt.yaml", name.to_lowercase()),
                cached(name),
            );
        }
        let before = Arc::as_ptr(&cache.peek("a.prompt.yaml").unwrap().desired.spec);

        assert!(cache.compact());
        let a = cache.peek("a.prompt.yaml").unwrap();
        assert_eq!(a.desired, cached("A").desired);
        assert_eq!(cache.len(), 8);
        let copied = Arc::as_ptr(&a.desired.spec);
        assert_ne!(copied, before, "the content is a copy, not the shared one");

        // Nothing stored since, then one file in eight: nothing to copy.
        assert!(!cache.compact());
        cache.insert("b.prompt.yaml", cached("B"));
        assert!(!cache.compact());
        let again = Arc::as_ptr(&cache.peek("a.prompt.yaml").unwrap().desired.spec);
        assert_eq!(again, copied);
        // The pass bookkeeping is the cache's, untouched by a copy.
        assert_eq!(cache.sweep(), 0);
        assert_eq!(cache.len(), 8);
        // No load used them since: the next sweep forgets them all.
        cache.sweep();
        assert!(cache.is_empty());
    }
}
