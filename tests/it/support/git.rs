//! Real git repositories for tests, built with the git CLI (never git2, so a git2
//! misuse in promptsync cannot hide behind the same misuse here).
//!
//! ```ignore
//! let repo = TestRepo::new();
//! repo.write("prompts/a.prompt.yaml", "name: A\n...");
//! let first = repo.commit("add A");
//! repo.tag_annotated("v1.0.0", "first release", 1_700_000_000);
//! ```
//!
//! Every git command runs with a fixed identity, fixed dates (each commit one minute
//! after the previous one unless given), and no global or system configuration.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// The date of the first commit of every test repository (2023-11-14T22:13:20Z).
pub(crate) const BASE_TIME: i64 = 1_700_000_000;

/// A repository with a working tree, in its own temp dir (removed on drop).
#[derive(Debug)]
pub(crate) struct TestRepo {
    /// Holds the repository and anything made beside it (linked worktrees).
    _dir: TempDir,
    path: PathBuf,
    clock: Cell<i64>,
}

impl TestRepo {
    /// A new repository with branch `main` and no commits.
    pub(crate) fn new() -> TestRepo {
        let dir = tempfile::Builder::new()
            .prefix("promptsync-it-")
            .tempdir()
            .expect("create a temp dir");
        let path = dir.path().join("repo");
        std::fs::create_dir(&path).expect("create the repo dir");
        let repo = TestRepo::at(dir, path);
        repo.git(["init", "--quiet", "--initial-branch=main"]);
        repo
    }

    fn at(dir: TempDir, path: PathBuf) -> TestRepo {
        // Canonical, so paths compare equal to what promptsync reports.
        let path = std::fs::canonicalize(&path).expect("canonicalize the repo path");
        TestRepo {
            _dir: dir,
            path,
            clock: Cell::new(BASE_TIME),
        }
    }

    /// The work tree root.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Write `text` to `rel` (parent directories created), replacing what was there.
    pub(crate) fn write(&self, rel: &str, text: &str) -> &Self {
        self.write_bytes(rel, text.as_bytes())
    }

    pub(crate) fn write_bytes(&self, rel: &str, bytes: &[u8]) -> &Self {
        let file = self.path.join(rel);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).expect("create parent dirs");
        }
        std::fs::write(&file, bytes).unwrap_or_else(|err| panic!("write {rel}: {err}"));
        self
    }

    /// Read a file of the work tree.
    pub(crate) fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path.join(rel))
            .unwrap_or_else(|err| panic!("read {rel}: {err}"))
    }

    /// Remove a file or a directory tree of the work tree.
    pub(crate) fn remove(&self, rel: &str) -> &Self {
        let path = self.path.join(rel);
        let result = if path.is_dir() && !path.is_symlink() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        result.unwrap_or_else(|err| panic!("remove {rel}: {err}"));
        self
    }

    /// Make `rel` a symbolic link to `target` (as written, relative or absolute).
    pub(crate) fn symlink(&self, rel: &str, target: &str) -> &Self {
        let link = self.path.join(rel);
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent).expect("create parent dirs");
        }
        std::os::unix::fs::symlink(target, &link)
            .unwrap_or_else(|err| panic!("symlink {rel} -> {target}: {err}"));
        self
    }

    /// Stage everything and commit (empty commits allowed); the full commit id. The
    /// commit is dated one minute after the previous one.
    pub(crate) fn commit(&self, message: &str) -> String {
        let time = self.clock.get() + 60;
        self.commit_at(message, time)
    }

    /// [`TestRepo::commit`] with author and committer dates at `unix_time`.
    pub(crate) fn commit_at(&self, message: &str, unix_time: i64) -> String {
        self.clock.set(self.clock.get().max(unix_time));
        self.git(["add", "--all"]);
        self.git_at(
            unix_time,
            [
                "commit",
                "--quiet",
                "--allow-empty",
                "--no-verify",
                "-m",
                message,
            ],
        );
        self.head()
    }

    /// The full id of HEAD.
    pub(crate) fn head(&self) -> String {
        self.rev_parse("HEAD")
    }

    /// The full commit id `rev` names.
    pub(crate) fn rev_parse(&self, rev: &str) -> String {
        self.git(["rev-parse", "--verify", &format!("{rev}^{{commit}}")])
    }

    /// A lightweight tag on HEAD.
    pub(crate) fn tag(&self, name: &str) -> &Self {
        self.git(["tag", name]);
        self
    }

    /// A lightweight tag on `rev`.
    pub(crate) fn tag_at(&self, name: &str, rev: &str) -> &Self {
        self.git(["tag", name, rev]);
        self
    }

    /// An annotated tag on HEAD whose tagger date is `unix_time`.
    pub(crate) fn tag_annotated(&self, name: &str, message: &str, unix_time: i64) -> &Self {
        self.tag_annotated_at(name, "HEAD", message, unix_time)
    }

    /// An annotated tag on `rev` whose tagger date is `unix_time`.
    pub(crate) fn tag_annotated_at(
        &self,
        name: &str,
        rev: &str,
        message: &str,
        unix_time: i64,
    ) -> &Self {
        self.git_at(unix_time, ["tag", "--annotate", name, rev, "-m", message]);
        self
    }

    /// Check out `rev` with a detached HEAD.
    pub(crate) fn detach(&self, rev: &str) -> &Self {
        self.git(["checkout", "--quiet", "--detach", rev]);
        self
    }

    /// Run git in the work tree with the test identity; its trimmed stdout. Panics
    /// with git's stderr when it fails.
    pub(crate) fn git<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let time = self.clock.get();
        self.git_at(time, args)
    }

    fn git_at<I, S>(&self, unix_time: i64, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        run_git(&self.path, unix_time, args)
    }

    /// Run git in `dir` (a linked worktree of this repository, say) with the test
    /// identity and clock; its trimmed stdout.
    pub(crate) fn git_in<I, S>(&self, dir: &Path, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let time = self.clock.get() + 60;
        self.clock.set(time);
        run_git(dir, time, args)
    }

    /// A linked worktree of this repository (`git worktree add --detach`), at HEAD,
    /// beside the repository; its `.git` is a file.
    pub(crate) fn linked_worktree(&self, name: &str) -> PathBuf {
        let path = self
            .path
            .parent()
            .expect("the repo has a parent dir")
            .join(name);
        self.git([
            "worktree",
            "add",
            "--quiet",
            "--detach",
            path.to_str().expect("UTF-8 temp path"),
        ]);
        std::fs::canonicalize(path).expect("canonicalize the worktree path")
    }

    /// A shallow clone (`git clone --depth 1 file://...`) of this repository, with its
    /// tags, in a temp dir of its own.
    pub(crate) fn shallow_clone(&self) -> TestRepo {
        self.clone_with(&["--depth", "1", "--no-single-branch"])
    }

    /// A full clone of this repository, in a temp dir of its own.
    pub(crate) fn full_clone(&self) -> TestRepo {
        self.clone_with(&[])
    }

    fn clone_with(&self, flags: &[&str]) -> TestRepo {
        let dir = tempfile::Builder::new()
            .prefix("promptsync-it-clone-")
            .tempdir()
            .expect("create a temp dir");
        let url = format!("file://{}", self.path.display());
        let mut args = vec!["clone", "--quiet"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[url.as_str(), "repo"]);
        run_git(dir.path(), self.clock.get(), args);
        let path = dir.path().join("repo");
        let clone = TestRepo::at(dir, path);
        clone.clock.set(self.clock.get());
        clone
    }
}

impl Default for TestRepo {
    fn default() -> Self {
        TestRepo::new()
    }
}

fn run_git<I, S>(dir: &Path, unix_time: i64, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let date = format!("@{unix_time} +0000");
    let mut command = Command::new("git");
    command
        .current_dir(dir)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Test Author")
        .env("GIT_AUTHOR_EMAIL", "author@example.com")
        .env("GIT_AUTHOR_DATE", &date)
        .env("GIT_COMMITTER_NAME", "Test Committer")
        .env("GIT_COMMITTER_EMAIL", "committer@example.com")
        .env("GIT_COMMITTER_DATE", &date)
        .env("GIT_PROTOCOL_FROM_USER", "1")
        .env("LC_ALL", "C");
    let output = command.output().expect("run git");
    assert!(
        output.status.success(),
        "git {:?} failed in {}: {}",
        command.get_args().collect::<Vec<_>>(),
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}
