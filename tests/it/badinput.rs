//! Bad local input that cannot be committed as a fixture, end to end through the real
//! binary: FIFOs, sockets and device links where prompt or content files are expected,
//! links that lead nowhere, names that are not UTF-8 or hold control characters, a
//! 300 KB line, content files in the git directory. Nothing may block, nothing from the
//! git directory may be read or sent, and no control character may reach the terminal.
//! The transcript is pinned; `tests/it/validate.rs` lists every class of bad input with
//! its fixture and message.
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
pub fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}", path.display());
}

fn stdout_of(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(assert.get_output().stdout.clone()).unwrap()
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
    let assert = promptsync()
        .current_dir(repo.path())
        .args(["validate", "--output", "json"])
        .timeout(Duration::from_secs(60))
        .assert()
        .code(1);
    let report: serde_json::Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    let files = report["files"].as_array().unwrap();
    assert!(files.contains(&serde_json::json!({
        "path": "p/\u{1b}[2Jclear.prompt.yaml", "valid": false
    })));
    assert!(!String::from_utf8_lossy(&assert.get_output().stdout).contains(GIT_SECRET));
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
        let found: Vec<String> = report["invalid_files"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| f["diagnostics"].as_array().unwrap().clone())
            .map(|d| {
                format!(
                    "{}:{}:{}: {}",
                    d["path"].as_str().unwrap(),
                    d["line"],
                    d["column"],
                    d["message"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(found, expected, "{args:?}");
    }
    // Only the valid prompt reached the API, and nothing sent holds the secret.
    let names: Vec<String> = scenario
        .emu
        .prompts()
        .iter()
        .map(|p| p["name"].to_string())
        .collect();
    assert_eq!(names, ["\"Ok\""]);
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
