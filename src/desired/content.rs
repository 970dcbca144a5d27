//! A parsed prompt file's `content_file`s: which messages name one, reading each
//! through the tree (resolved inside the repository by
//! [`discover`](crate::discover)), its text by message index and the findings of
//! those that cannot be read; then the variable warnings over the text as sent.

use std::collections::BTreeMap;

use serde_json::Value;

use super::conflicts::CONFLICT_KEYS;
use super::findings::content_file_finding;
use crate::diagnostic::Severity;
use crate::discover::FileTree;
use crate::excerpt;
use crate::prompt::check::Finding;
use crate::prompt::{self, ParsedFile, variables};

/// A content file read: its path as written, and where that led.
pub(super) type ContentRead = (String, String);

/// One file, parsed and checked, with its content files' text by message index.
pub(super) struct Loaded {
    pub(super) file: ParsedFile,
    pub(super) texts: BTreeMap<usize, String>,
    /// The content files read.
    pub(super) content: Vec<ContentRead>,
}

/// A parsed file with its content files read and its variables checked (a file with
/// errors too: its warnings are shown with them).
pub(super) fn checked(tree: &FileTree<'_>, file: ParsedFile) -> Loaded {
    let read = content_files(tree, &file);
    with_content(file, read)
}

/// A file parsed on a worker thread: checked there, or (it names content files, read
/// through the tree, which stays on the calling thread) to be checked.
pub(super) enum Parsed {
    Checked(Loaded),
    Unchecked(ParsedFile),
}

/// Whether a file names a content file (which only the tree can read).
pub(super) fn names_content_files(file: &ParsedFile) -> bool {
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
pub(super) fn with_content(
    mut file: ParsedFile,
    (texts, findings, content): (BTreeMap<usize, String>, Vec<Finding>, Vec<ContentRead>),
) -> Loaded {
    file.add(Severity::Error, findings);
    let warnings = variables::findings(&file.value, &texts);
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// A directory on disk (no repository) holding `files`, and its tree.
    fn disk(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, bytes) in files {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, bytes).unwrap();
        }
        dir
    }

    fn tree(dir: &Path) -> FileTree<'static> {
        FileTree::Disk {
            root: std::fs::canonicalize(dir).unwrap(),
            repo: None,
        }
    }

    fn parse(path: &str, messages: &str) -> ParsedFile {
        let text = format!("name: A\nmodel: gpt-4o\nmessages:\n{messages}");
        prompt::parse_file(path, text.as_bytes())
    }

    fn messages(file: &ParsedFile) -> Vec<String> {
        file.diagnostics.iter().map(|d| d.message.clone()).collect()
    }

    #[test]
    fn a_content_file_is_read_relative_to_the_prompt_file() {
        let dir = disk(&[("prompts/texts/a.md", b"Hello {{who}}")]);
        let file = parse(
            "prompts/a.prompt.yaml",
            "  - role: system\n    content_file: texts/a.md\n  - role: user\n    content: Hi\n",
        );
        assert!(names_content_files(&file));
        let loaded = checked(&tree(dir.path()), file);
        assert_eq!(loaded.texts, BTreeMap::from([(0, "Hello {{who}}".into())]));
        assert_eq!(
            loaded.content,
            [("texts/a.md".to_owned(), "prompts/texts/a.md".to_owned())]
        );
        // The variables are checked in the text as sent: the content file's.
        assert!(!loaded.file.has_errors());
        assert_eq!(
            messages(&loaded.file),
            ["`{{who}}` in `messages[0]` is not declared under `variables`"]
        );
        assert!(loaded.file.prompt.is_some());
    }

    #[test]
    fn content_files_that_cannot_be_read_are_errors_at_their_key() {
        let dir = disk(&[("prompts/bad.md", b"\xff\xfe"), ("outside.md", b"x")]);
        let file = parse(
            "prompts/a.prompt.yaml",
            "  - role: system\n    content_file: missing.md\n  - role: user\n    content_file: bad.md\n  - role: user\n    content_file: ../../outside.md\n",
        );
        let loaded = checked(&tree(&dir.path().join("prompts").join("..")), file);
        assert!(loaded.texts.is_empty());
        assert!(loaded.content.is_empty());
        assert!(
            loaded.file.prompt.is_none(),
            "an error: the file does not sync"
        );
        assert_eq!(
            messages(&loaded.file),
            [
                "content file `missing.md` does not exist",
                "content file `bad.md` is not valid UTF-8 (bad byte at offset 0)",
                "content file `../../outside.md` is outside the repository",
            ]
        );
        assert_eq!(
            loaded.file.diagnostics[0].line,
            Some(5),
            "at the content_file key"
        );
    }

    #[test]
    fn a_file_without_content_files_is_checked_without_the_tree() {
        let file = parse("a.prompt.yaml", "  - role: user\n    content: Hi\n");
        assert!(!names_content_files(&file));
        let blank = parse("a.prompt.yaml", "  - role: user\n    content_file: \" \"\n");
        assert!(!names_content_files(&blank));
        let loaded = with_content(file, Default::default());
        assert!(loaded.texts.is_empty() && loaded.file.diagnostics.is_empty());
        // Only the conflict keys are kept of the parse tree.
        assert_eq!(loaded.file.value, serde_json::json!({"name": "A"}));
    }
}
