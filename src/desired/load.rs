//! Loading one source: discover its prompt files (a commit's tree, the working tree,
//! or paths on disk as `promptsync validate PATHS` names them), read and parse them on
//! every core, take the unchanged ones from the daemon's cache, check conflicts, and
//! gather the desired prompts and every finding in path order.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::cache::{Cached, ContentBlob, LoadCache};
use super::conflicts::{check_conflicts, conflict_keys, prompt_keys};
use super::content::{Loaded, Parsed, checked, names_content_files, with_content};
use super::findings::{GIT_DIR_HELP, submodule_warning, unreadable_file};
use super::parallel::{on_all_cores, threads_for};
use super::spec::desired_prompt;
use super::{DesiredPrompt, DesiredSet, SourceInfo, SourceRev};
use crate::config::PromptSettings;
use crate::diagnostic::Diagnostic;
use crate::discover::{self, DiscoverError, FileTree, Listing, Matcher, ReadError};
use crate::excerpt;
use crate::gitrepo::{GitError, GitRepo};
use crate::localfile;
use crate::prompt;

/// A failure to read the source at all (as opposed to findings in files).
#[derive(Debug, Error)]
pub enum LoadError {
    #[error(transparent)]
    Git(#[from] GitError),

    #[error(transparent)]
    Discover(#[from] DiscoverError),
}

impl LoadError {
    /// What to do next (`crate::failure`), as the cause decides.
    pub fn class(&self) -> crate::failure::FailureClass {
        match self {
            LoadError::Git(err) => err.class(),
            LoadError::Discover(err) => err.class(),
        }
    }
}

/// Discover, parse, validate and resolve every prompt file of one source.
pub fn load(
    repo: &GitRepo,
    rev: &SourceRev,
    prompts: &PromptSettings,
) -> Result<DesiredSet, LoadError> {
    load_with(repo, rev, prompts, None)
}

/// [`load`], taking the files of a commit whose blobs are as they were from `cache`
/// (and keeping the valid ones it reads there).
pub fn load_with(
    repo: &GitRepo,
    rev: &SourceRev,
    prompts: &PromptSettings,
    cache: Option<&mut LoadCache>,
) -> Result<DesiredSet, LoadError> {
    let matcher = Matcher::new(prompts)?;
    match rev {
        SourceRev::Commit(rev) => {
            let commit = repo.resolve_commit(rev)?;
            let source = SourceInfo {
                commit: Some(commit.id.clone()),
                subject: Some(commit.subject.clone()),
                worktree: false,
            };
            let tree = FileTree::Commit(repo.tree(&commit)?);
            let listing = tree.list(|path| matcher.is_match(path))?;
            Ok(load_files(&tree, listing, source, Vec::new(), cache))
        }
        SourceRev::Worktree => {
            let tree = FileTree::worktree(repo);
            let listing = tree.list(|path| matcher.is_match(path))?;
            Ok(load_files(
                &tree,
                listing,
                worktree_source(Some(repo)),
                Vec::new(),
                None,
            ))
        }
    }
}

/// The files and directories `paths` on disk (as `promptsync validate PATHS` names
/// them), checked like a source: a named file is taken whatever its name; a directory
/// is searched for files that the include globs match (from the root or from that
/// directory) or that are named `*.prompt.yaml`/`*.prompt.yml`, less the excluded
/// ones. `root` is the repository root (`repo`'s when there is one); paths outside it,
/// and paths that do not exist, are reported as findings.
pub fn load_paths(
    root: &Path,
    repo: Option<&GitRepo>,
    paths: &[PathBuf],
    prompts: &PromptSettings,
) -> Result<DesiredSet, LoadError> {
    let matcher = Matcher::new(prompts)?;
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_owned());
    let tree = FileTree::Disk {
        root: root.clone(),
        repo,
    };
    let mut files = BTreeSet::new();
    let mut unreadable = Vec::new();
    let mut submodules = Vec::new();
    let mut problems = Vec::new();
    for given in paths {
        // A path on the command line can be any length: its findings quote an excerpt.
        let full = given.display().to_string();
        let shown = excerpt::excerpt(&full).into_owned();
        let quoted = excerpt::quoted(&full);
        let canonical = match std::fs::canonicalize(given) {
            Ok(canonical) => canonical,
            Err(err) => {
                problems.push(
                    Diagnostic::error(
                        &shown,
                        format!("cannot read {quoted}: {}", localfile::io_text(&err)),
                    )
                    .with_help("check the path"),
                );
                continue;
            }
        };
        let Ok(inside) = canonical.strip_prefix(&root) else {
            problems.push(
                Diagnostic::error(
                    &shown,
                    format!("{quoted} is outside the repository at {}", root.display()),
                )
                .with_help("check files of another repository from there, or pass --repo"),
            );
            continue;
        };
        let rel = discover::to_slash(inside);
        if tree.in_git_dir(&rel) {
            problems.push(
                Diagnostic::error(
                    &shown,
                    format!("{quoted} is inside the git directory, which promptsync never reads"),
                )
                .with_help(GIT_DIR_HELP),
            );
            continue;
        }
        if let Some(submodule) = tree.disk().and_then(|disk| disk.submodule_of(&rel)) {
            let place = if submodule == rel {
                "is a submodule".to_owned()
            } else {
                format!("is inside the submodule {}", excerpt::quoted(&submodule))
            };
            problems.push(
                Diagnostic::error(
                    &shown,
                    format!("{quoted} {place}, whose files promptsync does not read"),
                )
                .with_help("run promptsync validate in the submodule's repository"),
            );
            continue;
        }
        if canonical.is_dir() {
            let prefix = if rel.is_empty() {
                String::new()
            } else {
                format!("{rel}/")
            };
            let found = tree.list_under(&rel, |path| {
                let from_dir = path.strip_prefix(&prefix).unwrap_or(path);
                !matcher.excludes(path)
                    && (matcher.includes(path)
                        || matcher.includes(from_dir)
                        || discover::is_prompt_file_name(path))
            })?;
            files.extend(found.files);
            unreadable.extend(found.unreadable);
            submodules.extend(found.submodules);
        } else {
            files.insert(rel);
        }
    }
    let listing = Listing {
        files: files.into_iter().collect(),
        unreadable,
        submodules,
    };
    Ok(load_files(
        &tree,
        listing,
        worktree_source(repo),
        problems,
        None,
    ))
}

fn worktree_source(repo: Option<&GitRepo>) -> SourceInfo {
    let head = repo.and_then(|repo| repo.resolve_commit("HEAD").ok());
    SourceInfo {
        commit: head.as_ref().map(|c| c.id.clone()),
        subject: head.map(|c| c.subject),
        worktree: true,
    }
}

fn load_files(
    tree: &FileTree<'_>,
    listing: Listing,
    source: SourceInfo,
    mut diagnostics: Vec<Diagnostic>,
    cache: Option<&mut LoadCache>,
) -> DesiredSet {
    let Listing {
        files: paths,
        unreadable,
        submodules,
    } = listing;
    diagnostics.extend(submodules.iter().map(submodule_warning));
    // Files kept from an earlier load, their blobs unchanged, are neither read nor
    // parsed; the others are read here. What is read is kept once the set is built.
    let mut kept: Vec<(String, &Cached)> = Vec::new();
    let misses = match cache.as_deref() {
        Some(cache) => {
            let mut misses = Vec::new();
            for path in paths {
                match cache.fresh(tree, &path) {
                    Some(cached) => kept.push((path, cached)),
                    None => misses.push(path),
                }
            }
            misses
        }
        None => paths,
    };
    let mut files = read_and_check(tree, misses);
    files.extend(unreadable.into_iter().map(|(path, err)| Loaded {
        file: unreadable_file(&path, err),
        texts: BTreeMap::new(),
        content: Vec::new(),
    }));
    if !kept.is_empty() {
        // A kept file that shares a `prompt_id` or `name` with another is read again,
        // so that the conflict check below sees, and positions its error in, every
        // file involved.
        let mut uses: HashMap<(usize, &str), usize, foldhash::fast::RandomState> =
            HashMap::with_capacity_and_hasher(2 * (kept.len() + files.len()), Default::default());
        let written = kept
            .iter()
            .flat_map(|(_, cached)| prompt_keys(&cached.desired))
            .chain(
                files
                    .iter()
                    .flat_map(|loaded| conflict_keys(&loaded.file.value)),
            );
        for key in written {
            *uses.entry(key).or_default() += 1;
        }
        let shared = |(_, cached): &(String, &Cached)| {
            prompt_keys(&cached.desired).any(|key| uses.get(&key).is_some_and(|&n| n > 1))
        };
        let (again, rest): (Vec<_>, Vec<_>) = kept.into_iter().partition(shared);
        kept = rest;
        drop(uses);
        files.extend(read_and_check(
            tree,
            again.into_iter().map(|(path, _)| path).collect(),
        ));
    }
    check_conflicts(
        &mut files
            .iter_mut()
            .map(|loaded| &mut loaded.file)
            .collect::<Vec<_>>(),
    );

    // Every file in path order: its desired prompt (when valid) and its findings,
    // from this read or from the cache.
    let mut store = Vec::new();
    let mut all: Vec<(String, Found)> = Vec::with_capacity(files.len() + kept.len());
    for loaded in files {
        let path = loaded.file.path.clone();
        let desired = loaded
            .file
            .prompt
            .as_ref()
            .map(|prompt| desired_prompt(&path, prompt, &loaded.texts));
        if cache.is_some()
            && let Some(desired) = &desired
            && let Some(cached) = cacheable(tree, &loaded, desired)
        {
            store.push((path.clone(), cached));
        }
        all.push((path, Found::Read(desired, loaded.file.diagnostics)));
    }
    all.extend(
        kept.into_iter()
            .map(|(path, cached)| (path, Found::Kept(cached))),
    );
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let mut prompts = Vec::with_capacity(all.len());
    let mut paths = Vec::with_capacity(all.len());
    for (path, found) in all {
        match found {
            Found::Read(desired, findings) => {
                tracing::debug!(path = %path, findings = findings.len(), "checked prompt file");
                prompts.extend(desired);
                diagnostics.extend(findings);
            }
            Found::Kept(cached) => {
                prompts.push(cached.desired.clone());
                diagnostics.extend(cached.diagnostics.iter().cloned());
            }
        }
        paths.push(path);
    }
    if let Some(cache) = cache {
        for (path, cached) in store {
            cache.insert(&path, cached);
        }
    }
    DesiredSet {
        source,
        prompts,
        diagnostics,
        files: paths,
    }
}

/// Where a file's part of the set comes from: this read (its desired prompt when it is
/// valid, and its findings), or the cache.
enum Found<'c> {
    Read(Option<DesiredPrompt>, Vec<Diagnostic>),
    Kept(&'c Cached),
}

/// Read, parse and check the files at `paths`.
fn read_and_check(tree: &FileTree<'_>, paths: Vec<String>) -> Vec<Loaded> {
    // A file that names no content file is checked where it was parsed, so that its
    // parse tree is dropped there (`checked`), not held until every file is parsed.
    let parse = |path: String, bytes: Result<Vec<u8>, ReadError>| match bytes {
        Ok(bytes) => {
            let file = prompt::parse_file(&path, &bytes);
            if names_content_files(&file) {
                Ok(Parsed::Unchecked(file))
            } else {
                Ok(Parsed::Checked(with_content(file, Default::default())))
            }
        }
        Err(err) => Err((path, err)),
    };
    // Parsing, the costly part, is pure and runs on every core; so does reading: from
    // disk, and a commit's blobs, each thread with a repository handle of its own
    // once they are located here (the tree's index is not shared).
    let threads = threads_for(paths.len());
    // Without a handle per thread (the repository cannot be opened again), the
    // blobs are read here in turn.
    let readers = match tree {
        FileTree::Commit(commit) if threads > 1 => (0..threads)
            .map(|_| commit.blob_reader())
            .collect::<Result<Vec<_>, _>>()
            .ok(),
        _ => None,
    };
    let parsed = if let Some(disk) = tree.disk() {
        on_all_cores(paths, vec![(); threads], |(), path| {
            let bytes = disk.read(&path);
            parse(path, bytes)
        })
    } else if let Some(readers) = readers {
        let located: Vec<_> = paths
            .into_iter()
            .map(|path| {
                let located = tree.locate(&path);
                (path, located)
            })
            .collect();
        on_all_cores(located, readers, |reader, (path, located)| {
            let bytes = located.and_then(|located| located.read(reader));
            parse(path, bytes)
        })
    } else {
        let read: Vec<_> = paths
            .into_iter()
            .map(|path| {
                let bytes = tree.read(&path);
                (path, bytes)
            })
            .collect();
        on_all_cores(read, vec![(); threads], |(), (path, bytes)| {
            parse(path, bytes)
        })
    };
    parsed
        .into_iter()
        .map(|parsed| match parsed {
            Ok(Parsed::Checked(loaded)) => loaded,
            Ok(Parsed::Unchecked(file)) => checked(tree, file),
            Err((path, err)) => Loaded {
                file: unreadable_file(&path, err),
                texts: BTreeMap::new(),
                content: Vec::new(),
            },
        })
        .collect()
}

/// What the cache keeps of a valid file of a commit: `None` when something it read is
/// not a regular file of the tree (a link, or a working tree), or it has an error.
fn cacheable(tree: &FileTree<'_>, loaded: &Loaded, desired: &DesiredPrompt) -> Option<Cached> {
    if loaded.file.diagnostics.iter().any(Diagnostic::is_error) {
        return None;
    }
    let blob = tree.blob_id(&loaded.file.path)?;
    let content = loaded
        .content
        .iter()
        .map(|(relative, resolved)| {
            Some(ContentBlob {
                relative: relative.clone(),
                resolved: resolved.clone(),
                blob: tree.blob_id(resolved)?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Cached {
        blob,
        content,
        desired: desired.clone(),
        diagnostics: loaded.file.diagnostics.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testrepo::TestRepo;

    const A: &str =
        "name: A\nmodel: gpt-4o\nmessages:\n  - role: system\n    content_file: texts/a.md\n";
    const B: &str = "name: B\nmodel: gpt-4o\nmessages:\n  - role: user\n    content: Hi\n";
    const BROKEN: &str = "name: C\nmessages: []\n";

    fn repo() -> (TestRepo, String) {
        let repo = TestRepo::new();
        repo.write("prompts/a.prompt.yaml", A)
            .write("prompts/texts/a.md", "From the file")
            .write("prompts/b.prompt.yaml", B)
            .write("prompts/c.prompt.yaml", BROKEN)
            .write("notes.md", "not a prompt");
        let commit = repo.commit("three prompts", 1_700_000_000);
        (repo, commit)
    }

    fn paths(set: &DesiredSet) -> Vec<&str> {
        set.prompts.iter().map(|p| p.path.as_str()).collect()
    }

    #[test]
    fn a_commit_loads_its_valid_prompts_and_the_findings_of_the_others() {
        let (repo, commit) = repo();
        let git = GitRepo::open(repo.path()).unwrap();
        let set = load(
            &git,
            &SourceRev::Commit("HEAD".into()),
            &PromptSettings::default(),
        )
        .unwrap();
        assert_eq!(
            set.source,
            SourceInfo {
                commit: Some(commit),
                subject: Some("three prompts".into()),
                worktree: false,
            }
        );
        assert_eq!(
            set.files,
            [
                "prompts/a.prompt.yaml",
                "prompts/b.prompt.yaml",
                "prompts/c.prompt.yaml"
            ]
        );
        assert_eq!(
            paths(&set),
            ["prompts/a.prompt.yaml", "prompts/b.prompt.yaml"]
        );
        assert_eq!(
            set.prompts[0].spec.messages[0].content,
            crate::api::types::MessageContent::Text("From the file".into())
        );
        assert!(set.has_errors());
        assert!(
            set.diagnostics
                .iter()
                .all(|d| d.path == "prompts/c.prompt.yaml"),
            "{:?}",
            set.diagnostics
        );
    }

    #[test]
    fn the_working_tree_is_read_with_its_uncommitted_edits() {
        let (repo, commit) = repo();
        repo.write("prompts/texts/a.md", "Edited").write(
            "prompts/c.prompt.yaml",
            &BROKEN.replace(
                "messages: []",
                "model: gpt-4o\nmessages:\n  - role: user\n    content: Hi",
            ),
        );
        let git = GitRepo::open(repo.path()).unwrap();
        let set = load(&git, &SourceRev::Worktree, &PromptSettings::default()).unwrap();
        assert!(set.source.worktree);
        assert_eq!(set.source.commit, Some(commit));
        assert!(!set.has_errors(), "{:?}", set.diagnostics);
        assert_eq!(set.prompts.len(), 3);
        assert_eq!(
            set.prompts[0].spec.messages[0].content,
            crate::api::types::MessageContent::Text("Edited".into())
        );
    }

    #[test]
    fn a_cached_load_gives_the_same_set_and_keeps_the_valid_files() {
        let (repo, _) = repo();
        let git = GitRepo::open(repo.path()).unwrap();
        let head = SourceRev::Commit("HEAD".into());
        let settings = PromptSettings::default();
        let mut cache = LoadCache::default();
        let first = load_with(&git, &head, &settings, Some(&mut cache)).unwrap();
        assert_eq!(cache.len(), 2, "the valid files of a commit are kept");
        let again = load_with(&git, &head, &settings, Some(&mut cache)).unwrap();
        assert_eq!(again.prompts, first.prompts);
        assert_eq!(again.files, first.files);
        assert_eq!(again.diagnostics, first.diagnostics);

        // A second file naming A: the kept one is read again, and both are errors.
        repo.write(
            "prompts/d.prompt.yaml",
            &A.replace("texts/a.md", "texts/a.md\n    name: x"),
        );
        repo.commit("a second A", 1_700_000_060);
        let conflict = load_with(&git, &head, &settings, Some(&mut cache)).unwrap();
        assert_eq!(paths(&conflict), ["prompts/b.prompt.yaml"]);
        let named: Vec<&str> = conflict
            .diagnostics
            .iter()
            .filter(|d| d.message.starts_with("name `A` is also used by"))
            .map(|d| d.path.as_str())
            .collect();
        assert_eq!(named, ["prompts/a.prompt.yaml", "prompts/d.prompt.yaml"]);
    }

    #[test]
    fn paths_on_disk_are_checked_and_paths_outside_are_findings() {
        let (repo, _) = repo();
        let git = GitRepo::open(repo.path()).unwrap();
        let outside = tempfile::tempdir().unwrap();
        let set = load_paths(
            repo.path(),
            Some(&git),
            &[
                repo.path().join("prompts"),
                repo.path().join("notes.md"),
                outside.path().to_owned(),
                repo.path().join("missing.prompt.yaml"),
            ],
            &PromptSettings::default(),
        )
        .unwrap();
        assert!(set.source.worktree);
        assert_eq!(
            set.files,
            [
                "notes.md",
                "prompts/a.prompt.yaml",
                "prompts/b.prompt.yaml",
                "prompts/c.prompt.yaml"
            ]
        );
        let problems: Vec<&str> = set
            .diagnostics
            .iter()
            .filter(|d| d.path != "prompts/c.prompt.yaml" && d.path != "notes.md")
            .map(|d| d.message.as_str())
            .collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("is outside the repository at"),
            "{problems:?}"
        );
        assert!(problems[1].starts_with("cannot read"), "{problems:?}");
    }
}
