//! `promptsync sync` (alias `--sync`) and `promptsync plan`: one reconcile pass (or,
//! with `--deploy-only`, its deploy half alone) and its report. `--emulator` runs a local emulator inside the process, its state kept under
//! the repository's git directory.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle};

use crate::Error;
use crate::api::Client;
use crate::apply::{Observer, ProgressLog};
use crate::cli::{GlobalArgs, OutputFormat, PlanArgs, RemoteArgs, SourceArgs, SyncArgs};
use crate::commands::ExitStatus;
use crate::config::NotifySettings;
use crate::config::Settings;
use crate::gitrepo::GitRepo;
use crate::notify::forge::{CiEnv, Kind};
use crate::notify::{self, Commented, DEFAULT_TARGET, Notifier};
use crate::reconcile::{self, PassError, PassOptions};
use crate::report::Stdout;
use crate::report::github::GitHub;
use crate::report::pass::{Mode, PassReport};
use crate::secret::ApiKey;
use promptsync_emulator::{self as emulator, EmulatorConfig, RunningEmulator};

pub fn sync(global: &GlobalArgs, args: SyncArgs) -> Result<ExitStatus, Error> {
    let mode = Mode::of(false, args.dry_run, args.deploy_only);
    let mut tail = Tail::default();
    let report = reported(
        pass(global, &args.source, &args.remote, mode, &mut tail),
        mode,
        args.output,
        super::github(global).as_ref(),
    );
    tail.finish();
    let report = report?;
    Ok(if report.has_errors() {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

pub fn plan(global: &GlobalArgs, args: PlanArgs) -> Result<ExitStatus, Error> {
    let mode = Mode::of(true, false, args.deploy_only);
    let mut tail = Tail {
        comment: args.comment,
        ..Tail::default()
    };
    let report = reported(
        pass(global, &args.source, &args.remote, mode, &mut tail),
        mode,
        args.output,
        super::github(global).as_ref(),
    );
    tail.finish();
    let report = report?;
    Ok(match (report.has_errors(), report.has_changes()) {
        (true, _) => ExitStatus::Failure,
        (false, true) if args.detailed_exitcode => ExitStatus::Changes,
        _ => ExitStatus::Success,
    })
}

/// What a pass came to: its report, or the error that ended it with the report of
/// what it had done (`None` when it ended before reading the source).
type Ran = Result<PassReport, (Option<Box<PassReport>>, Error)>;

/// Print the report of `ran`; a pass that ended early is an `Err` for `main` to print,
/// after its report (with `--output json`, always one document on stdout, the error
/// in it). In GitHub Actions, also its annotations and job summary.
fn reported(
    ran: Ran,
    mode: Mode,
    output: OutputFormat,
    github: Option<&GitHub>,
) -> Result<PassReport, Error> {
    match ran {
        Ok(report) => {
            print(&report, output)?;
            if let Some(github) = github {
                publish(github, &report, output)?;
            }
            Ok(report)
        }
        Err((report, error)) => {
            match (&report, output) {
                (Some(report), _) => print(report, output)?,
                (None, OutputFormat::Json) => {
                    print(&PassReport::failed_early(mode, &error), output)?;
                }
                (None, OutputFormat::Text) => {}
            }
            if let Some(github) = github {
                let early =
                    report.unwrap_or_else(|| Box::new(PassReport::failed_early(mode, &error)));
                publish(github, &early, output)?;
            }
            Err(error)
        }
    }
}

/// GitHub Actions: annotations on stdout (not with `--output json`, whose stdout is one
/// document), and the job summary. A summary that cannot be written is a warning: the
/// pass it reports is done either way.
fn publish(github: &GitHub, report: &PassReport, output: OutputFormat) -> Result<(), Error> {
    if output == OutputFormat::Text {
        github
            .annotate(&mut Stdout::new(), &github.pass_annotations(report))
            .map_err(|source| Error::Io {
                what: "cannot write the GitHub annotations".into(),
                source,
            })?;
    }
    if let Err(err) = github.append_summary(report) {
        let file = github.summary_file().map(|f| f.display().to_string());
        tracing::warn!(error = %err, file, "cannot append the job summary to GITHUB_STEP_SUMMARY");
    }
    Ok(())
}

fn pass(
    global: &GlobalArgs,
    source: &SourceArgs,
    remote: &RemoteArgs,
    mode: Mode,
    tail: &mut Tail,
) -> Ran {
    let early = |error: Error| (None, error);
    let (mut settings, rev) = super::source::prepare(global, source).map_err(early)?;
    let options = PassOptions {
        source: rev,
        dry_run: !mode.sends(),
        deploy: !remote.no_deploy,
        trigger: "command line",
        unmanaged: settings.sync.report_unmanaged,
        since: None,
        cache: None,
    };
    let progress = mode.sends() && global.quiet == 0;
    let bar = settings.log.format == crate::cli::LogFormat::Pretty;
    let runtime = super::runtime().map_err(early)?;
    let color = Stdout::wants_color();
    let ran = runtime.block_on(async {
        let notifier = notifier_for(&settings, source, mode).await;
        let local = if remote.emulator {
            Some(start_local_emulator(&mut settings).await.map_err(early)?)
        } else {
            None
        };
        let started = std::time::Instant::now();
        let result = match Client::new(&settings.api) {
            Ok(client) => {
                let observer = Progress::new(progress, bar);
                if mode.deploy_only() {
                    reconcile::deploy_only(&settings, &client, &options, &observer).await
                } else {
                    reconcile::run(&settings, &client, &options, &observer).await
                }
            }
            Err(err) => Err(PassError {
                class: crate::Error::from(err.clone()).class(),
                error: err.into(),
                partial: None,
            }),
        };
        tracing::info!(
            duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            ok = result.is_ok(),
            "pass finished"
        );
        if let Some(local) = local {
            local.shutdown().await.map_err(|err| early(err.into()))?;
        }
        let ran = match result {
            Ok(pass) => Ok(PassReport::new(&pass, mode, color)),
            Err(err) => {
                let report = err
                    .partial
                    .as_deref()
                    .map(|pass| Box::new(PassReport::new(pass, mode, color).with_failure(&err)));
                Err((report, err.error))
            }
        };
        tail.after(&settings, notifier, &ran, mode);
        ran
    });
    tail.runtime = Some(runtime);
    ran
}

/// What a command does after its report is printed: deliver the pass's notifications
/// (waiting for them, bounded) and post the plan comment. Never changes the exit
/// status: a failure here is a warning.
#[derive(Default)]
struct Tail {
    /// `plan --comment`.
    comment: bool,
    runtime: Option<tokio::runtime::Runtime>,
    notifier: Option<Notifier>,
    /// How long to wait for the notifications.
    deadline: std::time::Duration,
    /// The plan comment to post: the settings, the CI's variables, the `origin` URL
    /// and the body for each host.
    plan_comment: Option<(NotifySettings, CiEnv, Option<String>, [String; 2])>,
}

impl Tail {
    /// Hand the pass's outcome to the notifier, and render the plan comment.
    fn after(&mut self, settings: &Settings, notifier: Option<Notifier>, ran: &Ran, mode: Mode) {
        let failed_early;
        let report: &PassReport = match ran {
            Ok(report) => report,
            Err((Some(report), _)) => report,
            Err((None, error)) => {
                failed_early = PassReport::failed_early(mode, error);
                &failed_early
            }
        };
        if let Some(notifier) = notifier {
            notifier.finished(DEFAULT_TARGET, report);
            self.deadline = settings.notify.retry_max_elapsed + settings.notify.timeout * 2;
            self.notifier = Some(notifier);
        }
        if self.comment {
            let env = CiEnv::from_process();
            let origin = origin_url(settings);
            let bodies = [Kind::GitHub, Kind::GitLab].map(|kind| {
                let run_url = notify::forge::run_url(kind, &env);
                notify::comment::body(kind, DEFAULT_TARGET, report, run_url.as_deref())
            });
            self.plan_comment = Some((settings.notify.clone(), env, origin, bodies));
        }
    }

    fn finish(mut self) {
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        runtime.block_on(async {
            if let Some((settings, env, origin, bodies)) = self.plan_comment.take() {
                let outcome = notify::comment_plan(
                    &settings,
                    &env,
                    origin.as_deref(),
                    DEFAULT_TARGET,
                    &|kind| match kind {
                        Kind::GitHub => bodies[0].clone(),
                        Kind::GitLab => bodies[1].clone(),
                    },
                )
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
/// posted on the commit it reads. `None` for plans and dry runs.
async fn notifier_for(settings: &Settings, source: &SourceArgs, mode: Mode) -> Option<Notifier> {
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
        notifier.started(DEFAULT_TARGET, &commit);
    }
    Some(notifier)
}

/// The `origin` remote's URL, for the forge's default repository.
fn origin_url(settings: &Settings) -> Option<String> {
    GitRepo::open(&settings.repo).ok()?.remote_url("origin")
}

/// Progress while changes are applied: a bar with the time left on a terminal
/// (cleared when the pass ends), log lines every few seconds elsewhere (CI logs).
enum Progress {
    Bar(ProgressBar),
    Log(ProgressLog),
    Quiet,
}

impl Progress {
    /// `shown`: progress is wanted at all; `bar`: the logs are for people, so a bar
    /// may share their terminal.
    fn new(shown: bool, bar: bool) -> Progress {
        if !shown {
            return Progress::Quiet;
        }
        if !bar || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            return Progress::Log(ProgressLog::default());
        }
        Progress::Bar(
            ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr())
                .with_style(
                    ProgressStyle::with_template(
                        "{spinner} {pos}/{len} changes applied {wide_bar} {eta} left",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                )
                .with_finish(ProgressFinish::AndClear),
        )
    }
}

impl Observer for Progress {
    fn planned(&self, changes: usize) {
        match self {
            Progress::Bar(bar) => bar.inc_length(changes as u64),
            Progress::Log(log) => log.planned(changes),
            Progress::Quiet => {}
        }
    }

    fn applied(&self) {
        match self {
            Progress::Bar(bar) => bar.inc(1),
            Progress::Log(log) => log.applied(),
            Progress::Quiet => {}
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

/// Start the emulator in this process (state in `.git/promptsync/emulator.json`) and
/// point the settings at it.
pub(super) async fn start_local_emulator(
    settings: &mut Settings,
) -> Result<RunningEmulator, Error> {
    let repo = settings.repo.clone();
    let git_dir =
        tokio::task::spawn_blocking(move || GitRepo::open(&repo).map(|r| r.git_dir().to_owned()))
            .await
            .map_err(|err| Error::Internal(err.to_string()))??;
    let state_dir = git_dir.join("promptsync");
    std::fs::create_dir_all(&state_dir).map_err(|source| Error::Io {
        what: format!("cannot create {}", state_dir.display()),
        source,
    })?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|source| Error::Io {
            what: "cannot bind a local port for the emulator".into(),
            source,
        })?;
    let state_file = state_dir.join("emulator.json");
    // Changes are answered at once and saved in the background; shutdown saves the rest.
    let config = EmulatorConfig {
        state_file: Some(state_file.clone()),
        durable_writes: false,
        admin: false,
        // Another `--emulator` command in this repository holds the state a while.
        state_lock_wait: std::time::Duration::from_secs(10),
        ..EmulatorConfig::default()
    };
    let running = emulator::start(config, listener).await?;
    let base_url = running.base_url();
    tracing::info!(url = %base_url, state = %state_file.display(), "using the local emulator, not Respan");
    settings.api.base_url =
        url::Url::parse(&base_url).map_err(|err| Error::Internal(err.to_string()))?;
    settings.api.api_key = Some(ApiKey::new("promptsync-local-emulator"));
    Ok(running)
}

fn print(report: &PassReport, output: OutputFormat) -> Result<(), Error> {
    let mut out = Stdout::new();
    let written = match output {
        OutputFormat::Text => out.text(&report.to_text()),
        OutputFormat::Json => out.json(report),
    };
    written
        .and_then(|()| out.flush())
        .map_err(|source| Error::Io {
            what: "cannot write the report".into(),
            source,
        })
}
