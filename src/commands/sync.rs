//! `promptsync sync` (alias `--sync`) and `promptsync plan`: one reconcile pass.

use crate::Error;
use crate::cli::{GlobalArgs, PlanArgs, SyncArgs};
use crate::commands::ExitStatus;

pub fn sync(_global: &GlobalArgs, _args: SyncArgs) -> Result<ExitStatus, Error> {
    Err(Error::NotImplemented("`promptsync sync`"))
}

pub fn plan(_global: &GlobalArgs, _args: PlanArgs) -> Result<ExitStatus, Error> {
    Err(Error::NotImplemented("`promptsync plan`"))
}
