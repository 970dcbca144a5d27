//! The plan as a pull (merge) request comment: one per target, found again by a hidden
//! marker and edited in place on every run, the job summary's Markdown (a table of the
//! prompts, each diff folded in `<details>`) cut to the host's size limit with a note
//! saying how much was left out. Pure; [`forge`](super::forge) posts it.

use super::forge::Kind;
use crate::report::github::summary_within;
use crate::report::pass::PassReport;

/// GitHub takes 65,536 characters in a comment; a byte budget below it holds.
const GITHUB_LIMIT: usize = 65_536;
/// GitLab takes 1,000,000 characters in a note.
const GITLAB_LIMIT: usize = 1_000_000;
/// Room for the marker, the heading and the footer.
const FRAME: usize = 1024;

/// The hidden marker of the plan comment for `target`.
pub(crate) fn marker(target: &str) -> String {
    format!(
        "<!-- promptsync:plan target={} -->",
        target.replace("--", "-")
    )
}

/// The comment's Markdown for `report`, within `kind`'s limit.
pub(crate) fn body(kind: Kind, target: &str, report: &PassReport, run_url: Option<&str>) -> String {
    let (limit, words) = match kind {
        Kind::GitHub => (
            GITHUB_LIMIT,
            "a GitHub comment holds at most 65,536 characters",
        ),
        Kind::GitLab => (
            GITLAB_LIMIT,
            "a GitLab note holds at most 1,000,000 characters",
        ),
    };
    let summary = summary_within(report, limit - FRAME, words);
    let summary = summary
        .strip_prefix("### promptsync plan\n\n")
        .unwrap_or(&summary);
    let mut out = format!(
        "{}\n### promptsync plan · target `{}`\n\n",
        marker(target),
        target
    );
    out.push_str(summary.trim_end());
    out.push_str("\n\n<sub>Edited in place on every run of `promptsync plan --comment`");
    if let Some(url) = run_url {
        out.push_str(&format!(" · [this run]({url})"));
    }
    out.push_str(".</sub>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::pass::Mode;

    #[test]
    fn the_comment_carries_its_marker_and_stays_within_the_limit() {
        let report = PassReport::failed_early(Mode::Plan, &crate::Error::Internal("x".into()));
        let text = body(Kind::GitHub, "default", &report, Some("https://ci/run/1"));
        assert!(
            text.starts_with("<!-- promptsync:plan target=default -->\n"),
            "{text}"
        );
        assert!(text.contains("[this run](https://ci/run/1)"), "{text}");
        assert!(text.len() < GITHUB_LIMIT);
        assert_ne!(marker("a"), marker("b"));
        assert!(!marker("x-->y").contains("-->y"));
    }
}
