//! GitHub Actions output, beside the text and JSON reports: workflow-command
//! annotations on stdout (`::error file=…,line=…,col=…::message`, `::warning …`) that
//! GitHub pins to the files of a run and a pull request, and a Markdown job summary
//! (a table of the prompts and their actions, the diffs collapsed) appended to the file
//! that `GITHUB_STEP_SUMMARY` names. Active only where GitHub sets those variables.
//!
//! Reads the public fields of a [`PassReport`] and of validation `Diagnostic`s;
//! knows nothing about how they were made. The rendering is pure; only
//! [`GitHub::annotate`] (stdout, through [`Stdout`]) and [`GitHub::append_summary`]
//! (the summary file) write. Text is redacted of every secret promptsync holds before
//! it is escaped (an entity or a `%25` would hide a secret from the redactor), and the
//! summary once more as a whole. The annotations are this file's; the job summary's
//! Markdown is the `summary` module's.

mod summary;

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use super::Stdout;
use super::pass::{Action, DeployAction, PassReport, PromptReport};
use crate::diagnostic::{Diagnostic, Severity};
pub use summary::{summary, summary_within};

/// Where GitHub's variables say to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHub {
    /// `GITHUB_ACTIONS=true`: annotations on stdout.
    annotations: bool,
    /// `GITHUB_STEP_SUMMARY`: the file the job summary is appended to.
    summary: Option<PathBuf>,
    /// `GITHUB_WORKSPACE`, which annotation paths are relative to.
    workspace: Option<PathBuf>,
    /// The repository root relative to the workspace, with a trailing `/` (empty when
    /// they are the same): report paths are relative to the repository root.
    prefix: String,
}

impl GitHub {
    /// From the process environment; `None` outside GitHub Actions.
    pub fn from_env() -> Option<GitHub> {
        GitHub::from_vars(|name| std::env::var_os(name))
    }

    /// From the variables `var` returns (tests give them explicitly).
    pub fn from_vars(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<GitHub> {
        let annotations = var("GITHUB_ACTIONS").is_some_and(|v| v == "true");
        let summary = var("GITHUB_STEP_SUMMARY")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        let workspace = var("GITHUB_WORKSPACE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        (annotations || summary.is_some()).then_some(GitHub {
            annotations,
            summary,
            workspace,
            prefix: String::new(),
        })
    }

    /// Name files from the workspace when the repository root `root` lies inside it
    /// (a checkout into a subdirectory, `--repo sub/dir`).
    pub fn with_root(mut self, root: &Path) -> GitHub {
        let canonical = |path: &Path| std::fs::canonicalize(path).ok();
        let inside = self
            .workspace
            .as_deref()
            .and_then(canonical)
            .zip(canonical(root))
            .and_then(|(workspace, root)| {
                root.strip_prefix(&workspace)
                    .ok()
                    .map(|rel| rel.to_string_lossy().replace('\\', "/"))
            });
        self.prefix = match inside {
            Some(rel) if !rel.is_empty() => format!("{rel}/"),
            _ => String::new(),
        };
        self
    }

    /// Whether annotations are wanted (`GITHUB_ACTIONS=true`).
    pub fn wants_annotations(&self) -> bool {
        self.annotations
    }

    /// The file the summary goes to, if any.
    pub fn summary_file(&self) -> Option<&Path> {
        self.summary.as_deref()
    }

    /// The annotations for a pass: invalid files, failed prompts and deploys, drift,
    /// and the error that ended the pass early.
    pub fn pass_annotations(&self, report: &PassReport) -> String {
        let mut out = String::new();
        for file in &report.invalid_files {
            let title = match &file.release_tag {
                Some(tag) => format!("promptsync: invalid at release {tag}"),
                None => "promptsync: invalid prompt file".to_owned(),
            };
            for diagnostic in &file.diagnostics {
                out.push_str(&self.diagnostic(diagnostic, &title));
            }
        }
        for row in &report.prompts {
            if row.action == Action::Failed {
                let message = about(row, row.error.as_deref().unwrap_or("failed"));
                out.push_str(&self.file_command(
                    "error",
                    &row.file,
                    "promptsync: sync failed",
                    &message,
                ));
            }
            if row.drift {
                let message = about(
                    row,
                    "the newest remote version was changed outside promptsync (drift)",
                );
                out.push_str(&self.file_command(
                    "warning",
                    &row.file,
                    "promptsync: drift",
                    &message,
                ));
            }
            if let Some(deploy) = row
                .deploy
                .as_ref()
                .filter(|d| matches!(d.action, DeployAction::Failed | DeployAction::Held))
            {
                let message = about(row, deploy.error.as_deref().unwrap_or("failed"));
                let title = format!("promptsync: deploy of {} failed", deploy.tag);
                out.push_str(&self.file_command("error", &row.file, &title, &message));
            }
        }
        if let Some(failure) = &report.error {
            let title = format!("promptsync stopped early ({})", class_name(report));
            out.push_str(&command("error", &[("title", title)], &failure.message));
        }
        out
    }

    /// The annotations for validation findings, errors and warnings.
    pub fn findings_annotations(&self, diagnostics: &[Diagnostic]) -> String {
        diagnostics
            .iter()
            .map(|d| self.diagnostic(d, "promptsync validate"))
            .collect()
    }

    /// Print `annotations` on stdout, when annotations are wanted.
    pub fn annotate(&self, out: &mut Stdout, annotations: &str) -> io::Result<()> {
        if self.annotations && !annotations.is_empty() {
            out.text(annotations)?;
            out.flush()?;
        }
        Ok(())
    }

    /// Append the job summary of `report` to the summary file, when there is one.
    pub fn append_summary(&self, report: &PassReport) -> io::Result<()> {
        let Some(path) = &self.summary else {
            return Ok(());
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        file.write_all(crate::secret::redact(&summary(report)).as_bytes())?;
        file.flush()
    }

    fn diagnostic(&self, d: &Diagnostic, title: &str) -> String {
        let kind = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut properties = vec![("file", format!("{}{}", self.prefix, d.path))];
        if let Some(line) = d.line {
            properties.push(("line", line.to_string()));
        }
        if let Some(column) = d.column {
            properties.push(("col", column.to_string()));
        }
        properties.push(("title", title.to_owned()));
        let mut message = match &d.help {
            Some(help) => format!("{}\nhelp: {help}", d.message),
            None => d.message.clone(),
        };
        if let Some(note) = d.more_note() {
            message.push_str(&format!("\nnote: {note}"));
        }
        command(kind, &properties, &message)
    }

    fn file_command(&self, kind: &str, file: &str, title: &str, message: &str) -> String {
        let properties = [
            ("file", format!("{}{file}", self.prefix)),
            ("title", title.to_owned()),
        ];
        command(kind, &properties, message)
    }
}

/// One workflow command line: `::kind key=value,...::message`.
fn command(kind: &str, properties: &[(&str, String)], message: &str) -> String {
    let properties: Vec<String> = properties
        .iter()
        .map(|(key, value)| format!("{key}={}", escape_property(value)))
        .collect();
    let separator = if properties.is_empty() { "" } else { " " };
    format!(
        "::{kind}{separator}{}::{}\n",
        properties.join(","),
        escape_data(message)
    )
}

/// A command's message, as GitHub's protocol wants it: `%`, CR and LF escaped.
/// Secrets are redacted first, so that escaping cannot hide one from the redactor.
pub fn escape_data(text: &str) -> String {
    crate::secret::redact(text)
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A command's property value: as [`escape_data`], and `:` and `,` too.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// `name (id): message`, or the message alone when the row names no prompt (its
/// error names the file then).
fn about(row: &PromptReport, message: &str) -> String {
    match (&row.name, &row.prompt_id) {
        (Some(name), Some(id)) => format!("{name} ({id}): {message}"),
        (Some(name), None) => format!("{name}: {message}"),
        (None, Some(id)) => format!("{id}: {message}"),
        (None, None) => message.to_owned(),
    }
}

fn class_name(report: &PassReport) -> String {
    report
        .error
        .as_ref()
        .and_then(|f| serde_json::to_value(f.class).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "error".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_and_properties_are_escaped_as_the_protocol_says() {
        assert_eq!(escape_data("50% off\r\nnext"), "50%25 off%0D%0Anext");
        assert_eq!(escape_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
        assert_eq!(
            command(
                "error",
                &[("file", "p/a,b.yaml".into()), ("line", "3".into())],
                "x\ny"
            ),
            "::error file=p/a%2Cb.yaml,line=3::x%0Ay\n"
        );
        assert_eq!(command("error", &[], "bare"), "::error::bare\n");
    }

    #[test]
    fn a_diagnostic_names_file_line_column_and_help() {
        let github = GitHub {
            annotations: true,
            summary: None,
            workspace: None,
            prefix: "prompts-repo/".into(),
        };
        let d = Diagnostic::error("a.prompt.yaml", "unknown key `temprature`")
            .at("temprature: 1\n", 1, 1)
            .with_help("did you mean `temperature`?");
        assert_eq!(
            github.findings_annotations(&[d]),
            "::error file=prompts-repo/a.prompt.yaml,line=1,col=1,title=promptsync validate::\
             unknown key `temprature`%0Ahelp: did you mean `temperature`?\n"
        );
    }

    #[test]
    fn github_is_off_without_its_variables() {
        let vars = |set: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                set.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        assert_eq!(GitHub::from_vars(vars(&[])), None);
        assert_eq!(
            GitHub::from_vars(vars(&[("GITHUB_ACTIONS", "false")])),
            None
        );
        let on = GitHub::from_vars(vars(&[("GITHUB_ACTIONS", "true")])).unwrap();
        assert!(on.wants_annotations() && on.summary_file().is_none());
        let summary = GitHub::from_vars(vars(&[("GITHUB_STEP_SUMMARY", "/tmp/s.md")])).unwrap();
        assert!(!summary.wants_annotations());
        assert_eq!(summary.summary_file(), Some(Path::new("/tmp/s.md")));
    }

    #[test]
    fn a_workspace_subdirectory_prefixes_paths() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("sub").join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        let github = GitHub {
            annotations: true,
            summary: None,
            workspace: Some(dir.path().to_owned()),
            prefix: String::new(),
        };
        assert_eq!(github.clone().with_root(&repo).prefix, "sub/repo/");
        assert_eq!(github.clone().with_root(dir.path()).prefix, "");
        let elsewhere = tempfile::tempdir().unwrap();
        assert_eq!(github.with_root(elsewhere.path()).prefix, "");
    }
}
