use serde_json::json;

use super::*;
use crate::api::types::{Prompt, Version};

#[test]
fn a_reply_decodes_into_its_type_and_says_what_it_expected() {
    let (prompt, values): (Prompt, u64) = reply(
        br#"{"id": "p1", "name": "A", "current_version": {"version": 2}}"#,
        MAX_REPLY_VALUES,
    )
    .unwrap();
    assert_eq!(prompt.id(), Some("p1"));
    assert_eq!(values, 2, "the version object and its number");
    let err = match reply::<Prompt>(br#""p1""#, MAX_REPLY_VALUES) {
        Err(DecodeError::Json(err)) => err.to_string(),
        other => panic!("{other:?}"),
    };
    assert!(err.contains("expected a prompt object"), "{err}");
    let err = match reply::<Version>(b"[1]", MAX_REPLY_VALUES) {
        Err(DecodeError::Json(err)) => err.to_string(),
        other => panic!("{other:?}"),
    };
    assert!(err.contains("expected a version object"), "{err}");
    // An empty body reads as null.
    assert_eq!(reply::<Option<Prompt>>(b"", 10).unwrap(), (None, 0));
}

#[test]
fn a_reply_of_many_tiny_values_is_refused() {
    let zeros = vec!["0"; 300_000].join(",");
    let body = format!(r#"{{"version": 1, "variables": [{zeros}]}}"#);
    assert!(matches!(
        reply::<Version>(body.as_bytes(), u64::MAX),
        Err(DecodeError::TooManyValues {
            budget: MAX_REPLY_VALUES
        })
    ));
    // The budget is the decode's own: the next one starts afresh, and values built
    // outside a decode are not counted.
    let (ok, _): (Version, u64) =
        reply(br#"{"version": 1, "variables": [0, 0]}"#, MAX_REPLY_VALUES).unwrap();
    // A smaller budget (what is left to hold) is a smaller budget.
    assert!(matches!(
        reply::<Version>(br#"{"version": 1, "variables": [0, 0]}"#, 3),
        Err(DecodeError::TooManyValues { budget: 3 })
    ));
    assert_eq!(ok.fields["variables"], json!([0, 0]));
    let outside: Version =
        serde_json::from_str(&format!(r#"{{"version": 1, "variables": [{zeros}]}}"#)).unwrap();
    assert_eq!(outside.number, 1);
}

#[test]
fn small_pieces_read_within_a_small_budget() {
    #[derive(serde::Deserialize)]
    struct Throttle {
        retry_after: Option<f64>,
    }
    let t: Throttle = small(br#"{"detail": "slow down", "retry_after": 12}"#).unwrap();
    assert_eq!(t.retry_after, Some(12.0));
    let many = format!("[{}]", vec!["0"; 20_000].join(","));
    assert!(small::<BoundedValue>(many.as_bytes()).is_none());
    assert!(small::<BoundedValue>(b"[0, 0]").is_some());
}

#[test]
fn quoted_text_is_one_short_line() {
    assert_eq!(quoted("a\nb"), "a\\nb");
    let long = "x".repeat(500);
    let shown = quoted(&long);
    assert_eq!(shown.chars().count(), QUOTED_CHARS + 1);
    assert!(shown.ends_with('…'));
}
