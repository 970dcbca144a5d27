//! The crate's top-level error: one variant per module error, so that a command can
//! use `?` on any of them. Per-prompt failures are not errors at this level; they are
//! outcomes in the report.

use thiserror::Error;

/// An error that ends a command. Module errors convert into it.
#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),

    #[error(transparent)]
    Logging(#[from] crate::logging::LoggingError),

    #[error(transparent)]
    Git(#[from] crate::gitrepo::GitError),

    #[error(transparent)]
    Load(#[from] crate::desired::LoadError),

    #[error(transparent)]
    Api(#[from] crate::api::ApiError),

    #[error(transparent)]
    Deploy(#[from] crate::deploy::DeployError),

    #[error(transparent)]
    Emulator(#[from] promptsync_emulator::EmulatorError),

    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },

    /// A background task ended abnormally.
    #[error("internal error: {0}")]
    Internal(String),

    /// A command or flag that a later release fills in.
    #[error("{0} is not implemented yet")]
    NotImplemented(&'static str),
}

impl Error {
    /// What a caller (the daemon's loop, above all) should do after this error.
    pub fn class(&self) -> FailureClass {
        use crate::desired::LoadError;
        use crate::discover::DiscoverError;
        use crate::gitrepo::GitError;
        let git = |err: &GitError| match err {
            GitError::NotOwner { .. } | GitError::Bare { .. } => FailureClass::Stalled,
            _ => FailureClass::Transient,
        };
        match self {
            Error::Config(_) | Error::Deploy(_) => FailureClass::Stalled,
            Error::Git(err) | Error::Load(LoadError::Git(err)) => git(err),
            Error::Load(LoadError::Discover(DiscoverError::Git(err))) => git(err),
            Error::Load(LoadError::Discover(DiscoverError::Glob { .. })) => FailureClass::Stalled,
            Error::Load(LoadError::Discover(DiscoverError::Walk { .. })) | Error::Io { .. } => {
                FailureClass::Transient
            }
            Error::Api(err) if err.is_stalled() => FailureClass::Stalled,
            Error::Api(_) => FailureClass::Transient,
            Error::Logging(_) | Error::Emulator(_) | Error::Internal(_) => FailureClass::Fatal,
            Error::NotImplemented(_) => FailureClass::Stalled,
        }
    }
}

/// What to do after an error that ended a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// Needs a person (a refused key, bad configuration): retrying changes nothing.
    Stalled,
    /// Worth retrying later (the API or the repository was not reachable).
    Transient,
    /// A bug or a broken runtime.
    Fatal,
}
