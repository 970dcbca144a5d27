//! The configuration file: which one is read, how, and whether it is the
//! repository's own. The repository's file (`promptsync.toml` at its root, or a
//! `--config` file inside its work tree) is read through
//! [`repofile`](crate::repofile): a link leading out of the repository is refused
//! before anything is read, so its target can never be quoted in a message. An
//! operator's `--config` file elsewhere may live anywhere (read through
//! [`localfile`](crate::localfile)). Either is bounded, and its TOML syntax is checked
//! here so that an error quotes a short excerpt of the line, never the line whole.

use std::path::{Path, PathBuf};

use super::error::{ConfigError, EXCERPT_CHARS, Problem};
use super::{DEFAULT_CONFIG_FILE, MAX_CONFIG_FILE_BYTES};
use crate::localfile::{self, Failure};
use crate::repofile::{self, Refusal, RepoDir};

/// A configuration file's path and text.
#[derive(Debug)]
pub(super) struct ConfigFile {
    pub(super) path: PathBuf,
    pub(super) text: String,
    /// The repository's own file (anyone who can open a pull request can edit it), as
    /// opposed to the operator's.
    pub(super) repository: bool,
}

/// Read `--config FILE` (which must exist) or `promptsync.toml` at the repository root
/// (which may be missing).
pub(super) fn read(
    repo: &Path,
    explicit: Option<&Path>,
) -> Result<Option<ConfigFile>, ConfigError> {
    if explicit.is_none() && !repo.is_dir() {
        // No repository there (or a file where it should be): there is no root file to
        // read, and opening the repository says what is wrong with the path.
        return Ok(None);
    }
    let root = std::fs::canonicalize(repo).ok();
    let (path, in_repo) = match explicit {
        None => (
            repo.join(DEFAULT_CONFIG_FILE),
            root.as_ref().map(|_| DEFAULT_CONFIG_FILE.to_owned()),
        ),
        Some(path) => (
            path.to_owned(),
            root.as_deref()
                .and_then(|root| repofile::inside(root, path)),
        ),
    };
    let bytes = match (&root, &in_repo) {
        (Some(root), Some(relative)) => RepoDir::new(root)
            .read(relative, MAX_CONFIG_FILE_BYTES)
            .map_err(|refusal| refused(&path, refusal)),
        _ => localfile::read(&path, MAX_CONFIG_FILE_BYTES).map_err(|failure| match failure {
            Failure::Missing => ConfigError::FileMissing { path: path.clone() },
            other => refused(&path, other.into()),
        }),
    };
    let bytes = match bytes {
        Ok(bytes) => bytes,
        Err(ConfigError::FileMissing { .. }) if explicit.is_none() => return Ok(None),
        Err(err) => return Err(err),
    };
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Some(ConfigFile {
            path,
            text,
            repository: in_repo.is_some(),
        })),
        Err(err) => Err(ConfigError::FileNotUtf8 {
            path,
            offset: err.utf8_error().valid_up_to(),
        }),
    }
}

/// Read the operator's `--config FILE` (which must exist), wherever it is: with a
/// remote source no local repository holds it.
pub(super) fn read_operators(path: &Path) -> Result<ConfigFile, ConfigError> {
    let bytes = localfile::read(path, MAX_CONFIG_FILE_BYTES).map_err(|failure| match failure {
        Failure::Missing => ConfigError::FileMissing {
            path: path.to_owned(),
        },
        other => refused(path, other.into()),
    })?;
    let text = String::from_utf8(bytes).map_err(|err| ConfigError::FileNotUtf8 {
        path: path.to_owned(),
        offset: err.utf8_error().valid_up_to(),
    })?;
    Ok(ConfigFile {
        path: path.to_owned(),
        text,
        repository: false,
    })
}

/// Why the file at `path` is not read, as a configuration error.
fn refused(path: &Path, refusal: Refusal) -> ConfigError {
    let path = path.to_owned();
    match refusal {
        Refusal::Missing => ConfigError::FileMissing { path },
        Refusal::NotAFile(kind) => ConfigError::FileNotRegular { path, kind },
        Refusal::TooLarge { size, limit } => ConfigError::FileTooLarge { path, size, limit },
        Refusal::Io(error) => ConfigError::FileUnreadable { path, error },
        refusal => ConfigError::FileRefused {
            path,
            reason: refusal.to_string(),
        },
    }
}

/// The file's TOML syntax: `None` when it parses, else the problem, with the line and
/// column and a short excerpt of the line around the column.
pub(super) fn syntax_problem(file: &ConfigFile) -> Option<Problem> {
    let err = toml::from_str::<toml::Table>(&file.text).err()?;
    let message = err.message().trim_end();
    let text = match err.span() {
        Some(span) => {
            let (line, column, excerpt) = excerpt_around(&file.text, span.start);
            format!("TOML syntax error at line {line}, column {column}: {message}\n{excerpt}")
        }
        None => format!("TOML syntax error: {message}"),
    };
    Some(Problem::new(None, file.path.display().to_string(), text))
}

/// Where byte `offset` of `text` is, for a message: its line and column (1-based,
/// columns in characters) and an excerpt of the line around it with a caret under
/// it, at most [`EXCERPT_CHARS`] characters of the line, cuts marked with `…`,
/// control characters escaped.
pub(super) fn excerpt_around(text: &str, offset: usize) -> (usize, usize, String) {
    let offset = (0..=offset.min(text.len()))
        .rev()
        .find(|&at| text.is_char_boundary(at))
        .unwrap_or(0);
    let start = text[..offset].rfind('\n').map_or(0, |at| at + 1);
    let end = text[offset..]
        .find('\n')
        .map_or(text.len(), |at| offset + at);
    let line_text = text[start..end].trim_end_matches('\r');
    let line = text[..start].matches('\n').count() + 1;
    let column = text[start..offset].chars().count() + 1;
    let chars: Vec<char> = line_text.chars().collect();
    let from = (column - 1).saturating_sub(EXCERPT_CHARS / 2);
    let to = (from + EXCERPT_CHARS).min(chars.len());
    let from = to.saturating_sub(EXCERPT_CHARS).min(from);
    let before: String = chars[from..(column - 1).min(to)].iter().collect();
    let after: String = chars[(column - 1).min(to)..to].iter().collect();
    let lead = if from > 0 { "…" } else { "" };
    let tail = if to < chars.len() { "…" } else { "" };
    let before = crate::term::line(&before);
    let gutter = " ".repeat(line.to_string().len());
    let caret = " ".repeat(lead.chars().count() + before.chars().count());
    let shown = format!(
        "{gutter} |\n{line} | {lead}{before}{}{tail}\n{gutter} | {caret}^",
        crate::term::line(&after)
    );
    (line, column, shown)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn file(text: &str) -> ConfigFile {
        ConfigFile {
            path: PathBuf::from("promptsync.toml"),
            text: text.to_owned(),
            repository: true,
        }
    }

    #[test]
    fn a_syntax_error_quotes_a_short_excerpt_of_its_line() {
        let long = format!(
            "x = 1\nkey = \"{}\" junk {}\n",
            "a".repeat(900_000),
            "b".repeat(900_000)
        );
        let problem = syntax_problem(&file(&long)).unwrap();
        let text = problem.to_string();
        assert!(
            text.len() < 600,
            "{} bytes: {}",
            text.len(),
            &text[..600.min(text.len())]
        );
        assert!(text.contains("line 2, column 900010"), "{text}");
        assert!(text.contains('…'), "{text}");
        assert!(syntax_problem(&file("[api]\ntimeout = \"30s\"\n")).is_none());
    }

    #[test]
    fn the_repository_file_is_read_only_inside_the_repository() {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(dir.path()).unwrap();
        let repo = base.join("repo");
        std::fs::create_dir(&repo).unwrap();
        std::fs::write(base.join("key"), "sk_outside_the_repo_1\n").unwrap();
        symlink(base.join("key"), repo.join(DEFAULT_CONFIG_FILE)).unwrap();
        let err = read(&repo, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "configuration file {} leads outside the repository through the symbolic link \
                 `promptsync.toml`; promptsync reads a repository's files only inside it",
                repo.join(DEFAULT_CONFIG_FILE).display()
            )
        );
        // Named with --config from inside, the same; from outside, the operator's.
        let err = read(&repo, Some(&repo.join(DEFAULT_CONFIG_FILE))).unwrap_err();
        assert!(matches!(err, ConfigError::FileRefused { .. }), "{err}");
        std::fs::write(base.join("ops.toml"), "[sync]\nsuspend = true\n").unwrap();
        let ops = read(&repo, Some(&base.join("ops.toml"))).unwrap().unwrap();
        assert!(!ops.repository);
        std::fs::remove_file(repo.join(DEFAULT_CONFIG_FILE)).unwrap();
        assert!(read(&repo, None).unwrap().is_none());
        std::fs::write(repo.join(DEFAULT_CONFIG_FILE), "").unwrap();
        assert!(read(&repo, None).unwrap().unwrap().repository);
    }

    #[test]
    fn an_excerpt_around_an_offset_shows_where() {
        let text = "a = 1\nb = \"x\" y\n";
        let (line, column, shown) = excerpt_around(text, 12);
        assert_eq!((line, column), (2, 7));
        assert_eq!(shown, "  |\n2 | b = \"x\" y\n  |       ^");
        let long = format!("{}ERR{}", "a".repeat(1000), "b".repeat(1000));
        let (_, column, shown) = excerpt_around(&long, 1000);
        assert_eq!(column, 1001);
        let lines: Vec<&str> = shown.lines().collect();
        assert!(
            lines[1].starts_with("1 | …") && lines[1].ends_with('…'),
            "{shown}"
        );
        assert!(lines[1].chars().count() < EXCERPT_CHARS + 10, "{shown}");
        let caret = lines[2].chars().position(|c| c == '^').unwrap();
        let under: String = lines[1].chars().skip(caret).take(3).collect();
        assert_eq!(under, "ERR", "{shown}");
    }
}
