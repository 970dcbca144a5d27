//! The crate's top-level error: one variant per module error, so that a command can
//! use `?` on any of them. Per-prompt failures are not errors at this level; they are
//! outcomes in the report.

use thiserror::Error;

pub use crate::failure::FailureClass;

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

    /// A file promptsync writes cannot be written where it was asked to (`pull`).
    #[error(transparent)]
    Write(#[from] crate::confined::WriteError),

    #[error(transparent)]
    Source(#[from] crate::source::SourceError),

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

    /// A value on the command line that names nothing (a prompt that does not exist).
    #[error("{0}")]
    Usage(String),

    /// Passes of several targets ended early: each target with its error.
    #[error("{0}")]
    Targets(String),
}

impl From<crate::config::UnknownTarget> for Error {
    /// A `--target` that names nothing is a usage error.
    fn from(unknown: crate::config::UnknownTarget) -> Error {
        Error::Usage(unknown.to_string())
    }
}

impl Error {
    /// What a caller (the daemon's loop, the report) should do after this error: the
    /// one classification (`crate::failure`). Each cause decides its own class (the
    /// API's, the repository's, the source's); what is left is decided here.
    pub fn class(&self) -> FailureClass {
        match self {
            Error::Config(_) | Error::Deploy(_) => FailureClass::Stalled,
            Error::Git(err) => err.class(),
            Error::Load(err) => err.class(),
            Error::Io { .. } => FailureClass::Transient,
            Error::Api(err) => err.class(),
            Error::Source(err) => err.class(),
            Error::Logging(_) | Error::Emulator(_) | Error::Internal(_) => FailureClass::Fatal,
            Error::Usage(_) | Error::Targets(_) => FailureClass::Stalled,
            Error::Write(_) => FailureClass::Stalled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::chain;

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let io = std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "Is a directory (os error 21)",
        );
        let err = Error::Io {
            what: "cannot read x".into(),
            source: io,
        };
        assert_eq!(chain(&err), "cannot read x: Is a directory (os error 21)");
    }
}
