//! Webhooks on the daemon's server (`POST /hooks/github`, `/hooks/gitlab`,
//! `/hooks/generic`) with a remote source whose poll is an hour away: a verified push
//! makes a look and a pass at once; a bad or missing signature is 401 with no detail; a
//! replayed delivery, another branch and a push of paths that cannot matter make no
//! look; a body over 1 MiB is refused; a daemon without a remote source says so (409).

use std::time::Duration;

use hmac::{Hmac, KeyInit as _, Mac as _};
use serde_json::json;
use sha2::Sha256;

use super::Remote;
use crate::support::daemon::Daemon;
use crate::support::scenario::{Scenario, prompt};
use crate::support::wait_until;

const WAIT: Duration = Duration::from_secs(30);
const GITHUB_SECRET: &str = "github-hook-secret";
const GITLAB_SECRET: &str = "gitlab-hook-secret";
const GENERIC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A served origin with `a.prompt.yaml` (its system message in `a.md`), and the
/// daemon on it, synced once, with every provider's secret set and the poll off (an
/// hour).
fn started() -> (Remote, Daemon) {
    let remote = Remote::new();
    let origin = &remote.scenario.repo;
    origin.write(
        "a.prompt.yaml",
        "name: A\nmodel: gpt-4o\nmessages:\n  - role: system\n    content_file: a.md\n",
    );
    origin.write("a.md", "one");
    origin.write("README.md", "docs");
    origin.commit("one");
    let secrets = remote.work.path().join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    let mut env = Vec::new();
    for (name, secret) in [
        ("github", GITHUB_SECRET),
        ("gitlab", GITLAB_SECRET),
        ("generic", GENERIC_SECRET),
    ] {
        let file = secrets.join(name);
        std::fs::write(&file, format!("{secret}\n")).unwrap();
        env.push((
            format!("PROMPTSYNC_WEBHOOK__{}_SECRET_FILE", name.to_uppercase()),
            file.to_str().unwrap().to_owned(),
        ));
    }
    env.push(("PROMPTSYNC_SOURCE__INTERVAL".into(), "1h".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let daemon = remote.watch(&env);
    daemon.wait_ready(WAIT);
    wait_until(WAIT, "the first pass to sync", || {
        (!remote.scenario.emu.prompts().is_empty() && remote.texts_of("A") == ["one"]).then_some(())
    });
    (remote, daemon)
}

/// Commit a new system message in `a.md`.
fn commit_text(remote: &Remote, text: &str) {
    remote.scenario.repo.write("a.md", text);
    remote.scenario.repo.commit(text);
}

fn wait_texts(remote: &Remote, texts: &[&str]) {
    wait_until(WAIT, &format!("versions {texts:?}"), || {
        (remote.texts_of("A") == texts).then_some(())
    });
}

/// A GitHub push payload for `paths` on `branch`.
fn push(branch: &str, paths: &[&str]) -> Vec<u8> {
    json!({
        "ref": format!("refs/heads/{branch}"),
        "forced": false,
        "created": false,
        "deleted": false,
        "commits": [{"id": "x", "added": [], "modified": paths, "removed": []}],
    })
    .to_string()
    .into_bytes()
}

fn github_signature(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(GITHUB_SECRET.as_bytes()).unwrap();
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

fn github(
    daemon: &Daemon,
    event: &str,
    delivery: &str,
    body: &[u8],
    signature: Option<&str>,
) -> (u16, String) {
    let mut headers = vec![
        ("x-github-event", event),
        ("x-github-delivery", delivery),
        ("content-type", "application/json"),
    ];
    if let Some(signature) = signature {
        headers.push(("x-hub-signature-256", signature));
    }
    daemon.post_with("/hooks/github", &headers, body)
}

/// Requests the git server answered so far (each look costs one or more).
fn looks(remote: &Remote) -> usize {
    remote.server.served().len()
}

fn metric(daemon: &Daemon, provider: &str, result: &str) -> u64 {
    let (_, text) = daemon.get("/metrics");
    let prefix = format!(
        "promptsync_webhook_requests_total{{provider=\"{provider}\",result=\"{result}\"}} "
    );
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn github_pushes_are_verified_deduplicated_and_filtered() {
    let (remote, daemon) = started();

    // A ping is answered.
    let body = br#"{"zen": "Keep it logically awesome."}"#;
    let (code, text) = github(
        &daemon,
        "ping",
        "ping-1",
        body,
        Some(&github_signature(body)),
    );
    assert_eq!(code, 200, "{text}");

    // Missing and wrong signatures: 401 with no detail, no look.
    commit_text(&remote, "two");
    let before = looks(&remote);
    let body = push("main", &["a.md"]);
    let (code, text) = github(&daemon, "push", "d-0", &body, None);
    assert_eq!((code, text.as_str()), (401, "unauthorized\n"));
    let wrong = github_signature(b"another body");
    let (code, text) = github(&daemon, "push", "d-0", &body, Some(&wrong));
    assert_eq!((code, text.as_str()), (401, "unauthorized\n"));
    assert_eq!(looks(&remote), before);
    assert_eq!(metric(&daemon, "github", "unauthorized"), 2);

    // A good one: a look and a pass now (the poll is an hour away). The changed path
    // is a content file of a prompt file.
    let (code, text) = github(
        &daemon,
        "push",
        "d-1",
        &body,
        Some(&github_signature(&body)),
    );
    assert_eq!(code, 202, "{text}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&text).unwrap(),
        json!({"accepted": true})
    );
    wait_texts(&remote, &["one", "two"]);
    assert_eq!(metric(&daemon, "github", "accepted"), 1);

    // The same delivery again: answered, nothing looked at.
    commit_text(&remote, "three");
    let before = looks(&remote);
    let (code, text) = github(
        &daemon,
        "push",
        "d-1",
        &body,
        Some(&github_signature(&body)),
    );
    assert_eq!(code, 202, "{text}");
    assert!(text.contains("duplicate"), "{text}");

    // Another branch, and a push of paths no prompt reads: ignored.
    let other = push("feature", &["a.md"]);
    let (code, text) = github(
        &daemon,
        "push",
        "d-2",
        &other,
        Some(&github_signature(&other)),
    );
    assert_eq!(code, 202, "{text}");
    assert!(text.contains("another branch"), "{text}");
    let docs = push("main", &["README.md", ".github/workflows/ci.yml"]);
    let (code, text) = github(
        &daemon,
        "push",
        "d-3",
        &docs,
        Some(&github_signature(&docs)),
    );
    assert_eq!(code, 202, "{text}");
    assert!(text.contains("no changed path"), "{text}");
    assert_eq!(looks(&remote), before, "{:?}", remote.server.served());
    assert_eq!(remote.texts_of("A"), ["one", "two"]);
    assert_eq!(metric(&daemon, "github", "ignored"), 2);
    assert_eq!(metric(&daemon, "github", "duplicate"), 1);

    // A body over 1 MiB is refused before it is read.
    let big = vec![b' '; 1024 * 1024 + 1];
    let (code, _) = github(&daemon, "push", "d-4", &big, Some(&github_signature(&big)));
    assert_eq!(code, 413);
    assert_eq!(metric(&daemon, "github", "too_large"), 1);

    // A push that names the configuration is looked at.
    let config = push("main", &["promptsync.toml"]);
    let (code, text) = github(
        &daemon,
        "push",
        "d-5",
        &config,
        Some(&github_signature(&config)),
    );
    assert_eq!(code, 202, "{text}");
    wait_texts(&remote, &["one", "two", "three"]);
    assert!(!daemon.log_text().contains(GITHUB_SECRET));
}

#[test]
fn gitlab_pushes_need_the_token_and_a_push_event() {
    let (remote, daemon) = started();
    commit_text(&remote, "two");
    let body = push("main", &["a.prompt.yaml"]);
    let send = |token: Option<&str>, event: &str| {
        let mut headers = vec![("x-gitlab-event", event)];
        if let Some(token) = token {
            headers.push(("x-gitlab-token", token));
        }
        daemon.post_with("/hooks/gitlab", &headers, &body)
    };
    let before = looks(&remote);
    assert_eq!(send(None, "Push Hook"), (401, "unauthorized\n".to_owned()));
    assert_eq!(
        send(Some("gitlab-hook-secreT"), "Push Hook"),
        (401, "unauthorized\n".to_owned())
    );
    let (code, text) = send(Some(GITLAB_SECRET), "Issue Hook");
    assert_eq!(code, 202);
    assert!(text.contains("ignored"), "{text}");
    assert_eq!(looks(&remote), before);

    let (code, text) = send(Some(GITLAB_SECRET), "Push Hook");
    assert_eq!(code, 202, "{text}");
    wait_texts(&remote, &["one", "two"]);

    // A tag push deploys.
    remote
        .scenario
        .repo
        .tag_annotated("v1", "release", crate::support::git::BASE_TIME + 5_000);
    let tag = json!({"ref": "refs/tags/v1", "commits": []}).to_string();
    let (code, _) = daemon.post_with(
        "/hooks/gitlab",
        &[
            ("x-gitlab-event", "Tag Push Hook"),
            ("x-gitlab-token", GITLAB_SECRET),
        ],
        tag.as_bytes(),
    );
    assert_eq!(code, 202);
    wait_until(WAIT, "v1 live", || {
        (remote.live_text("A").as_deref() == Some("two")).then_some(())
    });
}

#[test]
fn generic_hooks_are_standard_webhooks_signed_recent_and_not_replayed() {
    let (remote, daemon) = started();
    commit_text(&remote, "two");
    let body = br#"{"ref": "refs/heads/main"}"#;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let send = |id: &str, at: u64, signature: Option<String>| {
        let at = at.to_string();
        let mut headers = vec![("webhook-id", id), ("webhook-timestamp", at.as_str())];
        if let Some(signature) = &signature {
            headers.push(("webhook-signature", signature.as_str()));
        }
        daemon.post_with("/hooks/generic", &headers, body)
    };
    let sign = |id: &str, at: u64| promptsync::sign_webhook(GENERIC_SECRET, id, at, body).unwrap();
    let before = looks(&remote);
    assert_eq!(send("msg_1", now, None).0, 401);
    assert_eq!(send("msg_1", now, Some("v1,bm90IGl0".into())).0, 401);
    // Signed, but ten minutes old.
    assert_eq!(
        send("msg_1", now - 600, Some(sign("msg_1", now - 600))).0,
        401
    );
    assert_eq!(looks(&remote), before);

    let (code, text) = send("msg_1", now, Some(sign("msg_1", now)));
    assert_eq!(code, 202, "{text}");
    wait_texts(&remote, &["one", "two"]);

    commit_text(&remote, "three");
    let before = looks(&remote);
    let (code, text) = send("msg_1", now, Some(sign("msg_1", now)));
    assert_eq!(code, 202);
    assert!(text.contains("duplicate"), "{text}");
    assert_eq!(looks(&remote), before);
    assert_eq!(metric(&daemon, "generic", "unauthorized"), 3);
}

#[test]
fn a_hook_without_a_remote_source_is_a_conflict() {
    let scenario = Scenario::new();
    scenario.repo.write("a.prompt.yaml", &prompt("A", "one"));
    scenario.repo.commit("one");
    let daemon = scenario.watch(&[]);
    let (code, text) = daemon.post_with("/hooks/github", &[("x-github-event", "push")], b"{}");
    assert_eq!(code, 409, "{text}");
    assert!(text.contains("no remote source"), "{text}");
}
