//! The report of `promptsync pull`: one row per remote prompt asked for, what was
//! written (or why not), as text or one JSON document.

use serde::Serialize;

use crate::report::Printable;
use crate::term;

/// What happened to one prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PullAction {
    /// A new file was written.
    Wrote,
    /// An existing file for this prompt was replaced (`--force`).
    Replaced,
    /// A file for this prompt exists and says something else; nothing was written
    /// (no `--force`).
    Exists,
    /// A file for this prompt exists and says exactly this already.
    Unchanged,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct PullRow {
    /// The file, relative to the repository root (`null` when nothing was chosen).
    pub file: Option<String>,
    /// What was asked for (`--all`: the prompt's id).
    pub asked: String,
    pub prompt_id: Option<String>,
    pub name: Option<String>,
    /// The version written.
    pub version: Option<u64>,
    pub action: PullAction,
    pub error: Option<String>,
    /// Said when the file is outside `prompts.include` (sync would not see it).
    pub warning: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PullReport {
    pub format: u32,
    pub prompts: Vec<PullRow>,
    pub summary: PullSummary,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PullSummary {
    pub written: usize,
    pub unchanged: usize,
    pub exists: usize,
    pub failed: usize,
}

impl PullReport {
    pub fn new(prompts: Vec<PullRow>) -> PullReport {
        let mut summary = PullSummary::default();
        for row in &prompts {
            match row.action {
                PullAction::Wrote | PullAction::Replaced => summary.written += 1,
                PullAction::Unchanged => summary.unchanged += 1,
                PullAction::Exists => summary.exists += 1,
                PullAction::Failed => summary.failed += 1,
            }
        }
        PullReport {
            format: 1,
            prompts,
            summary,
        }
    }

    /// Whether a prompt asked for was not written: it failed, or its file says
    /// something else and `--force` was not given.
    pub fn has_errors(&self) -> bool {
        self.summary.failed > 0 || self.summary.exists > 0
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for row in &self.prompts {
            let who = match (&row.name, &row.prompt_id) {
                (Some(name), Some(id)) => format!("{:?} ({})", term::line(name), term::line(id)),
                (None, Some(id)) => term::line(id).into_owned(),
                _ => term::line(&row.asked).into_owned(),
            };
            let file = row.file.as_deref().map(term::line).unwrap_or_default();
            let version = row.version.map(|v| format!(" v{v}")).unwrap_or_default();
            let line = match row.action {
                PullAction::Wrote => format!("wrote {file}  {who}{version}"),
                PullAction::Replaced => format!("replaced {file}  {who}{version}"),
                PullAction::Exists => format!(
                    "exists {file}  {who}{version}: not overwritten, it says something else (add --force to replace it)"
                ),
                PullAction::Unchanged => format!("unchanged {file}  {who}{version}: up to date"),
                PullAction::Failed => format!(
                    "failed {who}: {}",
                    term::line(row.error.as_deref().unwrap_or("failed"))
                ),
            };
            out.push_str(&line);
            out.push('\n');
            if let Some(warning) = &row.warning {
                out.push_str(&format!("  warning: {}\n", term::line(warning)));
            }
        }
        let s = &self.summary;
        out.push_str(&format!(
            "Pulled: {} written, {} up to date, {} not overwritten, {} failed.\n",
            s.written, s.unchanged, s.exists, s.failed
        ));
        if s.written > 0 {
            out.push_str("Commit the files; `promptsync plan` then shows no change for them.\n");
        }
        out
    }
}

impl Printable for PullReport {
    fn text(&self) -> String {
        self.to_text()
    }
}
