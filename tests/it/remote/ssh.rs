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
