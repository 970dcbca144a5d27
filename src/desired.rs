//! The desired state of one source (a commit or the working tree): every valid prompt
//! file turned into a [`DesiredPrompt`] with its identity and the exact version content
//! to send, plus the findings of the invalid ones and the source's provenance.
//! Conflicts (two files naming one prompt) are found here. Knows nothing about the API
//! beyond the shape of a version body.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use thiserror::Error;

use crate::api::types::{Message, MessageContent, VersionSpec};
use crate::config::PromptSettings;
use crate::diagnostic::{Diagnostic, Severity};
use crate::discover::{self, DiscoverError, FileTree, Listing, Matcher, ReadError};
use crate::excerpt;
use crate::gitrepo::{GitError, GitRepo};
use crate::localfile;
use crate::prompt::check::Finding;
use crate::prompt::format::{Content, PromptFile};
use crate::prompt::{self, ParsedFile};

mod cache;
mod findings;
pub(crate) mod parallel;
pub use cache::LoadCache;
use cache::{Cached, ContentBlob};
use findings::{
    GIT_DIR_HELP, content_file_finding, submodule_warning, unreadable_file, variable_findings,
};
use parallel::{on_all_cores, threads_for};

/// How a prompt file names its remote prompt.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptKey {
    /// `prompt_id:` in the file.
    Id(String),
    /// `name:` alone: matched exactly against remote names, created when none has it.
    Name(String),
}

/// One valid prompt file, ready to be compared with the remote. Its fields are read
/// through [`DesiredPromptFields`]; a clone shares them (the daemon's cache hands the
/// same prompts to every pass, and a pass over 10,000 kept files copies none).
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredPrompt(std::sync::Arc<DesiredPromptFields>);

/// What a [`DesiredPrompt`] holds; read-only once made.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredPromptFields {
    /// Path of the file, relative to the repository root, `/`-separated.
    pub path: String,
    pub key: PromptKey,
    /// Prompt-level name (metadata), when the file gives one.
    pub name: Option<String>,
    /// Prompt-level description, when the file gives one.
    pub description: Option<String>,
    /// `sync: false` in the file: validated, never sent.
    pub sync: bool,
    /// The version content to send, `content_file`s already inlined; `description`
    /// left empty (the provenance line is added when a version is created).
    pub spec: std::sync::Arc<VersionSpec>,
    /// A digest of all of the above, taken once by [`DesiredPrompt::new`].
    fingerprint: u64,
}

impl std::ops::Deref for DesiredPrompt {
    type Target = DesiredPromptFields;

    fn deref(&self) -> &DesiredPromptFields {
        &self.0
    }
}

impl DesiredPrompt {
    pub fn new(
        path: String,
        key: PromptKey,
        name: Option<String>,
        description: Option<String>,
        sync: bool,
        spec: VersionSpec,
    ) -> DesiredPrompt {
        let mut hasher = DefaultHasher::new();
        path.hash(&mut hasher);
        key.hash(&mut hasher);
        name.hash(&mut hasher);
        description.hash(&mut hasher);
        sync.hash(&mut hasher);
        serde_json::to_string(&spec)
            .unwrap_or_default()
            .hash(&mut hasher);
        DesiredPrompt(std::sync::Arc::new(DesiredPromptFields {
            path,
            key,
            name,
            description,
            sync,
            spec: std::sync::Arc::new(spec),
            fingerprint: hasher.finish(),
        }))
    }

    /// A digest of everything a pass would send for this file: equal digests, same
    /// requests.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// The same prompt in allocations of its own, shared with nothing (see
    /// [`LoadCache::compact`]).
    pub fn deep_copy(&self) -> DesiredPrompt {
        let mut fields = DesiredPromptFields::clone(&self.0);
        fields.spec = std::sync::Arc::new(VersionSpec::clone(&self.spec));
        DesiredPrompt(std::sync::Arc::new(fields))
    }
}

/// Where the desired state was read from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SourceInfo {
    /// Full commit id; `None` when reading the working tree of a repository without
    /// commits.
    pub commit: Option<String>,
    /// First line of the commit message.
    pub subject: Option<String>,
    /// True when the working tree was read (uncommitted edits included).
    pub worktree: bool,
}

/// The outcome of loading one source.
#[derive(Debug, Clone)]
pub struct DesiredSet {
    pub source: SourceInfo,
    /// Valid prompts, in path order.
    pub prompts: Vec<DesiredPrompt>,
    /// Every finding, errors and warnings, of every file (valid files may carry warnings),
    /// by file in path order, then by position.
    pub diagnostics: Vec<Diagnostic>,
    /// Every prompt file examined, valid or not, in path order.
    pub files: Vec<String>,
}

impl DesiredSet {
    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Which content to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceRev {
    /// The tree of a commit (a revision: `HEAD`, a branch, a tag, an id).
    Commit(String),
    /// The working tree, uncommitted edits included.
    Worktree,
}

/// A failure to read the source at all (as opposed to findings in files).
#[derive(Debug, Error)]
pub enum LoadError {
    #[error(transparent)]
    Git(#[from] GitError),

    #[error(transparent)]
    Discover(#[from] DiscoverError),
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
            .flat_map(|(_, cached)| conflict_keys_of(&cached.keys))
            .chain(
                files
                    .iter()
                    .flat_map(|loaded| conflict_keys(&loaded.file.value)),
            );
        for key in written {
            *uses.entry(key).or_default() += 1;
        }
        let shared = |(_, cached): &(String, &Cached)| {
            conflict_keys_of(&cached.keys).any(|key| uses.get(&key).is_some_and(|&n| n > 1))
        };
        let (again, rest): (Vec<_>, Vec<_>) = kept.into_iter().partition(shared);
        kept = rest;
        drop(uses);
        files.extend(read_and_check(
            tree,
            again.into_iter().map(|(path, _)| path).collect(),
        ));
    }
    check_conflicts(&mut files);

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

/// The keys the conflict check compares: `prompt_id` (0) and `name` (1), as written.
const CONFLICT_KEYS: [&str; 2] = ["prompt_id", "name"];

/// The values of a file's conflict keys, when set (not blank).
fn written_keys(value: &Value) -> [Option<String>; 2] {
    CONFLICT_KEYS.map(|key| {
        value
            .get(key)
            .and_then(Value::as_str)
            .filter(|v| !v.trim().is_empty())
            .map(str::to_owned)
    })
}

fn conflict_keys(value: &Value) -> impl Iterator<Item = (usize, &str)> {
    CONFLICT_KEYS.iter().enumerate().filter_map(|(i, key)| {
        let v = value.get(*key)?.as_str()?;
        (!v.trim().is_empty()).then_some((i, v))
    })
}

fn conflict_keys_of(keys: &[Option<String>; 2]) -> impl Iterator<Item = (usize, &str)> {
    keys.iter()
        .enumerate()
        .filter_map(|(i, key)| Some((i, key.as_deref()?)))
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
        keys: written_keys(&loaded.file.value),
        desired: desired.clone(),
        diagnostics: loaded.file.diagnostics.clone(),
    })
}

/// A content file read: its path as written, and where that led.
type ContentRead = (String, String);

/// One file, parsed and checked, with its content files' text by message index.
struct Loaded {
    file: ParsedFile,
    texts: BTreeMap<usize, String>,
    /// The content files read.
    content: Vec<ContentRead>,
}

/// A parsed file with its content files read and its variables checked (a file with
/// errors too: its warnings are shown with them).
fn checked(tree: &FileTree<'_>, file: ParsedFile) -> Loaded {
    let read = content_files(tree, &file);
    with_content(file, read)
}

/// A file parsed on a worker thread: checked there, or (it names content files, read
/// through the tree, which stays on the calling thread) to be checked.
enum Parsed {
    Checked(Loaded),
    Unchecked(ParsedFile),
}

/// Whether a file names a content file (which only the tree can read).
fn names_content_files(file: &ParsedFile) -> bool {
    file.value
        .get("messages")
        .and_then(Value::as_array)
        .is_some_and(|messages| {
            messages.iter().any(|message| {
                message
                    .get("content_file")
                    .and_then(Value::as_str)
                    .is_some_and(|relative| !relative.trim().is_empty())
            })
        })
}

/// [`checked`] with its content files read (`texts`, the findings of reading them,
/// where they were read from).
fn with_content(
    mut file: ParsedFile,
    (texts, findings, content): (BTreeMap<usize, String>, Vec<Finding>, Vec<ContentRead>),
) -> Loaded {
    file.add(Severity::Error, findings);
    let warnings = variable_findings(&file.value, &texts);
    file.add(Severity::Warning, warnings);
    // From here on only the conflict check reads the tree (and positions its finding
    // at these keys): the rest of it goes now, not once every file is loaded.
    file.shed(&CONFLICT_KEYS);
    Loaded {
        file,
        texts,
        content,
    }
}

/// Read every message's `content_file` (whatever else is wrong with the file).
/// Also returns each content file read, as written and where that led.
fn content_files(
    tree: &FileTree<'_>,
    file: &ParsedFile,
) -> (BTreeMap<usize, String>, Vec<Finding>, Vec<ContentRead>) {
    let mut texts = BTreeMap::new();
    let mut findings = Vec::new();
    let mut read_from = Vec::new();
    let Some(messages) = file.value.get("messages").and_then(Value::as_array) else {
        return (texts, findings, read_from);
    };
    for (i, message) in messages.iter().enumerate() {
        let Some(relative) = message.get("content_file").and_then(Value::as_str) else {
            continue;
        };
        if relative.trim().is_empty() {
            continue;
        }
        let pointer = format!("/messages/{i}/content_file");
        let read = tree.resolve(&file.path, relative).and_then(|resolved| {
            let bytes = tree.read(&resolved)?;
            Ok((resolved, bytes))
        });
        let finding = match read {
            Ok((_, bytes)) if let Some(lfs) = prompt::lfs::Pointer::of(&bytes) => Finding {
                pointer,
                at_key: true,
                message: lfs.content_file(relative),
                help: Some(prompt::lfs::HELP.to_owned()),
            },
            Ok((resolved, bytes)) => match String::from_utf8(bytes) {
                Ok(text) => {
                    texts.insert(i, text);
                    read_from.push((relative.to_owned(), resolved));
                    continue;
                }
                Err(err) => Finding {
                    pointer,
                    at_key: true,
                    message: format!(
                        "content file {} is not valid UTF-8 (bad byte at offset {})",
                        excerpt::quoted(relative),
                        err.utf8_error().valid_up_to()
                    ),
                    help: Some("save it as UTF-8".to_owned()),
                },
            },
            Err(err) => content_file_finding(tree, file, pointer, relative, err),
        };
        findings.push(finding);
    }
    (texts, findings, read_from)
}

/// Two or more files with one `prompt_id`, or one `name`, are a conflict: each of
/// them gets an error naming the others, and none of them syncs.
fn check_conflicts(files: &mut [Loaded]) {
    for key in ["prompt_id", "name"] {
        let mut by_value: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, loaded) in files.iter().enumerate() {
            if let Some(value) = loaded.file.value.get(key).and_then(Value::as_str)
                && !value.trim().is_empty()
            {
                by_value.entry(value.to_owned()).or_default().push(i);
            }
        }
        for (value, owners) in by_value.into_iter().filter(|(_, owners)| owners.len() > 1) {
            let paths: Vec<String> = owners.iter().map(|&i| files[i].file.path.clone()).collect();
            // A few of the others by name, and how many more.
            const NAMED: usize = 5;
            for &i in &owners {
                let mut others: Vec<String> = paths
                    .iter()
                    .filter(|path| **path != files[i].file.path)
                    .take(NAMED)
                    .map(|path| excerpt::quoted(path))
                    .collect();
                if owners.len() - 1 > NAMED {
                    others.push(format!(
                        "and {} more files",
                        excerpt::thousands(owners.len() - 1 - NAMED)
                    ));
                }
                let what = if key == "prompt_id" {
                    "prompt id"
                } else {
                    "name"
                };
                let finding = Finding {
                    pointer: format!("/{key}"),
                    at_key: false,
                    message: format!(
                        "{what} {} is also used by {}",
                        excerpt::quoted(&value),
                        others.join(", ")
                    ),
                    help: Some(format!(
                        "one prompt, one file: give each file its own `{key}` (neither file syncs until then)"
                    )),
                };
                files[i].file.add(Severity::Error, [finding]);
            }
        }
    }
}

/// The desired prompt of one valid file (`prompt`, read from `path`), `texts` its
/// content files' text by message index. Pure.
pub fn desired_prompt(
    path: &str,
    prompt: &PromptFile,
    texts: &BTreeMap<usize, String>,
) -> DesiredPrompt {
    let key = match (&prompt.prompt_id, &prompt.name) {
        (Some(id), _) => PromptKey::Id(id.clone()),
        (None, Some(name)) => PromptKey::Name(name.clone()),
        // Validation refuses a file without either; keep the path as a last resort.
        (None, None) => PromptKey::Name(path.to_owned()),
    };
    DesiredPrompt::new(
        path.to_owned(),
        key,
        prompt.name.clone(),
        prompt.description.clone(),
        prompt.sync.unwrap_or(true),
        version_spec(prompt, texts),
    )
}

/// The version body for `prompt`, content files inlined as text.
pub fn version_spec(prompt: &PromptFile, texts: &BTreeMap<usize, String>) -> VersionSpec {
    let messages = prompt
        .messages
        .iter()
        .enumerate()
        .map(|(i, message)| {
            let content = match (texts.get(&i), &message.content) {
                (Some(text), _) => MessageContent::Text(text.clone()),
                (None, Some(Content::Text(text))) => MessageContent::Text(text.clone()),
                (None, Some(Content::Parts(parts))) => {
                    MessageContent::Parts(parts.iter().map(to_value).collect())
                }
                (None, None) => MessageContent::Null,
            };
            let mut extra = Map::new();
            if let Some(name) = &message.name {
                extra.insert("name".to_owned(), Value::from(name.clone()));
            }
            if let Some(id) = &message.tool_call_id {
                extra.insert("tool_call_id".to_owned(), Value::from(id.clone()));
            }
            if let Some(calls) = &message.tool_calls {
                extra.insert("tool_calls".to_owned(), to_value(calls));
            }
            Message {
                role: message.role.as_str().to_owned(),
                content,
                extra,
            }
        })
        .collect();
    VersionSpec {
        description: None,
        messages,
        model: Some(prompt.model.clone()),
        thinking: prompt.thinking.clone().map(Value::Object),
        stream: prompt.stream,
        temperature: prompt.temperature,
        max_tokens: prompt.max_tokens,
        top_p: prompt.top_p,
        frequency_penalty: prompt.frequency_penalty,
        presence_penalty: prompt.presence_penalty,
        reasoning_effort: prompt.reasoning_effort.clone(),
        verbosity: prompt.verbosity.clone(),
        seed: prompt.seed,
        variables: prompt.variables.clone(),
        fallback_models: prompt.fallback_models.clone(),
        load_balance_models: prompt
            .load_balance_models
            .as_ref()
            .map(|models| models.iter().map(to_value).collect()),
        tools: prompt
            .tools
            .as_ref()
            .map(|tools| tools.iter().cloned().map(Value::Object).collect()),
        tool_choice: prompt.tool_choice.as_ref().map(to_value),
        response_format: prompt.response_format.clone().map(Value::Object),
        json_schema: prompt.json_schema.clone().map(Value::Object),
        is_enforcing_response_format: prompt.is_enforcing_response_format,
    }
}

/// One of the format's own types as JSON; they are plain data, so this cannot fail
/// (a failure would give `null`).
fn to_value<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}
