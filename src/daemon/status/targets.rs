//! A daemon of several targets, summed up: the top-level conditions of `/status` made
//! from the targets' own, each naming the targets it is for.

use super::document::{Condition, READY, RECONCILING, RUNNING, STALLED, TargetSection};

/// The top-level conditions of a daemon of several targets: `Ready` as readiness
/// says, `Reconciling` and `Stalled` true while they are for any target (the message
/// names which); each transition time is the newest of the targets' that count.
pub(super) fn summed_up(sections: &[TargetSection], ready: Result<(), String>) -> Vec<Condition> {
    fn conditions<'a>(
        sections: &'a [TargetSection],
        kind: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a Condition)> + 'a {
        sections.iter().filter_map(move |s| {
            s.conditions
                .iter()
                .find(|c| c.kind == kind)
                .map(|c| (s.name.as_str(), c))
        })
    }
    let of = |kind: &'static str| conditions(sections, kind);
    let newest = |kind: &'static str, status: &str| {
        of(kind)
            .filter(|(_, c)| c.status == status)
            .map(|(_, c)| c.last_transition_time.clone())
            .max()
            .unwrap_or_default()
    };
    let any = |kind: &'static str, reason: &str, idle: (&str, &str)| {
        let on: Vec<String> = of(kind)
            .filter(|(_, c)| c.status == "True")
            .map(|(name, c)| format!("{name}: {}", c.message))
            .collect();
        if on.is_empty() {
            Condition {
                kind,
                status: "False",
                reason: idle.0.to_owned(),
                message: idle.1.to_owned(),
                last_transition_time: newest(kind, "False"),
            }
        } else {
            Condition {
                kind,
                status: "True",
                reason: reason.to_owned(),
                message: on.join("; "),
                last_transition_time: newest(kind, "True"),
            }
        }
    };
    let ready = match ready {
        Ok(()) => Condition {
            kind: READY,
            status: "True",
            reason: "TargetsReady".to_owned(),
            message: "the targets readiness asks for are ready".to_owned(),
            last_transition_time: newest(READY, "True"),
        },
        Err(why) => Condition {
            kind: READY,
            status: "False",
            reason: "TargetsNotReady".to_owned(),
            message: why,
            last_transition_time: newest(READY, "False"),
        },
    };
    vec![
        ready,
        any(
            RECONCILING,
            "TargetReconciling",
            ("Idle", "waiting for a change"),
        ),
        any(STALLED, "TargetStalled", RUNNING),
    ]
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    fn section(name: &str, stalled: Option<&str>) -> TargetSection {
        let condition = |kind, status: &'static str, message: &str, at: &str| Condition {
            kind,
            status,
            reason: "Reason".to_owned(),
            message: message.to_owned(),
            last_transition_time: at.to_owned(),
        };
        TargetSection {
            name: name.to_owned(),
            conditions: vec![
                condition(READY, "True", "synced", "2026-01-01T00:00:00Z"),
                condition(RECONCILING, "False", "idle", "2026-01-01T00:00:01Z"),
                match stalled {
                    Some(why) => condition(STALLED, "True", why, "2026-01-01T00:00:03Z"),
                    None => condition(STALLED, "False", RUNNING.1, "2026-01-01T00:00:02Z"),
                },
            ],
            last_applied_revision: None,
            last_attempted_revision: None,
            last_success: None,
            synced_once: true,
            unmanaged: None,
            passes: VecDeque::new(),
            rate_limited_until: None,
        }
    }

    #[test]
    fn a_condition_true_for_one_target_is_true_and_names_it() {
        let sections = [
            section("staging", None),
            section("production", Some("bad key")),
        ];
        let summed = summed_up(&sections, Err("target production: stalled".to_owned()));
        let kinds: Vec<_> = summed.iter().map(|c| (c.kind, c.status)).collect();
        assert_eq!(
            kinds,
            [(READY, "False"), (RECONCILING, "False"), (STALLED, "True")]
        );
        assert_eq!(summed[0].reason, "TargetsNotReady");
        assert_eq!(summed[2].reason, "TargetStalled");
        assert_eq!(summed[2].message, "production: bad key");
        assert_eq!(summed[2].last_transition_time, "2026-01-01T00:00:03Z");
        assert_eq!(summed[1].last_transition_time, "2026-01-01T00:00:01Z");
    }

    #[test]
    fn ready_targets_sum_up_to_ready_and_running() {
        let sections = [section("staging", None), section("production", None)];
        let summed = summed_up(&sections, Ok(()));
        assert_eq!(
            (summed[0].status, summed[0].reason.as_str()),
            ("True", "TargetsReady")
        );
        assert_eq!(
            (summed[2].status, summed[2].reason.as_str()),
            ("False", RUNNING.0)
        );
    }
}
