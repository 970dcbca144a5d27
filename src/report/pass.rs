//! The report of a reconcile pass, its model: one row per prompt file (with its deploy,
//! if the release touches it), the invalid files, and a summary; this is the JSON
//! document `--output json` prints. The shape of the JSON is documented in README and
//! pinned by a snapshot test; it keeps text that came from outside exact. Building it
//! from a `Pass` is `build`'s; the text for people is `text`'s.

mod build;
mod text;

use serde::Serialize;

use crate::desired::PromptKey;
use crate::diagnostic::Diagnostic;
use crate::failure::FailureClass;
use crate::notify::gate::GateOutcome;
use crate::reconcile::Unmanaged;

/// Which command produced the pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Sync,
    DryRun,
    Plan,
    /// `sync --deploy-only`: the release's deploys, no draft written.
    DeployOnly,
    /// `sync --deploy-only --dry-run`.
    DeployOnlyDryRun,
    /// `plan --deploy-only`.
    DeployOnlyPlan,
}

impl Mode {
    /// The mode of a command: `plan` or `sync`, `--dry-run`, `--deploy-only`.
    pub fn of(plan: bool, dry_run: bool, deploy_only: bool) -> Mode {
        match (plan, dry_run, deploy_only) {
            (true, _, false) => Mode::Plan,
            (true, _, true) => Mode::DeployOnlyPlan,
            (false, true, false) => Mode::DryRun,
            (false, true, true) => Mode::DeployOnlyDryRun,
            (false, false, false) => Mode::Sync,
            (false, false, true) => Mode::DeployOnly,
        }
    }

    /// Change requests are sent (not a plan, not a dry run).
    pub fn sends(self) -> bool {
        matches!(self, Mode::Sync | Mode::DeployOnly)
    }

    /// `plan`: diffs are shown.
    pub fn is_plan(self) -> bool {
        matches!(self, Mode::Plan | Mode::DeployOnlyPlan)
    }

    /// Only the release's deploys (`--deploy-only`).
    pub fn deploy_only(self) -> bool {
        matches!(
            self,
            Mode::DeployOnly | Mode::DeployOnlyDryRun | Mode::DeployOnlyPlan
        )
    }

    /// The command line that gives this mode, for headings.
    pub fn command(self) -> &'static str {
        match self {
            Mode::Sync => "promptsync sync",
            Mode::DryRun => "promptsync sync --dry-run",
            Mode::Plan => "promptsync plan",
            Mode::DeployOnly => "promptsync sync --deploy-only",
            Mode::DeployOnlyDryRun => "promptsync sync --deploy-only --dry-run",
            Mode::DeployOnlyPlan => "promptsync plan --deploy-only",
        }
    }
}

/// The report, as `--output json` prints it.
#[derive(Debug, Serialize)]
pub struct PassReport {
    /// The target (`[targets.NAME]`) of the pass; absent without `[targets]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Version of this document's shape.
    pub format: u32,
    pub mode: Mode,
    /// True when no change was sent (dry run, plan, or `suspend`).
    pub dry_run: bool,
    pub suspended: bool,
    pub source: Source,
    pub release: Option<ReleaseReport>,
    pub prompts: Vec<PromptReport>,
    pub invalid_files: Vec<InvalidFile>,
    /// Problems no single prompt owns (a list item that names no prompt).
    pub warnings: Vec<String>,
    /// Remote prompts no file names; `null` when the account was not listed
    /// (`sync.report_unmanaged = false`, or the listing failed: see `warnings`).
    pub unmanaged: Option<Vec<Unmanaged>>,
    pub summary: Summary,
    /// Why the pass ended before it was done; `null` when it finished.
    pub error: Option<Failure>,
    /// The deploy gate's outcome, when `deploy.gate_command` ran.
    pub gate: Option<GateOutcome>,
    /// Colour the text output (decided once, with the diffs).
    #[serde(skip)]
    color: bool,
}

/// The error that ended a pass early.
#[derive(Debug, Serialize)]
pub struct Failure {
    /// `stalled` (needs a person), `transient` (retry later) or `fatal`.
    pub class: FailureClass,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct Source {
    pub commit: Option<String>,
    pub subject: Option<String>,
    pub worktree: bool,
}

#[derive(Debug, Serialize)]
pub struct ReleaseReport {
    pub tag: String,
    pub commit: String,
}

/// What happened (or, in a dry run, would happen) to one prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A new prompt (and its first version).
    Create,
    /// A new version, an edited draft, or new metadata.
    Update,
    Unchanged,
    Skipped,
    Failed,
    /// Only at the release commit: deployed, not synced as a draft.
    DeployOnly,
}

#[derive(Debug, Serialize)]
pub struct PromptReport {
    /// The target of the pass; absent without `[targets]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub file: String,
    pub prompt_id: Option<String>,
    pub name: Option<String>,
    pub action: Action,
    pub version_before: Option<u64>,
    pub version_after: Option<u64>,
    /// Changed content fields, and `name`/`description` for prompt metadata.
    pub changes: Vec<String>,
    pub drift: bool,
    pub skip_reason: Option<&'static str>,
    pub error: Option<String>,
    pub deploy: Option<DeployReport>,
    /// The unified diff of the content change (no colours), for a bot to post;
    /// `null` when the content does not change.
    #[serde(serialize_with = "empty_as_null")]
    pub diff: String,
}

fn empty_as_null<S: serde::Serializer>(text: &str, serializer: S) -> Result<S::Ok, S::Error> {
    if text.is_empty() {
        serializer.serialize_none()
    } else {
        serializer.serialize_str(text)
    }
}

impl PromptReport {
    /// The unified diff of the content change, as `plan` prints it; empty when the
    /// content did not change.
    pub fn diff(&self) -> &str {
        &self.diff
    }
}

#[derive(Debug, Serialize)]
pub struct DeployReport {
    pub tag: String,
    pub action: DeployAction,
    /// The live version before.
    pub live_before: Option<u64>,
    /// The version live after, as read back once the deploy was done (`null` in a dry
    /// run when it does not exist yet, or when a failed deploy could not tell).
    pub live_after: Option<u64>,
    /// The version with the release content, found or created (`null` while it does
    /// not exist).
    pub version: Option<u64>,
    /// The version was (or would be) created for the release.
    pub created_version: bool,
    /// The prompt itself was (or would be) created for the release.
    pub created_prompt: bool,
    pub rollback: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployAction {
    Deploy,
    AlreadyLive,
    Skipped,
    Failed,
    /// The deploy gate failed: nothing of the release was sent.
    Held,
}

#[derive(Debug, Clone, Serialize)]
pub struct InvalidFile {
    pub file: String,
    /// `null` for the source commit, the tag for the release commit.
    pub release_tag: Option<String>,
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub skipped: usize,
    pub failed: usize,
    pub deployed: usize,
    pub invalid_files: usize,
    pub warnings: usize,
    /// Remote prompts no file names (0 when the account was not listed).
    pub unmanaged: usize,
}

impl PassReport {
    /// This report as one target's of several: it and each of its rows name `target`.
    pub fn for_target(mut self, target: &str) -> PassReport {
        self.target = Some(target.to_owned());
        for row in &mut self.prompts {
            row.target = Some(target.to_owned());
        }
        self
    }

    /// Any prompt failed, any file is invalid, the deploy gate held the release, or the
    /// pass ended early.
    pub fn has_errors(&self) -> bool {
        self.summary.failed > 0
            || self.summary.invalid_files > 0
            || self.error.is_some()
            || self.gate.as_ref().is_some_and(|g| g.held)
    }

    /// Any change would be (or was) sent.
    pub fn has_changes(&self) -> bool {
        self.summary.created + self.summary.updated + self.summary.deployed > 0
    }
}

impl PromptReport {
    fn new(file: &str, prompt_id: Option<String>, key: &PromptKey, action: Action) -> Self {
        PromptReport {
            target: None,
            file: file.to_owned(),
            prompt_id,
            name: match key {
                PromptKey::Name(name) => Some(name.clone()),
                PromptKey::Id(_) => None,
            },
            action,
            version_before: None,
            version_after: None,
            changes: Vec::new(),
            drift: false,
            skip_reason: None,
            error: None,
            deploy: None,
            diff: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn row(file: &str, action: Action) -> PromptReport {
        PromptReport::new(file, None, &PromptKey::Name("n".into()), action)
    }

    #[test]
    fn the_mode_of_a_command() {
        assert_eq!(Mode::of(true, false, false), Mode::Plan);
        assert_eq!(Mode::of(false, true, true), Mode::DeployOnlyDryRun);
        assert_eq!(Mode::of(false, false, false), Mode::Sync);
        assert!(Mode::DeployOnly.sends() && Mode::DeployOnly.deploy_only());
        assert!(!Mode::DryRun.sends() && !Mode::DryRun.is_plan());
        assert_eq!(
            Mode::DeployOnlyPlan.command(),
            "promptsync plan --deploy-only"
        );
    }

    #[test]
    fn a_target_names_the_report_and_each_row_and_the_json_keeps_its_shape() {
        let mut report = PassReport::failed_early(Mode::Sync, &Error::Internal("stopped".into()));
        report.prompts.push(row("a.prompt.yaml", Action::Create));
        assert!(report.has_errors());
        let report = report.for_target("staging");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["target"], "staging");
        assert_eq!(json["prompts"][0]["target"], "staging");
        assert_eq!(json["prompts"][0]["diff"], serde_json::Value::Null);
        assert_eq!(json["error"]["class"], "fatal");
        assert!(json.get("color").is_none());
    }
}
