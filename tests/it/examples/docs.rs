//! `promptsync completions` and `promptsync man`: generated at run time from the clap
//! definition, so nothing checked in can fall behind; these tests check that the
//! generators cover the whole command line (every subcommand, every long flag), that
//! the bash script parses, and that groff reads every page without a warning.

use std::io::Write as _;
use std::process::{Command, Stdio};

use clap::CommandFactory;
use promptsync::cli::{Cli, MAN_PAGES};

use crate::support::promptsync;
use crate::support::scenario::texts;

/// The long flags a command accepts, its global ones included.
fn long_flags(command: &clap::Command) -> Vec<String> {
    command
        .get_arguments()
        .filter(|arg| !arg.is_hide_set())
        .filter_map(|arg| arg.get_long().map(str::to_owned))
        .collect()
}

fn stdout_of(args: &[&str]) -> String {
    let output = promptsync().args(args).output().unwrap();
    let (stdout, stderr) = texts(&output);
    assert!(output.status.success(), "promptsync {args:?}: {stderr}");
    assert!(!stdout.is_empty(), "promptsync {args:?} printed nothing");
    stdout
}

#[test]
fn the_bash_completion_knows_every_subcommand_and_flag_and_parses() {
    let script = stdout_of(&["completions", "bash"]);
    let mut root = Cli::command();
    root.build();
    for flag in long_flags(&root) {
        assert!(script.contains(&format!("--{flag}")), "--{flag} missing");
    }
    for sub in root.get_subcommands() {
        assert!(
            script.contains(sub.get_name()),
            "{} missing",
            sub.get_name()
        );
        for flag in long_flags(sub) {
            assert!(
                script.contains(&format!("--{flag}")),
                "{} --{flag} missing",
                sub.get_name()
            );
        }
    }
    let status = Command::new("bash")
        .args(["-n", "-c", &script])
        .status()
        .unwrap();
    assert!(status.success(), "the bash completion does not parse");
}

#[test]
fn every_shell_gets_a_script_naming_every_subcommand() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = stdout_of(&["completions", shell]);
        for sub in MAN_PAGES {
            assert!(script.contains(sub), "{shell}: {sub} missing");
        }
    }
    let output = promptsync().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "an unknown shell is a usage error: 1, never 2"
    );
}

/// `--dry-run` as roff writes it: `\-\-dry\-run`.
fn roff_flag(flag: &str) -> String {
    format!("\\-\\-{}", flag.replace('-', "\\-"))
}

/// groff's warnings about `page` (none expected).
fn groff_warnings(page: &str) -> String {
    let mut groff = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("groff runs (Debian package groff-base; .ci/run installs it)");
    groff
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let output = groff.wait_with_output().unwrap();
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn every_man_page_lists_its_flags_and_reads_without_a_warning() {
    let mut root = Cli::command().disable_help_subcommand(true);
    root.build();
    let page = stdout_of(&["man"]);
    assert!(page.contains(".TH promptsync 1"), "{page}");
    assert!(page.contains(env!("CARGO_PKG_VERSION")));
    for flag in long_flags(&root) {
        assert!(
            page.contains(&roff_flag(&flag)),
            "promptsync(1): --{flag} missing"
        );
    }
    for sub in MAN_PAGES {
        assert!(
            page.contains(&format!("promptsync\\-{}(1)", sub.replace('-', "\\-"))),
            "promptsync(1) names promptsync-{sub}(1)"
        );
    }
    assert_eq!(groff_warnings(&page), "", "promptsync(1)");

    for name in MAN_PAGES {
        let page = stdout_of(&["man", name]);
        assert!(page.contains(&format!(".TH promptsync-{name} 1")), "{page}");
        let sub = root.find_subcommand(name).unwrap();
        for flag in long_flags(sub) {
            assert!(
                page.contains(&roff_flag(&flag)),
                "promptsync-{name}(1): --{flag} missing"
            );
        }
        assert_eq!(groff_warnings(&page), "", "promptsync-{name}(1)");
    }
}
