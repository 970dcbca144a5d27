//! `promptsync sync` (alias `--sync`) and `promptsync plan`: one reconcile pass per
//! target (or, with `--deploy-only`, its deploy half alone) and its report; then what
//! comes after the report ([`tail`]). [`progress`] shows the changes being applied.

mod progress;
mod tail;

use crate::Error;
use crate::api::Client;
use crate::apply::Observer;
use crate::cli::{GlobalArgs, OutputFormat, PlanArgs, RemoteArgs, SourceArgs, SyncArgs};
use crate::commands::ExitStatus;
use crate::config::Settings;
use crate::notify::{DEFAULT_TARGET, Notifier};
use crate::reconcile::{self, PassError, PassOptions};
use crate::report::github::GitHub;
use crate::report::pass::{Mode, PassReport};
use crate::report::{self, Stdout};

use super::local::start_local_emulator;
use progress::Progress;
use tail::{Tail, notifier_for};

pub(super) fn sync(global: &GlobalArgs, args: SyncArgs) -> Result<ExitStatus, Error> {
    let mode = Mode::of(false, args.dry_run, args.deploy_only);
    let tail = Tail::new(false);
    let reports = run(global, &args.source, &args.remote, mode, args.output, tail)?;
    Ok(if reports.iter().any(PassReport::has_errors) {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

pub(super) fn plan(global: &GlobalArgs, args: PlanArgs) -> Result<ExitStatus, Error> {
    let mode = Mode::of(true, false, args.deploy_only);
    let tail = Tail::new(args.comment);
    let reports = run(global, &args.source, &args.remote, mode, args.output, tail)?;
    let errors = reports.iter().any(PassReport::has_errors);
    let changes = reports.iter().any(PassReport::has_changes);
    Ok(match (errors, changes) {
        (true, _) => ExitStatus::Failure,
        (false, true) if args.detailed_exitcode => ExitStatus::Changes,
        _ => ExitStatus::Success,
    })
}

/// The passes of `sync` or `plan` in `mode`, their reports printed, then `tail` done
/// (notifications, the plan comment) whatever the passes came to.
fn run(
    global: &GlobalArgs,
    source: &SourceArgs,
    remote: &RemoteArgs,
    mode: Mode,
    output: OutputFormat,
    mut tail: Tail,
) -> Result<Vec<PassReport>, Error> {
    let reports = reported_all(
        pass(global, source, remote, mode, &mut tail),
        mode,
        output,
        super::github(global).as_ref(),
    );
    tail.finish();
    reports
}

/// The passes of a command: one per target; `grouped` when `[targets]` is
/// configured (reports then name their target). Without it, one pass whose report is
/// exactly what it was before targets existed.
struct Passes {
    grouped: bool,
    runs: Vec<(String, Ran)>,
}

impl Passes {
    fn single(ran: Ran) -> Passes {
        Passes {
            grouped: false,
            runs: vec![(DEFAULT_TARGET.to_owned(), ran)],
        }
    }
}

/// Print the reports of `passes`: as before without `[targets]`; grouped by target
/// with them (text: a heading per target; JSON: one document, `{"targets": [...]}`,
/// each report and each of its rows carrying `target`). A target whose pass ended
/// early is reported with its error, and the others still are; the errors are then
/// returned together.
fn reported_all(
    passes: Passes,
    mode: Mode,
    output: OutputFormat,
    github: Option<&GitHub>,
) -> Result<Vec<PassReport>, Error> {
    if !passes.grouped {
        let mut runs = passes.runs;
        let Some((_, ran)) = runs.pop() else {
            return Ok(Vec::new());
        };
        return reported(ran, mode, output, github).map(|report| vec![report]);
    }
    let mut reports = Vec::new();
    let mut grouped = report::Grouped::new(output == OutputFormat::Json);
    let mut errors = Vec::new();
    for (target, ran) in passes.runs {
        let report = match ran {
            Ok(report) => report,
            Err((report, error)) => {
                let report = report.map_or_else(|| PassReport::failed_early(mode, &error), |r| *r);
                tracing::error!(target_name = %target, error = %crate::failure::chain(&error), "the target's pass ended early");
                errors.push(format!(
                    "target {target}: {}",
                    crate::failure::chain(&error)
                ));
                report
            }
        };
        let report = report.for_target(&target);
        grouped.push(&target, &report);
        reports.push(report);
    }
    grouped.print()?;
    if let Some(github) = github {
        for report in &reports {
            publish(github, report, output)?;
        }
    }
    if errors.is_empty() {
        Ok(reports)
    } else {
        Err(Error::Targets(errors.join("; ")))
    }
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
) -> Passes {
    let early = |error: Error| Passes::single(Err((None, error)));
    let (settings, rev) = match super::source::prepare(global, source) {
        Ok(prepared) => prepared,
        Err(error) => return early(error),
    };
    if !settings.has_targets() && remote.targets.iter().all(|t| t == DEFAULT_TARGET) {
        return Passes::single(one_pass(global, settings, rev, source, remote, mode, tail));
    }
    let targets = match settings.select(&remote.targets) {
        Ok(targets) => targets,
        Err(error) => return early(error.into()),
    };
    if remote.emulator && targets.len() > 1 {
        return early(Error::Usage(
            "--emulator is one local account: pick one target with --target NAME".to_owned(),
        ));
    }
    let Setup {
        options,
        progress,
        runtime,
        color,
    } = match Setup::new(global, &settings, rev, remote, mode) {
        Ok(setup) => setup,
        Err(error) => return early(error),
    };
    let names: Vec<String> = targets.iter().map(|t| t.target.clone()).collect();
    let runs = runtime.block_on(async {
        let notifier = notifier_for(&settings, source, mode, &names).await;
        let mut targets = targets;
        let mut local = None;
        if remote.emulator
            && let Some(target) = targets.first_mut()
        {
            match start_local_emulator(target).await {
                Ok(running) => local = Some(running),
                Err(error) => return vec![(names[0].clone(), Err((None, error)))],
            }
        }
        let started = std::time::Instant::now();
        // Each target its own client (its own `max_in_flight` and pacing), all at
        // once: a slow or refusing project holds up only its own pass.
        let results = futures_util::future::join_all(targets.iter().map(|target| {
            let options = &options;
            async move {
                let observer = Progress::new(progress, false);
                let span = tracing::info_span!("target", target_name = %target.target);
                let result = tracing::Instrument::instrument(
                    run_one(target, options, mode, &observer),
                    span,
                )
                .await;
                (target, result)
            }
        }))
        .await;
        tracing::info!(
            duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            ok = results.iter().all(|(_, r)| r.is_ok()),
            targets = results.len(),
            "pass finished"
        );
        if let Some(local) = local
            && let Err(err) = local.shutdown().await
        {
            tracing::warn!(error = %err, "the local emulator did not shut down cleanly");
        }
        let mut runs = Vec::new();
        for (target, result) in results {
            let ran = ran_of(result, mode, color);
            after(tail, target, notifier.clone(), &ran, mode);
            runs.push((target.target.clone(), ran));
        }
        runs
    });
    tail.runtime = Some(runtime);
    Passes {
        grouped: true,
        runs,
    }
}

/// What the passes of one command share.
struct Setup {
    options: PassOptions,
    /// Progress is shown: changes are sent, and `--quiet` was not given.
    progress: bool,
    runtime: tokio::runtime::Runtime,
    /// The text report is coloured.
    color: bool,
}

impl Setup {
    fn new(
        global: &GlobalArgs,
        settings: &Settings,
        rev: crate::desired::SourceRev,
        remote: &RemoteArgs,
        mode: Mode,
    ) -> Result<Setup, Error> {
        let options = PassOptions::command_line(
            rev,
            !mode.sends(),
            !remote.no_deploy,
            settings.sync.report_unmanaged,
        );
        let progress = mode.sends() && global.quiet == 0;
        let runtime = super::runtime()?;
        Ok(Setup {
            options,
            progress,
            runtime,
            color: Stdout::wants_color(),
        })
    }
}

/// One target's pass (or its deploy half alone).
async fn run_one(
    settings: &Settings,
    options: &PassOptions,
    mode: Mode,
    observer: &dyn Observer,
) -> Result<crate::reconcile::Pass, PassError> {
    match Client::new(&settings.api) {
        Ok(client) => {
            if mode.deploy_only() {
                reconcile::deploy_only(settings, &client, options, observer).await
            } else {
                reconcile::run(settings, &client, options, observer).await
            }
        }
        Err(err) => Err(PassError {
            class: crate::Error::from(err.clone()).class(),
            error: err.into(),
            partial: None,
        }),
    }
}

/// A pass's result as a report, or its error with the report of what it did.
fn ran_of(result: Result<crate::reconcile::Pass, PassError>, mode: Mode, color: bool) -> Ran {
    match result {
        Ok(pass) => {
            let report = PassReport::new(&pass, mode, color);
            crate::memory::leave_to_exit(pass);
            Ok(report)
        }
        Err(err) => {
            let report = err
                .partial
                .as_deref()
                .map(|pass| Box::new(PassReport::new(pass, mode, color).with_failure(&err)));
            Err((report, err.error))
        }
    }
}

/// Hand the pass's outcome to `tail` (see [`Tail::after`]): its report, or the report
/// of the error that ended it before it read the source.
fn after(tail: &mut Tail, settings: &Settings, notifier: Option<Notifier>, ran: &Ran, mode: Mode) {
    let failed_early;
    let report: &PassReport = match ran {
        Ok(report) => report,
        Err((Some(report), _)) => report,
        Err((None, error)) => {
            failed_early = PassReport::failed_early(mode, error);
            &failed_early
        }
    };
    tail.after(settings, notifier, report);
}

/// The pass of a configuration without `[targets]`: exactly as before targets.
fn one_pass(
    global: &GlobalArgs,
    mut settings: Settings,
    rev: crate::desired::SourceRev,
    source: &SourceArgs,
    remote: &RemoteArgs,
    mode: Mode,
    tail: &mut Tail,
) -> Ran {
    let early = |error: Error| (None, error);
    let Setup {
        options,
        progress,
        runtime,
        color,
    } = Setup::new(global, &settings, rev, remote, mode).map_err(early)?;
    let bar = settings.log.format == crate::logging::LogFormat::Pretty;
    let ran = runtime.block_on(async {
        let notifier = notifier_for(&settings, source, mode, &[DEFAULT_TARGET.to_owned()]).await;
        let local = if remote.emulator {
            Some(start_local_emulator(&mut settings).await.map_err(early)?)
        } else {
            None
        };
        let started = std::time::Instant::now();
        let result = run_one(&settings, &options, mode, &Progress::new(progress, bar)).await;
        tracing::info!(
            duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            ok = result.is_ok(),
            "pass finished"
        );
        if let Some(local) = local {
            local.shutdown().await.map_err(|err| early(err.into()))?;
        }
        let ran = ran_of(result, mode, color);
        after(tail, &settings, notifier, &ran, mode);
        ran
    });
    tail.runtime = Some(runtime);
    ran
}

fn print(report: &PassReport, output: OutputFormat) -> Result<(), Error> {
    report::print(report, output == OutputFormat::Json)
}
