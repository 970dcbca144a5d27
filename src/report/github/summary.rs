//! The job summary of a pass, in GitHub-flavoured Markdown, for the file that
//! `GITHUB_STEP_SUMMARY` names (and the pull-request comment): the counts, a table of
//! the prompts worth a line, the invalid files, each diff collapsed; kept within a byte
//! budget, what does not fit counted. Every text that came from outside is redacted,
//! then made inert as Markdown and HTML. Writes nothing.

use std::fmt::Write as _;

use super::class_name;
use crate::report::pass::{Action, DeployAction, PassReport, PromptReport};

/// GitHub keeps at most 1 MiB of summary per step; this leaves room for what other
/// steps' tools add to the same file.
const SUMMARY_BUDGET: usize = 900 * 1024;

/// The job summary of a pass, in GitHub-flavoured Markdown: a headline with the
/// counts, a table of every prompt that was (or would be) changed, skipped or failed,
/// the invalid files, then each diff in a collapsed `<details>`. Kept under GitHub's
/// size limit: what does not fit is counted, not shown.
pub fn summary(report: &PassReport) -> String {
    summary_within(report, SUMMARY_BUDGET, "a job summary holds at most 1 MiB")
}

/// [`summary`] within `budget` bytes; `limit` says why, in the note on what was left
/// out (`a job summary holds at most 1 MiB`).
pub fn summary_within(report: &PassReport, budget: usize, limit: &str) -> String {
    let mut out = String::new();
    let command = report.mode.command();
    // The text report's closing line: the same counts, the same words.
    // With targets, each target's part names it.
    let heading = match &report.target {
        Some(target) => format!("{command}: target <code>{}</code>", md(target)),
        None => command.to_string(),
    };
    let _ = writeln!(out, "### {heading}\n\n{}\n", md(&report.summary_line()));

    // What the counts line leaves out: the commit's subject, the release.
    let mut facts = Vec::new();
    if let Some(subject) = report
        .source
        .subject
        .as_deref()
        .filter(|_| !report.source.worktree)
    {
        facts.push(format!("Commit: {}", md(subject)));
    }
    if let Some(release) = &report.release {
        facts.push(format!(
            "Release: <code>{}</code> at <code>{}</code>",
            md(&release.tag),
            short(&release.commit)
        ));
    }
    if !facts.is_empty() {
        let _ = writeln!(out, "{}\n", facts.join(" · "));
    }
    if let Some(failure) = &report.error {
        let _ = writeln!(
            out,
            "> [!CAUTION]\n> Stopped early ({}): {}\n",
            class_name(report),
            md(&failure.message)
        );
    }

    let rows: Vec<&PromptReport> = report.prompts.iter().filter(|r| shown(r)).collect();
    if rows.is_empty() {
        if report.error.is_none() {
            out.push_str("No changes.\n\n");
        }
    } else {
        out.push_str("| File | Prompt | Action | Version | Changes | Deploy |\n");
        out.push_str("| --- | --- | --- | --- | --- | --- |\n");
        let mut left_out = 0;
        for row in &rows {
            let line = table_row(row);
            if out.len() + line.len() > budget {
                left_out += 1;
            } else {
                out.push_str(&line);
            }
        }
        out.push('\n');
        if left_out > 0 {
            let _ = writeln!(
                out,
                "{left_out} more rows left out: {limit}. \
                 `{command} --output json` lists them all.\n"
            );
        }
    }

    if !report.invalid_files.is_empty() {
        out.push_str("#### Invalid files\n\n");
        for file in &report.invalid_files {
            for d in &file.diagnostics {
                let at = match &file.release_tag {
                    Some(tag) => format!(" (at release {})", md(tag)),
                    None => String::new(),
                };
                let _ = writeln!(
                    out,
                    "- <code>{}</code>{at}: {}",
                    md(&d.location()),
                    md(&d.message)
                );
            }
        }
        out.push('\n');
    }

    let diffs: Vec<&PromptReport> = rows
        .iter()
        .copied()
        .filter(|r| !r.diff().is_empty())
        .collect();
    if !diffs.is_empty() {
        out.push_str("#### Diffs\n\n");
        let mut left_out = 0;
        for row in diffs {
            let block = diff_block(row);
            if out.len() + block.len() > budget {
                left_out += 1;
            } else {
                out.push_str(&block);
            }
        }
        if left_out > 0 {
            let _ = writeln!(
                out,
                "{left_out} more diffs left out: {limit}. \
                 `promptsync plan` prints them all.\n"
            );
        }
    }
    out
}

/// Rows worth a line: anything but an unchanged prompt (or one of the release alone)
/// whose release was live already.
fn shown(row: &PromptReport) -> bool {
    let deploy_did_something = row.deploy.as_ref().is_some_and(|d| {
        matches!(
            d.action,
            DeployAction::Deploy | DeployAction::Failed | DeployAction::Held
        )
    });
    !matches!(row.action, Action::Unchanged | Action::DeployOnly)
        || deploy_did_something
        || row.drift
}

fn table_row(row: &PromptReport) -> String {
    let prompt = match (&row.name, &row.prompt_id) {
        (Some(name), Some(id)) => format!("{} <code>{}</code>", md(name), md(id)),
        (Some(name), None) => md(name),
        (None, Some(id)) => format!("<code>{}</code>", md(id)),
        (None, None) => String::new(),
    };
    let mut action = serde_json::to_value(row.action)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    if row.drift {
        action.push_str(" (drift)");
    }
    let version = match (row.version_before, row.version_after) {
        (None, None) if row.action == Action::Create => "new".to_owned(),
        (None, None) => String::new(),
        (None, Some(after)) => format!("v{after}"),
        (Some(before), Some(after)) if before == after => format!("v{after}"),
        (Some(before), Some(after)) => format!("v{before} → v{after}"),
        (Some(before), None) => format!("v{before} → new"),
    };
    let changes = match row.action {
        Action::Failed => md(row.error.as_deref().unwrap_or("failed")),
        Action::Skipped => md(row.skip_reason.unwrap_or("skipped")),
        _ => md(&row.changes.join(", ")),
    };
    let deploy = row
        .deploy
        .as_ref()
        .map_or_else(String::new, |d| match d.action {
            DeployAction::Deploy => format!(
                "{} → {} ({}{})",
                d.live_before.map_or("none".to_owned(), |v| format!("v{v}")),
                d.live_after.map_or("new".to_owned(), |v| format!("v{v}")),
                md(&d.tag),
                if d.rollback { ", rollback" } else { "" }
            ),
            DeployAction::Failed => {
                format!("failed: {}", md(d.error.as_deref().unwrap_or("failed")))
            }
            DeployAction::Held => "held by the deploy gate".to_owned(),
            DeployAction::AlreadyLive => "live".to_owned(),
            DeployAction::Skipped => "skipped".to_owned(),
        });
    format!(
        "| <code>{}</code> | {prompt} | {action} | {version} | {changes} | {deploy} |\n",
        md(&row.file)
    )
}

fn diff_block(row: &PromptReport) -> String {
    // Colours would be noise in a browser.
    let diff = console::strip_ansi_codes(row.diff());
    let fence = "`".repeat(longest_backtick_run(&diff).max(2) + 1);
    let newline = if diff.ends_with('\n') { "" } else { "\n" };
    format!(
        "<details><summary><code>{}</code></summary>\n\n{fence}diff\n{diff}{newline}{fence}\n\n</details>\n\n",
        md(&row.file)
    )
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

fn short(commit: &str) -> String {
    md(commit.get(..10).unwrap_or(commit))
}

/// Text for a Markdown table cell or line: HTML and Markdown punctuation as entities
/// (so a name cannot open a tag, a link or emphasis, nor end the cell), line breaks
/// as spaces.
fn md(text: &str) -> String {
    // Redacted first: the entities below would hide a secret from the redactor.
    let text = crate::secret::redact(text);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' | '\n' => out.push(' '),
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '~' | '#' | '!' => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_text_cannot_escape_its_cell() {
        assert_eq!(
            md("a|b <i>*x*</i>\nc"),
            "a&#124;b &lt;i&gt;&#42;x&#42;&lt;/i&gt; c"
        );
        assert_eq!(longest_backtick_run("a ```` b ` c"), 4);
    }
}
