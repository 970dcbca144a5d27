//! One entry point per subcommand, and [`ExitStatus`], the only type that knows the
//! 0/1/2 exit contract. Commands load settings, start logging, call into the library
//! and hand the outcome to [`report`](crate::report).

mod completions;
mod emulator;
mod local;
mod pull;
pub(crate) mod source;
mod status;
mod sync;
mod validate;
mod watch;

use std::path::PathBuf;

use crate::Error;
use crate::cli::{Cli, Command, GlobalArgs};
use crate::config::{Overrides, Settings};
use crate::gitrepo::GitRepo;

/// How the process ends. `main` turns it into the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything converged, every file valid; for `plan --detailed-exitcode`: no changes.
    Success,
    /// Any prompt failed, any file was invalid, the run could not complete, or the
    /// command line was not understood.
    Failure,
    /// `plan --detailed-exitcode` only: changes are pending.
    Changes,
}

impl ExitStatus {
    /// How a command line that did not parse ends: `--help` and `--version` succeed,
    /// a usage error fails with 1, never 2 (which `plan --detailed-exitcode` and
    /// `status --detailed-exitcode` use for "changes pending", and clap for usage).
    pub fn of_usage(usage: &clap::Error) -> ExitStatus {
        if usage.use_stderr() {
            ExitStatus::Failure
        } else {
            ExitStatus::Success
        }
    }

    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Changes => 2,
        }
    }
}

/// Print the error a command ended with on stderr, with its causes: controls escaped,
/// since server error bodies and file names can reach this text, and every secret
/// promptsync holds redacted.
pub fn print_error(err: &Error) {
    let chain = crate::failure::chain(err);
    let text = crate::secret::redact(&chain);
    #[allow(clippy::print_stderr)]
    {
        eprintln!("error: {}", crate::term::block(&text));
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> Self {
        std::process::ExitCode::from(status.code())
    }
}

/// Run the command the user asked for.
pub fn run(cli: Cli) -> Result<ExitStatus, Error> {
    // Before any thread: a one-off sync reads thousands of files on every core, and
    // glibc would give each of those threads an arena of its own that keeps its pages
    // (a 10,000-file first sync peaked 20 MiB higher with them).
    crate::memory::limit_arenas();
    let (global, command) = cli.into_command();
    match command {
        Some(Command::Sync(args)) => sync::sync(&global, args),
        Some(Command::Plan(args)) => sync::plan(&global, args),
        Some(Command::Watch(args)) => watch::run(&global, args),
        Some(Command::Validate(args)) => validate::run(&global, args),
        Some(Command::Emulator(args)) => emulator::run(&global, args),
        Some(Command::Pull(args)) => pull::run(&global, args),
        Some(Command::Status(args)) => status::run(&global, args),
        Some(Command::Completions(args)) => completions::completions(&args),
        Some(Command::Man(args)) => completions::man(&args),
        // `Cli::try_parse_checked` refuses a command line without a subcommand.
        None => Ok(ExitStatus::Failure),
    }
}

/// The runtime a command's async work runs on: two workers are plenty for a pass that
/// waits on the network, and keep the daemon's footprint small.
fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            what: "cannot start the async runtime".into(),
            source,
        })
}

/// Settings for a command started anywhere inside the repository: `--repo` (default
/// `.`) is taken up to the work tree root that git finds, so `promptsync.toml` is read
/// at the root whatever the current directory. Outside a repository the path stays as
/// given (the command reports that, or, for `validate PATHS`, does without).
fn load_settings(global: &GlobalArgs, overrides: &Overrides) -> Result<Settings, Error> {
    Ok(Settings::load(&at_repo_root(global), overrides)?)
}

/// `global` with `--repo` taken up to the work tree root that git finds.
fn at_repo_root(global: &GlobalArgs) -> GlobalArgs {
    let mut global = global.clone();
    global.repo = Some(repository_root(&global));
    global
}

/// `--repo` (default `.`) taken up to the work tree root that git finds; as given
/// outside a repository.
fn repository_root(global: &GlobalArgs) -> PathBuf {
    let start = global.repo.clone().unwrap_or_else(|| PathBuf::from("."));
    GitRepo::open(&start).map_or(start, |repo| repo.root().to_owned())
}

/// GitHub Actions' annotations and job summary, when its variables are set.
fn github(global: &GlobalArgs) -> Option<crate::report::github::GitHub> {
    crate::report::github::GitHub::from_env()
        .map(|github| github.with_root(&repository_root(global)))
}
