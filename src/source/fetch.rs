//! The network half of the mirror, through gix: list the remote's refs (one
//! connection: the handshake and ls-refs, nothing fetched), and fetch exactly the refs
//! asked for, one commit deep (their trees are all a pass reads). Every connection is
//! bounded: it runs on a thread of its own, is interrupted at its deadline or when the
//! pack it brings in passes the size limit, and is left behind (its ssh killed by
//! `timeout`, its HTTP reads timing out) if it does not stop. The repository's and the
//! user's git configuration play no part: no credential helper, no URL rewrite, no
//! `core.sshCommand`. Blocking: callers keep it off the async workers.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use gix::protocol::handshake::Ref;
use gix::protocol::transport::client::blocking_io::{connect, http, ssh};
use gix::remote::Direction;

use super::credentials::Credentials;
use super::mirror::Mirror;
use super::refs::Advertised;
use super::ssh::{SshFailure, SshRun};
use super::url::{RemoteUrl, Transport};

/// One look or fetch: where to, with what, within which bounds.
#[derive(Debug, Clone)]
pub(super) struct Remote {
    pub(super) url: RemoteUrl,
    pub(super) credentials: Credentials,
    pub(super) mirror: PathBuf,
    pub(super) connect_timeout: Duration,
    pub(super) deadline: Instant,
    pub(super) max_bytes: u64,
}

/// Why a connection failed, in the terms the caller decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Failure {
    /// The server refused the credentials (or wanted some and none were set).
    Refused(String),
    /// SSH: the host key is not the known one (`changed`), or not known at all.
    HostKey {
        changed: bool,
        fingerprint: Option<String>,
    },
    /// The deadline passed.
    TimedOut,
    /// The pack passed the size limit.
    TooLarge,
    /// Anything else: an unreachable server, a broken connection, a protocol error.
    Other(String),
}

/// How long a connection that ignores its interruption is waited for after its
/// deadline before it is left behind.
const GRACE: Duration = Duration::from_secs(2);

/// The remote's branches, tags and HEAD, listed under the prefixes a sync needs:
/// `refs/heads/<branch>` (or HEAD) and `refs/tags/`.
pub(super) fn list(remote: &Remote, branch: Option<&str>) -> Result<Advertised, Failure> {
    let head = match branch {
        Some(branch) => format!("refs/heads/{branch}"),
        None => "HEAD".to_owned(),
    };
    let specs = vec![head, "refs/tags/*:refs/tags/*".to_owned()];
    bounded(remote, move |remote, _interrupt| {
        let repo = open(remote)?;
        let prepare = connection(&repo, remote, &specs)?;
        Ok(advertised(&prepare.ref_map().remote_refs))
    })
}

/// Fetch `refs` (full names) into the same names in the mirror, one commit deep.
pub(super) fn fetch(remote: &Remote, refs: &[String]) -> Result<(), Failure> {
    let specs: Vec<String> = refs.iter().map(|name| format!("+{name}:{name}")).collect();
    bounded(remote, move |remote, interrupt| {
        let repo = open(remote)?;
        let prepare = connection(&repo, remote, &specs)?;
        let depth = std::num::NonZeroU32::MIN;
        prepare
            .with_shallow(gix::remote::fetch::Shallow::DepthAtRemote(depth))
            .with_write_packed_refs_only(true)
            .receive(gix::progress::Discard, interrupt)?;
        Ok(())
    })
}

/// Run `work` on a thread of its own within `remote`'s deadline and size limit.
fn bounded<T: Send + 'static>(
    remote: &Remote,
    work: impl FnOnce(&Connect, &AtomicBool) -> gix::Result<T> + Send + 'static,
) -> Result<T, Failure> {
    let ssh_run = match &remote.credentials {
        Credentials::Ssh { key, known_hosts } => Some(
            SshRun::prepare(key.expose(), known_hosts, &remote.mirror)
                .map_err(|err| Failure::Other(format!("cannot prepare the SSH key: {err}")))?,
        ),
        _ => None,
    };
    let left = remote.deadline.saturating_duration_since(Instant::now());
    let connect = Connect {
        url: remote.url.clone(),
        credentials: remote.credentials.clone(),
        mirror: remote.mirror.clone(),
        connect_timeout: remote.connect_timeout.min(left.max(Duration::from_secs(1))),
        left,
        ssh: ssh_run
            .as_ref()
            .map(|run| run.command(remote.connect_timeout, left)),
    };
    let interrupt = Arc::new(AtomicBool::new(false));
    let (send, receive) = mpsc::channel();
    let flag = Arc::clone(&interrupt);
    let before = Mirror::pack_bytes(&remote.mirror);
    std::thread::Builder::new()
        .name("promptsync-fetch".into())
        .spawn(move || {
            let _ = send.send(work(&connect, &flag).map_err(|err| crate::failure::chain(&err)));
        })
        .map_err(|err| Failure::Other(format!("cannot start the fetch thread: {err}")))?;
    let mut too_large = false;
    let outcome = loop {
        match receive.recv_timeout(Duration::from_millis(10)) {
            Ok(outcome) => break outcome,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break Err("the fetch thread ended without a result".to_owned());
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if Mirror::pack_bytes(&remote.mirror).saturating_sub(before) > remote.max_bytes {
            too_large = true;
            interrupt.store(true, Ordering::Relaxed);
        }
        let now = Instant::now();
        if now >= remote.deadline {
            interrupt.store(true, Ordering::Relaxed);
            if too_large {
                return Err(Failure::TooLarge);
            }
            if now >= remote.deadline + GRACE {
                return Err(Failure::TimedOut);
            }
        }
    };
    // A pack that arrived between two looks at its size is measured once more.
    too_large |= Mirror::pack_bytes(&remote.mirror).saturating_sub(before) > remote.max_bytes;
    match outcome {
        Ok(value) if !too_large => Ok(value),
        Ok(_) => Err(Failure::TooLarge),
        Err(_) if too_large => Err(Failure::TooLarge),
        Err(_) if Instant::now() >= remote.deadline => Err(Failure::TimedOut),
        Err(text) => Err(classify(text, ssh_run.as_ref().and_then(SshRun::failure))),
    }
}

/// What a connection's thread owns.
struct Connect {
    url: RemoteUrl,
    credentials: Credentials,
    mirror: PathBuf,
    connect_timeout: Duration,
    left: Duration,
    /// The ssh command, for an SSH remote.
    ssh: Option<std::ffi::OsString>,
}

fn open(connect: &Connect) -> gix::Result<gix::Repository> {
    gix::open_opts(&connect.mirror, gix::open::Options::isolated())
}

/// A connection to the remote with `specs`, its refs listed.
fn connection<'r>(
    repo: &'r gix::Repository,
    connect: &Connect,
    specs: &[String],
) -> gix::Result<
    gix::remote::fetch::Prepare<
        'r,
        'r,
        Box<dyn gix::protocol::transport::client::blocking_io::Transport + Send>,
    >,
> {
    let remote = repo
        .remote_at_without_url_rewrite(connect.url.as_str())?
        .with_fetch_tags(gix::remote::fetch::Tags::None)
        .with_refspecs(specs.iter().map(String::as_str), Direction::Fetch)?;
    let ssh = match &connect.ssh {
        Some(command) => ssh::connect::Options {
            command: Some(command.clone()),
            disallow_shell: false,
            kind: Some(ssh::ProgramKind::Ssh),
        },
        None => ssh::connect::Options::default(),
    };
    let transport = connect::connect(
        connect.url.as_str(),
        connect::Options {
            version: gix::protocol::transport::Protocol::V2,
            ssh,
            trace: false,
        },
    )?;
    let credentials = connect.credentials.clone();
    let mut connection = remote
        .to_connection_with_transport(transport)
        .with_credentials(move |action| answer(&credentials, action));
    if connect.url.transport() == Transport::Http {
        crate::api::install_tls_provider();
        connection = connection.with_transport_options(Box::new(http_options(connect)));
    }
    connection.prepare_fetch(gix::progress::Discard, Default::default())
}

/// The credentials callback: the token for a `get`, nothing to store or erase (the
/// files are the store). Never a helper program, never a prompt.
fn answer(
    credentials: &Credentials,
    action: gix::credentials::helper::Action,
) -> gix::Result<Option<gix::credentials::protocol::Outcome>> {
    let gix::credentials::helper::Action::Get(context) = action else {
        return Ok(None);
    };
    let Credentials::Token { username, token } = credentials else {
        return Ok(None);
    };
    Ok(Some(gix::credentials::protocol::Outcome {
        credentials: gix::sec::identity::Credentials::UsernamePassword {
            username: username.clone(),
            password: token.expose().to_owned(),
            oauth_refresh_token: None,
        },
        next: context.into(),
    }))
}

/// HTTP: promptsync's user agent, and every read of the connection bounded by the
/// time left.
fn http_options(connect: &Connect) -> http::Options {
    let (connect_timeout, left) = (connect.connect_timeout, connect.left);
    let backend = http::reqwest::Options {
        configure_client: Some(Box::new(move |builder| {
            Ok(builder.connect_timeout(connect_timeout).timeout(left))
        })),
        configure_request: None,
    };
    http::Options {
        user_agent: Some(format!("promptsync/{}", env!("CARGO_PKG_VERSION"))),
        connect_timeout: Some(connect_timeout),
        backend: Some(Arc::new(Mutex::new(backend))),
        ..http::Options::default()
    }
}

/// The refs a listing returned, by kind.
fn advertised(refs: &[Ref]) -> Advertised {
    let mut out = Advertised::default();
    for reference in refs {
        let (name, id) = match reference {
            Ref::Peeled {
                full_ref_name, tag, ..
            } => (full_ref_name, tag.to_string()),
            Ref::Direct {
                full_ref_name,
                object,
            } => (full_ref_name, object.to_string()),
            Ref::Symbolic {
                full_ref_name,
                target,
                tag,
                object,
            } => {
                if full_ref_name == "HEAD" {
                    let branch = target.to_string();
                    if let Some(branch) = branch.strip_prefix("refs/heads/") {
                        out.head = Some(branch.to_owned());
                        out.branches.insert(branch.to_owned(), object.to_string());
                    }
                    continue;
                }
                (full_ref_name, tag.unwrap_or(*object).to_string())
            }
            Ref::Unborn { .. } => continue,
        };
        let name = name.to_string();
        if let Some(branch) = name.strip_prefix("refs/heads/") {
            out.branches.insert(branch.to_owned(), id);
        } else if let Some(tag) = name.strip_prefix("refs/tags/") {
            out.tags.insert(tag.to_owned(), id);
        }
    }
    out
}

/// A failed connection's error text (and ssh's log), as a [`Failure`].
fn classify(text: String, ssh: Option<SshFailure>) -> Failure {
    match ssh {
        Some(SshFailure::HostKeyChanged { fingerprint }) => {
            return Failure::HostKey {
                changed: true,
                fingerprint,
            };
        }
        Some(SshFailure::HostKeyUnknown { fingerprint }) => {
            return Failure::HostKey {
                changed: false,
                fingerprint,
            };
        }
        Some(SshFailure::Refused { line }) => return Failure::Refused(line),
        None => {}
    }
    let lower = text.to_ascii_lowercase();
    // A status as gix and reqwest say it ("Received HTTP status 401", "client error
    // (403 Forbidden)"), never a bare "401" (a port, `:40165`, holds one).
    let refused = [
        "status 401",
        "status 403",
        "(401",
        "(403",
        "401 unauthorized",
        "403 forbidden",
        "authentication",
        "credentials",
        "permission denied",
    ]
    .iter()
    .any(|needle| lower.contains(needle));
    if refused {
        Failure::Refused(text)
    } else {
        Failure::Other(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_told_by_its_status_not_by_digits_in_the_url() {
        let refused = [
            "Transport handshake failed: Received HTTP status 401",
            "Received HTTP status 403",
            "HTTP status client error (403 Forbidden) for url (https://h/r/info/refs)",
            "remote: Permission denied",
        ];
        for text in refused {
            assert!(
                matches!(classify(text.to_owned(), None), Failure::Refused(_)),
                "{text}"
            );
        }
        // A closed port whose number holds "401": the connection failed, nothing refused.
        let closed = "Transport handshake failed: An IO error occurred when talking to the \
                      server: error sending request for url \
                      (http://127.0.0.1:40165/repo/info/refs?service=git-upload-pack): \
                      client error (Connect): tcp connect error: Connection refused \
                      (os error 111)";
        assert!(
            matches!(classify(closed.to_owned(), None), Failure::Other(_)),
            "{closed}"
        );
    }
}
