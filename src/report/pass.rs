//! The report of a reconcile pass, its model: one row per prompt file (with its deploy,
//! if the release touches it), the invalid files, and a summary, built from a `Pass`;
//! this is the JSON document `--output json` prints. The shape of the JSON is
//! documented in README and pinned by a snapshot test; it keeps text that came from
//! outside exact. The text for people is `text`'s.

mod text;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::apply::Outcome;
use crate::desired::PromptKey;
use crate::diagnostic::{Diagnostic, Severity};
use crate::diff;
use crate::error::Error;
use crate::failure::FailureClass;
use crate::normalize;
use crate::notify::gate::GateOutcome;
use crate::plan::{
    ContentChange, DeployItem, DeployStep, DeployTarget, SkipReason, SyncItem, SyncStep, Target,
    VersionWrite,
};
use crate::reconcile::{Pass, PassError, Unmanaged};

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
    /// Build the report of a pass; `color` only affects the text output.
    pub fn new(pass: &Pass, mode: Mode, color: bool) -> PassReport {
        let tag = pass.release.as_ref().map(|(r, _)| r.tag.as_str());
        let mut rows: Vec<PromptReport> = pass
            .sync
            .iter()
            .map(|(item, outcome)| sync_row(item, outcome.as_ref()))
            .collect();
        let mut by_path: BTreeMap<String, usize> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r.file.clone(), i))
            .collect();
        let held = pass.gate.as_ref().filter(|g| g.held);
        for (item, outcome) in &pass.deploy {
            let mut deploy = deploy_report(item, outcome.as_ref(), tag.unwrap_or_default());
            if let Some(gate) = held.filter(|_| deploy.action == DeployAction::Deploy) {
                deploy.action = DeployAction::Held;
                deploy.live_after = deploy.live_before;
                deploy.error = Some(format!("held by the deploy gate ({})", gate.reason));
            }
            let id = deploy_prompt_id(item, outcome.as_ref());
            match by_path.get(&item.path) {
                Some(&i) => {
                    let row = &mut rows[i];
                    if row.prompt_id.is_none() {
                        row.prompt_id = id;
                    }
                    // What the deploy created, the source sync then found unchanged:
                    // count it where people look for it.
                    if matches!(row.action, Action::Unchanged | Action::Update)
                        && deploy.action == DeployAction::Deploy
                    {
                        if deploy.created_prompt {
                            row.action = Action::Create;
                        } else if deploy.created_version && row.action == Action::Unchanged {
                            row.action = Action::Update;
                            row.version_after = deploy.live_after.or(row.version_after);
                        }
                    }
                    row.deploy = Some(deploy);
                }
                None => {
                    by_path.insert(item.path.clone(), rows.len());
                    let mut row = PromptReport::new(&item.path, id, &item.key, Action::DeployOnly);
                    row.deploy = Some(deploy);
                    rows.push(row);
                }
            }
        }
        rows.sort_by(|a, b| a.file.cmp(&b.file));

        let mut invalid_files = invalid(&pass.source.diagnostics, None);
        if let Some((release, set)) = &pass.release {
            invalid_files.extend(invalid(&set.diagnostics, Some(&release.tag)));
        }
        let mut summary = summarize(&rows, &invalid_files, &pass.source.diagnostics);
        summary.warnings += pass.warnings.len();
        summary.unmanaged = pass.unmanaged.as_ref().map_or(0, Vec::len);
        summary.unchanged += pass.carried;
        PassReport {
            target: None,
            format: 1,
            mode,
            dry_run: pass.dry_run,
            suspended: pass.suspended,
            source: Source {
                commit: pass.source.source.commit.clone(),
                subject: pass.source.source.subject.clone(),
                worktree: pass.source.source.worktree,
            },
            release: pass.release.as_ref().map(|(r, _)| ReleaseReport {
                tag: r.tag.clone(),
                commit: r.commit.clone(),
            }),
            prompts: rows,
            invalid_files,
            warnings: pass.warnings.clone(),
            unmanaged: pass.unmanaged.clone(),
            summary,
            error: None,
            gate: pass.gate.clone(),
            color,
        }
    }

    /// This report as one target's of several: it and each of its rows name `target`.
    pub fn for_target(mut self, target: &str) -> PassReport {
        self.target = Some(target.to_owned());
        for row in &mut self.prompts {
            row.target = Some(target.to_owned());
        }
        self
    }

    /// This report, marked as the part of a pass that `error` ended early.
    pub fn with_failure(mut self, error: &PassError) -> PassReport {
        self.error = Some(Failure {
            class: error.class,
            message: crate::failure::chain(error),
        });
        self
    }

    /// The report of a pass that ended before it read the source: no prompts, the
    /// error.
    pub fn failed_early(mode: Mode, error: &Error) -> PassReport {
        PassReport {
            target: None,
            format: 1,
            mode,
            dry_run: !mode.sends(),
            suspended: false,
            source: Source {
                commit: None,
                subject: None,
                worktree: false,
            },
            release: None,
            prompts: Vec::new(),
            invalid_files: Vec::new(),
            warnings: Vec::new(),
            unmanaged: None,
            summary: Summary::default(),
            error: Some(Failure {
                class: error.class(),
                message: crate::failure::chain(error),
            }),
            gate: None,
            color: false,
        }
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

fn sync_row(item: &SyncItem, outcome: Option<&Outcome>) -> PromptReport {
    let id = item.target.as_ref().and_then(Target::id).map(str::to_owned);
    let mut row = PromptReport::new(&item.path, id, &item.key, Action::Unchanged);
    match &item.step {
        SyncStep::Unchanged { version } => {
            row.version_before = *version;
            row.version_after = *version;
        }
        SyncStep::Failed { error } => {
            row.action = Action::Failed;
            row.error = Some(error.clone());
        }
        SyncStep::Skipped { reason, content } => {
            row.action = Action::Skipped;
            row.skip_reason = Some(match reason {
                SkipReason::SyncDisabled => "sync: false",
                SkipReason::DriftReported => "drift (drift = \"report\")",
            });
            if let Some(content) = content {
                describe_content(&mut row, item, content);
            }
        }
        SyncStep::Change { metadata, content } => {
            row.action = if matches!(item.target, Some(Target::New(_))) {
                Action::Create
            } else {
                Action::Update
            };
            if let Some(content) = content {
                describe_content(&mut row, item, content);
            } else {
                row.version_after = row.version_before;
            }
            if metadata.name.is_some() {
                row.changes.push("name".into());
            }
            if metadata.description.is_some() {
                row.changes.push("description".into());
            }
        }
    }
    match outcome {
        Some(Ok(applied)) => {
            row.prompt_id = Some(applied.prompt_id.clone());
            if applied.version.is_some() {
                row.version_after = applied.version;
            }
        }
        Some(Err(failed)) => {
            row.action = Action::Failed;
            row.error = Some(failed.to_string());
            row.version_after = row.version_before;
            if failed.prompt_id.is_some() {
                row.prompt_id.clone_from(&failed.prompt_id);
            }
        }
        None => {}
    }
    row
}

fn describe_content(row: &mut PromptReport, item: &SyncItem, content: &ContentChange) {
    row.version_before = content.before.as_ref().map(|v| v.number);
    row.version_after = match content.write {
        VersionWrite::EditDraft(n) => Some(n),
        VersionWrite::Create => None,
    };
    row.changes = content.fields.iter().map(|f| (*f).to_owned()).collect();
    row.drift = content.drift;
    let before_label = match (&content.before, &row.prompt_id) {
        (Some(v), Some(id)) => format!("{id} v{} (remote)", v.number),
        (Some(v), None) => format!("v{} (remote)", v.number),
        (None, _) => "(no remote version)".to_owned(),
    };
    row.diff = diff::unified(
        content.before.as_ref().map(|v| &v.fields),
        &normalize::spec_fields(&content.spec),
        (&before_label, &item.path),
    );
}

fn deploy_report(item: &DeployItem, outcome: Option<&Outcome>, tag: &str) -> DeployReport {
    let mut report = DeployReport {
        tag: tag.to_owned(),
        action: DeployAction::AlreadyLive,
        live_before: None,
        live_after: None,
        version: None,
        created_version: false,
        created_prompt: matches!(item.target, Some(Target::New(_))),
        rollback: item.is_rollback(),
        error: None,
    };
    match &item.step {
        DeployStep::AlreadyLive { version } => {
            report.live_before = Some(*version);
            report.live_after = Some(*version);
            report.version = Some(*version);
        }
        DeployStep::Skipped { .. } => report.action = DeployAction::Skipped,
        DeployStep::Failed { error } => {
            report.action = DeployAction::Failed;
            report.error = Some(error.clone());
        }
        DeployStep::Deploy {
            target,
            live_before,
        } => {
            report.action = DeployAction::Deploy;
            report.live_before = *live_before;
            match target {
                DeployTarget::Existing { version, .. } => {
                    report.live_after = Some(*version);
                    report.version = Some(*version);
                }
                DeployTarget::Create { .. } => report.created_version = true,
            }
        }
    }
    // What was done, not what was planned.
    match outcome {
        Some(Ok(applied)) => {
            report.live_after = applied.version;
            report.version = applied.version;
            report.created_prompt = applied.created_prompt;
            report.created_version = applied.created_version;
        }
        Some(Err(failed)) => {
            report.action = DeployAction::Failed;
            report.error = Some(failed.to_string());
            report.live_after = failed.live;
            report.version = failed.version;
            report.created_prompt = failed.created_prompt;
            report.created_version = failed.created_version;
        }
        None => {}
    }
    report
}

fn deploy_prompt_id(item: &DeployItem, outcome: Option<&Outcome>) -> Option<String> {
    let planned = || item.target.as_ref().and_then(Target::id).map(str::to_owned);
    match outcome {
        Some(Ok(applied)) => Some(applied.prompt_id.clone()),
        Some(Err(failed)) => failed.prompt_id.clone().or_else(planned),
        None => planned(),
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

fn invalid(diagnostics: &[Diagnostic], tag: Option<&str>) -> Vec<InvalidFile> {
    let mut files: BTreeMap<&str, Vec<Diagnostic>> = BTreeMap::new();
    for d in diagnostics.iter().filter(|d| d.severity == Severity::Error) {
        files.entry(&d.path).or_default().push(d.clone());
    }
    files
        .into_iter()
        .map(|(file, diagnostics)| InvalidFile {
            file: file.to_owned(),
            release_tag: tag.map(str::to_owned),
            diagnostics,
        })
        .collect()
}

fn summarize(
    rows: &[PromptReport],
    invalid: &[InvalidFile],
    diagnostics: &[Diagnostic],
) -> Summary {
    let mut s = Summary {
        invalid_files: invalid.len(),
        warnings: diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .map(Diagnostic::count)
            .sum(),
        ..Summary::default()
    };
    for row in rows {
        match row.action {
            Action::Create => s.created += 1,
            Action::Update => s.updated += 1,
            Action::Unchanged => s.unchanged += 1,
            Action::Skipped => s.skipped += 1,
            Action::Failed => s.failed += 1,
            Action::DeployOnly => {}
        }
        if let Some(deploy) = &row.deploy {
            match deploy.action {
                DeployAction::Deploy => s.deployed += 1,
                DeployAction::Failed if row.action != Action::Failed => s.failed += 1,
                _ => {}
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn deploy(action: DeployAction) -> DeployReport {
        DeployReport {
            tag: "v1".into(),
            action,
            live_before: None,
            live_after: None,
            version: None,
            created_version: false,
            created_prompt: false,
            rollback: false,
            error: None,
        }
    }

    #[test]
    fn the_summary_counts_rows_deploys_and_findings() {
        let mut failed_deploy = row("c", Action::Unchanged);
        failed_deploy.deploy = Some(deploy(DeployAction::Failed));
        let mut deployed = row("d", Action::DeployOnly);
        deployed.deploy = Some(deploy(DeployAction::Deploy));
        let rows = vec![
            row("a", Action::Create),
            row("b", Action::Failed),
            failed_deploy,
            deployed,
        ];
        let diagnostics = vec![
            Diagnostic::error("x.yaml", "bad"),
            Diagnostic::error("x.yaml", "worse"),
            Diagnostic::warning("y.yaml", "odd"),
        ];
        let invalid = invalid(&diagnostics, Some("v1"));
        assert_eq!(invalid.len(), 1);
        assert_eq!(invalid[0].diagnostics.len(), 2);
        assert_eq!(invalid[0].release_tag.as_deref(), Some("v1"));
        let s = summarize(&rows, &invalid, &diagnostics);
        assert_eq!(
            (
                s.created,
                s.unchanged,
                s.failed,
                s.deployed,
                s.invalid_files,
                s.warnings
            ),
            (1, 1, 2, 1, 1, 1)
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
