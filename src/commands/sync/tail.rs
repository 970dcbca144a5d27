//! What `sync` and `plan` do after their report is printed: hand each target's pass
//! to the notifier (its pending statuses posted before the pass) and wait for the
//! deliveries, bounded; render and post the plan comment (`plan --comment`).

use crate::cli::SourceArgs;
use crate::config::{NotifySettings, Settings};
use crate::gitrepo::GitRepo;
use crate::notify::forge::{CiEnv, Kind};
use crate::notify::{self, Commented, Notifier};
use crate::report::pass::{Mode, PassReport};

/// What a command does after its report is printed: deliver the pass's notifications
/// (waiting for them, bounded) and post the plan comment. Never changes the exit
/// status: a failure here is a warning.
#[derive(Default)]
pub(super) struct Tail {
    /// `plan --comment`.
    comment: bool,
    pub(super) runtime: Option<tokio::runtime::Runtime>,
    notifier: Option<Notifier>,
    /// How long to wait for the notifications.
    deadline: std::time::Duration,
    /// The plan comments to post: the settings, the CI's variables, the `origin` URL
    /// and, per target, the body for each host.
    plan_comment: Option<PlanComment>,
}

/// See [`Tail::plan_comment`].
type PlanComment = (
    NotifySettings,
    CiEnv,
    Option<String>,
    Vec<(String, [String; 2])>,
);

impl Tail {
    /// `comment`: post the plan comment (`plan --comment`).
    pub(super) fn new(comment: bool) -> Tail {
        Tail {
            comment,
            ..Tail::default()
        }
    }

    /// Hand the pass's outcome to the notifier, and render the plan comment.
    pub(super) fn after(
        &mut self,
        settings: &Settings,
        notifier: Option<Notifier>,
        report: &PassReport,
    ) {
        let target = settings.target.as_str();
        if let Some(notifier) = notifier {
            notifier.finished(target, report);
            self.deadline = settings.notify.retry_max_elapsed + settings.notify.timeout * 2;
            self.notifier = Some(notifier);
        }
        if self.comment {
            let comment = self.plan_comment.get_or_insert_with(|| {
                let env = CiEnv::from_process();
                let origin = origin_url(settings);
                (settings.notify.clone(), env, origin, Vec::new())
            });
            let bodies = [Kind::GitHub, Kind::GitLab].map(|kind| {
                let run_url = notify::forge::run_url(kind, &comment.1);
                notify::comment::body(kind, target, report, run_url.as_deref())
            });
            comment.3.push((target.to_owned(), bodies));
        }
    }

    pub(super) fn finish(mut self) {
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        runtime.block_on(async {
            let (settings, env, origin, bodies) = self.plan_comment.take().unwrap_or_default();
            // One comment per target, each found again by its own marker.
            for (target, bodies) in bodies {
                let outcome =
                    notify::comment_plan(&settings, &env, origin.as_deref(), &target, &|kind| {
                        match kind {
                            Kind::GitHub => bodies[0].clone(),
                            Kind::GitLab => bodies[1].clone(),
                        }
                    })
                    .await;
                match outcome {
                    Commented::Posted {
                        kind,
                        number,
                        edited,
                    } => tracing::info!(
                        host = kind.name(),
                        number,
                        edited,
                        "the plan is on the pull request"
                    ),
                    Commented::Skipped(why) => {
                        tracing::warn!(reason = %why, "plan --comment: not commenting")
                    }
                    Commented::Failed(why) => {
                        tracing::warn!(error = %why, "plan --comment: the comment was not posted")
                    }
                }
            }
            if let Some(notifier) = self.notifier.take() {
                notifier.finish(self.deadline).await;
            }
        });
    }
}

/// The notifier of a `sync` whose settings configure one, with the pending statuses
/// posted on the commit it reads, one per target. `None` for plans and dry runs.
pub(super) async fn notifier_for(
    settings: &Settings,
    source: &SourceArgs,
    mode: Mode,
    targets: &[String],
) -> Option<Notifier> {
    if mode != Mode::Sync || !settings.notify.any() {
        return None;
    }
    let repo = settings.repo.clone();
    let rev = (!source.worktree).then(|| source.rev.clone());
    let looked_up = tokio::task::spawn_blocking(move || {
        let repo = GitRepo::open(&repo).ok()?;
        let commit = rev.and_then(|rev| repo.resolve_commit(&rev).ok().map(|c| c.id));
        Some((repo.remote_url("origin"), commit))
    })
    .await
    .ok()
    .flatten();
    let (origin, commit) = looked_up.unwrap_or((None, None));
    let notifier = Notifier::start(&settings.notify, &CiEnv::from_process(), origin.as_deref());
    if let Some(commit) = commit {
        for target in targets {
            notifier.started(target, &commit);
        }
    }
    Some(notifier)
}

/// The `origin` remote's URL, for the forge's default repository.
fn origin_url(settings: &Settings) -> Option<String> {
    GitRepo::open(&settings.repo).ok()?.remote_url("origin")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_without_a_pass_has_nothing_to_wait_for() {
        let tail = Tail::new(true);
        assert!(tail.comment);
        assert!(tail.notifier.is_none() && tail.plan_comment.is_none());
        // No runtime: no pass ran (it ended before it started); finishing returns.
        tail.finish();
    }
}
