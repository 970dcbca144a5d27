//! A remote source over smart HTTP: first clone, new commits and tags, rollbacks,
//! force-pushes, deleted tags and branches, tokens, a hanging server, a large tree.

use std::time::{Duration, Instant};

use super::{Remote, git_in};
use crate::support::git::BASE_TIME;
use crate::support::scenario::prompt;

#[test]
fn the_first_look_clones_a_shallow_bare_mirror_and_syncs_the_tip() {
    let remote = Remote::new();
    let origin = &remote.scenario.repo;
    origin.write("prompts/a.prompt.yaml", &prompt("A", "one"));
    origin.commit("one");
    origin.write("prompts/a.prompt.yaml", &prompt("A", "two"));
    let tip = origin.commit("two");

    let (stdout, _) = remote.sync(0);
    assert!(stdout.contains("A"), "{stdout}");
    assert_eq!(remote.texts_of("A"), ["two"]);
    let newest = remote.scenario.newest_of("A");
    assert!(
        newest["description"].as_str().unwrap().contains(&tip),
        "{newest}"
    );
    // A bare mirror holding the tip alone, one commit deep.
    let mirror = remote.mirror();
    assert_eq!(
        git_in(&mirror, &["rev-parse", "--is-bare-repository"]),
        "true"
    );
    assert_eq!(git_in(&mirror, &["rev-parse", "refs/heads/main"]), tip);
    assert_eq!(
        git_in(&mirror, &["rev-list", "--count", "refs/heads/main"]),
        "1"
    );
    assert!(mirror.join("shallow").is_file());
}

#[test]
fn an_unchanged_remote_costs_one_listing_and_no_fetch() {
    let remote = Remote::new();
    let origin = &remote.scenario.repo;
    origin.write("a.prompt.yaml", &prompt("A", "one"));
    origin.commit("one");
    origin.tag_annotated("v1", "first", BASE_TIME + 1_000);
    remote.sync(0);
    assert!(
        remote.server.count("fetch") >= 1,
        "{:?}",
        remote.server.served()
    );

    remote.server.clear();
    remote.scenario.emu.clear_requests();
    remote.sync(0);
    let served = remote.server.served();
    assert_eq!(remote.server.count("fetch"), 0, "{served:?}");
    assert_eq!(remote.server.count("ls-refs"), 1, "{served:?}");
    assert!(served.len() <= 2, "one listing: {served:?}");
    assert!(remote.scenario.emu.change_requests().is_empty());
    assert_eq!(remote.texts_of("A"), ["one"]);
    assert_eq!(remote.live_text("A").as_deref(), Some("one"));
}

#[test]
fn a_new_commit_syncs_and_a_new_tag_deploys() {
    let remote = Remote::new();
    let origin = &remote.scenario.repo;
    origin.write("a.prompt.yaml", &prompt("A", "one"));
    origin.commit("one");
    remote.sync(0);
    assert_eq!(remote.scenario.live_of("A"), None);

    origin.write("a.prompt.yaml", &prompt("A", "two"));
    let two = origin.commit("two");
    remote.sync(0);
    assert_eq!(remote.texts_of("A"), ["one", "two"]);
    assert_eq!(remote.scenario.live_of("A"), None);

    origin.tag_annotated("v1.0.0", "release", BASE_TIME + 10_000);
    remote.server.clear();
    remote.sync(0);
    assert_eq!(remote.live_text("A").as_deref(), Some("two"));
    assert_eq!(remote.texts_of("A"), ["one", "two"]);
    // The tag alone was fetched.
    assert_eq!(
        remote.server.count("fetch"),
        1,
        "{:?}",
        remote.server.served()
    );
    assert_eq!(
        git_in(&remote.mirror(), &["rev-parse", "v1.0.0^{commit}"]),
        two
    );
}

#[test]
fn a_tag_on_an_older_commit_rolls_back_and_a_deleted_newest_tag_rolls_back_too() {
    let remote = Remote::new();
    let origin = &remote.scenario.repo;
    origin.write("a.prompt.yaml", &prompt("A", "one"));
    let one = origin.commit("one");
    origin.tag_annotated("v1", "first", BASE_TIME + 1_000);
    origin.write("a.prompt.yaml", &prompt("A", "two"));
    origin.commit("two");
    origin.tag_annotated("v2", "second", BASE_TIME + 2_000);
    remote.sync(0);
    assert_eq!(remote.live_text("A").as_deref(), Some("two"));

    // A newer tag on the older commit: a rollback.
    origin.tag_annotated_at("v3", &one, "roll back", BASE_TIME + 3_000);
    remote.sync(0);
    assert_eq!(remote.live_text("A").as_deref(), Some("one"));

    // The newest tag deleted: v2 is the release again.
    origin.git(["tag", "-d", "v3"]);
    let (_, stderr) = remote.sync(0);
    assert_eq!(remote.live_text("A").as_deref(), Some("two"));
    assert!(stderr.contains("pruned"), "{stderr}");
    assert_eq!(git_in(&remote.mirror(), &["tag", "--list"]), "v1\nv2");
    // The rollback made "one" newest, and the tip's "two" followed it; nothing since.
    assert_eq!(remote.texts_of("A"), ["two", "one", "two"]);
}

#[test]
fn a_force_push_syncs_the_new_tip() {
    let remote = Remote::new();
    let origin = &remote.scenario.repo;
    origin.write("a.prompt.yaml", &prompt("A", "one"));
    origin.commit("one");
    origin.write("a.prompt.yaml", &prompt("A", "two"));
    origin.commit("two");
    remote.sync(0);

    origin.git(["reset", "--quiet", "--hard", "HEAD~1"]);
    origin.write("a.prompt.yaml", &prompt("A", "rewritten"));
    let rewritten = origin.commit("rewritten");
    remote.sync(0);
    assert_eq!(remote.texts_of("A"), ["two", "rewritten"]);
    assert_eq!(
        git_in(&remote.mirror(), &["rev-parse", "refs/heads/main"]),
        rewritten
    );
}

#[test]
fn a_deleted_branch_is_a_stalled_error_and_changes_nothing() {
    let remote = Remote::new();
    let origin = &remote.scenario.repo;
    origin.write("a.prompt.yaml", &prompt("A", "one"));
    origin.commit("one");
    origin.git(["branch", "prompts"]);
    let run = |code| {
        let mut cmd = remote.cmd(&["sync"]);
        cmd.env("PROMPTSYNC_SOURCE__BRANCH", "prompts");
        remote.run(cmd, code)
    };
    run(0);
    assert_eq!(remote.texts_of("A"), ["one"]);

    origin.git(["branch", "-D", "prompts"]);
    remote.scenario.emu.clear_requests();
    let (_, stderr) = run(1);
    assert!(
        stderr.contains("the branch `prompts` does not exist at"),
        "{stderr}"
    );
    assert!(remote.scenario.emu.requests().is_empty(), "no pass ran");
    assert_eq!(remote.texts_of("A"), ["one"]);
    // The mirror keeps the last tip.
    assert!(!git_in(&remote.mirror(), &["rev-parse", "refs/heads/prompts"]).is_empty());
}

#[test]
fn a_token_is_sent_from_its_file_and_a_wrong_one_stalls_without_a_storm() {
    let remote = Remote::new();
    let origin = &remote.scenario.repo;
    origin.write("a.prompt.yaml", &prompt("A", "one"));
    origin.commit("one");
    remote.server.require_token(Some(("git", "right-token")));
    let token_file = remote.work.path().join("token");
    let run = |code| {
        let mut cmd = remote.cmd(&["sync"]);
        cmd.env("PROMPTSYNC_SOURCE__TOKEN_FILE", &token_file);
        remote.run(cmd, code)
    };

    // No token at all: the server wants one.
    let (_, stderr) = remote.sync(1);
    assert!(stderr.contains("refused the credentials"), "{stderr}");
    assert!(stderr.contains("source.token_file"), "{stderr}");

    std::fs::write(&token_file, "wrong-token\n").unwrap();
    remote.server.clear();
    let (stdout, stderr) = run(1);
    assert!(stderr.contains("refused the credentials"), "{stderr}");
    assert!(stderr.contains("check the token"), "{stderr}");
    assert!(!stderr.contains("wrong-token") && !stdout.contains("wrong-token"));
    let served = remote.server.served();
    assert!(served.len() <= 3, "no retry storm: {served:?}");
    assert!(remote.scenario.emu.prompts().is_empty());

    // The file is read at each run: a rotated token works at once.
    std::fs::write(&token_file, "right-token\n").unwrap();
    run(0);
    assert_eq!(remote.texts_of("A"), ["one"]);
    assert!(
        remote
            .server
            .served()
            .iter()
            .any(|s| s.authorized && s.status == 200)
    );
}

#[test]
fn a_server_that_hangs_is_given_up_on_in_bounded_time() {
    let remote = Remote::new();
    let origin = &remote.scenario.repo;
    origin.write("a.prompt.yaml", &prompt("A", "one"));
    origin.commit("one");
    remote.server.hang(true);
    let mut cmd = remote.cmd(&["sync"]);
    cmd.env("PROMPTSYNC_SOURCE__FETCH_TIMEOUT", "2s");
    let started = Instant::now();
    let (_, stderr) = remote.run(cmd, 1);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert!(
        stderr.contains("took longer than source.fetch_timeout (2s)"),
        "{stderr}"
    );
    assert!(remote.scenario.emu.prompts().is_empty());
}

#[test]
fn the_repository_configuration_comes_from_the_tip_and_cannot_set_the_source() {
    let remote = Remote::new();
    let origin = &remote.scenario.repo;
    origin.write("a.prompt.yaml", &prompt("A", "one"));
    origin.write("promptsync.toml", "[deploy]\ntags = [\"release-*\"]\n");
    origin.commit("one");
    origin.tag_annotated("release-1", "first", BASE_TIME + 1_000);
    origin.tag_annotated("v9", "not a release here", BASE_TIME + 2_000);
    remote.sync(0);
    assert_eq!(remote.live_text("A").as_deref(), Some("one"));
    assert_eq!(git_in(&remote.mirror(), &["tag", "--list"]), "release-1");

    origin.write(
        "promptsync.toml",
        "[source]\nurl = \"https://evil.example/x.git\"\n",
    );
    origin.write("a.prompt.yaml", &prompt("A", "two"));
    origin.commit("two");
    let (_, stderr) = remote.sync(1);
    assert!(stderr.contains("source.url"), "{stderr}");
    assert!(stderr.contains("operator-trusted"), "{stderr}");
    assert_eq!(remote.texts_of("A"), ["one"]);
}

#[test]
fn plan_and_status_read_the_remote_too() {
    let remote = Remote::new();
    let origin = &remote.scenario.repo;
    origin.write("a.prompt.yaml", &prompt("A", "one"));
    origin.commit("one");
    let mut cmd = crate::support::promptsync();
    cmd.current_dir(remote.work.path())
        .env("RESPAN_BASE_URL", remote.scenario.emu.base_url())
        .env("RESPAN_API_KEY", crate::support::scenario::KEY)
        .env("PROMPTSYNC_SOURCE__CACHE_DIR", remote.cache())
        .args(["plan", "--source", &remote.url()]);
    let (stdout, _) = remote.run(cmd, 0);
    assert!(stdout.contains("a.prompt.yaml"), "{stdout}");
    assert!(
        remote.scenario.emu.prompts().is_empty(),
        "plan sends no change"
    );
    remote.sync(0);
    let (stdout, _) = remote.run(remote.cmd(&["status"]), 0);
    assert!(stdout.contains("a.prompt.yaml"), "{stdout}");
    assert_eq!(remote.texts_of("A"), ["one"]);
}

/// 10,000 files, a few of them prompts: the first fetch and pass stay quick.
#[test]
fn a_ten_thousand_file_repository_is_fetched_and_synced() {
    let remote = Remote::new();
    let origin = &remote.scenario.repo;
    for dir in 0..100 {
        for file in 0..100 {
            origin.write(
                &format!("docs/d{dir:03}/f{file:03}.md"),
                &format!("file {dir} {file}\n"),
            );
        }
    }
    for n in 0..5 {
        origin.write(
            &format!("prompts/p{n}.prompt.yaml"),
            &prompt(&format!("P{n}"), "one"),
        );
    }
    origin.commit("large");
    let started = Instant::now();
    remote.sync(0);
    let took = started.elapsed();
    eprintln!("first fetch and sync of 10,005 files: {took:?}");
    assert!(took < Duration::from_secs(60), "took {took:?}");
    for n in 0..5 {
        assert_eq!(remote.texts_of(&format!("P{n}")), ["one"]);
    }
}

#[test]
fn a_fetch_over_the_size_limit_is_refused_and_not_kept() {
    let remote = Remote::new();
    let origin = &remote.scenario.repo;
    origin.write("a.prompt.yaml", &prompt("A", "one"));
    // 4 MiB that do not compress.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<u8> = (0..4 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    origin.write_bytes("assets/noise.bin", &noise);
    origin.commit("large");
    let run = || {
        let mut cmd = remote.cmd(&["sync"]);
        cmd.env("PROMPTSYNC_SOURCE__MAX_FETCH_SIZE", "1MiB");
        remote.run(cmd, 1)
    };
    let (_, stderr) = run();
    assert!(
        stderr.contains("brought in more than source.max_fetch_size (1 MiB)"),
        "{stderr}"
    );
    assert!(remote.scenario.emu.prompts().is_empty());
    // Nothing of it was kept: the next look fetches (and refuses) again.
    remote.server.clear();
    run();
    assert_eq!(
        remote.server.count("fetch"),
        1,
        "{:?}",
        remote.server.served()
    );
    assert!(
        git_in(
            &remote.mirror(),
            &["rev-parse", "--verify", "-q", "refs/heads/main"]
        )
        .is_empty()
    );
}

#[test]
fn an_unreachable_remote_is_transient_and_a_missing_branch_is_stalled() {
    let remote = Remote::new();
    let origin = &remote.scenario.repo;
    origin.write("a.prompt.yaml", &prompt("A", "one"));
    origin.commit("one");
    // A port bound and not listening: a connection is refused, and no other test's
    // server can take the port meanwhile (as it could once a listener is dropped).
    let closed = tokio::net::TcpSocket::new_v4().unwrap();
    closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = closed.local_addr().unwrap().port();
    let json = |env: &[(&str, String)]| {
        let mut cmd = remote.cmd(&["sync", "--output", "json"]);
        for (key, value) in env {
            cmd.env(key, value);
        }
        let (stdout, _) = remote.run(cmd, 1);
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap()["error"].clone()
    };
    let unreachable = json(&[(
        "PROMPTSYNC_SOURCE__URL",
        format!("http://127.0.0.1:{port}/repo"),
    )]);
    assert_eq!(unreachable["class"], "transient", "{unreachable}");
    assert!(
        unreachable["message"]
            .as_str()
            .unwrap()
            .contains("cannot fetch from"),
        "{unreachable}"
    );
    let missing = json(&[("PROMPTSYNC_SOURCE__BRANCH", "nope".to_owned())]);
    assert_eq!(missing["class"], "stalled", "{missing}");
    assert!(remote.scenario.emu.prompts().is_empty());
}
