//! The layering rules ARCHITECTURE.md states, kept by reading the sources: what the
//! API client may import, which steps do no I/O, who writes to stdout, and that
//! nothing asks the API to delete. The compiler keeps the rest (visibility, and
//! `clippy::print_stdout` for the print macros).

use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The Rust files at `rel` under `src/`: the file itself, or every file below the
/// directory, with their text.
fn sources(rel: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut stack = vec![src().join(rel)];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            let shown = path.strip_prefix(src()).unwrap().display().to_string();
            found.push((shown, text));
        }
    }
    assert!(!found.is_empty(), "no sources at src/{rel}");
    found
}

/// Each line of `files` that holds one of `words`, outside comments.
fn uses(files: &[(String, String)], words: &[&str]) -> Vec<String> {
    let mut hits = Vec::new();
    for (file, text) in files {
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for word in words {
                if code.contains(word) {
                    hits.push(format!("src/{file}:{}: {}", number + 1, line.trim()));
                }
            }
        }
    }
    hits
}

#[test]
fn the_api_client_knows_nothing_of_git_files_or_prompt_files() {
    let hits = uses(
        &sources("api"),
        &[
            "crate::gitrepo",
            "crate::discover",
            "crate::desired",
            "crate::prompt",
            "crate::source",
            "crate::repofile",
            "git2::",
            "gix::",
            "std::fs",
        ],
    );
    assert!(
        hits.is_empty(),
        "api/ reaches below its layer:\n{}",
        hits.join("\n")
    );
}

#[test]
fn the_pure_steps_do_no_io() {
    let mut files = sources("plan");
    files.extend(sources("plan.rs"));
    for file in [
        "normalize.rs",
        "deploy.rs",
        "diff.rs",
        "provenance.rs",
        "baseline.rs",
    ] {
        files.extend(sources(file));
    }
    let hits = uses(
        &files,
        &[
            "std::fs",
            "std::net",
            "std::process",
            "tokio",
            "reqwest",
            "git2",
            "gix",
            "crate::api::Client",
            "crate::gitrepo",
        ],
    );
    assert!(
        hits.is_empty(),
        "a pure step does I/O:\n{}",
        hits.join("\n")
    );
}

#[test]
fn nothing_asks_the_api_to_delete() {
    // Only the client talks to the API; its one DELETE is the name it gives a method
    // in messages. (Elsewhere `delete` is the local mirror's git references.)
    let mut hits = uses(&sources("api"), &[".delete("]);
    hits.extend(
        uses(&sources(""), &["Method::DELETE"])
            .into_iter()
            .filter(|hit| !hit.contains("Method::DELETE => \"DELETE\"")),
    );
    assert!(hits.is_empty(), "a delete request:\n{}", hits.join("\n"));
}

#[test]
fn only_the_report_writes_to_stdout() {
    let hits: Vec<String> = uses(&sources(""), &["stdout()"])
        .into_iter()
        .filter(|hit| !hit.starts_with("src/report/"))
        .collect();
    assert!(
        hits.is_empty(),
        "stdout outside report/:\n{}",
        hits.join("\n")
    );
}
