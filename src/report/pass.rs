//! The report of a reconcile pass: one row per prompt file (with its deploy, if the
//! release touches it), the invalid files, and a summary; rendered as text for people
//! (with unified diffs for `plan`) or as one JSON document. The shape of the JSON is
//! documented in README and pinned by a snapshot test.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::apply::Outcome;
use crate::desired::PromptKey;
use crate::diagnostic::{Diagnostic, Severity};
use crate::diff;
use crate::error::{Error, FailureClass};
use crate::normalize;
use crate::plan::{
    ContentChange, DeployItem, DeployStep, DeployTarget, SkipReason, SyncItem, SyncStep, Target,
    VersionWrite,
};
use crate::reconcile::{Pass, PassError};

/// Which command produced the pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Sync,
    DryRun,
    Plan,
}

/// The report, as `--output json` prints it.
#[derive(Debug, Serialize)]
pub struct PassReport {
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
    pub summary: Summary,
    /// Why the pass ended before it was done; `null` when it finished.
    pub error: Option<Failure>,
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
    #[serde(skip)]
    diff: String,
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
    /// The version live after (`null` in a dry run when it does not exist yet).
    pub live_after: Option<u64>,
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
}

#[derive(Debug, Serialize)]
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
}

impl PassReport {
    /// Build the report of a pass; `color` only affects the text output.
    pub fn new(pass: &Pass, mode: Mode, color: bool) -> PassReport {
        let tag = pass.release.as_ref().map(|(r, _)| r.tag.as_str());
        let mut rows: Vec<PromptReport> = pass
            .sync
            .iter()
            .map(|(item, outcome)| sync_row(item, outcome.as_ref(), color))
            .collect();
        let mut by_path: BTreeMap<String, usize> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r.file.clone(), i))
            .collect();
        for (item, outcome) in &pass.deploy {
            let deploy = deploy_report(item, outcome.as_ref(), tag.unwrap_or_default());
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
        let summary = summarize(&rows, &invalid_files, &pass.source.diagnostics);
        PassReport {
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
            summary,
            error: None,
            color,
        }
    }

    /// This report, marked as the part of a pass that `error` ended early.
    pub fn with_failure(mut self, error: &PassError) -> PassReport {
        self.error = Some(Failure {
            class: error.class,
            message: error_chain(error),
        });
        self
    }

    /// The report of a pass that ended before it read the source: no prompts, the
    /// error.
    pub fn failed_early(mode: Mode, error: &Error) -> PassReport {
        PassReport {
            format: 1,
            mode,
            dry_run: mode != Mode::Sync,
            suspended: false,
            source: Source {
                commit: None,
                subject: None,
                worktree: false,
            },
            release: None,
            prompts: Vec::new(),
            invalid_files: Vec::new(),
            summary: Summary::default(),
            error: Some(Failure {
                class: error.class(),
                message: error_chain(error),
            }),
            color: false,
        }
    }

    /// Any prompt failed, any file is invalid, or the pass ended early.
    pub fn has_errors(&self) -> bool {
        self.summary.failed > 0 || self.summary.invalid_files > 0 || self.error.is_some()
    }

    /// Any change would be (or was) sent.
    pub fn has_changes(&self) -> bool {
        self.summary.created + self.summary.updated + self.summary.deployed > 0
    }

    /// The report for people.
    pub fn to_text(&self) -> String {
        let color = self.color;
        let mut out = String::new();
        let style = Style { color };
        for file in &self.invalid_files {
            if let Some(tag) = &file.release_tag {
                out.push_str(&format!("{} at release {tag}:\n", style.red("invalid")));
            }
            for d in &file.diagnostics {
                out.push_str(&d.render(color));
                out.push('\n');
            }
        }
        let verb =
            |done: &'static str, planned: &'static str| if self.dry_run { planned } else { done };
        for row in &self.prompts {
            let who = who(row);
            match row.action {
                Action::Create => out.push_str(&format!(
                    "{} {}  {who}{}\n",
                    style.green(verb("created", "create")),
                    row.file,
                    version_arrow(row)
                )),
                Action::Update => out.push_str(&format!(
                    "{} {}  {who}{}{}\n",
                    style.yellow(verb("updated", "update")),
                    row.file,
                    version_arrow(row),
                    changes(row)
                )),
                Action::Skipped => out.push_str(&format!(
                    "{} {}  {who}: {}{}\n",
                    style.dim("skipped"),
                    row.file,
                    row.skip_reason.unwrap_or("skipped"),
                    changes(row)
                )),
                Action::Failed => out.push_str(&format!(
                    "{} {}  {who}: {}\n",
                    style.red("failed"),
                    row.file,
                    row.error.as_deref().unwrap_or("failed")
                )),
                Action::Unchanged | Action::DeployOnly => {}
            }
            if self.mode == Mode::Plan && !row.diff.is_empty() {
                out.push_str(&row.diff);
            }
            if let Some(deploy) = &row.deploy {
                let line = match deploy.action {
                    DeployAction::Deploy => format!(
                        "{} {}  {who}: live {} → {} ({}{})\n",
                        style.cyan(verb("deployed", "deploy")),
                        row.file,
                        deploy
                            .live_before
                            .map_or("none".into(), |v| format!("v{v}")),
                        deploy
                            .live_after
                            .map_or("new version".into(), |v| format!("v{v}")),
                        deploy.tag,
                        if deploy.rollback { ", rollback" } else { "" }
                    ),
                    DeployAction::Failed => format!(
                        "{} {}  {who}: deploy of {}: {}\n",
                        style.red("failed"),
                        row.file,
                        deploy.tag,
                        deploy.error.as_deref().unwrap_or("failed")
                    ),
                    DeployAction::AlreadyLive | DeployAction::Skipped => String::new(),
                };
                out.push_str(&line);
            }
        }
        out.push_str(&self.summary_line());
        out.push('\n');
        out
    }

    /// The closing line of the text report: what was done to what, in counts.
    pub fn summary_line(&self) -> String {
        let s = &self.summary;
        let source = match (&self.source.commit, self.source.worktree) {
            (_, true) => "the working tree".to_owned(),
            (Some(c), false) => format!("commit {}", &c[..c.len().min(10)]),
            (None, false) => "HEAD".to_owned(),
        };
        let lead = match (self.mode, self.suspended) {
            _ if self.error.is_some() => format!("Stopped early on {source}"),
            (_, true) => format!("Suspended (nothing sent); plan for {source}"),
            (Mode::Plan, _) => format!("Plan for {source}"),
            (Mode::DryRun, _) => format!("Dry run of {source} (nothing sent)"),
            (Mode::Sync, _) => format!("Synced {source}"),
        };
        let mut parts = vec![
            format!("{} created", s.created),
            format!("{} updated", s.updated),
            format!("{} unchanged", s.unchanged),
        ];
        if s.skipped > 0 {
            parts.push(format!("{} skipped", s.skipped));
        }
        parts.push(format!("{} failed", s.failed));
        if let Some(release) = &self.release {
            parts.push(format!("{} deployed ({})", s.deployed, release.tag));
        }
        if s.invalid_files > 0 {
            parts.push(format!("{} invalid file(s)", s.invalid_files));
        }
        if s.warnings > 0 {
            parts.push(format!("{} warning(s)", s.warnings));
        }
        let tail = if self.mode == Mode::Plan && !self.has_changes() && !self.has_errors() {
            " — no changes"
        } else {
            ""
        };
        format!("{lead}: {}{tail}.", parts.join(", "))
    }
}

/// An error with its causes, as `main` prints them (`a: b: c`).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = source.and_then(std::error::Error::source);
    }
    text
}

fn sync_row(item: &SyncItem, outcome: Option<&Outcome>, color: bool) -> PromptReport {
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
                describe_content(&mut row, item, content, color);
            }
        }
        SyncStep::Change { metadata, content } => {
            row.action = if matches!(item.target, Some(Target::New(_))) {
                Action::Create
            } else {
                Action::Update
            };
            if let Some(content) = content {
                describe_content(&mut row, item, content, color);
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
        Some(Err(err)) => {
            row.action = Action::Failed;
            row.error = Some(err.to_string());
            row.version_after = row.version_before;
        }
        None => {}
    }
    row
}

fn describe_content(row: &mut PromptReport, item: &SyncItem, content: &ContentChange, color: bool) {
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
        color,
    );
}

fn deploy_report(item: &DeployItem, outcome: Option<&Outcome>, tag: &str) -> DeployReport {
    let mut report = DeployReport {
        tag: tag.to_owned(),
        action: DeployAction::AlreadyLive,
        live_before: None,
        live_after: None,
        created_version: false,
        created_prompt: matches!(item.target, Some(Target::New(_))),
        rollback: item.is_rollback(),
        error: None,
    };
    match &item.step {
        DeployStep::AlreadyLive { version } => {
            report.live_before = Some(*version);
            report.live_after = Some(*version);
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
                DeployTarget::Existing { version, .. } => report.live_after = Some(*version),
                DeployTarget::Create { .. } => report.created_version = true,
            }
        }
    }
    match outcome {
        Some(Ok(applied)) => report.live_after = applied.version,
        Some(Err(err)) => {
            report.action = DeployAction::Failed;
            report.error = Some(err.to_string());
        }
        None => {}
    }
    report
}

fn deploy_prompt_id(item: &DeployItem, outcome: Option<&Outcome>) -> Option<String> {
    match outcome {
        Some(Ok(applied)) => Some(applied.prompt_id.clone()),
        _ => item.target.as_ref().and_then(Target::id).map(str::to_owned),
    }
}

impl PromptReport {
    fn new(file: &str, prompt_id: Option<String>, key: &PromptKey, action: Action) -> Self {
        PromptReport {
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
            .count(),
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

fn who(row: &PromptReport) -> String {
    match (&row.prompt_id, &row.name) {
        (Some(id), Some(name)) => format!("{name:?} ({id})"),
        (Some(id), None) => id.clone(),
        (None, Some(name)) => format!("{name:?} (new)"),
        (None, None) => "(new)".to_owned(),
    }
}

fn version_arrow(row: &PromptReport) -> String {
    match (row.version_before, row.version_after) {
        (None, None) => String::new(),
        (None, Some(after)) => format!(" v{after}"),
        (Some(before), Some(after)) if before == after => format!(" v{after}"),
        (Some(before), Some(after)) => format!(" v{before} → v{after}"),
        (Some(before), None) => format!(" v{before} → new version"),
    }
}

fn changes(row: &PromptReport) -> String {
    let mut text = String::new();
    if !row.changes.is_empty() {
        text = format!(" ({})", row.changes.join(", "));
    }
    if row.drift {
        text.push_str(" [drift: changed outside promptsync]");
    }
    text
}

/// Colours for the text report, off unless asked.
struct Style {
    color: bool,
}

impl Style {
    fn paint(
        &self,
        text: &str,
        f: impl Fn(console::StyledObject<&str>) -> console::StyledObject<&str>,
    ) -> String {
        if self.color {
            f(console::style(text)).to_string()
        } else {
            text.to_owned()
        }
    }
    fn red(&self, t: &str) -> String {
        self.paint(t, |s| s.red().bold())
    }
    fn green(&self, t: &str) -> String {
        self.paint(t, |s| s.green())
    }
    fn yellow(&self, t: &str) -> String {
        self.paint(t, |s| s.yellow())
    }
    fn cyan(&self, t: &str) -> String {
        self.paint(t, |s| s.cyan())
    }
    fn dim(&self, t: &str) -> String {
        self.paint(t, |s| s.dim())
    }
}
