//! The `promptsync` binary: parse the command line, run the library, exit.

use std::process::ExitCode;

use promptsync::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse_checked();
    match promptsync::commands::run(cli) {
        Ok(status) => status.into(),
        Err(err) => {
            let err = anyhow::Error::from(err);
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {err:#}");
            }
            promptsync::commands::ExitStatus::Failure.into()
        }
    }
}
