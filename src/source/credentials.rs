//! The remote's credentials, read from their files before each fetch (a rotated
//! Kubernetes Secret takes effect without a restart): an HTTPS token, or an SSH key
//! with the known_hosts file its server must be in. The token lives in a
//! [`GitToken`] and goes nowhere but the credentials callback: never in a URL, a
//! message or a log line. Knows nothing about git.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

use super::SourceSettings;
use crate::localfile::{self, Failure, FileKind};

/// A token or key file larger than this is not one.
const MAX_CREDENTIAL_BYTES: u64 = 64 * 1024;

/// The user name sent with a token when `source.username` is unset: GitHub and GitLab
/// take any name with a token.
pub(crate) const DEFAULT_USERNAME: &str = "git";

/// A git host token. Debug and Display print `[redacted]`.
#[derive(Clone)]
pub(crate) struct GitToken(SecretString);

impl GitToken {
    /// The one place a token is made: every token promptsync holds passes here, so
    /// this is where it is registered with the process-wide redactor of output.
    pub(crate) fn new(text: &str) -> GitToken {
        crate::secret::register(text);
        GitToken(SecretString::from(text.to_owned()))
    }

    /// The token's text, for the credentials callback only.
    pub(super) fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for GitToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::fmt::Display for GitToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A private SSH key's bytes. Debug prints `[redacted]`.
#[derive(Clone)]
pub(crate) struct SshKey(std::sync::Arc<secrecy::SecretSlice<u8>>);

impl SshKey {
    /// The key's bytes, for the private copy ssh reads.
    pub(super) fn expose(&self) -> &[u8] {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for SshKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// What a fetch authenticates with.
#[derive(Debug, Clone)]
pub(crate) enum Credentials {
    /// Nothing: a public repository.
    Anonymous,
    /// HTTPS basic authentication: the token as the password.
    Token { username: String, token: GitToken },
    /// SSH with this key, the host key checked against `known_hosts`.
    Ssh { key: SshKey, known_hosts: PathBuf },
}

/// A credential file that cannot be used: a person must fix it (stalled).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("source.{key}: {message}")]
pub struct CredentialError {
    pub key: &'static str,
    pub message: String,
}

/// The credentials `settings` name, read now.
pub(crate) fn read(settings: &SourceSettings) -> Result<Credentials, CredentialError> {
    if let Some(path) = &settings.token_file {
        let bytes = read_file("token_file", path)?;
        let text = String::from_utf8(bytes).map_err(|_| CredentialError {
            key: "token_file",
            message: format!(
                "{} is not UTF-8 text; it must hold the token alone",
                path.display()
            ),
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(CredentialError {
                key: "token_file",
                message: format!("{} is empty; put the token in it", path.display()),
            });
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(CredentialError {
                key: "token_file",
                message: format!(
                    "{} holds spaces, line breaks or non-ASCII characters; it must hold the token alone, on one line",
                    path.display()
                ),
            });
        }
        return Ok(Credentials::Token {
            username: settings
                .username
                .clone()
                .unwrap_or_else(|| DEFAULT_USERNAME.to_owned()),
            token: GitToken::new(token),
        });
    }
    if let (Some(key), Some(known_hosts)) = (&settings.ssh_key_file, &settings.known_hosts_file) {
        let key = read_file("ssh_key_file", key)?;
        read_file("known_hosts_file", known_hosts)?;
        return Ok(Credentials::Ssh {
            key: SshKey(std::sync::Arc::new(secrecy::SecretSlice::from(key))),
            known_hosts: known_hosts.clone(),
        });
    }
    Ok(Credentials::Anonymous)
}

fn read_file(key: &'static str, path: &Path) -> Result<Vec<u8>, CredentialError> {
    let shown = path.display();
    localfile::read(path, MAX_CREDENTIAL_BYTES).map_err(|failure| CredentialError {
        key,
        message: match failure {
            Failure::Missing => {
                format!("{shown} does not exist; check the path (is the secret mounted?)")
            }
            Failure::NotAFile(FileKind::Directory) => {
                format!("{shown} is a directory; point it at the file inside")
            }
            Failure::NotAFile(kind) => format!("{shown} is {kind}, not a regular file"),
            Failure::TooLarge { .. } => format!(
                "{shown} is larger than {}; it must hold the credential alone",
                localfile::human_size(MAX_CREDENTIAL_BYTES)
            ),
            Failure::Io(err) => format!("cannot read {shown}: {}", localfile::io_text(&err)),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_never_prints() {
        let token = GitToken::new("ghp_secret");
        assert_eq!(format!("{token} {token:?}"), "[redacted] [redacted]");
        let creds = Credentials::Token {
            username: "git".into(),
            token,
        };
        assert!(!format!("{creds:?}").contains("ghp_secret"));
        let ssh = Credentials::Ssh {
            key: SshKey(std::sync::Arc::new(secrecy::SecretSlice::from(
                b"PRIVATE".to_vec(),
            ))),
            known_hosts: PathBuf::from("/k"),
        };
        let shown = format!("{ssh:?}");
        assert!(
            shown.contains("[redacted]") && !shown.contains("80, 82"),
            "{shown}"
        );
    }
}
