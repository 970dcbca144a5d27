//! What the daemon logs matches what README promises (issue 18, point 14): one line per
//! pass at the default level, each field once in the pretty format, and shutdowns that
//! say how the process ends.

use std::collections::BTreeSet;

use super::{DEADLINE, one_prompt, wait_for_text};
use crate::support::scenario::prompt;

#[test]
fn a_pass_logs_one_line_at_the_default_level() {
    let s = one_prompt();
    let daemon = s.watch(&[]);
    daemon.wait_ready(DEADLINE);
    // The first pass's line is read (it may reach the pipe after `/readyz` says 200).
    daemon.wait_passes(1, DEADLINE);
    let from = daemon.logs().len();
    s.repo
        .write("prompts/a.prompt.yaml", &prompt("A", "second"));
    let head = s.repo.commit("Second A");
    daemon.wait_pass(DEADLINE, "the commit's pass", |p| {
        p["revision"] == head.as_str()
    });
    let lines: Vec<_> = daemon.logs()[from..]
        .iter()
        .filter(|l| l["level"] == "INFO" || l["level"] == "WARN" || l["level"] == "ERROR")
        .cloned()
        .collect();
    assert_eq!(lines.len(), 1, "one line for the pass: {lines:#?}");
    assert_eq!(lines[0]["message"], "pass finished");
}

#[test]
fn pretty_logs_print_each_field_once() {
    let s = one_prompt();
    s.repo
        .write("prompts/a.prompt.yaml", &prompt("A", "second"));
    s.repo.commit("Second A");
    s.repo.tag("v1.0.0");
    let output = s
        .watch_command(&["--once"])
        .args(["--log-format", "pretty", "-v"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("pass finished"), "{text}");
    for line in text.lines() {
        let mut seen = BTreeSet::new();
        // A field is ` key=value`: a space before it (a URL's `?page=` or `&x=` is not).
        for word in line.split(' ').skip(1) {
            if let Some((key, _)) = word.split_once('=')
                && !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            {
                assert!(seen.insert(key.to_owned()), "`{key}` twice in: {line}");
            }
        }
    }
    wait_for_text(&s, "A", "second");
}
