//! A remote source over SSH, through the system's ssh, against an sshd on 127.0.0.1:
//! a key from a file, strict host key checking against a known_hosts file.

use super::Remote;
use crate::support::scenario::prompt;
use crate::support::sshd::Sshd;

/// The remote with sshd, or `None` (the test is skipped, saying why) where sshd cannot
/// run.
fn ssh_remote() -> Option<(Remote, Sshd)> {
    let sshd = Sshd::start()?;
    Some((Remote::new(), sshd))
}

fn ssh_cmd(
    remote: &Remote,
    sshd: &Sshd,
    key: &std::path::Path,
    right_host: bool,
) -> assert_cmd::Command {
    let known_hosts = remote.work.path().join("known_hosts");
    std::fs::write(&known_hosts, sshd.known_hosts(right_host)).unwrap();
    let mut cmd = remote.cmd(&["sync"]);
    cmd.env(
        "PROMPTSYNC_SOURCE__URL",
        sshd.url(remote.scenario.repo.path()),
    )
    .env("PROMPTSYNC_SOURCE__SSH_KEY_FILE", key)
    .env("PROMPTSYNC_SOURCE__KNOWN_HOSTS_FILE", &known_hosts)
    .env("PROMPTSYNC_SOURCE__FETCH_TIMEOUT", "30s");
    cmd
}

#[test]
fn a_key_and_known_hosts_fetch_over_ssh() {
    let Some((remote, sshd)) = ssh_remote() else {
        return;
    };
    let origin = &remote.scenario.repo;
    origin.write("a.prompt.yaml", &prompt("A", "one"));
    origin.commit("one");
    origin.tag_annotated("v1", "release", crate::support::git::BASE_TIME + 1_000);
    // A key mounted readable by others (a Secret's default mode) still works.
    let key = remote.work.path().join("id");
    std::fs::copy(sshd.user_key(), &key).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    remote.run(ssh_cmd(&remote, &sshd, &key, true), 0);
    assert_eq!(remote.texts_of("A"), ["one"]);
    assert_eq!(remote.live_text("A").as_deref(), Some("one"));

    origin.write("a.prompt.yaml", &prompt("A", "two"));
    origin.commit("two");
    remote.run(ssh_cmd(&remote, &sshd, &key, true), 0);
    assert_eq!(remote.texts_of("A"), ["one", "two"]);
    assert_eq!(remote.live_text("A").as_deref(), Some("one"));
}

#[test]
fn a_host_key_mismatch_stalls_and_shows_the_offered_fingerprint() {
    let Some((remote, sshd)) = ssh_remote() else {
        return;
    };
    let origin = &remote.scenario.repo;
    origin.write("a.prompt.yaml", &prompt("A", "one"));
    origin.commit("one");
    let (_, stderr) = remote.run(ssh_cmd(&remote, &sshd, &sshd.user_key(), false), 1);
    assert!(
        stderr.contains("does not match the one in source.known_hosts_file"),
        "{stderr}"
    );
    assert!(stderr.contains(&sshd.fingerprint()), "{stderr}");
    assert!(remote.scenario.emu.prompts().is_empty());
}

#[test]
fn a_key_the_server_does_not_know_is_refused() {
    let Some((remote, sshd)) = ssh_remote() else {
        return;
    };
    let origin = &remote.scenario.repo;
    origin.write("a.prompt.yaml", &prompt("A", "one"));
    origin.commit("one");
    let (_, stderr) = remote.run(ssh_cmd(&remote, &sshd, &sshd.stranger_key(), true), 1);
    assert!(stderr.contains("refused the credentials"), "{stderr}");
    assert!(stderr.contains("deploy key"), "{stderr}");
    assert!(remote.scenario.emu.prompts().is_empty());
}

/// The daemon: a host key mismatch is stalled with the offered fingerprint in
/// `/status`, and a corrected known_hosts file is used at the next look, no restart.
#[test]
fn the_daemon_stalls_on_a_host_key_mismatch_until_known_hosts_changes() {
    let Some((remote, sshd)) = ssh_remote() else {
        return;
    };
    let origin = &remote.scenario.repo;
    origin.write("a.prompt.yaml", &prompt("A", "one"));
    origin.commit("one");
    let known_hosts = remote.work.path().join("known_hosts");
    std::fs::write(&known_hosts, sshd.known_hosts(false)).unwrap();
    let url = sshd.url(origin.path());
    let (key, hosts) = (sshd.user_key(), known_hosts.clone());
    let env = [
        ("PROMPTSYNC_SOURCE__URL", url.as_str()),
        ("PROMPTSYNC_SOURCE__SSH_KEY_FILE", key.to_str().unwrap()),
        (
            "PROMPTSYNC_SOURCE__KNOWN_HOSTS_FILE",
            hosts.to_str().unwrap(),
        ),
        ("PROMPTSYNC_SOURCE__FETCH_TIMEOUT", "30s"),
    ];
    let daemon = remote.watch(&env);
    let wait = std::time::Duration::from_secs(60);
    let status = crate::support::wait_until(wait, "the host key to stall the source", || {
        let status = daemon.status();
        (status["source"]["error_class"] == "stalled").then_some(status)
    });
    let error = status["source"]["error"].as_str().unwrap();
    assert!(
        error.contains(&sshd.fingerprint()),
        "the offered fingerprint: {error}"
    );
    assert!(remote.scenario.emu.prompts().is_empty());

    std::fs::write(&known_hosts, sshd.known_hosts(true)).unwrap();
    // A prompt is created before its version: wait for the version, not the prompt.
    crate::support::wait_until(wait, "the sync after known_hosts was fixed", || {
        let synced = !remote.scenario.emu.prompts().is_empty() && !remote.texts_of("A").is_empty();
        synced.then_some(())
    });
    assert_eq!(remote.texts_of("A"), ["one"]);
    daemon.wait_ready(wait);
}
