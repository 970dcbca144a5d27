//! An OpenSSH server on 127.0.0.1 for the SSH source tests: a throwaway host key and
//! user key, the user's key authorized, git's upload-pack reached through the login
//! shell. [`Sshd::start`] returns `None` (and says why) only where sshd cannot run
//! here; CI installs openssh-server (.ci/run).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

pub(crate) struct Sshd {
    child: Child,
    port: u16,
    dir: TempDir,
    user: String,
}

/// Where Debian puts sshd.
const SSHD: &str = "/usr/sbin/sshd";

impl Sshd {
    /// Start sshd, or `None` with the reason printed when it cannot run here.
    pub(crate) fn start() -> Option<Sshd> {
        if !Path::new(SSHD).exists() {
            eprintln!("SKIPPED: {SSHD} is missing (install openssh-server; .ci/run does)");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("promptsync-sshd-")
            .tempdir()
            .ok()?;
        let keygen = |file: &str| {
            Command::new("ssh-keygen")
                .args([
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    "promptsync-test",
                    "-f",
                ])
                .arg(dir.path().join(file))
                .status()
                .is_ok_and(|s| s.success())
        };
        if !(keygen("host_ed25519") && keygen("user_ed25519") && keygen("other_host_ed25519")) {
            eprintln!("SKIPPED: ssh-keygen cannot make keys");
            return None;
        }
        std::fs::copy(
            dir.path().join("user_ed25519.pub"),
            dir.path().join("authorized_keys"),
        )
        .ok()?;
        let user = String::from_utf8(Command::new("id").arg("-un").output().ok()?.stdout)
            .ok()?
            .trim()
            .to_owned();
        // sshd's privilege separation directory, which a fresh container lacks.
        let _ = std::fs::create_dir_all("/run/sshd");
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host_ed25519\nPidFile none\n\
             AuthorizedKeysFile {dir}/authorized_keys\nStrictModes no\nUsePAM no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             PermitRootLogin prohibit-password\nAcceptEnv GIT_PROTOCOL\nLogLevel ERROR\n",
            dir = dir.path().display()
        );
        std::fs::write(dir.path().join("sshd_config"), config).ok()?;
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(dir.path().join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(err) => {
                eprintln!("SKIPPED: cannot start sshd: {err}");
                return None;
            }
        };
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(Sshd {
                    child,
                    port,
                    dir,
                    user,
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                eprintln!("SKIPPED: sshd exited at start ({status}); it needs root here");
                return None;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = child.kill();
        eprintln!("SKIPPED: sshd did not listen within 5 s");
        None
    }

    /// `ssh://USER@127.0.0.1:PORT/ABSOLUTE/PATH` of a repository on this machine.
    pub(crate) fn url(&self, repo: &Path) -> String {
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            self.user,
            self.port,
            repo.display()
        )
    }

    /// The user's private key, authorized on the server.
    pub(crate) fn user_key(&self) -> PathBuf {
        self.dir.path().join("user_ed25519")
    }

    /// A key the server does not know.
    pub(crate) fn stranger_key(&self) -> PathBuf {
        self.dir.path().join("other_host_ed25519")
    }

    /// A known_hosts line with the server's host key (`right`), or with another key.
    pub(crate) fn known_hosts(&self, right: bool) -> String {
        let file = if right {
            "host_ed25519.pub"
        } else {
            "other_host_ed25519.pub"
        };
        let key = std::fs::read_to_string(self.dir.path().join(file)).unwrap();
        let mut fields = key.split_whitespace();
        format!(
            "[127.0.0.1]:{} {} {}\n",
            self.port,
            fields.next().unwrap(),
            fields.next().unwrap()
        )
    }

    /// The SHA256 fingerprint of the server's host key, as ssh prints it.
    pub(crate) fn fingerprint(&self) -> String {
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(self.dir.path().join("host_ed25519.pub"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_owned()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
