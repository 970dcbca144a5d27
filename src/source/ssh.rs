//! SSH through the system's OpenSSH client, told everything explicitly: the key (a
//! private copy, since ssh refuses a key that others may read, as a Kubernetes Secret
//! mounted 0644 is), the known_hosts file with strict checking, no ssh_config, no agent,
//! no prompt, a connect timeout and keepalives, and the whole run killed at the fetch's
//! deadline (`timeout`, when the system has it). ssh's own log goes to a file that is
//! read when the fetch fails: a changed or unknown host key, with the fingerprint the
//! server offered, or a refused key. Knows nothing about what is fetched.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::gitrepo::shell_word;

/// One SSH connection's files: the key's private copy and ssh's log, removed on drop.
#[derive(Debug)]
pub(super) struct SshRun {
    dir: tempfile::TempDir,
    known_hosts: PathBuf,
}

/// What ssh's log says went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SshFailure {
    /// The server's host key is not the one known_hosts has for it.
    HostKeyChanged { fingerprint: Option<String> },
    /// known_hosts has no key for the server.
    HostKeyUnknown { fingerprint: Option<String> },
    /// The server refused the key.
    Refused { line: String },
}

impl SshRun {
    /// Write `key` to a private file under `parent` for one connection.
    pub(super) fn prepare(
        key: &[u8],
        known_hosts: &Path,
        parent: &Path,
    ) -> std::io::Result<SshRun> {
        let dir = tempfile::Builder::new().prefix("ssh-").tempdir_in(parent)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(dir.path().join("key"))?;
        file.write_all(key)?;
        // OpenSSH wants the key to end with a line break.
        if !key.ends_with(b"\n") {
            file.write_all(b"\n")?;
        }
        let known_hosts = std::path::absolute(known_hosts)?;
        Ok(SshRun { dir, known_hosts })
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("ssh.log")
    }

    /// The command gix runs (through `sh -c`, with the port, host and remote command
    /// after it): OpenSSH with every option given here.
    pub(super) fn command(&self, connect_timeout: Duration, deadline: Duration) -> OsString {
        let path = |path: &Path| shell_word(&path.to_string_lossy());
        let mut command = String::new();
        if let Some(timeout) = program_on_path("timeout") {
            command.push_str(&format!(
                "{} -k 2 {} ",
                path(&timeout),
                deadline.as_secs().max(1)
            ));
        }
        command.push_str(&format!(
            "ssh -F /dev/null -i {key} -o IdentitiesOnly=yes -o IdentityAgent=none \
             -o UserKnownHostsFile={known_hosts} -o GlobalKnownHostsFile=/dev/null \
             -o StrictHostKeyChecking=yes -o UpdateHostKeys=no -o BatchMode=yes \
             -o ConnectTimeout={connect} -o ServerAliveInterval=10 -o ServerAliveCountMax=3 \
             -o LogLevel=DEBUG1 -E {log}",
            key = path(&self.dir.path().join("key")),
            known_hosts = path(&self.known_hosts),
            connect = connect_timeout.as_secs().max(1),
            log = path(&self.log()),
        ));
        OsString::from(command)
    }

    /// What ssh's log says went wrong, if it says.
    pub(super) fn failure(&self) -> Option<SshFailure> {
        let log = std::fs::read(self.log()).ok()?;
        let log = String::from_utf8_lossy(&log[log.len().saturating_sub(256 * 1024)..]);
        diagnose(&log)
    }
}

/// Read ssh's log (LogLevel DEBUG1).
fn diagnose(log: &str) -> Option<SshFailure> {
    // `debug1: Server host key: ssh-ed25519 SHA256:...`
    let fingerprint = log
        .lines()
        .find_map(|line| line.split_once("Server host key: "))
        .and_then(|(_, key)| key.split_whitespace().nth(1))
        .map(str::to_owned);
    if log.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
        return Some(SshFailure::HostKeyChanged { fingerprint });
    }
    if log.contains("Host key verification failed") {
        return Some(SshFailure::HostKeyUnknown { fingerprint });
    }
    log.lines()
        .find(|line| line.contains("Permission denied"))
        .map(|line| SshFailure::Refused {
            line: line.trim().to_owned(),
        })
}

/// `name` as found on `PATH`.
fn program_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_host_key_gives_the_offered_fingerprint() {
        let log = "debug1: Connecting to 127.0.0.1 [127.0.0.1] port 2222.\n\
                   debug1: Server host key: ssh-ed25519 SHA256:AbCdEf0123\n\
                   @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
                   @    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n\
                   Host key verification failed.\n";
        assert_eq!(
            diagnose(log),
            Some(SshFailure::HostKeyChanged {
                fingerprint: Some("SHA256:AbCdEf0123".into())
            })
        );
        let unknown = "debug1: Server host key: ssh-ed25519 SHA256:xyz\n\
                       No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\n\
                       Host key verification failed.\n";
        assert_eq!(
            diagnose(unknown),
            Some(SshFailure::HostKeyUnknown {
                fingerprint: Some("SHA256:xyz".into())
            })
        );
        let refused = "debug1: Authentications that can continue: publickey\n\
                       git@127.0.0.1: Permission denied (publickey).\n";
        assert!(matches!(
            diagnose(refused),
            Some(SshFailure::Refused { .. })
        ));
        assert_eq!(diagnose("debug1: all fine\n"), None);
    }

    #[test]
    fn the_key_copy_is_private_and_the_command_quotes_paths() {
        let dir = tempfile::tempdir().unwrap();
        let run = SshRun::prepare(b"KEY", Path::new("/etc/it's known_hosts"), dir.path()).unwrap();
        let mode = std::fs::metadata(run.dir.path().join("key"))
            .unwrap()
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        let command = run
            .command(Duration::from_secs(10), Duration::from_secs(60))
            .into_string()
            .unwrap();
        assert!(command.contains("StrictHostKeyChecking=yes"), "{command}");
        assert!(
            command.contains("-o UserKnownHostsFile='/etc/it'\\''s known_hosts'"),
            "{command}"
        );
        drop(run);
    }
}
