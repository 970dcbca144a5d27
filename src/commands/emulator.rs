//! `promptsync emulator`: serve the local Respan-compatible prompts API.

use crate::Error;
use crate::cli::{EmulatorArgs, GlobalArgs};
use crate::commands::ExitStatus;

pub fn run(_global: &GlobalArgs, _args: EmulatorArgs) -> Result<ExitStatus, Error> {
    Err(Error::NotImplemented("`promptsync emulator`"))
}
