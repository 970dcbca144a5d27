//! Unit tests' real git repositories, made with the git CLI in a temp dir (never git2,
//! so a git2 misuse in promptsync cannot hide behind the same misuse here): fixed
//! identity and dates, no global or system configuration. The integration tests have
//! a fuller one (`tests/it/support/git.rs`); this one holds what unit tests use.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// A repository with a working tree on branch `main`, removed on drop.
pub(crate) struct TestRepo {
    _dir: TempDir,
    path: PathBuf,
}

impl TestRepo {
    /// A new repository without commits.
    pub(crate) fn new() -> TestRepo {
        let dir = tempfile::tempdir().expect("create a temp dir");
        let path = std::fs::canonicalize(dir.path())
            .expect("canonicalize the temp dir")
            .join("repo");
        std::fs::create_dir(&path).expect("create the repo dir");
        let repo = TestRepo { _dir: dir, path };
        repo.git(&["init", "--quiet", "--initial-branch=main"], 0);
        repo
    }

    /// The work tree root (canonical).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Write `text` to `rel`, parent directories made.
    pub(crate) fn write(&self, rel: &str, text: &str) -> &Self {
        let file = self.path.join(rel);
        std::fs::create_dir_all(file.parent().expect("a file has a parent"))
            .expect("create parent dirs");
        std::fs::write(&file, text).expect("write the file");
        self
    }

    /// Make `rel` a symbolic link to `target`, as written.
    pub(crate) fn symlink(&self, rel: &str, target: &str) -> &Self {
        let link = self.path.join(rel);
        std::fs::create_dir_all(link.parent().expect("a link has a parent"))
            .expect("create parent dirs");
        std::os::unix::fs::symlink(target, link).expect("make the link");
        self
    }

    /// Stage everything and commit at `unix_time`; the full commit id.
    pub(crate) fn commit(&self, message: &str, unix_time: i64) -> String {
        self.git(&["add", "--all"], unix_time);
        self.git(
            &["commit", "--quiet", "--allow-empty", "-m", message],
            unix_time,
        );
        self.git(&["rev-parse", "HEAD"], unix_time)
    }

    /// Run git here with the test identity, dated `unix_time`; its trimmed stdout.
    pub(crate) fn git(&self, args: &[&str], unix_time: i64) -> String {
        let date = format!("@{unix_time} +0000");
        let output = Command::new("git")
            .current_dir(&self.path)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.path)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Test Author")
            .env("GIT_AUTHOR_EMAIL", "author@example.com")
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_NAME", "Test Committer")
            .env("GIT_COMMITTER_EMAIL", "committer@example.com")
            .env("GIT_COMMITTER_DATE", &date)
            .env("LC_ALL", "C")
            .output()
            .expect("run git");
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}
