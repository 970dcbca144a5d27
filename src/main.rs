//! The `promptsync` binary: parse the command line, run the library, exit.

use std::process::ExitCode;

use promptsync::cli::Cli;
use promptsync::commands::ExitStatus;

fn main() -> ExitCode {
    promptsync::redact_panics();
    let cli = match Cli::try_parse_checked(std::env::args_os()) {
        Ok(cli) => cli,
        Err(usage) => {
            // Help and the version on stdout, a usage error on stderr (as clap prints
            // them); a closed pipe is no reason to fail.
            let _ = usage.print();
            return ExitStatus::of_usage(&usage).into();
        }
    };
    match promptsync::commands::run(cli) {
        Ok(status) => status.into(),
        Err(err) => {
            promptsync::commands::print_error(&err);
            ExitStatus::Failure.into()
        }
    }
}
