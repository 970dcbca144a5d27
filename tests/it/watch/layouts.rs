//! Repository layouts the daemon must follow: a kubernetes git-sync root whose link is
//! swapped atomically to a new worktree (the old one removed) at every sync.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{DEADLINE, text_of};
use crate::support::emulator::TestEmulator;
use crate::support::git::TestRepo;
use crate::support::scenario::{KEY, prompt};
use crate::support::wait_until;

/// What git-sync v4 does, by hand: a repository at `root`, one worktree per synced
/// revision under `root/.worktrees/<hash>`, and the link `root/<name>` swapped to the
/// newest one with a rename, after which the old worktree is removed.
struct GitSync {
    _dir: tempfile::TempDir,
    root: PathBuf,
    link: PathBuf,
    current: Option<PathBuf>,
}

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

impl GitSync {
    fn new() -> GitSync {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap().join("git");
        std::fs::create_dir(&root).unwrap();
        git(&root, &["init", "--quiet", "--initial-branch=main"]);
        let link = root.join("prompts-repo");
        GitSync {
            _dir: dir,
            root,
            link,
            current: None,
        }
    }

    /// Fetch `upstream`'s HEAD, check it out in a new worktree, swap the link to it,
    /// remove the old worktree. Returns the synced commit.
    fn sync(&mut self, upstream: &TestRepo) -> String {
        let url = format!("file://{}", upstream.path().display());
        git(&self.root, &["fetch", "--quiet", &url, "HEAD"]);
        let hash = git(&self.root, &["rev-parse", "FETCH_HEAD"]);
        let worktree = self.root.join(".worktrees").join(&hash);
        git(
            &self.root,
            &[
                "worktree",
                "add",
                "--quiet",
                "--detach",
                worktree.to_str().unwrap(),
                &hash,
            ],
        );
        let tmp = self.root.join(".prompts-repo.tmp");
        std::os::unix::fs::symlink(format!(".worktrees/{hash}"), &tmp).unwrap();
        std::fs::rename(&tmp, &self.link).unwrap();
        if let Some(old) = self.current.replace(worktree) {
            git(
                &self.root,
                &["worktree", "remove", "--force", old.to_str().unwrap()],
            );
        }
        hash
    }
}

#[test]
fn a_git_sync_link_swap_syncs_the_new_revision_twenty_times_in_a_row() {
    let emu = TestEmulator::start();
    let upstream = TestRepo::new();
    upstream.write("prompts/a.prompt.yaml", &prompt("A", "revision 0"));
    upstream.commit("Revision 0");
    let mut git_sync = GitSync::new();
    git_sync.sync(&upstream);

    let mut command = crate::support::promptsync_command();
    command
        .arg("--repo")
        .arg(&git_sync.link)
        .args(["watch"])
        .env("RESPAN_BASE_URL", emu.base_url())
        .env("RESPAN_API_KEY", KEY)
        .env("PROMPTSYNC_WATCH__DEBOUNCE", "100ms");
    let mut daemon = crate::support::daemon::Daemon::spawn(command);
    daemon.wait_ready(DEADLINE);

    let newest = |emu: &TestEmulator| {
        let prompts = emu.prompts();
        let id = prompts[0]["id"].as_str().unwrap().to_owned();
        text_of(&emu.versions(&id)[0])
    };
    let mut slowest = Duration::ZERO;
    for n in 1..=20 {
        let text = format!("revision {n}");
        upstream.write("prompts/a.prompt.yaml", &prompt("A", &text));
        upstream.commit(&text);
        let hash = git_sync.sync(&upstream);
        let swapped = Instant::now();
        wait_until(Duration::from_secs(10), &format!("{text} to sync"), || {
            (newest(&emu) == text && daemon.status()["last_applied_revision"] == hash.as_str())
                .then_some(())
        });
        slowest = slowest.max(swapped.elapsed());
    }
    eprintln!(
        "git-sync swaps: the slowest synced {:.0} ms after the swap",
        slowest.as_secs_f64() * 1000.0
    );
    assert!(
        slowest < Duration::from_secs(2),
        "the slowest swap took {slowest:?}"
    );
    assert!(daemon.running(), "the daemon survived 20 swaps");
    // notify's INFO lines about watch descriptors the kernel dropped with each old
    // worktree (with a path of notify's sources) are not ours to show.
    assert!(
        !daemon.log_text().contains("watch descriptor"),
        "{}",
        daemon.log_text()
    );
    let failed: Vec<_> = daemon
        .passes()
        .into_iter()
        .filter(|p| p["outcome"] != "success")
        .collect();
    assert!(failed.is_empty(), "no pass failed: {failed:#?}");
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(DEADLINE).code(), Some(0));
}

/// A linked worktree (`git worktree add --detach`) as `--repo`: a commit at its
/// detached HEAD moves `.git/worktrees/<name>/HEAD`, inside the common git dir, and
/// must make a pass (issue 18, point 7), with events or by polling.
fn a_commit_at_a_linked_worktrees_head_makes_a_pass(env: &[(&str, &str)]) {
    let emu = TestEmulator::start();
    let repo = TestRepo::new();
    repo.write("prompts/a.prompt.yaml", &prompt("A", "in main"));
    repo.commit("Add A");
    let worktree = repo.linked_worktree("wt");
    let mut command = crate::support::promptsync_command();
    command
        .arg("--repo")
        .arg(&worktree)
        .arg("watch")
        .env("RESPAN_BASE_URL", emu.base_url())
        .env("RESPAN_API_KEY", KEY)
        .env("PROMPTSYNC_WATCH__DEBOUNCE", "100ms")
        .envs(env.iter().copied());
    let daemon = crate::support::daemon::Daemon::spawn(command);
    daemon.wait_ready(DEADLINE);
    let newest = || {
        let prompts = emu.prompts();
        let id = prompts[0]["id"].as_str().unwrap().to_owned();
        text_of(&emu.versions(&id)[0])
    };
    assert_eq!(newest(), "in main");
    for (n, text) in ["in the worktree", "and again"].into_iter().enumerate() {
        std::fs::write(worktree.join("prompts/a.prompt.yaml"), prompt("A", text)).unwrap();
        repo.git_in(&worktree, ["add", "--all"]);
        repo.git_in(&worktree, ["commit", "--quiet", "-m", text]);
        let head = repo.git_in(&worktree, ["rev-parse", "HEAD"]);
        // Well inside the 5-minute resync: the commit's own event (or poll) does it.
        let pass = daemon.wait_pass(DEADLINE, &format!("the pass of commit {n}"), |p| {
            p["revision"] == head.as_str()
        });
        assert_eq!(pass["trigger"], "refs", "{pass}");
        assert_eq!(newest(), text);
    }
}

#[test]
fn a_commit_at_a_linked_worktrees_detached_head_makes_a_pass() {
    a_commit_at_a_linked_worktrees_head_makes_a_pass(&[]);
}

#[test]
fn a_commit_at_a_linked_worktrees_detached_head_makes_a_pass_when_polling() {
    a_commit_at_a_linked_worktrees_head_makes_a_pass(&[
        ("PROMPTSYNC_WATCH__POLL", "true"),
        ("PROMPTSYNC_WATCH__POLL_INTERVAL", "200ms"),
    ]);
}
