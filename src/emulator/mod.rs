//! A local, stateful emulator of the Respan prompts API (respan-api.md), with the
//! lifecycle rules, optional persistence, and fault and latency knobs for tests.

use thiserror::Error;

#[derive(Debug, Error)]
#[error("emulator error")]
pub struct EmulatorError {}
