//! The exec hook (`[notify.exec]`): a program run for the events it asks for, with the
//! facts in environment variables (`PROMPTSYNC_EVENT`, `PROMPTSYNC_EVENTS`,
//! `PROMPTSYNC_TARGET`, `PROMPTSYNC_REVISION_BEFORE`, `PROMPTSYNC_REVISION_AFTER`,
//! `PROMPTSYNC_RELEASE_TAG`, `PROMPTSYNC_RELEASE_COMMIT`, `PROMPTSYNC_MESSAGE`) and the
//! JSON payload on its standard input; a non-zero exit or a timeout is a failed
//! delivery, retried like any other.

use super::event::Payload;
use super::http::Failure;
use super::process;
use crate::config::ExecSettings;

/// The configured hook.
#[derive(Debug, Clone)]
pub(crate) struct ExecHook {
    settings: ExecSettings,
}

impl ExecHook {
    pub(crate) fn new(settings: &ExecSettings) -> ExecHook {
        ExecHook {
            settings: settings.clone(),
        }
    }

    pub(crate) fn events(&self) -> &[String] {
        &self.settings.events
    }

    pub(crate) async fn deliver(&self, payload: &Payload) -> Result<(), Failure> {
        let body = serde_json::to_vec(payload).map_err(|err| Failure::fail(err.to_string()))?;
        let timeout = self.settings.timeout;
        let done = process::run(
            &self.settings.command,
            None,
            &environment(payload),
            Some(body),
            timeout,
        )
        .await
        .map_err(Failure::fail)?;
        if done.success() {
            return Ok(());
        }
        let last = done.output.lines().last().unwrap_or_default().to_owned();
        Err(Failure::Retry {
            message: format!("notify.exec: {} {last}", done.describe(timeout))
                .trim_end()
                .to_owned(),
            after: None,
        })
    }
}

/// The facts of `payload` as environment variables (empty where a fact is unknown).
pub(crate) fn environment(payload: &Payload) -> Vec<(String, String)> {
    let d = &payload.data;
    let pair = |name: &str, value: Option<&str>| (name.to_owned(), value.unwrap_or("").to_owned());
    vec![
        pair("PROMPTSYNC_EVENT", Some(payload.kind)),
        pair("PROMPTSYNC_EVENTS", Some(&d.events.join(","))),
        pair("PROMPTSYNC_TARGET", Some(&d.target)),
        pair("PROMPTSYNC_REVISION_BEFORE", d.revision.before.as_deref()),
        pair("PROMPTSYNC_REVISION_AFTER", d.revision.after.as_deref()),
        pair(
            "PROMPTSYNC_RELEASE_TAG",
            d.release.as_ref().map(|r| r.tag.as_str()),
        ),
        pair(
            "PROMPTSYNC_RELEASE_COMMIT",
            d.release.as_ref().map(|r| r.commit.as_str()),
        ),
        pair("PROMPTSYNC_MESSAGE", Some(&payload.headline())),
    ]
}
