//! Events of a pass and the payload every receiver gets: which of `deploy.succeeded`,
//! `deploy.failed`, `pass.failed`, `drift.detected`, `stalled` and `recovered` a pass
//! came to (all of one pass in one message), with its facts: the target, the revision
//! before and after, the release tag, and per prompt the versions before and after.
//! [`Tracker`] remembers what earlier passes said, so a long-lived notifier (the daemon)
//! says a failure once, `recovered` once it is over, and drift when it changes. Pure.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use crate::failure::FailureClass;
use crate::report::pass::{Action, DeployAction, PassReport};

/// The events in order of importance: a message's `type` is its most important one.
const ORDER: [&str; 6] = [
    "stalled",
    "pass.failed",
    "deploy.failed",
    "recovered",
    "drift.detected",
    "deploy.succeeded",
];

/// What one receiver gets about one pass.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Payload {
    /// The most important event of the pass.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// When the message was made (RFC 3339).
    pub timestamp: String,
    pub data: Data,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Data {
    /// Every event of the pass, most important first.
    pub events: Vec<&'static str>,
    pub target: String,
    pub revision: Revision,
    pub release: Option<Release>,
    /// The report's counts.
    pub summary: Value,
    /// The prompts that changed, failed, drifted or were deployed.
    pub prompts: Vec<PromptFacts>,
    /// The deploy gate's outcome, when one ran.
    pub gate: Option<Value>,
    /// Why the pass stopped early: `{class, message}`.
    pub error: Option<Value>,
    /// Messages of the same kind held back (`notify.min_interval`) since the last one.
    pub suppressed: usize,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Revision {
    /// The commit the previous pass synced, when this process saw one.
    pub before: Option<String>,
    pub after: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Release {
    pub tag: String,
    pub commit: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PromptFacts {
    pub file: String,
    pub prompt_id: Option<String>,
    pub name: Option<String>,
    pub action: Action,
    pub version_before: Option<u64>,
    pub version_after: Option<u64>,
    pub live_before: Option<u64>,
    pub live_after: Option<u64>,
    pub drift: bool,
    pub error: Option<String>,
}

impl Payload {
    /// The facts of `report` with `events` (most important first; not empty).
    pub(crate) fn new(
        target: &str,
        report: &PassReport,
        events: Vec<&'static str>,
        before: Option<String>,
    ) -> Payload {
        let prompts = report
            .prompts
            .iter()
            .filter(|row| {
                row.action != Action::Unchanged
                    || row.drift
                    || row
                        .deploy
                        .as_ref()
                        .is_some_and(|d| d.action != DeployAction::AlreadyLive)
            })
            .map(|row| PromptFacts {
                file: row.file.clone(),
                prompt_id: row.prompt_id.clone(),
                name: row.name.clone(),
                action: row.action,
                version_before: row.version_before,
                version_after: row.version_after,
                live_before: row.deploy.as_ref().and_then(|d| d.live_before),
                live_after: row.deploy.as_ref().and_then(|d| d.live_after),
                drift: row.drift,
                error: row
                    .error
                    .clone()
                    .or_else(|| row.deploy.as_ref().and_then(|d| d.error.clone())),
            })
            .collect();
        Payload {
            kind: events.first().copied().unwrap_or("pass.failed"),
            timestamp: timestamp(std::time::SystemTime::now()),
            data: Data {
                events,
                target: target.to_owned(),
                revision: Revision {
                    before,
                    after: report.source.commit.clone(),
                },
                release: report.release.as_ref().map(|r| Release {
                    tag: r.tag.clone(),
                    commit: r.commit.clone(),
                }),
                summary: serde_json::to_value(&report.summary).unwrap_or(Value::Null),
                prompts,
                gate: report
                    .gate
                    .as_ref()
                    .and_then(|g| serde_json::to_value(g).ok()),
                error: report
                    .error
                    .as_ref()
                    .and_then(|e| serde_json::to_value(e).ok()),
                suppressed: 0,
            },
        }
    }

    /// One line for people: `deploy.failed on default: v1.2.0 held, ...`.
    pub(crate) fn headline(&self) -> String {
        let d = &self.data;
        let s = &d.summary;
        let count = |k: &str| s[k].as_u64().unwrap_or(0);
        let what = match self.kind {
            "deploy.succeeded" => format!(
                "{} deployed {} prompt(s)",
                d.release.as_ref().map_or("the release", |r| r.tag.as_str()),
                count("deployed")
            ),
            "deploy.failed" => match (&d.gate, &d.release) {
                (Some(gate), Some(r)) if gate["held"] == true => {
                    format!(
                        "{} held by the deploy gate: {}",
                        r.tag,
                        gate["reason"].as_str().unwrap_or("")
                    )
                }
                (_, Some(r)) => format!("the deploy of {} failed", r.tag),
                _ => "a deploy failed".to_owned(),
            },
            "stalled" | "pass.failed" => match &d.error {
                Some(error) => format!(
                    "the pass stopped: {}",
                    error["message"].as_str().unwrap_or("")
                ),
                None => format!(
                    "{} prompt(s) failed, {} invalid file(s)",
                    count("failed"),
                    count("invalid_files")
                ),
            },
            "recovered" => "passes succeed again".to_owned(),
            "drift.detected" => format!(
                "{} prompt(s) changed outside promptsync",
                d.prompts.iter().filter(|p| p.drift).count()
            ),
            other => other.to_owned(),
        };
        format!("promptsync {} on {}: {what}", self.kind, d.target)
    }
}

/// The events `report` came to by itself, most important first.
pub(crate) fn pass_events(report: &PassReport) -> Vec<&'static str> {
    let mut found = BTreeSet::new();
    if let Some(error) = &report.error {
        found.insert("pass.failed");
        if error.class == FailureClass::Stalled {
            found.insert("stalled");
        }
    }
    if report.summary.failed > 0 || report.summary.invalid_files > 0 {
        found.insert("pass.failed");
    }
    let deploys: Vec<DeployAction> = report
        .prompts
        .iter()
        .filter_map(|p| p.deploy.as_ref().map(|d| d.action))
        .collect();
    if deploys
        .iter()
        .any(|a| matches!(a, DeployAction::Failed | DeployAction::Held))
    {
        found.insert("deploy.failed");
    } else if deploys.contains(&DeployAction::Deploy) {
        found.insert("deploy.succeeded");
    }
    if report.prompts.iter().any(|p| p.drift) {
        found.insert("drift.detected");
    }
    ORDER
        .iter()
        .copied()
        .filter(|e| found.contains(e))
        .collect()
}

/// What earlier passes of this process said, for what this one should say.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    /// The last pass failed (a failure was said).
    failing: bool,
    /// The drift said last: files and their remote versions.
    drift: BTreeSet<(String, Option<u64>)>,
    /// The commit the last pass synced.
    revision: Option<String>,
}

impl Tracker {
    /// The events to tell about `report`: a failure once while it lasts, `recovered`
    /// when it ends, drift when it changes; and the revision before this pass.
    pub(crate) fn observe(&mut self, report: &PassReport) -> (Vec<&'static str>, Option<String>) {
        let mut events = pass_events(report);
        let failed = events.contains(&"pass.failed");
        if failed && self.failing {
            events.retain(|e| *e != "pass.failed" && *e != "stalled");
        }
        if !failed && self.failing {
            events.push("recovered");
        }
        self.failing = failed;
        let drift: BTreeSet<(String, Option<u64>)> = report
            .prompts
            .iter()
            .filter(|p| p.drift)
            .map(|p| (p.file.clone(), p.version_before))
            .collect();
        if drift == self.drift {
            events.retain(|e| *e != "drift.detected");
        }
        self.drift = drift;
        events.sort_by_key(|e| ORDER.iter().position(|o| o == e));
        let before = self.revision.clone();
        if report.source.commit.is_some() {
            self.revision.clone_from(&report.source.commit);
        }
        (events, before)
    }
}

/// The family a kind of message belongs to, for holding back what comes too soon:
/// failures and recoveries are one (a flapping pass does not page twice a minute).
pub(crate) fn family(kind: &str) -> &'static str {
    match kind {
        "stalled" | "pass.failed" | "recovered" => "health",
        "drift.detected" => "drift",
        _ => "deploy",
    }
}

/// RFC 3339, UTC, to the second: how a time shows in a payload, a receiver's state and
/// the daemon's `/status`.
pub(crate) fn timestamp(time: std::time::SystemTime) -> String {
    let time = time::OffsetDateTime::from(time).replace_nanosecond(0);
    time.ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::pass::Mode;

    fn failed() -> PassReport {
        PassReport::failed_early(Mode::Sync, &crate::Error::Internal("boom".into()))
    }

    fn clean() -> PassReport {
        let mut report = failed();
        report.error = None;
        report
    }

    #[test]
    fn a_failure_is_said_once_and_its_end_once() {
        let mut tracker = Tracker::default();
        assert_eq!(tracker.observe(&failed()).0, ["pass.failed"]);
        assert!(tracker.observe(&failed()).0.is_empty());
        assert_eq!(tracker.observe(&clean()).0, ["recovered"]);
        assert!(tracker.observe(&clean()).0.is_empty());
        assert_eq!(family("recovered"), family("pass.failed"));
    }

    #[test]
    fn the_payload_names_its_most_important_event() {
        let report = failed();
        let payload = Payload::new("default", &report, pass_events(&report), Some("abc".into()));
        assert_eq!(payload.kind, "pass.failed");
        let json = serde_json::to_value(&payload).unwrap();
        assert_eq!(json["type"], "pass.failed");
        assert_eq!(json["data"]["target"], "default");
        assert_eq!(json["data"]["revision"]["before"], "abc");
        assert!(
            payload.headline().contains("the pass stopped: "),
            "{}",
            payload.headline()
        );
    }
}
