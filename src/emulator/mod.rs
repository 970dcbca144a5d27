//! A local, stateful emulator of the Respan prompts API (respan-api.md), with the
//! lifecycle rules, optional persistence, and fault and latency knobs for tests.

use thiserror::Error;

#[derive(Debug, Error)]
#[error("emulator error")]
pub struct EmulatorError {}

use std::net::SocketAddr;
use std::path::PathBuf;

/// Emulator settings (skeleton).
#[derive(Debug, Clone, Default)]
pub struct EmulatorConfig {
    pub state_file: Option<PathBuf>,
    pub api_keys: Vec<String>,
}

/// A running emulator (skeleton).
#[derive(Debug)]
pub struct RunningEmulator {
    addr: SocketAddr,
}

impl RunningEmulator {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn shutdown(self) -> Result<(), EmulatorError> {
        Ok(())
    }
}

/// Serve on an already-bound listener (skeleton).
pub async fn start(
    _config: EmulatorConfig,
    _listener: tokio::net::TcpListener,
) -> Result<RunningEmulator, EmulatorError> {
    Err(EmulatorError {})
}
