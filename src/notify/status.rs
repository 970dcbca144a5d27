//! What a commit status says: its stable context (`promptsync/<target>` on the synced
//! commit, `promptsync/<target>/deploy` on the release's commit), its state, and a
//! description of at most [`MAX_DESCRIPTION`] characters with the counts. Pure: built
//! from a pass's report, posted by the forge clients.

use crate::report::pass::{DeployAction, PassReport};

/// GitHub's limit on a status description (GitLab takes more; one limit for both).
pub(crate) const MAX_DESCRIPTION: usize = 140;

/// A status's state, in the words both hosts share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Pending,
    Success,
    Failure,
}

/// One status to post on one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommitStatus {
    pub sha: String,
    pub context: String,
    pub state: State,
    pub description: String,
    pub target_url: Option<String>,
}

/// `promptsync/<target>`.
pub(crate) fn sync_context(target: &str) -> String {
    format!("promptsync/{target}")
}

/// `promptsync/<target>/deploy`.
pub(crate) fn deploy_context(target: &str) -> String {
    format!("promptsync/{target}/deploy")
}

/// The pending status posted when a pass starts on `sha`.
pub(crate) fn pending(target: &str, sha: &str) -> CommitStatus {
    CommitStatus {
        sha: sha.to_owned(),
        context: sync_context(target),
        state: State::Pending,
        description: "Syncing prompts…".to_owned(),
        target_url: None,
    }
}

/// The statuses a finished pass posts: one on the synced commit (unless the working
/// tree was read), and one on the release's commit when the pass deployed, or tried
/// to, or a gate held it.
pub(crate) fn finished(target: &str, report: &PassReport) -> Vec<CommitStatus> {
    let mut statuses = Vec::new();
    let s = &report.summary;
    if let Some(sha) = report
        .source
        .commit
        .as_ref()
        .filter(|_| !report.source.worktree)
    {
        let (state, lead) = match &report.error {
            Some(error) => (State::Failure, format!("Stopped early: {}", error.message)),
            None if s.failed > 0 || s.invalid_files > 0 => {
                (State::Failure, "Sync failed".to_owned())
            }
            None => (State::Success, "Synced".to_owned()),
        };
        let mut counts = format!(
            "{} created, {} updated, {} unchanged, {} failed",
            s.created, s.updated, s.unchanged, s.failed
        );
        if s.invalid_files > 0 {
            counts.push_str(&format!(", {} invalid", s.invalid_files));
        }
        let description = if report.error.is_some() {
            lead
        } else {
            format!("{lead}: {counts}")
        };
        statuses.push(CommitStatus {
            sha: sha.clone(),
            context: sync_context(target),
            state,
            description: cut(&description),
            target_url: None,
        });
    }
    if let Some(release) = &report.release {
        let deploys: Vec<_> = report
            .prompts
            .iter()
            .filter_map(|p| p.deploy.as_ref())
            .collect();
        let deployed = deploys
            .iter()
            .filter(|d| d.action == DeployAction::Deploy)
            .count();
        let failed = deploys
            .iter()
            .filter(|d| d.action == DeployAction::Failed)
            .count();
        let held = deploys
            .iter()
            .filter(|d| d.action == DeployAction::Held)
            .count();
        let live = deploys
            .iter()
            .filter(|d| d.action == DeployAction::AlreadyLive)
            .count();
        let gate = report.gate.as_ref();
        let (state, description) = if held > 0 {
            let why =
                gate.map_or_else(|| "the deploy gate failed".to_owned(), |g| g.reason.clone());
            (State::Failure, format!("{}: held, {why}", release.tag))
        } else if failed > 0 {
            (
                State::Failure,
                format!(
                    "{}: {failed} failed, {deployed} deployed, {live} already live",
                    release.tag
                ),
            )
        } else if deployed > 0 {
            let advisory = gate
                .filter(|g| !g.passed)
                .map(|g| format!(" (gate, advisory: {})", g.reason))
                .unwrap_or_default();
            (
                State::Success,
                format!(
                    "{}: {deployed} deployed, {live} already live{advisory}",
                    release.tag
                ),
            )
        } else if report.error.is_some() {
            (
                State::Failure,
                format!("{}: not deployed, the pass stopped early", release.tag),
            )
        } else {
            // Nothing to do: the release was live already. Say so only where nothing
            // was said before.
            (State::Success, format!("{}: {live} live", release.tag))
        };
        statuses.push(CommitStatus {
            sha: release.commit.clone(),
            context: deploy_context(target),
            state,
            description: cut(&description),
            target_url: None,
        });
    }
    statuses
}

/// `text` within [`MAX_DESCRIPTION`] characters, one line, `…` where it was cut.
pub(crate) fn cut(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.chars().count() <= MAX_DESCRIPTION {
        return line;
    }
    let mut short: String = line.chars().take(MAX_DESCRIPTION - 1).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_fit_in_140_characters_on_one_line() {
        assert_eq!(cut("a\nb"), "a b");
        let long = "x".repeat(300);
        let short = cut(&long);
        assert_eq!(short.chars().count(), 140);
        assert!(short.ends_with('…'));
        assert_eq!(cut(&"é".repeat(140)), "é".repeat(140));
        assert_eq!(sync_context("default"), "promptsync/default");
        assert_eq!(deploy_context("staging"), "promptsync/staging/deploy");
    }
}
