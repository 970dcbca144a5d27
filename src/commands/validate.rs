//! `promptsync validate`: offline checks of prompt files.

use crate::Error;
use crate::cli::{GlobalArgs, ValidateArgs};
use crate::commands::ExitStatus;

pub fn run(_global: &GlobalArgs, _args: ValidateArgs) -> Result<ExitStatus, Error> {
    Err(Error::NotImplemented("`promptsync validate`"))
}
