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
