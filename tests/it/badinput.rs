//! Bad local input that cannot be committed as a fixture, end to end through the real
//! binary: FIFOs, sockets and device links where prompt or content files are expected,
//! links that lead nowhere, names that are not UTF-8 or hold control characters, a
//! 300 KB line, content files in the git directory, a 100,000-character `content_file`,
//! a submodule holding prompt files, 80,000 findings of one kind. Nothing may block,
//! nothing from the git directory may be read or sent, no control character may reach
//! the terminal, and no output grows with the input beyond an excerpt. The transcript is
//! pinned; `tests/it/validate.rs` lists every class of bad input with its fixture and
//! message.
//!
//! The fuzz test at the end feeds mutated prompt files through parsing, validation, the
//! desired version body and the pure sync plan.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;
use std::time::Duration;

use crate::support::git::TestRepo;
use crate::support::promptsync;
use crate::support::scenario::{Scenario, texts};

/// A secret in the repository's git config, as a credential helper or an
/// `http.extraheader` leaves it there.
const GIT_SECRET: &str = "ghp_d0_not_read_the_git_dir";

fn valid_prompt(name: &str) -> String {
    format!("name: {name}\nmodel: gpt-4o\nmessages:\n  - role: user\n    content: Hello\n")
}

fn with_content_file(name: &str, file: &str) -> String {
    format!("name: {name}\nmodel: gpt-4o\nmessages:\n  - role: system\n    content_file: {file}\n")
}

/// A FIFO at `path` (with the `mkfifo` tool); config tests use it too.
pub(crate) fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}", path.display());
}

fn stdout_of(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(assert.get_output().stdout.clone()).unwrap()
}

/// Each finding of a JSON list of diagnostics as `path:line:column: message`.
fn located(diagnostics: &serde_json::Value) -> Vec<String> {
    diagnostics
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{}:{}:{}: {}",
                d["path"].as_str().unwrap(),
                d["line"],
                d["column"],
                d["message"].as_str().unwrap()
            )
        })
        .collect()
}

/// The findings of the invalid files of a JSON pass report, [`located`].
fn invalid_findings(report: &serde_json::Value) -> Vec<String> {
    report["invalid_files"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| located(&f["diagnostics"]))
        .collect()
}

/// The names of the emulator's prompts, as JSON text.
fn remote_names(scenario: &Scenario) -> Vec<String> {
    scenario
        .emu
        .prompts()
        .iter()
        .map(|p| p["name"].to_string())
        .collect()
}

/// Put [`GIT_SECRET`] in the repository's git config.
fn plant_secret(repo: &TestRepo) {
    let header = format!("Authorization: Bearer {GIT_SECRET}");
    repo.git(["config", "http.extraheader", &header]);
}

/// `promptsync validate ARGS` in `dir`, expected to find errors (and never to block):
/// its stdout, checked to hold no secret of the git config.
fn validate_failing(dir: &Path, args: &[&str]) -> String {
    let assert = promptsync()
        .current_dir(dir)
        .arg("validate")
        .args(args)
        .timeout(Duration::from_secs(60))
        .assert()
        .code(1);
    let out = stdout_of(&assert);
    assert!(!out.contains(GIT_SECRET), "{out}");
    out
}

/// `promptsync validate --output json` in `dir`, expected to find errors: the report,
/// and its text checked to hold no secret of the git config.
fn validate_json(dir: &Path) -> serde_json::Value {
    let assert = promptsync()
        .current_dir(dir)
        .args(["validate", "--output", "json"])
        .timeout(Duration::from_secs(60))
        .assert()
        .code(1);
    let stdout = &assert.get_output().stdout;
    assert!(!String::from_utf8_lossy(stdout).contains(GIT_SECRET));
    serde_json::from_slice(stdout).unwrap()
}

/// A repository holding every kind of generated bad input, and a secret in its git
/// config. The socket listener must live as long as the repository is used.
fn bad_repo() -> (TestRepo, std::os::unix::net::UnixListener) {
    let repo = TestRepo::new();
    plant_secret(&repo);
    let root = repo.path();
    repo.write("p/ok.prompt.yaml", &valid_prompt("Fine"));

    // Prompt files that are not regular files.
    mkfifo(&root.join("p/fifo.prompt.yaml"));
    let socket = std::os::unix::net::UnixListener::bind(root.join("p/socket.prompt.yaml"))
        .expect("bind a unix socket");
    repo.symlink("p/device.prompt.yaml", "/dev/zero");
    repo.symlink("p/dangling.prompt.yaml", "nowhere.yaml");
    repo.symlink("p/git-config.prompt.yaml", "../.git/config");

    // Names: not UTF-8, and with an escape sequence that would clear the screen.
    let name = [b"p/caf\xe9".as_slice(), b".prompt.yaml"].concat();
    std::fs::write(root.join(OsStr::from_bytes(&name)), valid_prompt("Latin-1")).unwrap();
    repo.write(
        "p/\u{1b}[2Jclear.prompt.yaml",
        "name: Clear\nmessages: []\n",
    );

    // A 300 KB line with an error in the middle of it.
    let models = |from: usize| -> String {
        (from..from + 20_000)
            .map(|i| format!("model-{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let long = format!(
        "name: Long\nmodel: gpt-4o\nmessages:\n  - role: user\n    content: Hi\nfallback_models: [{}, {{bad: 1}}, {}]\n",
        models(0),
        models(20_000),
    );
    assert!(long.len() > 300_000);
    repo.write("p/long-line.prompt.yaml", &long);

    // A `content_file` of 100,000 characters: quoted as an excerpt.
    let long_name = format!("text/{}.md", "x".repeat(100_000));
    repo.write(
        "p/long-content-file.prompt.yaml",
        &with_content_file("Long content file", &long_name),
    );

    // A submodule with prompt files of its own (never read: a warning), and a content
    // file in it.
    add_submodule(&repo, "shared");
    repo.write(
        "p/content-submodule.prompt.yaml",
        &with_content_file("In a submodule", "../shared/notes.md"),
    );

    // Content files that are not regular files, or are in the git directory.
    std::fs::create_dir_all(root.join("p/text")).unwrap();
    mkfifo(&root.join("p/text/fifo.md"));
    repo.symlink("p/text/zero.md", "/dev/zero");
    repo.symlink("p/text/git.md", "../../.git/config");
    repo.write("p/text/big.md", &"x".repeat(1024 * 1024 + 1));
    for (i, (name, file)) in [
        ("fifo", "text/fifo.md"),
        ("device", "text/zero.md"),
        ("git", "../.git/config"),
        ("git-link", "text/git.md"),
        ("big", "text/big.md"),
    ]
    .into_iter()
    .enumerate()
    {
        let path = format!("p/content-{name}.prompt.yaml");
        repo.write(&path, &with_content_file(&format!("C{i}"), file));
    }
    (repo, socket)
}

/// A repository of its own, with two prompt files and a text file, added to `repo` as
/// the submodule `path` (checked out, not committed).
fn add_submodule(repo: &TestRepo, path: &str) -> TestRepo {
    let other = TestRepo::new();
    other.write("a.prompt.yaml", &valid_prompt("Submodule A"));
    other.write("deep/b.prompt.yaml", &valid_prompt("Submodule B"));
    other.write("notes.md", "Notes kept in the submodule.\n");
    other.commit("the submodule's prompts");
    repo.git([
        OsStr::new("-c"),
        OsStr::new("protocol.file.allow=always"),
        OsStr::new("submodule"),
        OsStr::new("add"),
        OsStr::new("--quiet"),
        other.path().as_os_str(),
        OsStr::new(path),
    ]);
    other
}

/// Every generated class in one run, pinned; nothing blocks (the timeout would fail
/// the test), the git config's secret never shows, no raw control character reaches
/// the output.
#[test]
fn generated_bad_input_transcript() {
    let (repo, _socket) = bad_repo();
    let out = validate_failing(repo.path(), &[]);
    assert!(
        !out.chars().any(|c| c.is_control() && c != '\n'),
        "raw control characters in:\n{out:?}"
    );
    assert!(out.len() < 20_000, "{} bytes of output", out.len());
    insta::assert_snapshot!("badinput_generated", out);

    // JSON keeps file names exact (the escape is the JSON string's own).
    let report = validate_json(repo.path());
    let files = report["files"].as_array().unwrap();
    assert!(files.contains(&serde_json::json!({
        "path": "p/\u{1b}[2Jclear.prompt.yaml", "valid": false
    })));
}

/// 80,000 undeclared placeholders in one message: 50 warnings listed, the 50th saying
/// how many more there are, every one counted; the output stays small (it was 34.8 MB).
#[test]
fn findings_of_one_kind_are_capped_per_file() {
    let repo = TestRepo::new();
    let placeholders: String = (0..80_000).map(|i| format!("{{{{u{i}}}}}")).collect();
    repo.write(
        "p/many-variables.prompt.yaml",
        &format!(
            "name: Many\nmodel: gpt-4o\ntemperature: 9\nmessages:\n  - role: user\n    content: \"{placeholders}\"\n"
        ),
    );
    let out = validate_failing(repo.path(), &[]);
    assert!(out.len() < 40_000, "{} bytes of output", out.len());
    assert_eq!(out.matches("warning: ").count(), 50, "{out}");
    assert!(
        out.contains("warning: `{{u49}}` in `messages[0]` is not declared under `variables`\n"),
        "{out}"
    );
    assert!(!out.contains("`{{u50}}`"), "{out}");
    assert!(
        out.contains("   = note: and 79,950 more like it in this file\n\nchecked"),
        "{out}"
    );
    assert!(
        out.ends_with("checked 1 prompt file: 0 valid, 1 invalid; 1 error, 80000 warnings\n"),
        "{out}"
    );

    // JSON lists the same 50 and says how many more.
    let report = validate_json(repo.path());
    let diagnostics = report["diagnostics"].as_array().unwrap();
    assert_eq!(diagnostics.len(), 51);
    assert_eq!(diagnostics[50]["more_like_it"], 79_950);
    assert_eq!(report["summary"]["warnings"], 80_000);
}

/// A file name that is not UTF-8 (or a directory's on the way) is the same finding in
/// a commit as in the working tree: `validate`, `validate --rev`, `sync` and `sync
/// --worktree` all report it; the valid prompt still syncs.
#[test]
fn names_that_are_not_utf8_are_reported_from_commits_too() {
    let scenario = Scenario::new();
    let repo = &scenario.repo;
    let root = repo.path();
    std::fs::create_dir_all(root.join("p")).unwrap();
    let file = [b"p/caf\xe9".as_slice(), b".prompt.yaml"].concat();
    std::fs::write(root.join(OsStr::from_bytes(&file)), valid_prompt("Latin-1")).unwrap();
    let dir = root.join(OsStr::from_bytes(b"d\xe9r"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("b.prompt.yaml"),
        valid_prompt("In a Latin-1 directory"),
    )
    .unwrap();
    repo.write("ok.prompt.yaml", &valid_prompt("Ok"));
    repo.commit("odd names");

    let expected = [
        "d\u{fffd}r/b.prompt.yaml:1:1: the file name is not valid UTF-8, so the file cannot be named in the API or a report",
        "p/caf\u{fffd}.prompt.yaml:1:1: the file name is not valid UTF-8, so the file cannot be named in the API or a report",
    ];
    for args in [&["validate"][..], &["validate", "--rev", "HEAD"][..]] {
        let mut args = args.to_vec();
        args.extend(["--output", "json"]);
        let report: serde_json::Value =
            serde_json::from_slice(&scenario.run(&args, 1).stdout).unwrap();
        assert_eq!(located(&report["diagnostics"]), expected, "{args:?}");
    }
    for args in [
        &["sync", "--output", "json"][..],
        &["sync", "--worktree", "--output", "json"][..],
    ] {
        let report: serde_json::Value =
            serde_json::from_slice(&scenario.run(args, 1).stdout).unwrap();
        assert_eq!(invalid_findings(&report), expected, "{args:?}");
    }
    assert_eq!(remote_names(&scenario), ["\"Ok\""]);
}

/// The submodule's prompt files get one warning, from the working tree and from a
/// commit alike; a content file in it is an error; a path named in it is refused.
#[test]
fn submodules_are_not_read_and_say_so() {
    let repo = TestRepo::new();
    let _other = add_submodule(&repo, "vendor/shared");
    repo.write(
        "c.prompt.yaml",
        &with_content_file("C", "vendor/shared/notes.md"),
    );
    repo.commit("add a submodule");
    let warning = "warning: the submodule `vendor/shared` holds 2 prompt files that promptsync does not read: `vendor/shared/a.prompt.yaml`, `vendor/shared/deep/b.prompt.yaml`\n --> vendor/shared\n";
    let error = "error: content file `vendor/shared/notes.md` is inside the submodule `vendor/shared`, whose files promptsync does not read\n";
    for args in [&[][..], &["--rev", "HEAD"][..]] {
        let out = validate_failing(repo.path(), args);
        assert!(out.contains(warning), "{args:?}: {out}");
        assert!(out.contains(error), "{args:?}: {out}");
        assert!(
            out.ends_with("checked 1 prompt file: 0 valid, 1 invalid; 1 error, 1 warning\n"),
            "{args:?}: {out}"
        );
    }
    let out = validate_failing(
        repo.path(),
        &["vendor/shared/a.prompt.yaml", "vendor/shared"],
    );
    assert!(
        out.contains("error: `vendor/shared/a.prompt.yaml` is inside the submodule `vendor/shared`, whose files promptsync does not read\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "error: `vendor/shared` is a submodule, whose files promptsync does not read\n"
        ),
        "{out}"
    );
}

/// Named on the command line, a FIFO or a socket is refused just the same, at once.
#[test]
fn named_fifos_and_sockets_do_not_block() {
    let (repo, _socket) = bad_repo();
    let out = validate_failing(repo.path(), &["p/fifo.prompt.yaml", "p/socket.prompt.yaml"]);
    assert_eq!(
        out,
        "\
error: the prompt file is a named pipe (FIFO), not a regular file
  --> p/fifo.prompt.yaml:1:1
   = help: prompt files are regular files: remove it, or leave it out with prompts.exclude

error: the prompt file is a socket, not a regular file
  --> p/socket.prompt.yaml:1:1
   = help: prompt files are regular files: remove it, or leave it out with prompts.exclude

checked 2 prompt files: 0 valid, 2 invalid; 2 errors, 0 warnings
"
    );
}

/// The git directory is never read: not as a named path, not through a link, not for
/// a content file, in the working tree or a commit, and `sync --worktree` sends none
/// of it.
#[test]
fn the_git_directory_is_never_read_or_sent() {
    let scenario = Scenario::new();
    let repo = &scenario.repo;
    plant_secret(repo);
    repo.write("a.prompt.yaml", &with_content_file("A", ".git/config"));
    repo.write("b.prompt.yaml", &with_content_file("B", "link.md"));
    repo.symlink("link.md", ".git/config");
    repo.write(
        "c.prompt.yaml",
        &with_content_file("C", "./sub/../.git/config"),
    );
    repo.write("ok.prompt.yaml", &valid_prompt("Ok"));
    repo.commit("add");

    let expected = [
        "a.prompt.yaml:5:5: content file `.git/config` is inside the git directory, which promptsync never reads",
        "b.prompt.yaml:5:5: content file `link.md` is inside the git directory, which promptsync never reads",
        "c.prompt.yaml:5:5: content file `./sub/../.git/config` is inside the git directory, which promptsync never reads",
    ];
    for args in [
        &["sync", "--worktree", "--output", "json"][..],
        &["sync", "--output", "json"][..],
    ] {
        let output = scenario.run(args, 1);
        let (stdout, stderr) = texts(&output);
        assert!(
            !stdout.contains(GIT_SECRET) && !stderr.contains(GIT_SECRET),
            "{stdout}\n{stderr}"
        );
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(invalid_findings(&report), expected, "{args:?}");
    }
    // Only the valid prompt reached the API, and nothing sent holds the secret.
    assert_eq!(remote_names(&scenario), ["\"Ok\""]);
    for request in scenario.emu.requests() {
        assert!(!format!("{request:?}").contains(GIT_SECRET), "{request:?}");
    }

    // Named on the command line, the git directory is refused too.
    let out = validate_failing(repo.path(), &[".git", ".git/config"]);
    assert!(
        out.contains("error: `.git` is inside the git directory, which promptsync never reads\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "error: `.git/config` is inside the git directory, which promptsync never reads\n"
        ),
        "{out}"
    );
}

/// A git directory kept inside the work tree under another name (`git init
/// --separate-git-dir`) is a git directory too, by its own name or through a link.
#[test]
fn a_separate_git_dir_inside_the_work_tree_is_never_read() {
    let repo = TestRepo::new();
    let gitdir = repo.path().join("gitdata");
    repo.git([
        OsStr::new("init"),
        OsStr::new("--quiet"),
        OsStr::new("--separate-git-dir"),
        gitdir.as_os_str(),
    ]);
    plant_secret(&repo);
    assert!(repo.path().join(".git").is_file());
    repo.write("a.prompt.yaml", &with_content_file("A", "gitdata/config"));
    repo.write("b.prompt.yaml", &with_content_file("B", "cfg.md"));
    repo.symlink("cfg.md", "gitdata/config");
    let out = validate_failing(repo.path(), &[]);
    assert!(
        out.contains("error: content file `gitdata/config` is inside the git directory"),
        "{out}"
    );
    assert!(
        out.contains("error: content file `cfg.md` is inside the git directory"),
        "{out}"
    );
}

/// Mutated prompt files, from valid ones: parsing and validation never panic, every
/// error has a line and column inside the file, every rendering is free of raw control
/// characters, and a file that still validates goes through its desired version body and
/// the pure sync plan against an empty remote. A fixed seed; 10,000 cases.
mod fuzz {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, RngSeed};

    use promptsync::config::DriftPolicy;
    use promptsync::desired::{self, SourceInfo};
    use promptsync::plan::{self, Remote};
    use promptsync::prompt;

    /// Valid files to start from, small (parsing a YAML file is slow in a debug build,
    /// and the cost grows with its size) and together using every part of the format:
    /// content parts, tools, flow style, block scalars, anchors, numbers as text.
    const SEEDS: &[&str] = &[
        "name: A\nmodel: m\nmessages:\n  - role: user\n    content: hi\n",
        "prompt_id: 4f7c2a9e1b\nname: Numbers\ndescription: d\nsync: false\nmodel: gpt-4o\n\
         temperature: 0.7\nmax_tokens: 2048\ntop_p: 1\nfrequency_penalty: 0\n\
         presence_penalty: -0.5\nseed: 42\nstream: false\nmessages: [{role: user, content: x}]\n",
        "name: Parts\nmodel: gpt-4o\nvariables: {topic: billing, q: How?}\nmessages:\n\
         \x20 - role: system\n    content: |\n      You help with {{topic}}.\n\
         \x20 - role: user\n    name: alice\n    content:\n      - {type: text, text: \"{{q}}\"}\n\
         \x20     - type: image_url\n        image_url: {url: \"https://e.com/a.png\"}\n",
        "name: Tools\nmodel: gpt-4o\nreasoning_effort: low\nverbosity: high\n\
         thinking: {type: enabled, budget_tokens: 1024}\n\
         tools: [{type: function, function: {name: lookup, parameters: {type: object}}}]\n\
         tool_choice: {type: function, function: {name: lookup}}\n\
         response_format: {type: json_schema, json_schema: {name: out}}\n\
         is_enforcing_response_format: true\nmessages:\n  - role: assistant\n\
         \x20   tool_calls: [{id: c1, type: function}]\n  - role: tool\n    tool_call_id: c1\n\
         \x20   content: >-\n      folded\n      text\n",
        "name: &n Models\nmodel: &m gpt-4o\nfallback_models: [gpt-4o-mini, 'o3', *m]\n\
         load_balance_models:\n  - {model: *m, weight: 0.8}\n  - model: gpt-4o-mini\n\
         \x20   weight: 0.2\n    credentials: {env: X}\ndescription: *n\n\
         messages: [{role: developer, content: null}]\n",
        "name: 2024\nmodel: 0123\nmessages: [{role: user, content: 37159387308e4920}]\n",
    ];

    const SNIPPETS: &[&str] = &[
        ": ",
        "- ",
        "\n",
        "  ",
        "\t",
        "\r",
        "[",
        "]",
        "{",
        "}",
        ",",
        "&a ",
        "*a",
        "!!str ",
        "!x ",
        "---\n",
        "...\n",
        "# c",
        "'",
        "\"",
        "|\n",
        ">-\n",
        "? ",
        "\u{1b}[2J",
        "\u{feff}",
        "\0",
        "é",
        "{{x}}",
        "~",
        "<<: *a\n",
        "\\",
        "%YAML 1.2\n",
    ];

    const VALUES: &[&str] = &[
        "0123",
        "1e3",
        "37159387308e4920",
        ".nan",
        "-.inf",
        "true",
        "~",
        "null",
        "''",
        "\"\"",
        "[]",
        "{}",
        "[a, b]",
        "{a: 1}",
        "2024",
        "-1",
        "3.5",
        "0x10",
        "99999999999999999999999",
        "\"a\\e[2Jb\"",
        "../x",
        "prm/../x",
        "a b",
        "!!binary aGk=",
        "*a",
        "&a 1",
        "|\n  block",
        "\"{{v}}\"",
        "user",
        "system",
        "auto",
        "gpt-4o",
        "../../../.git/config",
        "x.md",
    ];

    /// Keys to put in: every key the format knows (from its schema), some it does not.
    fn keys() -> Vec<String> {
        let schema = prompt::schema::schema();
        let mut keys: Vec<String> = Vec::new();
        let mut collect = |node: &serde_json::Value| {
            if let Some(properties) = node.get("properties").and_then(|p| p.as_object()) {
                keys.extend(properties.keys().cloned());
            }
        };
        collect(&schema);
        schema["$defs"]
            .as_object()
            .into_iter()
            .flatten()
            .for_each(|(_, def)| collect(def));
        for odd in [
            "temprature",
            "~",
            "1",
            "? [a]",
            "<<",
            "\"quoted\"",
            "text",
            "x y",
        ] {
            keys.push(odd.to_owned());
        }
        keys.sort();
        keys.dedup();
        keys
    }

    #[derive(Debug, Clone)]
    enum Mutation {
        Byte { at: usize, byte: u8 },
        Insert { at: usize, text: &'static str },
        Delete { at: usize, len: usize },
        DropLine(usize),
        DupLine(usize),
        SwapLines(usize, usize),
        Indent { line: usize, by: i8 },
        Value { line: usize, value: &'static str },
        Key { line: usize, key: String },
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        let at = any::<usize>();
        prop_oneof![
            (at, any::<u8>()).prop_map(|(at, byte)| Mutation::Byte { at, byte }),
            (at, prop::sample::select(SNIPPETS))
                .prop_map(|(at, text)| Mutation::Insert { at, text }),
            (at, 1..40usize).prop_map(|(at, len)| Mutation::Delete { at, len }),
            at.prop_map(Mutation::DropLine),
            at.prop_map(Mutation::DupLine),
            (at, at).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
            (at, -4..=4i8).prop_map(|(line, by)| Mutation::Indent { line, by }),
            (at, prop::sample::select(VALUES))
                .prop_map(|(line, value)| Mutation::Value { line, value }),
            (at, prop::sample::select(keys())).prop_map(|(line, key)| Mutation::Key { line, key }),
        ]
    }

    fn apply(mut bytes: Vec<u8>, mutation: &Mutation) -> Vec<u8> {
        let len = bytes.len().max(1);
        let mut lines: Vec<Vec<u8>> = bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
        let count = lines.len();
        let join = |lines: Vec<Vec<u8>>| lines.join(&b'\n');
        match *mutation {
            Mutation::Byte { at, byte } => {
                if !bytes.is_empty() {
                    bytes[at % len] = byte;
                }
                bytes
            }
            Mutation::Insert { at, text } => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, text.bytes());
                bytes
            }
            Mutation::Delete { at, len: cut } => {
                let at = at % len;
                let end = (at + cut).min(bytes.len());
                bytes.drain(at.min(end)..end);
                bytes
            }
            Mutation::DropLine(line) => {
                lines.remove(line % count);
                join(lines)
            }
            Mutation::DupLine(line) => {
                let copy = lines[line % count].clone();
                lines.insert(line % count, copy);
                join(lines)
            }
            Mutation::SwapLines(a, b) => {
                lines.swap(a % count, b % count);
                join(lines)
            }
            Mutation::Indent { line, by } => {
                let line = &mut lines[line % count];
                if by >= 0 {
                    line.splice(0..0, std::iter::repeat_n(b' ', by.unsigned_abs().into()));
                } else {
                    let spaces = line.iter().take_while(|b| **b == b' ').count();
                    line.drain(..spaces.min(by.unsigned_abs().into()));
                }
                join(lines)
            }
            Mutation::Value { line, value } => {
                let line = &mut lines[line % count];
                if let Some(colon) = line.windows(2).position(|w| w == b": ") {
                    line.truncate(colon + 2);
                    line.extend_from_slice(value.as_bytes());
                }
                join(lines)
            }
            Mutation::Key { line, ref key } => {
                let line = &mut lines[line % count];
                let indent = line
                    .iter()
                    .take_while(|b| matches!(**b, b' ' | b'-'))
                    .count();
                if let Some(colon) = line.iter().position(|b| *b == b':')
                    && colon >= indent
                {
                    line.splice(indent..colon, key.bytes());
                }
                join(lines)
            }
        }
    }

    /// Whether 1-based `line` and `column` point into `text` (or just past a line's
    /// end, or at the start of the line after the last). Lines end as YAML ends them:
    /// at `\r\n`, `\n` or a lone `\r`.
    fn within(text: &str, line: usize, column: usize) -> bool {
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        let lines: Vec<&str> = text.split('\n').collect();
        match lines.get(line.wrapping_sub(1)) {
            Some(found) => column >= 1 && column <= found.chars().count() + 1,
            None => line == lines.len() + 1 && column == 1,
        }
    }

    fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
        let path = "fuzz/case.prompt.yaml";
        let file = prompt::parse_file(path, bytes);
        let text = String::from_utf8_lossy(bytes);
        for d in &file.diagnostics {
            let rendered = d.render(false);
            prop_assert!(
                !rendered.chars().any(|c| c.is_control() && c != '\n'),
                "raw control character in {rendered:?}"
            );
            if !d.is_error() {
                continue;
            }
            let (Some(line), Some(column)) = (d.line, d.column) else {
                return Err(TestCaseError::fail(format!("no position: {d:?}")));
            };
            prop_assert!(
                within(&text, line, column),
                "{line}:{column} is outside the file: {}\n{text:?}",
                d.message
            );
        }
        if let Some(parsed) = file.prompt.as_ref().filter(|_| !file.has_errors()) {
            let desired = desired::desired_prompt(path, parsed, &BTreeMap::new());
            let source = SourceInfo {
                commit: Some("0".repeat(40)),
                subject: Some("fuzz".to_owned()),
                worktree: false,
            };
            let items = plan::plan_sync(
                std::slice::from_ref(&desired),
                &source,
                &Remote::default(),
                DriftPolicy::Correct,
            );
            prop_assert_eq!(items.len(), 1);
        }
        Ok(())
    }

    #[test]
    fn the_seeds_are_valid() {
        for seed in SEEDS {
            let file = prompt::parse_file("seed.prompt.yaml", seed.as_bytes());
            assert!(!file.has_errors(), "{seed}\n{:#?}", file.diagnostics);
        }
    }

    proptest! {
        #![proptest_config(Config {
            cases: 10_000,
            rng_seed: RngSeed::Fixed(0x7072_6f6d_7074),
            rng_algorithm: RngAlgorithm::XorShift,
            failure_persistence: None,
            max_shrink_iters: 2_000,
            ..Config::default()
        })]

        #[test]
        fn mutated_prompt_files_never_panic_and_errors_are_positioned(
            seed in prop::sample::select(SEEDS),
            mutations in prop::collection::vec(mutation(), 1..5),
        ) {
            let bytes = mutations
                .iter()
                .fold(seed.as_bytes().to_vec(), apply);
            check(&bytes)?;
        }
    }
}
