//! The pass report as text for people: a line per prompt that changed (with its
//! deploy), the unified diffs of `plan`, the invalid files, warnings, the deploy gate
//! and the unmanaged prompts, then one closing summary line. Everything that came from
//! outside goes through [`term`]; colours only when asked.

use super::{Action, DeployAction, DeployReport, Mode, PassReport, PromptReport};
use crate::diff;
use crate::notify::gate::GateOutcome;
use crate::reconcile::Unmanaged;
use crate::report::{Printable, unmanaged_line};
use crate::term;

impl PassReport {
    pub fn to_text(&self) -> String {
        let color = self.color;
        let mut out = String::new();
        let style = Style { color };
        for file in &self.invalid_files {
            if let Some(tag) = &file.release_tag {
                out.push_str(&format!(
                    "{} at release {}:\n",
                    style.red("invalid"),
                    term::line(tag)
                ));
            }
            for d in &file.diagnostics {
                out.push_str(&d.render(color));
                out.push('\n');
            }
        }
        for warning in &self.warnings {
            out.push_str(&format!(
                "{}: {}\n",
                style.yellow("warning"),
                term::line(warning)
            ));
        }
        if let Some(gate) = &self.gate {
            out.push_str(&gate_lines(gate, &style));
        }
        let verb =
            |done: &'static str, planned: &'static str| if self.dry_run { planned } else { done };
        for row in &self.prompts {
            let who = who(row);
            let file = term::line(&row.file);
            match row.action {
                Action::Create => out.push_str(&format!(
                    "{} {file}  {who}{}\n",
                    style.green(verb("created", "create")),
                    version_arrow(row)
                )),
                Action::Update => out.push_str(&format!(
                    "{} {file}  {who}{}{}\n",
                    style.yellow(verb("updated", "update")),
                    version_arrow(row),
                    changes(row)
                )),
                Action::Skipped => out.push_str(&format!(
                    "{} {file}  {who}: {}{}\n",
                    style.dim("skipped"),
                    row.skip_reason.unwrap_or("skipped"),
                    changes(row)
                )),
                Action::Failed => out.push_str(&format!(
                    "{} {file}  {who}: {}\n",
                    style.red("failed"),
                    term::line(row.error.as_deref().unwrap_or("failed"))
                )),
                Action::Unchanged | Action::DeployOnly => {}
            }
            if self.mode.is_plan() && !row.diff.is_empty() {
                if color {
                    out.push_str(&diff::paint(&row.diff));
                } else {
                    out.push_str(&row.diff);
                }
            }
            if let Some(deploy) = &row.deploy {
                let tag = term::line(&deploy.tag);
                // A row of the release alone has no line above that says what the
                // deploy created.
                let created = match (row.action, deploy.created_prompt, deploy.created_version) {
                    (Action::DeployOnly, true, _) => ", prompt and version created",
                    (Action::DeployOnly, false, true) => ", version created",
                    _ => "",
                };
                let line = match deploy.action {
                    DeployAction::Deploy => format!(
                        "{} {file}  {who}: live {} → {} ({tag}{}{created})\n",
                        style.cyan(verb("deployed", "deploy")),
                        deploy
                            .live_before
                            .map_or("none".into(), |v| format!("v{v}")),
                        deploy
                            .live_after
                            .map_or("new version".into(), |v| format!("v{v}")),
                        if deploy.rollback { ", rollback" } else { "" }
                    ),
                    DeployAction::Failed => format!(
                        "{} {file}  {who}: deploy of {tag}: {}{}\n",
                        style.red("failed"),
                        term::line(deploy.error.as_deref().unwrap_or("failed")),
                        deploy_done(deploy)
                    ),
                    DeployAction::Held => format!(
                        "{} {file}  {who}: deploy of {tag} held by the deploy gate\n",
                        style.red("held")
                    ),
                    DeployAction::AlreadyLive | DeployAction::Skipped => String::new(),
                };
                out.push_str(&line);
            }
        }
        if let Some(unmanaged) = self.unmanaged.as_deref().filter(|u| !u.is_empty()) {
            out.push_str(&unmanaged_lines(unmanaged));
        }
        out.push_str(&self.summary_line());
        out.push('\n');
        out
    }

    /// The closing line of the text report: what was done to what, in counts.
    pub fn summary_line(&self) -> String {
        if self.mode.deploy_only() && self.error.is_none() {
            return self.deploy_only_line();
        }
        let s = &self.summary;
        let source = match (&self.source.commit, self.source.worktree) {
            (_, true) => "the working tree".to_owned(),
            (Some(c), false) => format!("commit {}", short(c)),
            (None, false) => "HEAD".to_owned(),
        };
        let lead = match (self.mode, self.suspended) {
            _ if self.error.is_some() => format!("Stopped early on {source}"),
            (_, true) => format!("Suspended (nothing sent); plan for {source}"),
            (Mode::Plan | Mode::DeployOnlyPlan, _) => format!("Plan for {source}"),
            (Mode::DryRun | Mode::DeployOnlyDryRun, _) => {
                format!("Dry run of {source} (nothing sent)")
            }
            (Mode::Sync | Mode::DeployOnly, _) => format!("Synced {source}"),
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
            parts.push(format!(
                "{} deployed ({})",
                s.deployed,
                term::line(&release.tag)
            ));
        }
        self.findings(&mut parts);
        format!("{lead}: {}{}.", parts.join(", "), self.no_changes())
    }

    /// The closing line's counts of what is not a prompt's action: invalid files,
    /// warnings, unmanaged prompts.
    fn findings(&self, parts: &mut Vec<String>) {
        let s = &self.summary;
        if s.invalid_files > 0 {
            parts.push(format!("{} invalid file(s)", s.invalid_files));
        }
        if s.warnings > 0 {
            parts.push(format!("{} warning(s)", s.warnings));
        }
        if s.unmanaged > 0 {
            parts.push(format!("{} unmanaged", s.unmanaged));
        }
    }

    /// ` — no changes` for a plan that found nothing to do.
    fn no_changes(&self) -> &'static str {
        if self.mode.is_plan() && !self.has_changes() && !self.has_errors() {
            " — no changes"
        } else {
            ""
        }
    }

    /// [`PassReport::summary_line`] of a deploy-only pass: the release and its deploys,
    /// and that no draft was written.
    fn deploy_only_line(&self) -> String {
        let s = &self.summary;
        let release = self.release.as_ref().map_or_else(
            || "no release".to_owned(),
            |r| {
                format!(
                    "release {} (commit {})",
                    term::line(&r.tag),
                    short(&r.commit)
                )
            },
        );
        let lead = match (self.mode, self.suspended) {
            (_, true) => format!("Suspended (nothing sent); deploy-only plan for {release}"),
            (Mode::DeployOnlyPlan, _) => format!("Deploy-only plan for {release}"),
            (Mode::DeployOnlyDryRun, _) => {
                format!("Dry run of a deploy-only pass of {release} (nothing sent)")
            }
            _ => format!("Deployed {release}, deploy only"),
        };
        let deploys = || self.prompts.iter().filter_map(|row| row.deploy.as_ref());
        let live = deploys()
            .filter(|d| d.action == DeployAction::AlreadyLive)
            .count();
        let versions = deploys()
            .filter(|d| d.action != DeployAction::Skipped && d.created_version)
            .count();
        let prompts = deploys()
            .filter(|d| d.action != DeployAction::Skipped && d.created_prompt)
            .count();
        let mut parts = vec![
            format!("{} deployed", s.deployed),
            format!("{live} already live"),
        ];
        if s.skipped > 0 {
            parts.push(format!("{} skipped", s.skipped));
        }
        parts.push(format!("{} failed", s.failed));
        if versions > 0 {
            parts.push(format!("{versions} version(s) created for the release"));
        }
        if prompts > 0 {
            parts.push(format!("{prompts} prompt(s) created"));
        }
        self.findings(&mut parts);
        let tail = self.no_changes();
        let drafts = if self.dry_run {
            "no draft would be written"
        } else {
            "no draft written"
        };
        format!("{lead}: {}{tail}; {drafts}.", parts.join(", "))
    }
}

impl Printable for PassReport {
    fn text(&self) -> String {
        self.to_text()
    }
}

/// A commit id's first ten digits.
fn short(commit: &str) -> &str {
    &commit[..commit.len().min(10)]
}

/// Lines of a failed gate's output shown in the text report.
const GATE_LINES: usize = 20;

/// The deploy gate's verdict, and the end of its output when it failed.
fn gate_lines(gate: &GateOutcome, style: &Style) -> String {
    let verdict = match (gate.passed, gate.held) {
        (true, _) => style.green("passed"),
        (false, true) => format!("{}: the deploy is held", style.red(&gate.reason)),
        (false, false) => format!(
            "{} (advisory: deploying anyway)",
            style.yellow(&gate.reason)
        ),
    };
    let mut out = format!("deploy gate `{}`: {verdict}\n", term::line(&gate.command));
    if !gate.passed {
        let lines: Vec<&str> = gate.output.lines().collect();
        for line in &lines[lines.len().saturating_sub(GATE_LINES)..] {
            out.push_str(&format!("  | {}\n", term::line(line)));
        }
    }
    out
}

/// Prompts shown by name in the text report before "and N more".
const UNMANAGED_SHOWN: usize = 10;

/// The remote prompts no file names, the first few by name, and what to do.
fn unmanaged_lines(unmanaged: &[Unmanaged]) -> String {
    let mut out = format!(
        "{} remote prompt(s) that no file names (unmanaged):\n",
        unmanaged.len()
    );
    for prompt in unmanaged.iter().take(UNMANAGED_SHOWN) {
        out.push_str(&format!("  {}\n", unmanaged_line(prompt)));
    }
    if unmanaged.len() > UNMANAGED_SHOWN {
        out.push_str(&format!(
            "  … and {} more (`promptsync status` lists them all)\n",
            unmanaged.len() - UNMANAGED_SHOWN
        ));
    }
    out.push_str("  `promptsync pull --all` writes files for them\n");
    out
}

/// What a failed deploy had done, for the text report: ` (prompt created, v3
/// created; live v2)`.
fn deploy_done(deploy: &DeployReport) -> String {
    let mut done = Vec::new();
    if deploy.created_prompt {
        done.push("prompt created".to_owned());
    }
    match (deploy.created_version, deploy.version) {
        (true, Some(v)) => done.push(format!("v{v} created")),
        (false, Some(v)) => done.push(format!("release content in v{v}")),
        _ => {}
    }
    if let Some(live) = deploy.live_after {
        done.push(format!("live v{live}"));
    }
    if done.is_empty() {
        String::new()
    } else {
        format!(" ({})", done.join(", "))
    }
}

/// The prompt of a row for people: its quoted name and id, escaped.
fn who(row: &PromptReport) -> String {
    let text = match (&row.prompt_id, &row.name) {
        (Some(id), Some(name)) => format!("{name:?} ({id})"),
        (Some(id), None) => id.clone(),
        (None, Some(name)) => format!("{name:?} (new)"),
        (None, None) => "(new)".to_owned(),
    };
    term::line(&text).into_owned()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::PromptKey;
    use crate::error::Error;

    #[test]
    fn text_from_outside_is_escaped_in_the_text_report_and_exact_in_json() {
        let mut report = PassReport::failed_early(Mode::Sync, &Error::Internal("stopped".into()));
        let mut row = PromptReport::new(
            "p/\u{1b}[31mx.prompt.yaml",
            Some("prm_\u{1b}]0;t\u{7}".into()),
            &PromptKey::Name("N\u{1b}[1m".into()),
            Action::Failed,
        );
        row.error = Some("POST /api/x/ answered 400: \u{1b}[2J gone\r".into());
        row.deploy = Some(DeployReport {
            tag: "v1\u{1b}[5m".into(),
            action: DeployAction::Failed,
            live_before: None,
            live_after: Some(2),
            version: Some(3),
            created_version: true,
            created_prompt: false,
            rollback: false,
            error: Some("bulk: \u{9b}31m".into()),
        });
        report.prompts.push(row);
        report.warnings.push("item \u{1b}[2J".into());
        let text = report.to_text();
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        assert!(text.contains("gone\\r"), "{text}");
        assert!(text.contains("(v3 created, live v2)"), "{text}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json["prompts"][0]["error"],
            "POST /api/x/ answered 400: \u{1b}[2J gone\r"
        );
        assert_eq!(json["prompts"][0]["deploy"]["tag"], "v1\u{1b}[5m");
    }

    fn row(file: &str, action: Action) -> PromptReport {
        PromptReport::new(
            file,
            Some("prm_1".into()),
            &PromptKey::Name("greet".into()),
            action,
        )
    }

    #[test]
    fn a_row_shows_its_verb_prompt_and_versions() {
        let mut report = PassReport::failed_early(Mode::DryRun, &Error::Internal("x".into()));
        report.error = None;
        let mut update = row("p/a.prompt.yaml", Action::Update);
        update.version_before = Some(2);
        update.changes = vec!["messages".into()];
        update.drift = true;
        report.prompts.push(update);
        report
            .prompts
            .push(row("p/b.prompt.yaml", Action::Unchanged));
        let text = report.to_text();
        assert_eq!(
            text.lines().next(),
            Some(
                "update p/a.prompt.yaml  \"greet\" (prm_1) v2 → new version (messages) [drift: changed outside promptsync]"
            ),
            "{text}"
        );
        assert!(
            !text.contains("b.prompt.yaml"),
            "unchanged rows are not listed: {text}"
        );
    }

    #[test]
    fn the_summary_line_names_the_mode_and_a_plan_without_changes() {
        let mut report = PassReport::failed_early(Mode::Plan, &Error::Internal("x".into()));
        report.error = None;
        report.source.commit = Some("0123456789abcdef".into());
        assert_eq!(
            report.summary_line(),
            "Plan for commit 0123456789: 0 created, 0 updated, 0 unchanged, 0 failed — no changes."
        );
        report.mode = Mode::Sync;
        report.source.worktree = true;
        report.summary.created = 1;
        report.summary.warnings = 2;
        assert_eq!(
            report.summary_line(),
            "Synced the working tree: 1 created, 0 updated, 0 unchanged, 0 failed, 2 warning(s)."
        );
    }

    #[test]
    fn a_failed_deploy_says_what_it_had_done() {
        let deploy = DeployReport {
            tag: "v1".into(),
            action: DeployAction::Failed,
            live_before: Some(1),
            live_after: Some(1),
            version: Some(2),
            created_version: false,
            created_prompt: true,
            rollback: false,
            error: None,
        };
        assert_eq!(
            deploy_done(&deploy),
            " (prompt created, release content in v2, live v1)"
        );
    }
}
