//! Git's ignore rules for a walk of the working tree, as git applies them: each
//! directory's `.gitignore` (a deeper file's verdict wins), then `info/exclude` and
//! `core.excludesFile`. Read once per walk and matched in memory (the `ignore` crate's
//! matcher); knows nothing about prompt files.

use std::path::Path;

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::gitrepo::GitRepo;
use crate::localfile;

/// Git's ignore rules for one walk of a working tree: each directory's `.gitignore`,
/// read as the walk enters it (a deeper file's verdict wins), then the repository's
/// `info/exclude` and `core.excludesFile`. Matched in memory: libgit2, asked path by
/// path, would look at every ignore file on the way again for each one.
pub(super) struct Ignores {
    /// The `.gitignore` of each directory from the root down to the one being walked.
    levels: Vec<Option<Gitignore>>,
    /// The repository-wide files, in the order git consults them.
    base: Vec<Gitignore>,
    ignore_case: bool,
}

/// The largest ignore file read; git's own limit is 100 MiB, but a larger one in a
/// prompt repository is a mistake, not rules.
const MAX_IGNORE_BYTES: u64 = 1024 * 1024;

impl Ignores {
    /// The rules of `repo`, with the `.gitignore` of every directory above `dir`.
    pub(super) fn new(root: &Path, repo: &GitRepo, dir: &str) -> Ignores {
        let (files, ignore_case) = repo.exclude_files();
        let base = files
            .iter()
            .filter_map(|file| ignore_file(root, file, ignore_case))
            .collect();
        let mut ignores = Ignores {
            levels: Vec::new(),
            base,
            ignore_case,
        };
        if !dir.is_empty() {
            ignores.enter(root);
            let mut above = root.to_owned();
            let parents = dir.rsplit_once('/').map_or("", |(parents, _)| parents);
            for part in parents.split('/').filter(|part| !part.is_empty()) {
                above.push(part);
                ignores.enter(&above);
            }
        }
        ignores
    }

    /// Walking into `dir` (full path): its `.gitignore` applies below it.
    pub(super) fn enter(&mut self, dir: &Path) {
        let file = dir.join(".gitignore");
        let rules = std::fs::symlink_metadata(&file)
            .is_ok_and(|metadata| metadata.is_file())
            .then(|| ignore_file(dir, &file, self.ignore_case))
            .flatten();
        self.levels.push(rules);
    }

    pub(super) fn leave(&mut self) {
        self.levels.pop();
    }

    /// Whether git ignores `path` (full path, under the root).
    pub(super) fn ignored(&self, path: &Path, is_dir: bool) -> bool {
        let verdict = self
            .levels
            .iter()
            .rev()
            .flatten()
            .chain(&self.base)
            .map(|rules| rules.matched(path, is_dir))
            .find(|found| !found.is_none());
        verdict.is_some_and(|found| found.is_ignore())
    }
}

/// The rules of one ignore file, whose patterns are relative to `dir`; `None` when it
/// cannot be read (as git, which then goes without it). A line that is not a valid
/// pattern is skipped, as git skips it.
fn ignore_file(dir: &Path, file: &Path, ignore_case: bool) -> Option<Gitignore> {
    let bytes = localfile::read(file, MAX_IGNORE_BYTES).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let mut builder = GitignoreBuilder::new(dir);
    builder.case_insensitive(ignore_case).ok()?;
    for line in text.lines() {
        if let Err(err) = builder.add_line(Some(file.to_owned()), line) {
            tracing::debug!(file = %file.display(), line, error = %err, "skipping an ignore pattern git would skip");
        }
    }
    builder.build().ok()
}
