//! What can be wrong with the configuration: a `--config` file that cannot be read, or
//! a list of [`Problem`]s, each naming its key and where the value came from. Messages
//! never carry the API key: no problem quotes it and [`ApiKey`](crate::secret::ApiKey)
//! prints `[redacted]`.

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

use crate::excerpt;
use crate::localfile::{self, FileKind};

/// The configuration could not be loaded. Needs a person: retrying does not help.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error(
        "configuration file {} does not exist; fix the path given with --config \
         (or PROMPTSYNC_CONFIG), or leave it out to read {} at the repository root",
        path.display(),
        super::DEFAULT_CONFIG_FILE
    )]
    FileMissing { path: PathBuf },

    #[error(
        "configuration file {} is {kind}, not a regular file; promptsync reads its settings \
         from a TOML file",
        path.display()
    )]
    FileNotRegular { path: PathBuf, kind: FileKind },

    #[error(
        "configuration file {} is {size} bytes, over the limit of {}; a configuration file \
         holds a few settings",
        path.display(),
        localfile::human_size(*limit)
    )]
    FileTooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },

    #[error(
        "configuration file {} is not UTF-8 text (bad byte at offset {offset}); save it as UTF-8",
        path.display()
    )]
    FileNotUtf8 { path: PathBuf, offset: usize },

    /// The repository's file leads where promptsync does not read (outside the
    /// repository, into its git directory): refused before anything is read.
    #[error(
        "configuration file {} {reason}; promptsync reads a repository's files only inside it",
        path.display()
    )]
    FileRefused { path: PathBuf, reason: String },

    /// The OS error is in the message, not a `source`: printed as a chain it would show
    /// twice.
    #[error("cannot read configuration file {}: {}", path.display(), localfile::io_text(error))]
    FileUnreadable {
        path: PathBuf,
        error: std::io::Error,
    },

    #[error("{}", render_problems(problems))]
    Invalid { problems: Vec<Problem> },
}

/// `--target NAME` names no configured target ([`Settings::select`](super::Settings::select)):
/// a command line that names nothing.
#[derive(Debug, Error)]
#[error("--target {name}: no such target; the targets are {known}")]
pub struct UnknownTarget {
    pub name: String,
    /// The configured targets, comma-separated.
    pub known: String,
}

impl ConfigError {
    /// The problems found in the merged configuration (empty for file errors).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid { problems } => problems,
            _ => &[],
        }
    }
}

/// One thing wrong with one configuration value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The dotted key (`api.timeout`), when the problem is about one key.
    pub key: Option<String>,
    /// Where the value came from: a file path, `environment variable
    /// PROMPTSYNC_API__TIMEOUT`, `--log-format`, `built-in default`.
    pub origin: String,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl Problem {
    /// A problem; each part is cut to a short excerpt (a key or a value of the file
    /// can be as long as the file).
    pub(super) fn new(
        key: Option<&str>,
        origin: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Problem {
            key: key.map(|key| excerpt::head(key, MAX_KEY_CHARS).into_owned()),
            origin: cut(origin.into(), MAX_ORIGIN_CHARS),
            message: cut(message.into(), MAX_MESSAGE_CHARS),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{key} (from {}): {}", self.origin, self.message),
            None => write!(f, "{}: {}", self.origin, self.message),
        }
    }
}

/// The longest key, origin and message a problem shows, in characters.
const MAX_KEY_CHARS: usize = 80;
const MAX_ORIGIN_CHARS: usize = 300;
const MAX_MESSAGE_CHARS: usize = 1000;

/// How much of a quoted value or line a message shows, in characters.
pub(super) const EXCERPT_CHARS: usize = 60;

fn cut(text: String, max: usize) -> String {
    match excerpt::head(&text, max) {
        Cow::Borrowed(_) => text,
        Cow::Owned(cut) => cut,
    }
}

/// A value as a message quotes it: in double quotes, escaped like Rust's `Debug`, and
/// cut to [`EXCERPT_CHARS`].
pub(super) fn quoted(value: &str) -> String {
    format!("{:?}", excerpt::head(value, EXCERPT_CHARS))
}

fn render_problems(problems: &[Problem]) -> String {
    let mut text = match problems.len() {
        1 => "invalid configuration:".to_owned(),
        n => format!("invalid configuration ({n} problems):"),
    };
    for problem in problems {
        text.push_str("\n  - ");
        text.push_str(&problem.to_string());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_listed_with_key_and_origin() {
        let err = ConfigError::Invalid {
            problems: vec![
                Problem::new(Some("api.timeout"), "promptsync.toml", "not a duration"),
                Problem::new(None, "environment variable PROMPTSYNC_X", "unknown"),
            ],
        };
        assert_eq!(
            err.to_string(),
            "invalid configuration (2 problems):\n  \
             - api.timeout (from promptsync.toml): not a duration\n  \
             - environment variable PROMPTSYNC_X: unknown"
        );
        assert_eq!(err.problems().len(), 2);
    }

    #[test]
    fn long_parts_are_cut_to_an_excerpt() {
        let long = "k".repeat(10_000);
        let problem = Problem::new(Some(&long), long.clone(), long.clone());
        assert_eq!(problem.key.as_deref().map(|k| k.chars().count()), Some(80));
        assert!(problem.key.as_deref().unwrap().ends_with('…'));
        assert_eq!(problem.origin.chars().count(), MAX_ORIGIN_CHARS);
        assert_eq!(problem.message.chars().count(), MAX_MESSAGE_CHARS);
        assert_eq!(quoted(&"x".repeat(100)).chars().count(), EXCERPT_CHARS + 2);
    }

    #[test]
    fn a_missing_config_file_says_what_to_do() {
        let err = ConfigError::FileMissing {
            path: PathBuf::from("/etc/ps.toml"),
        };
        let text = err.to_string();
        assert!(text.contains("/etc/ps.toml does not exist"), "{text}");
        assert!(text.contains("--config"), "{text}");
        assert!(err.problems().is_empty());
    }
}
