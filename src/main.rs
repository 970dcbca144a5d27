//! The `promptsync` binary: parse the command line, run the library, exit.

use std::process::ExitCode;

use promptsync::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse_checked();
    match promptsync::commands::run(cli) {
        Ok(status) => status.into(),
        Err(err) => {
            // Server error bodies and file names can reach this text: escape controls,
            // and redact every secret promptsync holds.
            let err = promptsync::error::chain(&err);
            let err = promptsync::secret::redact(&err);
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {}", promptsync::term::block(&err));
            }
            promptsync::commands::ExitStatus::Failure.into()
        }
    }
}
