//! `promptsync watch`: the daemon. Arrives with the daemon issue.

use crate::Error;
use crate::cli::{GlobalArgs, WatchArgs};
use crate::commands::ExitStatus;

pub fn run(_global: &GlobalArgs, _args: WatchArgs) -> Result<ExitStatus, Error> {
    Err(Error::NotImplemented(
        "`promptsync watch` (the daemon arrives in a later release; use `promptsync sync` meanwhile)",
    ))
}
