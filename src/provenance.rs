//! The provenance line promptsync writes into the description of every version it
//! creates, and reads back to recognise its own versions. Pure, no I/O.
//!
//! Format (stable; documented in README):
//!
//! ```text
//! <commit subject> [promptsync <commit id>; content <digest>]
//! ```
//!
//! `<commit id>` is the full 40-hex id of the source commit, or `worktree` (followed by
//! `@<id>` of HEAD when there is one) for `--worktree` runs. `<digest>` is
//! [`normalize::digest`](crate::normalize::digest) of the content that was sent.

use crate::desired::SourceInfo;

/// Longest subject kept in a description.
const MAX_SUBJECT: usize = 200;

/// What a description says about where a version came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Provenance {
    /// The commit id, or `worktree[@id]`.
    pub source: String,
    pub digest: String,
}

/// The description for a version created from `source` with content `digest`.
pub(crate) fn describe(source: &SourceInfo, digest: &str) -> String {
    let subject = source
        .subject
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or("promptsync sync");
    let subject = match subject.char_indices().nth(MAX_SUBJECT) {
        Some((cut, _)) => format!("{}…", &subject[..cut]),
        None => subject.to_owned(),
    };
    let origin = match (&source.commit, source.worktree) {
        (Some(commit), false) => commit.clone(),
        (Some(commit), true) => format!("worktree@{commit}"),
        (None, _) => "worktree".to_owned(),
    };
    format!("{subject} [promptsync {origin}; content {digest}]")
}

/// The commit subject of a description promptsync wrote (the text before the
/// provenance mark), if it has one.
pub(crate) fn subject(description: &str) -> Option<&str> {
    parse(description)?;
    let cut = description.rfind("[promptsync ")?;
    Some(description[..cut].trim_end()).filter(|s| !s.is_empty())
}

/// The provenance recorded in a description, if promptsync wrote one.
pub(crate) fn parse(description: &str) -> Option<Provenance> {
    let start = description.rfind("[promptsync ")?;
    let inner = description[start + "[promptsync ".len()..]
        .trim_end()
        .strip_suffix(']')?;
    let (source, digest) = inner.split_once("; content ")?;
    let valid_digest = !digest.is_empty() && digest.bytes().all(|b| b.is_ascii_hexdigit());
    let valid_source = !source.is_empty() && !source.contains(char::is_whitespace);
    (valid_digest && valid_source).then(|| Provenance {
        source: source.to_owned(),
        digest: digest.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(commit: Option<&str>, subject: Option<&str>, worktree: bool) -> SourceInfo {
        SourceInfo {
            commit: commit.map(str::to_owned),
            subject: subject.map(str::to_owned),
            worktree,
        }
    }

    #[test]
    fn round_trips_for_commits_and_worktrees() {
        let id = "0123456789abcdef0123456789abcdef01234567";
        let text = describe(&source(Some(id), Some("Tighten the tone"), false), "ab12");
        assert_eq!(
            text,
            format!("Tighten the tone [promptsync {id}; content ab12]")
        );
        assert_eq!(
            parse(&text),
            Some(Provenance {
                source: id.into(),
                digest: "ab12".into()
            })
        );
        let text = describe(&source(Some(id), None, true), "ff");
        assert_eq!(parse(&text).unwrap().source, format!("worktree@{id}"));
        assert_eq!(
            parse(&describe(&source(None, None, true), "ff"))
                .unwrap()
                .source,
            "worktree"
        );
    }

    #[test]
    fn foreign_descriptions_are_not_provenance() {
        assert_eq!(parse("Edited in the UI"), None);
        assert_eq!(parse("[promptsync abc; content xyz]"), None);
        assert_eq!(parse("[promptsync abc; content ]"), None);
        assert_eq!(parse("[promptsync ; content ab]"), None);
    }

    #[test]
    fn a_subject_with_brackets_still_parses() {
        let text = describe(&source(Some("c0ffee"), Some("[WIP] try [x]"), false), "0a");
        assert_eq!(parse(&text).unwrap().digest, "0a");
    }

    #[test]
    fn long_subjects_are_cut() {
        let long = "x".repeat(500);
        let text = describe(&source(Some("c"), Some(&long), false), "0a");
        assert!(text.len() < 260);
        assert!(parse(&text).is_some());
    }
}
