//! `promptsync watch` with a remote source: the daemon's source worker looks at the
//! remote every `source.interval` and syncs what moved (commits, tags, force-pushes,
//! deleted tags); a refused token is stalled without a retry storm until its file
//! changes; a hanging server is given up on in bounded time and what was synced stays,
//! ready.

use std::time::Duration;

use super::{Remote, git_in};
use crate::support::git::BASE_TIME;
use crate::support::scenario::prompt;
use crate::support::wait_until;

const WAIT: Duration = Duration::from_secs(30);

/// Wait until the versions of `A` are `texts`, oldest first.
fn wait_texts(remote: &Remote, texts: &[&str]) {
    wait_until(WAIT, &format!("versions {texts:?}"), || {
        let synced = !remote.scenario.emu.prompts().is_empty();
        (synced && remote.texts_of("A") == texts).then_some(())
    });
}

/// Wait until the live version of `A` says `text`.
fn wait_live(remote: &Remote, text: &str) {
    wait_until(WAIT, &format!("{text:?} live"), || {
        (remote.live_text("A").as_deref() == Some(text)).then_some(())
    });
}

#[test]
fn the_daemon_syncs_new_commits_deploys_tags_rolls_back_and_follows_a_force_push() {
    let remote = Remote::new();
    let origin = &remote.scenario.repo;
    origin.write("a.prompt.yaml", &prompt("A", "one"));
    let one = origin.commit("one");
    let daemon = remote.watch(&[]);
    daemon.wait_ready(WAIT);
    wait_texts(&remote, &["one"]);
    let status = daemon.status();
    let source = &status["source"];
    assert_eq!(source["url"], remote.url(), "{status}");
    assert_eq!(source["branch"], "main", "{status}");
    assert_eq!(source["revision"], one.as_str(), "{status}");
    assert_eq!(source["last_fetched_revision"], one.as_str(), "{status}");
    assert!(source["last_look"].is_string(), "{status}");
    assert!(source["error"].is_null(), "{status}");
    assert_eq!(status["last_applied_revision"], one.as_str(), "{status}");

    // A new commit syncs.
    origin.write("a.prompt.yaml", &prompt("A", "two"));
    let two = origin.commit("two");
    wait_texts(&remote, &["one", "two"]);
    assert_eq!(remote.live_text("A"), None);

    // A new tag deploys.
    origin.tag_annotated("v1", "release", BASE_TIME + 1_000);
    wait_live(&remote, "two");

    // A newer tag on the older commit rolls back.
    origin.tag_annotated_at("v2", &one, "roll back", BASE_TIME + 2_000);
    wait_live(&remote, "one");

    // The newest tag deleted: v1 is the release again.
    origin.git(["tag", "-d", "v2"]);
    wait_live(&remote, "two");
    assert_eq!(git_in(&remote.mirror(), &["tag", "--list"]), "v1");

    // A force-push: the rewritten tip syncs.
    origin.git(["reset", "--quiet", "--hard", &one]);
    origin.write("a.prompt.yaml", &prompt("A", "rewritten"));
    let rewritten = origin.commit("rewritten");
    wait_until(WAIT, "the rewritten tip synced", || {
        let status = daemon.status();
        (status["last_applied_revision"] == rewritten.as_str()).then_some(())
    });
    assert!(remote.texts_of("A").ends_with(&["rewritten".to_owned()]));
    assert_ne!(rewritten, two);
    assert_eq!(
        git_in(&remote.mirror(), &["rev-parse", "refs/heads/main"]),
        rewritten
    );
}

#[test]
fn a_wrong_token_stalls_without_a_retry_storm_and_a_rotated_one_works_without_a_restart() {
    let remote = Remote::new();
    let origin = &remote.scenario.repo;
    origin.write("a.prompt.yaml", &prompt("A", "one"));
    origin.commit("one");
    remote.server.require_token(Some(("git", "right-token")));
    let token_file = remote.work.path().join("token");
    std::fs::write(&token_file, "wrong-token\n").unwrap();
    let token = token_file.to_str().unwrap();
    let daemon = remote.watch(&[("PROMPTSYNC_SOURCE__TOKEN_FILE", token)]);
    let stalled = wait_until(WAIT, "the source to be stalled", || {
        let status = daemon.status();
        (status["source"]["error_class"] == "stalled").then_some(status)
    });
    let error = stalled["source"]["error"].as_str().unwrap();
    assert!(error.contains("refused the credentials"), "{error}");
    assert!(error.contains("check the token"), "{error}");
    assert_ne!(daemon.get("/readyz").0, 200, "nothing was ever synced");
    // Several intervals (1s) pass: no connection is made again while the file is
    // as it was, and the source stays stalled. An absence cannot be awaited: this
    // watches the status for four intervals.
    let before = remote.server.served().len();
    let watched = std::time::Instant::now();
    while watched.elapsed() < Duration::from_secs(4) {
        let status = daemon.status();
        assert_eq!(status["source"]["error_class"], "stalled", "{status}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let after = remote.server.served().len();
    assert!(
        after <= before + 2,
        "no retry storm: {:?}",
        remote.server.served()
    );
    assert!(remote.scenario.emu.prompts().is_empty());
    assert!(!daemon.log_text().contains("wrong-token"));

    // The rotated token is read at the next look.
    std::fs::write(&token_file, "right-token\n").unwrap();
    wait_texts(&remote, &["one"]);
    daemon.wait_ready(WAIT);
    let status = daemon.status();
    assert!(status["source"]["error"].is_null(), "{status}");
    assert!(!daemon.log_text().contains("right-token"));
}

#[test]
fn a_hanging_remote_is_bounded_and_what_was_synced_stays_ready() {
    let remote = Remote::new();
    let origin = &remote.scenario.repo;
    origin.write("a.prompt.yaml", &prompt("A", "one"));
    origin.commit("one");
    let daemon = remote.watch(&[("PROMPTSYNC_SOURCE__FETCH_TIMEOUT", "1s")]);
    daemon.wait_ready(WAIT);
    wait_texts(&remote, &["one"]);

    remote.server.hang(true);
    origin.write("a.prompt.yaml", &prompt("A", "two"));
    origin.commit("two");
    let status = wait_until(WAIT, "a look to time out", || {
        let status = daemon.status();
        status["source"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("took longer than source.fetch_timeout (1s)"))
            .then_some(status)
    });
    assert_eq!(status["source"]["error_class"], "transient", "{status}");
    assert_eq!(daemon.get("/readyz").0, 200, "the last pass was good");
    assert_eq!(remote.texts_of("A"), ["one"]);

    // The server answers again: the backoff's next look syncs the commit.
    remote.server.hang(false);
    wait_texts(&remote, &["one", "two"]);
    let status = daemon.status();
    assert!(status["source"]["error"].is_null(), "{status}");
}

#[test]
fn an_unreachable_remote_at_start_backs_off_and_the_first_good_look_syncs() {
    let remote = Remote::new();
    let origin = &remote.scenario.repo;
    origin.write("a.prompt.yaml", &prompt("A", "one"));
    origin.commit("one");
    remote.server.hang(true);
    let daemon = remote.watch(&[("PROMPTSYNC_SOURCE__FETCH_TIMEOUT", "1s")]);
    let failed = daemon.wait_passes(1, WAIT);
    assert_eq!(failed["outcome"], "transient", "{failed}");
    assert!(failed["retry_in_ms"].is_u64(), "backed off: {failed}");
    remote.server.hang(false);
    wait_texts(&remote, &["one"]);
    daemon.wait_ready(WAIT);
}
