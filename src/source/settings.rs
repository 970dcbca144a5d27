//! What the operator sets for a remote source (`[source]`, `--source`): configuration
//! validates the keys and fills a [`SourceSettings`]; the source reads it. Knows
//! nothing about configuration files or layers.

use std::path::PathBuf;
use std::time::Duration;

use super::RemoteUrl;

/// `[source]`: a remote repository that promptsync fetches into a bare mirror of its
/// own. Operator-trusted: none of it may come from the repository's own
/// `promptsync.toml`.
#[derive(Debug, Clone)]
pub struct SourceSettings {
    pub url: RemoteUrl,
    /// The branch whose tip syncs; `None`: the remote's HEAD.
    pub branch: Option<String>,
    /// How often the daemon looks at the remote (±jitter).
    pub interval: Duration,
    /// HTTPS: a file holding the token, sent as the password (re-read before each fetch).
    pub token_file: Option<PathBuf>,
    /// HTTPS: the user name sent with the token.
    pub username: Option<String>,
    /// SSH: the private key file (re-read before each fetch).
    pub ssh_key_file: Option<PathBuf>,
    /// SSH: the known_hosts file the host key must be in.
    pub known_hosts_file: Option<PathBuf>,
    /// Where mirrors live; `None`: the user's cache directory.
    pub cache_dir: Option<PathBuf>,
    /// The longest one look or fetch may take.
    pub fetch_timeout: Duration,
    /// The most one fetch may bring in, in bytes.
    pub max_fetch_size: u64,
}
