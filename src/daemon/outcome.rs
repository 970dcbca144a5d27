//! What a finished pass came to, for the loop: the baseline it leaves, the counts for
//! `/status` and the metrics (each per-prompt problem logged once), whether a failed
//! prompt is worth retrying ([`retryable`], the daemon's one rule for it), whether one
//! more pass is due, and the revision read. Pure apart from the log lines and the
//! shared status and metrics it updates; it runs on a blocking thread. Also what a
//! pass came to for the loop's next step ([`Ended`]) and how the daemon ended
//! ([`Exit`]).

use crate::api::ApiError;
use crate::baseline::Baseline;
use crate::config::Settings;
use crate::reconcile::Pass;
use crate::report::pass::{Mode, PassReport};

use super::metrics::Metrics;
use super::status::{Counts, Status};

/// What a finished pass came to, worked out on a blocking thread (a report of 10,000
/// prompts is no work for the async threads).
pub(super) struct Digest {
    pub baseline: Baseline,
    pub counts: Counts,
    /// A failed prompt is worth retrying.
    pub retry: bool,
    pub revision: Option<String>,
    /// The release tag that applied.
    pub release: Option<String>,
    pub carried: usize,
    pub small: bool,
    /// A prompt was renamed while a release applies.
    pub requeue: bool,
    /// Why the deploy gate held the release, when it did.
    pub deploy_held: Option<String>,
}

/// What `pass` came to: the baseline it leaves, its counts for status and metrics
/// (the per-prompt problems logged), and whether a failed prompt is worth retrying.
pub(super) fn digest(
    pass: &Pass,
    since: Option<&Baseline>,
    settings: &Settings,
    status: &Status,
    metrics: &Metrics,
) -> Digest {
    let baseline = Baseline::after(pass, since, settings);
    let report = PassReport::new(pass, Mode::Sync, false);
    let s = &report.summary;
    if let Some(unmanaged) = &report.unmanaged {
        status.set_unmanaged(unmanaged.len());
        metrics.unmanaged(unmanaged.len());
    }
    let drifted = report.prompts.iter().filter(|p| p.drift).count();
    let suspended = if pass.suspended {
        report.prompts.len()
    } else {
        report
            .prompts
            .iter()
            .filter(|p| p.skip_reason == Some("sync: false"))
            .count()
    };
    metrics.prompts(
        (report.prompts.len() + pass.carried).saturating_sub(s.failed),
        s.invalid_files,
        drifted,
        suspended,
    );
    for file in &report.invalid_files {
        for d in file.diagnostics.iter() {
            tracing::warn!(file = %d.path, line = d.line, column = d.column, release_tag = file.release_tag.as_deref(), "invalid prompt file: {}", d.message);
        }
    }
    for row in &report.prompts {
        if let Some(error) = &row.error {
            tracing::warn!(file = %row.file, prompt_id = row.prompt_id.as_deref(), error = %error, "prompt failed");
        }
        if let Some(error) = row.deploy.as_ref().and_then(|d| d.error.as_ref()) {
            tracing::warn!(file = %row.file, prompt_id = row.prompt_id.as_deref(), error = %error, "deploy failed");
        }
    }
    // A prompt whose write, or whose read, failed for a reason that may pass.
    let writes = pass
        .sync
        .iter()
        .map(|(_, o)| o)
        .chain(pass.deploy.iter().map(|(_, o)| o))
        .flatten()
        .filter_map(|outcome| outcome.as_ref().err())
        .map(|failed| &failed.error);
    let retry = writes.chain(&pass.failed_reads).any(retryable);
    let looked_at = pass.source.prompts.len().saturating_sub(pass.carried);
    Digest {
        baseline,
        counts: Counts::of(s, drifted),
        retry,
        revision: revision(pass),
        release: pass
            .release
            .as_ref()
            .map(|(release, _)| release.tag.clone()),
        carried: pass.carried,
        small: since.is_some() && looked_at * 4 < pass.source.prompts.len(),
        requeue: pass.release.is_some() && crate::baseline::renamed_any(pass),
        deploy_held: pass
            .gate
            .as_ref()
            .filter(|gate| gate.held)
            .map(|gate| gate.reason.clone()),
    }
}

/// Whether a prompt's failure, of a write or of a read, may pass on its own (the API
/// was down, a reply was lost), as opposed to a refusal that only a change fixes. The
/// daemon's one rule for retrying a prompt.
fn retryable(err: &ApiError) -> bool {
    err.class().is_transient()
}

/// The commit a pass read (`worktree@<HEAD>` for the working tree).
pub(super) fn revision(pass: &Pass) -> Option<String> {
    let source = &pass.source.source;
    match (&source.commit, source.worktree) {
        (Some(commit), false) => Some(commit.clone()),
        (Some(commit), true) => Some(format!("worktree@{commit}")),
        (None, true) => Some("worktree".to_owned()),
        (None, false) => None,
    }
}

/// How the daemon ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Shut down cleanly: no pass was running, or the running one finished.
    Stopped,
    /// The deadline or a second signal dropped the running pass (or a wait that would
    /// have started one).
    Forced,
    /// `--once`: whether the pass ran to its end without a failure.
    Once { ok: bool },
}

/// What one pass came to, for the loop's next step.
pub(super) struct Ended {
    pub(super) ok: bool,
    /// The daemon must end now: a shutdown or force came while the pass was being
    /// set up, or force dropped it.
    pub(super) exit: Option<Exit>,
    /// An incremental pass that looked at few of the prompts: it freed little.
    pub(super) small: bool,
    /// One more pass is due at once (see [`Reason::Requeue`]).
    pub(super) requeue: bool,
}

impl Ended {
    pub(super) fn exit(exit: Exit) -> Ended {
        Ended {
            ok: false,
            exit: Some(exit),
            small: true,
            requeue: false,
        }
    }

    pub(super) fn failed(small: bool) -> Ended {
        Ended {
            ok: false,
            exit: None,
            small,
            requeue: false,
        }
    }
}
