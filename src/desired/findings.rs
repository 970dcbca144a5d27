//! The wording of the findings a load adds to a file's own (those of its format are
//! [`prompt`](crate::prompt)'s): a prompt file that cannot be read, a `content_file`
//! that cannot, a submodule holding prompt files (the variable warnings are
//! [`prompt::variables`](crate::prompt::variables)').
//! Every value quoted is an excerpt. No I/O: what was read comes in, findings go out.

use crate::diagnostic::Diagnostic;
use crate::discover::{self, FileTree, ReadError};
use crate::excerpt;
use crate::localfile;
use crate::prompt::check::Finding;
use crate::prompt::{self, ParsedFile};

/// Why the git directory is never read, for findings about it.
pub(super) const GIT_DIR_HELP: &str = "the git directory holds the repository's configuration, credentials included: keep prompt and content files in the working tree";

/// The warning for a submodule (or another repository inside this one) that holds
/// files the prompt globs match: they are not read.
pub(super) fn submodule_warning(submodule: &discover::Submodule) -> Diagnostic {
    const SHOWN: usize = 3;
    let count = submodule.files.len();
    let mut named: Vec<String> = submodule
        .files
        .iter()
        .take(SHOWN)
        .map(|file| excerpt::quoted(file))
        .collect();
    if count > SHOWN {
        named.push(format!("and {} more", excerpt::thousands(count - SHOWN)));
    }
    let files = if count == 1 {
        "a prompt file".to_owned()
    } else {
        format!("{} prompt files", excerpt::thousands(count))
    };
    Diagnostic::warning(
        &submodule.path,
        format!(
            "the submodule {} holds {files} that promptsync does not read: {}",
            excerpt::quoted(&submodule.path),
            named.join(", ")
        ),
    )
    .with_help("promptsync reads this repository's own files: move the prompts into it, or run promptsync on the submodule's repository")
}

/// A prompt file that could not be read, with one whole-file finding (at line 1,
/// column 1, without a snippet).
pub(super) fn unreadable_file(path: &str, err: ReadError) -> ParsedFile {
    let mut diagnostic = match err {
        ReadError::TooLarge { size, .. } => prompt::too_large(path, size),
        ReadError::NotAFile { what, .. } => Diagnostic::error(
            path,
            format!("the prompt file is {what}, not a regular file"),
        )
        .with_help(
            "prompt files are regular files: remove it, or leave it out with prompts.exclude",
        ),
        ReadError::InGitDir { .. } => Diagnostic::error(
            path,
            "the prompt file is inside the git directory, which promptsync never reads",
        )
        .with_help(GIT_DIR_HELP),
        ReadError::Escapes { .. } => Diagnostic::error(
            path,
            "the prompt file is a symbolic link that leads outside the repository",
        )
        .with_help("prompt files must be inside the repository: copy the file in"),
        ReadError::Dangling { link, .. } if link == path => Diagnostic::error(
            path,
            "the prompt file is a symbolic link that leads nowhere",
        )
        .with_help("point the link at a file, or remove it"),
        ReadError::InSubmodule { submodule, .. } => Diagnostic::error(
            path,
            format!(
                "the prompt file is inside the submodule {}, whose files promptsync does not read",
                excerpt::quoted(&submodule)
            ),
        )
        .with_help("promptsync reads this repository's own files: move the prompt into it, or run promptsync on the submodule's repository"),
        ReadError::NameNotUtf8 { .. } => Diagnostic::error(
            path,
            "the file name is not valid UTF-8, so the file cannot be named in the API or a report",
        )
        .with_help("rename it to UTF-8 (the `\u{fffd}` marks the bytes that are not)"),
        ReadError::Io { error, .. } => Diagnostic::error(
            path,
            format!("cannot read the prompt file: {}", localfile::io_text(&error)),
        )
        .with_help("check the file and its permissions"),
        err => Diagnostic::error(path, format!("cannot read the prompt file: {err}"))
            .with_help("check the file and its permissions"),
    };
    diagnostic.line = Some(1);
    diagnostic.column = Some(1);
    let mut file = prompt::parse_file(path, b"");
    file.diagnostics = vec![diagnostic];
    file
}

pub(super) fn content_file_finding(
    tree: &FileTree<'_>,
    file: &ParsedFile,
    pointer: String,
    relative: &str,
    err: ReadError,
) -> Finding {
    let dir = file.path.rsplit_once('/').map_or("", |(dir, _)| dir);
    let dir = if dir.is_empty() {
        "the repository root".to_owned()
    } else {
        format!("`{dir}/`")
    };
    let file = excerpt::quoted(relative);
    let (message, help) = match err {
        ReadError::Missing { .. } => (
            format!("content file {file} does not exist"),
            match tree {
                FileTree::Commit(tree) => format!(
                    "the path is relative to {dir}; this is commit {}: is the file committed?",
                    short(&tree.commit().id)
                ),
                FileTree::Disk { .. } => {
                    format!("the path is relative to {dir}, the prompt file's directory")
                }
            },
        ),
        ReadError::Dangling { link, .. } => (
            format!(
                "content file {file} does not exist: the symbolic link {} leads nowhere",
                excerpt::quoted(&link)
            ),
            "point the link at a file of the repository".to_owned(),
        ),
        ReadError::Escapes { via, .. } => (
            match via {
                Some(via) => format!(
                    "content file {file} leads outside the repository through the symbolic link {}",
                    excerpt::quoted(&via)
                ),
                None => format!("content file {file} is outside the repository"),
            },
            "content files must be inside the repository: move the text into it".to_owned(),
        ),
        ReadError::TooLarge { size, .. } => (
            format!("content file {file} is {size} bytes, over the limit of 1 MiB"),
            "split the text into smaller files".to_owned(),
        ),
        ReadError::NotAFile { what, .. } => (
            format!("content file {file} is {what}, not a regular file"),
            if what == "a directory" {
                "name a file, not a directory".to_owned()
            } else if what == "a submodule" {
                "content files are files of this repository: name one".to_owned()
            } else {
                "content files are regular files: name one".to_owned()
            },
        ),
        ReadError::InGitDir { .. } => (
            format!(
                "content file {file} is inside the git directory, which promptsync never reads"
            ),
            GIT_DIR_HELP.to_owned(),
        ),
        ReadError::InSubmodule { submodule, .. } => (
            format!(
                "content file {file} is inside the submodule {}, whose files promptsync does not read",
                excerpt::quoted(&submodule)
            ),
            "content files are files of this repository: move the text into it".to_owned(),
        ),
        ReadError::Io { error, .. } => (
            format!(
                "cannot read content file {file}: {}",
                localfile::io_text(&error)
            ),
            "check the file and its permissions".to_owned(),
        ),
        err => (
            format!("cannot read content file {file}: {err}"),
            "check the file".to_owned(),
        ),
    };
    Finding {
        pointer,
        at_key: true,
        message,
        help: Some(help),
    }
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}
