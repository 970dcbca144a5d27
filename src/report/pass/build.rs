//! Building a [`PassReport`] from what a [`Pass`] did: a row per synced prompt file,
//! each release deploy merged into its file's row (or a row of its own), the invalid
//! files grouped by file, and the summary counted from the rows; the report of a pass
//! that ended before it read the source. Knows the plan's and apply's types; the
//! model's shape is `pass`'s.

use std::collections::BTreeMap;

use super::{
    Action, DeployAction, DeployReport, Failure, InvalidFile, Mode, PassReport, PromptReport,
    ReleaseReport, Source, Summary,
};
use crate::apply::Outcome;
use crate::diagnostic::{Diagnostic, Severity};
use crate::diff;
use crate::error::Error;
use crate::normalize;
use crate::plan::{
    ContentChange, DeployItem, DeployStep, DeployTarget, SkipReason, SyncItem, SyncStep, Target,
    VersionWrite,
};
use crate::reconcile::{Pass, PassError};

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
    use crate::desired::PromptKey;

    fn row(file: &str, action: Action) -> PromptReport {
        PromptReport::new(file, None, &PromptKey::Name("n".into()), action)
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
}
