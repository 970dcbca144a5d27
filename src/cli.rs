//! Command-line types (clap derive) and nothing else: no I/O, no defaults that
//! belong to the configuration. [`commands`](crate::commands) turns these into work;
//! the global flags map onto configuration's [`Invocation`], the log format is
//! logging's [`LogFormat`]. Nothing below the commands imports this module.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{CONFIG_VAR, Invocation, REPO_VAR, TRUST_REPO_CONFIG_VAR};
/// `--log-format`'s values are logging's formats.
use crate::logging::LogFormat;

const AFTER_HELP: &str = "\
Examples:
  promptsync validate                     check every prompt file, offline
  promptsync plan                         show what a sync would change
  promptsync --sync                       one reconcile of HEAD, for CI
  promptsync sync --emulator              try it all on a local emulator, no account needed

Configuration: promptsync.toml at the repository root (or --config), PROMPTSYNC_*
environment variables (nested keys with __), then flags. The API key is read from
RESPAN_API_KEY or api_key_file and is never printed.

Exit status: 0 success (and --help, --version); 1 errors, a command line that is not
understood included; 2 only with --detailed-exitcode (plan, status): changes pending.";

/// Keep LLM prompts that live in git in sync with the Respan prompt API.
#[derive(Debug, Parser)]
#[command(
    name = "promptsync",
    version,
    about,
    long_about = "Keep LLM prompts that live as YAML files in a git repository in sync \
                  with the Respan prompt-management API: git is the truth, Respan holds \
                  the versions that applications fetch, and a release tag decides which \
                  version is live.",
    after_help = AFTER_HELP,
    propagate_version = true,
    subcommand_precedence_over_arg = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    /// Run one reconcile pass, like `promptsync sync` (the form CI scripts use).
    #[arg(long)]
    pub sync: bool,

    /// Flags of `sync`, accepted after `--sync`.
    #[command(flatten, next_help_heading = "Options with --sync")]
    pub sync_args: SyncArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Flags that every subcommand accepts.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The git repository holding the prompt files.
    #[arg(long, global = true, value_name = "PATH", env = REPO_VAR)]
    pub repo: Option<PathBuf>,

    /// Configuration file to read instead of `promptsync.toml` at the repository root.
    #[arg(long, global = true, value_name = "FILE", env = CONFIG_VAR)]
    pub config: Option<PathBuf>,

    /// Log format on stderr: `pretty` for people, `json` for log collectors.
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// More log output (-v debug, -vv trace). RUST_LOG, when set, wins.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Less log output (-q warnings and errors only, -qq errors only).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub quiet: u8,

    /// Let the repository's own configuration file decide where the API key goes
    /// (`api.base_url`) and which file holds it (`api.api_key_file`). Off by default:
    /// a pull request could point them elsewhere.
    #[arg(
        long,
        global = true,
        env = TRUST_REPO_CONFIG_VAR,
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub trust_repo_config: bool,
}

impl From<&GlobalArgs> for Invocation {
    /// The global flags, as configuration takes them.
    fn from(global: &GlobalArgs) -> Invocation {
        Invocation {
            repo: global.repo.clone(),
            config: global.config.clone(),
            log_format: global.log_format,
            verbose: global.verbose,
            quiet: global.quiet,
            trust_repo_config: global.trust_repo_config,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Reconcile once: create a new remote version for every prompt whose file differs,
    /// deploy the release tag's versions, print a report.
    #[command(after_help = "\
In CI: `--no-deploy` on the main branch (new drafts, nothing goes live), `--deploy-only`
on release tags (the tag's versions go live, no draft is written); plain `sync` for a
single pipeline on main that tags nothing.

Exit status: 0 when everything converged, 1 when any prompt failed or any file was
invalid (valid prompts are still synced).")]
    Sync(SyncArgs),

    /// Show what `sync` would change, as a diff per prompt; sends no change request.
    #[command(
        after_help = "Exit status: 0 success, 1 errors; with --detailed-exitcode \
                            0 no changes, 1 errors, 2 changes pending."
    )]
    Plan(PlanArgs),

    /// Run as a daemon: watch the files and refs, reconcile on change and on a timer.
    Watch(WatchArgs),

    /// Check prompt files offline (no API key needed): syntax, types, ranges,
    /// unknown keys, duplicate identities, content files, template variables.
    #[command(
        after_help = "Exit status: 0 when every file is valid (warnings allowed), \
                            1 otherwise."
    )]
    Validate(ValidateArgs),

    /// Show what is where: per prompt file its remote newest and live versions and the
    /// commits they came from, drift, the release tag; then the unmanaged prompts.
    #[command(after_help = "\
Sends no change. With --prompt NAME_OR_ID: that prompt's versions, newest first, with
the commit, subject and tags each came from, the live one marked.

Exit status: 0; 1 on errors (invalid files, prompts that cannot be read); with
--detailed-exitcode, 2 when anything is out of sync.")]
    Status(StatusArgs),

    /// Write prompt files for remote prompts, to adopt an existing account.
    #[command(after_help = "\
Examples:
  promptsync pull --all                  every remote prompt that no file names, into prompts/
  promptsync pull \"Support assistant\"    one prompt, by exact name (or give its id)
  promptsync pull --all && git add prompts && git commit -m \"Adopt prompts\" && promptsync plan

Exit status: 0 when every prompt asked for was written or already had its file, 1 otherwise.")]
    Pull(PullArgs),

    /// Serve a local, Respan-compatible prompts API (for tests and trials).
    Emulator(EmulatorArgs),

    /// Print a shell completion script on stdout.
    #[command(after_help = "\
Examples:
  promptsync completions bash > ~/.local/share/bash-completion/completions/promptsync
  promptsync completions zsh > ~/.zfunc/_promptsync      # with fpath+=(~/.zfunc)
  promptsync completions fish > ~/.config/fish/completions/promptsync.fish")]
    Completions(CompletionsArgs),

    /// Print a man page (roff) on stdout: promptsync(1), or a subcommand's page.
    #[command(after_help = "\
Examples:
  promptsync man | man -l -                              # read it now
  promptsync man > ~/.local/share/man/man1/promptsync.1
  promptsync man sync > ~/.local/share/man/man1/promptsync-sync.1")]
    Man(ManArgs),
}

/// Where the prompt content comes from.
#[derive(Debug, Clone, Default, Args)]
pub struct SourceArgs {
    /// Read the working tree, uncommitted edits included, instead of the commit.
    #[arg(long, conflicts_with = "rev")]
    pub worktree: bool,

    /// The commit to read (a revision such as a branch, tag or commit id).
    #[arg(long, value_name = "REV", default_value = "HEAD")]
    pub rev: String,

    /// Fetch the repository from this URL (https://, ssh://, git@host:path) into a
    /// mirror of promptsync's own and read its branch tip: sets source.url.
    #[arg(long = "source", value_name = "URL", conflicts_with_all = ["worktree", "rev"])]
    pub url: Option<String>,
}

/// How the remote is reached for a pass.
#[derive(Debug, Clone, Default, Args)]
pub struct RemoteArgs {
    /// Start a local emulator inside this process and sync to it instead of Respan
    /// (state kept under .git/promptsync/); no account needed.
    #[arg(long)]
    pub emulator: bool,

    /// Do not deploy release tags in this run; drafts still sync.
    #[arg(long)]
    pub no_deploy: bool,

    /// Act on this target (`[targets.NAME]`) only; repeat for several. Default: every
    /// target (`default` without `[targets]`).
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct SyncArgs {
    /// Plan and report without sending any change request.
    #[arg(long)]
    pub dry_run: bool,

    /// Only make the newest release tag's versions live (for tag pipelines): write no
    /// version for HEAD's content, create one only where no version holds the
    /// release's.
    #[arg(long, conflicts_with_all = ["no_deploy", "worktree", "rev"])]
    pub deploy_only: bool,

    /// Report format on stdout.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t)]
    pub output: OutputFormat,

    #[command(flatten)]
    pub source: SourceArgs,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Debug, Clone, Default, Args)]
pub struct PlanArgs {
    /// Report format on stdout.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t)]
    pub output: OutputFormat,

    /// Exit 2 when changes are pending, 0 when there are none, 1 on errors.
    #[arg(long)]
    pub detailed_exitcode: bool,

    /// In CI, post the plan on the pull request (GitHub Actions) or merge request
    /// (GitLab CI) as one comment, edited in place on every run; needs GITHUB_TOKEN or
    /// GITLAB_TOKEN (or notify.github/gitlab.token_file). Skipped with a warning where
    /// there is none; never changes the exit status.
    #[arg(long)]
    pub comment: bool,

    /// What `sync --deploy-only` would do: the release tag's deploys, no drafts.
    #[arg(long, conflicts_with_all = ["no_deploy", "worktree", "rev"])]
    pub deploy_only: bool,

    #[command(flatten)]
    pub source: SourceArgs,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Debug, Clone, Args)]
#[command(after_help = "\
Reconciles when a commit, a tag, the configuration or the key file changes (with
--worktree: any file of the working tree), on SIGHUP, on POST /reconcile, and every
watch.resync_interval. Probes on --listen: /healthz, /readyz, /metrics, /status.
SIGTERM lets a running pass finish (watch.shutdown_timeout), a second one exits at once.

Exit status: 0 after a clean shutdown; with --once, 0 when the pass converged and 1
otherwise.")]
pub struct WatchArgs {
    /// Address of the probe server: /healthz, /readyz, /metrics, /status, POST /reconcile
    /// (default: watch.listen, 127.0.0.1:8080). IP:PORT; localhost:PORT means 127.0.0.1.
    #[arg(long, value_name = "ADDR", value_parser = crate::config::parse_listen)]
    pub listen: Option<SocketAddr>,

    /// Run one pass of the daemon's loop and exit with its status (like git-sync's
    /// --one-time).
    #[arg(long)]
    pub once: bool,

    #[command(flatten)]
    pub source: SourceArgs,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    /// Files or directories to check; directories are searched with the configured
    /// globs. Default: every prompt file of the repository's working tree.
    #[arg(value_name = "PATHS")]
    pub paths: Vec<PathBuf>,

    /// Check the prompt files of this commit instead of the working tree.
    #[arg(long, value_name = "REV", conflicts_with = "paths")]
    pub rev: Option<String>,

    /// Findings format on stdout.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t)]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Report format on stdout.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t)]
    pub output: OutputFormat,

    /// Exit 2 when anything is out of sync (0 when all is, 1 on errors).
    #[arg(long)]
    pub detailed_exitcode: bool,

    /// Show one prompt's version history instead (by id or exact name).
    #[arg(long, value_name = "NAME_OR_ID")]
    pub prompt: Option<String>,

    #[command(flatten)]
    pub source: SourceArgs,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

#[derive(Debug, Clone, Args)]
pub struct PullArgs {
    /// Prompts to pull, by id or exact name.
    #[arg(
        value_name = "NAME_OR_ID",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub prompts: Vec<String>,

    /// Every remote prompt that no prompt file of the working tree names.
    #[arg(long)]
    pub all: bool,

    /// Directory for the files, relative to the repository root (inside it: no `..`,
    /// not under `.git`, through no symbolic link).
    #[arg(long, value_name = "DIR", default_value = "prompts")]
    pub dir: PathBuf,

    /// Write each prompt's live version instead of its newest (the one `sync`
    /// compares with).
    #[arg(long)]
    pub live: bool,

    /// Replace a prompt's existing file.
    #[arg(long)]
    pub force: bool,

    /// Report format on stdout.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t)]
    pub output: OutputFormat,

    /// Pull from the local emulator of `sync --emulator` instead of Respan.
    #[arg(long)]
    pub emulator: bool,

    /// Pull from this target's project (`[targets.NAME]`); needed when several are
    /// configured, since the files hold one project's prompts.
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
}

/// Which remote version `pull` writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PullVersion {
    #[default]
    Newest,
    Live,
}

impl PullArgs {
    /// The version to write, from `--live`.
    pub fn which(&self) -> PullVersion {
        if self.live {
            PullVersion::Live
        } else {
            PullVersion::Newest
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct EmulatorArgs {
    /// Address to listen on; port 0 picks a free port (the address is printed once ready).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8787", value_parser = crate::config::parse_listen)]
    pub listen: SocketAddr,

    /// Persist state to this file (written atomically) and resume from it at start.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// With --state: answer changes before they reach the file (much faster for large
    /// states; a kill may lose the newest changes, never tears the file).
    #[arg(long, requires = "state")]
    pub deferred_writes: bool,

    /// Accept only this Bearer key (repeatable). Without it, any key is accepted.
    #[arg(long = "api-key", value_name = "KEY")]
    pub api_keys: Vec<String>,

    /// Answer this Bearer key with 403 Forbidden (repeatable).
    #[arg(long = "forbidden-key", value_name = "KEY")]
    pub forbidden_keys: Vec<String>,

    /// Set a behaviour knob, e.g. `--knob commit_mode=bump` (repeatable). Knobs:
    /// commit_mode, deploy_draft, edit_readonly, delete_live, create_deploy,
    /// count_mode, legacy_prompt_deploy, require_model, fill_defaults.
    #[arg(long = "knob", value_name = "NAME=VALUE")]
    pub knobs: Vec<String>,

    /// Latency added to every API request, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub latency_ms: u64,

    /// Random extra latency per API request, up to this many milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub jitter_ms: u64,

    /// Answer 429 with Retry-After beyond this many API requests per window.
    #[arg(long, value_name = "REQUESTS")]
    pub rate_limit: Option<u32>,

    /// The rate-limit window, in milliseconds.
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 1000,
        requires = "rate_limit"
    )]
    pub rate_window_ms: u64,

    /// Arm a fault at start (repeatable), as an admin fault rule in JSON, e.g.
    /// '{"kind": "status", "status": 503, "times": 3}'.
    #[arg(long = "fault", value_name = "JSON")]
    pub faults: Vec<String>,

    /// Do not serve the test-only admin endpoint under /_emulator/.
    #[arg(long)]
    pub no_admin: bool,
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// The subcommands that have a man page of their own, `promptsync-NAME(1)`; a unit
/// test keeps the list equal to [`Command`]'s.
pub const MAN_PAGES: [&str; 9] = [
    "sync",
    "plan",
    "watch",
    "validate",
    "status",
    "pull",
    "emulator",
    "completions",
    "man",
];

#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// The subcommand whose page to print, `promptsync-COMMAND(1)`; without it,
    /// promptsync(1).
    #[arg(value_name = "COMMAND", value_parser = MAN_PAGES)]
    pub command: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
}

impl Cli {
    /// Parse the command line, refusing `sync` flags given without `--sync` (clap alone
    /// would accept `promptsync --dry-run` and ignore it). `--help` and `--version` come
    /// back as errors too, as clap has them (`main` prints them and exits 0); a
    /// subcommand's `--version` says what the top level's says.
    pub fn try_parse_checked<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::CommandFactory;
        Self::parse_args(args).map_err(|err| {
            if err.kind() == clap::error::ErrorKind::DisplayVersion {
                // `promptsync sync --version` would say `promptsync-sync 0.1.0`.
                Self::command()
                    .try_get_matches_from(["promptsync", "--version"])
                    .err()
                    .unwrap_or(err)
            } else {
                err
            }
        })
    }

    /// [`Cli::try_parse_checked`] before the version is made the top level's.
    fn parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::{CommandFactory, FromArgMatches, parser::ValueSource};
        let mut command = Self::command();
        let matches = command.try_get_matches_from_mut(args)?;
        if matches.get_flag("sync") && matches.subcommand().is_some() {
            return Err(command.error(
                clap::error::ErrorKind::ArgumentConflict,
                "--sync is the `sync` subcommand: give one or the other",
            ));
        }
        if !matches.get_flag("sync") && matches.subcommand().is_none() {
            let stray = command
                .get_arguments()
                .filter(|arg| !arg.is_global_set() && arg.get_id() != "sync")
                .find(|arg| {
                    matches.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine)
                });
            if let Some(arg) = stray {
                let message = format!(
                    "--{} needs --sync or a subcommand (try `promptsync sync --{}`)",
                    arg.get_long().unwrap_or_default(),
                    arg.get_long().unwrap_or_default()
                );
                return Err(command.error(clap::error::ErrorKind::ArgumentConflict, message));
            }
        }
        if !matches.get_flag("sync") && matches.subcommand().is_none() {
            return Err(command.error(
                clap::error::ErrorKind::MissingSubcommand,
                "a subcommand or --sync is required (see --help)",
            ));
        }
        Self::from_arg_matches(&matches).map_err(|err| err.format(&mut command))
    }

    /// The subcommand to run, with `--sync` turned into `sync`. `None` when neither a
    /// subcommand nor `--sync` was given.
    pub fn into_command(self) -> (GlobalArgs, Option<Command>) {
        let command = match (self.command, self.sync) {
            (Some(command), _) => Some(command),
            (None, true) => Some(Command::Sync(self.sync_args)),
            (None, false) => None,
        };
        (self.global, command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sync_flag_is_the_sync_subcommand() {
        let cli = Cli::parse_from(["promptsync", "--sync", "--dry-run", "--output", "json"]);
        let (_, command) = cli.into_command();
        let Some(Command::Sync(args)) = command else {
            panic!("expected sync, got {command:?}");
        };
        assert!(args.dry_run);
        assert_eq!(args.output, OutputFormat::Json);
    }

    #[test]
    fn sync_flags_without_sync_are_refused() {
        let err = Cli::try_parse_checked(["promptsync", "--dry-run"]).unwrap_err();
        assert!(err.to_string().contains("--dry-run needs --sync"), "{err}");
        assert!(Cli::try_parse_checked(["promptsync", "--sync", "--dry-run"]).is_ok());
        assert!(Cli::try_parse_checked(["promptsync", "-v", "validate"]).is_ok());
    }

    #[test]
    fn every_subcommand_has_a_man_page() {
        let names: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|sub| sub.get_name().to_owned())
            .collect();
        assert_eq!(names, MAN_PAGES);
    }

    #[test]
    fn the_variables_the_flags_read_are_those_configuration_leaves_alone() {
        fn walk(command: &clap::Command, names: &mut Vec<String>) {
            for arg in command.get_arguments() {
                if let Some(env) = arg.get_env() {
                    names.push(env.to_string_lossy().into_owned());
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, names);
            }
        }
        let mut names = Vec::new();
        walk(&Cli::command(), &mut names);
        names.sort();
        names.dedup();
        let mut listed = crate::config::COMMAND_LINE_VARS.map(str::to_owned).to_vec();
        listed.sort();
        assert_eq!(names, listed);
    }

    #[test]
    fn global_flags_map_onto_the_invocation() {
        let cli = Cli::parse_from([
            "promptsync",
            "--repo",
            "/tmp/x",
            "--config",
            "/etc/p.toml",
            "--log-format",
            "json",
            "-q",
            "--trust-repo-config",
            "validate",
        ]);
        let invocation = Invocation::from(&cli.global);
        assert_eq!(
            invocation,
            Invocation {
                repo: Some(PathBuf::from("/tmp/x")),
                config: Some(PathBuf::from("/etc/p.toml")),
                log_format: Some(LogFormat::Json),
                verbose: 0,
                quiet: 1,
                trust_repo_config: true,
            }
        );
    }

    #[test]
    fn global_flags_work_after_the_subcommand() {
        let cli = Cli::parse_from(["promptsync", "plan", "--repo", "/tmp/x", "-vv"]);
        assert_eq!(
            cli.global.repo.as_deref(),
            Some(std::path::Path::new("/tmp/x"))
        );
        assert_eq!(cli.global.verbose, 2);
    }
}
