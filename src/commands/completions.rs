//! `promptsync completions SHELL` and `promptsync man [COMMAND]`: a completion script
//! and man pages, generated at run time from the clap definition (so they cannot fall
//! behind the command line), printed on stdout through [`report::Stdout`].

use clap::CommandFactory;

use crate::Error;
use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::commands::ExitStatus;
use crate::report::Stdout;

/// The program name the scripts complete and the pages describe.
const BIN: &str = "promptsync";

/// Print the completion script for `args.shell`.
pub(super) fn completions(args: &CompletionsArgs) -> Result<ExitStatus, Error> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), BIN, &mut script);
    print(&script, "the completion script")
}

/// Print promptsync(1), or `promptsync-COMMAND(1)`.
pub(super) fn man(args: &ManArgs) -> Result<ExitStatus, Error> {
    // As clap_mangen's own generate_to: no page for clap's `help` subcommand. Built
    // once, so that each subcommand carries the global flags and its full name.
    let mut root = Cli::command().disable_help_subcommand(true);
    root.build();
    let command = match &args.command {
        None => root,
        Some(name) => root.find_subcommand(name).cloned().ok_or_else(|| {
            Error::Internal(format!(
                "`{name}` is listed in MAN_PAGES but is no subcommand"
            ))
        })?,
    };
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .source(format!("{BIN} {}", env!("CARGO_PKG_VERSION")))
        .manual("promptsync manual")
        .render(&mut page)
        .map_err(|source| Error::Io {
            what: "cannot render the man page".into(),
            source,
        })?;
    print(&page, "the man page")
}

fn print(bytes: &[u8], what: &str) -> Result<ExitStatus, Error> {
    let mut out = Stdout::new();
    out.text(&String::from_utf8_lossy(bytes))
        .and_then(|()| out.flush())
        .map_err(|source| Error::Io {
            what: format!("cannot write {what}"),
            source,
        })?;
    Ok(ExitStatus::Success)
}
