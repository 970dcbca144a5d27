//! The remote source (`[source]`): promptsync keeps a bare mirror of the remote in its
//! cache directory and the pass reads trees from it, as from any repository. A look
//! lists the remote's refs first (one connection, nothing fetched) and fetches only
//! what changed: the branch tip and the release tags (`deploy.tags`), one commit deep.
//! A force-push is a moved tip like any other; a deleted tag is pruned from the mirror
//! (so the next newest is the release: a rollback); a deleted branch is a stalled error
//! and the mirror keeps the last tip. Credentials are read from their files before
//! each look. Knows nothing about prompts or the API; blocking (callers use
//! `spawn_blocking`).
//!
//! - [`url`]: which URLs are accepted, the mirror's directory name (pure)
//! - [`credentials`]: the token or SSH key, re-read from files
//! - [`refs`]: what is advertised, what is wanted, what changed (pure)
//! - `mirror`: the bare repository, its lock, its refs (git2)
//! - `fetch`: listing and fetching, bounded in time and size (gix)
//! - `ssh`: the OpenSSH command and what its log says

pub(crate) mod credentials;
mod fetch;
mod mirror;
pub(crate) mod refs;
mod settings;
mod ssh;
pub(crate) mod url;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::failure::FailureClass;
use credentials::{CredentialError, Credentials};
use fetch::{Failure, Remote};
use mirror::{Mirror, MirrorError};
use refs::{Advertised, Missing, Wanted};
pub(crate) use settings::SourceSettings;
pub(crate) use url::{RemoteUrl, Transport};

/// A digest of the credential files as they are now (their paths, sizes, times and
/// contents, each read bounded): a stalled credential error is tried again once it
/// changes. A file that cannot be read counts as what it is (missing, unreadable).
pub(crate) fn credential_fingerprint(settings: &SourceSettings) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    for path in [
        &settings.token_file,
        &settings.ssh_key_file,
        &settings.known_hosts_file,
    ]
    .into_iter()
    .flatten()
    {
        path.hash(&mut hasher);
        match crate::localfile::read(path, 1 << 20) {
            Ok(bytes) => bytes.hash(&mut hasher),
            Err(failure) => failure.to_string().hash(&mut hasher),
        }
    }
    hasher.finish()
}

/// The longest a connection attempt may take (less when the fetch timeout is shorter).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// A remote source that could not be looked at or fetched.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    Credential(#[from] CredentialError),

    #[error(transparent)]
    Mirror(#[from] MirrorError),

    #[error("{url} refused the credentials: {hint} ({detail})")]
    Refused {
        url: String,
        hint: &'static str,
        detail: String,
    },

    #[error(
        "the SSH host key of {url} {}; the server offered {}. If the server's key really changed, put its new key in source.known_hosts_file (`ssh-keyscan -p PORT HOST`, then compare the fingerprint with the one your git host publishes)",
        if *changed { "does not match the one in source.known_hosts_file" } else { "is not in source.known_hosts_file" },
        fingerprint.as_deref().unwrap_or("a key whose fingerprint ssh did not log")
    )]
    HostKey {
        url: String,
        changed: bool,
        fingerprint: Option<String>,
    },

    #[error(
        "the branch `{branch}` does not exist at {url} (deleted or renamed?): nothing is synced from it until it is back or source.branch names another; what was synced before stays as it is"
    )]
    BranchMissing { url: String, branch: String },

    #[error(
        "{url} has no default branch (an empty repository?); push a commit, or set source.branch"
    )]
    NoHead { url: String },

    #[error("looking at {url} took longer than source.fetch_timeout ({}); the remote or the network is slow or hangs", humantime::format_duration(*after))]
    TimedOut { url: String, after: Duration },

    #[error("a fetch from {url} brought in more than source.max_fetch_size ({}); raise it if the repository is that large", crate::localfile::human_size(*limit))]
    TooLarge { url: String, limit: u64 },

    #[error("cannot fetch from {url}: {detail}")]
    Unreachable { url: String, detail: String },

    #[error("cannot read {path} at the branch tip {commit}: {detail}")]
    TreeFile {
        path: String,
        commit: String,
        detail: String,
    },

    /// A refused credential or a host key mismatch seen before, with the credential
    /// files as they were then: not tried again until one of them changes.
    #[error(
        "{message} (not tried again until source.token_file, source.ssh_key_file or source.known_hosts_file changes)"
    )]
    StillStalled { message: String },

    /// The last look's error, while the source worker tries again on its own.
    #[error("{message}")]
    Remembered {
        message: String,
        class: FailureClass,
    },

    #[error(
        "no directory for the mirror: set source.cache_dir (neither XDG_CACHE_HOME nor HOME is set)"
    )]
    NoCacheDir,
}

impl SourceError {
    /// What the caller should do next: a refused credential, a host key or a missing
    /// branch needs a person; an unreachable or slow remote is worth another try.
    pub fn class(&self) -> FailureClass {
        match self {
            SourceError::Mirror(MirrorError::Busy { .. })
            | SourceError::TimedOut { .. }
            | SourceError::Unreachable { .. } => FailureClass::Transient,
            SourceError::Remembered { class, .. } => *class,
            _ => FailureClass::Stalled,
        }
    }
}

/// What a look found and did.
#[derive(Debug, Clone)]
pub(crate) struct Look {
    /// The mirror's git dir: what a pass reads.
    pub mirror: PathBuf,
    /// The branch that syncs, and its tip (full commit id).
    pub branch: String,
    pub commit: String,
    /// The refs fetched (empty: the remote was as the mirror had it).
    pub fetched: Vec<String>,
    /// The tags pruned from the mirror (deleted remotely, or no longer matched).
    pub pruned: Vec<String>,
    /// What the remote advertised, for [`Source::settle_tags`].
    pub advertised: Advertised,
}

/// A remote source and its mirror. Every call reads the credentials again.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    settings: SourceSettings,
}

impl Source {
    pub(crate) fn new(settings: SourceSettings) -> Source {
        Source { settings }
    }

    pub(crate) fn settings(&self) -> &SourceSettings {
        &self.settings
    }

    /// The mirror's directory: `source.cache_dir` (default: the user's cache
    /// directory's `promptsync/`), then a name made from the URL.
    pub(crate) fn mirror_dir(&self) -> Result<PathBuf, SourceError> {
        let cache = match &self.settings.cache_dir {
            Some(dir) => dir.clone(),
            None => default_cache_dir().ok_or(SourceError::NoCacheDir)?,
        };
        Ok(cache.join(self.settings.url.cache_name()))
    }

    /// Look at the remote: list its refs, and fetch what the mirror lacks of the
    /// branch tip and the tags `tags` (globs) match; prune what it must not hold.
    pub(crate) fn look(&self, tags: &[String]) -> Result<Look, SourceError> {
        let mirror = self.open()?;
        let remote = self.remote(mirror.path())?;
        let branch = self.settings.branch.as_deref();
        let advertised = fetch::list(&remote, branch).map_err(|f| self.failure(f, &remote))?;
        let wanted = advertised
            .wanted(branch, tags)
            .map_err(|missing| match missing {
                Missing::Branch { branch } => SourceError::BranchMissing {
                    url: self.url(),
                    branch,
                },
                Missing::Head => SourceError::NoHead { url: self.url() },
            })?;
        self.update(&mirror, advertised, &wanted)
    }

    /// After a look, hold the tags `tags` matches instead (the repository's own
    /// configuration, read from the tip, may name other release tags than the
    /// operator's): fetches only what is missing, with no second listing.
    pub(crate) fn settle_tags(&self, look: Look, tags: &[String]) -> Result<Look, SourceError> {
        let wanted = Wanted {
            branch: Some((look.branch.clone(), look.commit.clone())),
            tags: look.advertised.tags_matching(tags),
        };
        let mirror = self.open()?;
        let mut settled = self.update(&mirror, look.advertised, &wanted)?;
        settled.fetched.splice(0..0, look.fetched);
        Ok(settled)
    }

    /// The bytes of `path` at `commit` in the mirror (`None`: no such file), at most
    /// `limit` of them.
    pub(crate) fn read_file(
        &self,
        commit: &str,
        path: &str,
        limit: u64,
    ) -> Result<Option<Vec<u8>>, SourceError> {
        let mirror = self.open()?;
        mirror
            .read_file(commit, path, limit)
            .map_err(|detail| SourceError::TreeFile {
                path: path.to_owned(),
                commit: commit.to_owned(),
                detail,
            })
    }

    /// Fetch what `wanted` lacks, prune what it does not name.
    fn update(
        &self,
        mirror: &Mirror,
        advertised: Advertised,
        wanted: &Wanted,
    ) -> Result<Look, SourceError> {
        let held = mirror.held(wanted.branch.as_ref().map(|(b, _)| b.as_str()))?;
        let fetched = wanted.to_fetch(&held);
        if fetched.is_empty() {
            tracing::debug!(url = %self.settings.url, "the remote is as the mirror has it; nothing fetched");
        } else {
            let remote = self.remote(mirror.path())?;
            let started = Instant::now();
            let packs = Mirror::packs(mirror.path());
            if let Err(failure) = fetch::fetch(&remote, &fetched) {
                if failure == Failure::TooLarge {
                    // What came in is not kept: the refs would say the mirror is
                    // complete, and the next look would fetch nothing.
                    mirror.discard(&packs, &fetched, &held)?;
                }
                return Err(self.failure(failure, &remote));
            }
            tracing::info!(
                url = %self.settings.url,
                refs = ?fetched,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "fetched"
            );
        }
        let pruned: Vec<String> = wanted
            .to_prune(&held)
            .into_iter()
            .map(str::to_owned)
            .collect();
        if !pruned.is_empty() {
            tracing::info!(url = %self.settings.url, tags = ?pruned, "tags gone from the remote (or no longer release tags) pruned from the mirror");
        }
        mirror.prune(wanted)?;
        let (branch, commit) = wanted.branch.clone().unwrap_or_default();
        let commit = mirror.peel_to_commit(&commit).unwrap_or(commit);
        Ok(Look {
            mirror: mirror.path().to_owned(),
            branch,
            commit,
            fetched,
            pruned,
            advertised,
        })
    }

    fn open(&self) -> Result<Mirror, SourceError> {
        let dir = self.mirror_dir()?;
        let deadline = Instant::now() + self.settings.fetch_timeout;
        Ok(Mirror::open(&dir, self.settings.url.as_str(), deadline)?)
    }

    /// One connection's parameters, the credentials read now.
    fn remote(&self, mirror: &Path) -> Result<Remote, SourceError> {
        Ok(Remote {
            url: self.settings.url.clone(),
            credentials: credentials::read(&self.settings)?,
            mirror: mirror.to_owned(),
            connect_timeout: CONNECT_TIMEOUT.min(self.settings.fetch_timeout),
            deadline: Instant::now() + self.settings.fetch_timeout,
            max_bytes: self.settings.max_fetch_size,
        })
    }

    fn url(&self) -> String {
        self.settings.url.to_string()
    }

    fn failure(&self, failure: Failure, remote: &Remote) -> SourceError {
        let url = self.url();
        match failure {
            Failure::Refused(detail) => SourceError::Refused {
                url,
                hint: match &remote.credentials {
                    Credentials::Anonymous => {
                        "the repository is private or does not exist: set source.token_file (HTTPS) or source.ssh_key_file (SSH)"
                    }
                    Credentials::Token { .. } => {
                        "check the token in source.token_file (expired, revoked, or without read access to this repository?) and source.username"
                    }
                    Credentials::Ssh { .. } => {
                        "check that the public half of source.ssh_key_file is a deploy key (or a user key) with read access"
                    }
                },
                detail: detail.chars().take(500).collect(),
            },
            Failure::HostKey {
                changed,
                fingerprint,
            } => SourceError::HostKey {
                url,
                changed,
                fingerprint,
            },
            Failure::TimedOut => SourceError::TimedOut {
                url,
                after: self.settings.fetch_timeout,
            },
            Failure::TooLarge => SourceError::TooLarge {
                url,
                limit: self.settings.max_fetch_size,
            },
            Failure::Other(detail) => SourceError::Unreachable {
                url,
                detail: detail.chars().take(500).collect(),
            },
        }
    }
}

/// `$XDG_CACHE_HOME/promptsync`, else `$HOME/.cache/promptsync`.
pub(crate) fn default_cache_dir() -> Option<PathBuf> {
    let nonempty = |name| std::env::var_os(name).filter(|value| !value.is_empty());
    nonempty("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| nonempty("HOME").map(|home| Path::new(&home).join(".cache")))
        .map(|dir| dir.join("promptsync"))
}
