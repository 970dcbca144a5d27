use serde_json::json;

use super::*;
use crate::api::types::{Prompt, Version};

fn limits() -> PageLimits {
    PageLimits {
        size: 100,
        values: 250_000,
    }
}

fn prompts(body: &str) -> Result<PageRead<Prompt>, DecodeError> {
    read::<Prompt>(body.as_bytes(), limits())
}

fn not_a_page(body: &str) -> String {
    match prompts(body) {
        Err(DecodeError::NotAPage(what)) => what,
        other => panic!("{body}: {other:?}"),
    }
}

#[test]
fn a_page_reads_its_items_count_and_next() {
    let page_read = prompts(
        r#"{"count": 2, "next": "https://x/api/prompts/list/?page=2", "previous": null,
           "results": [{"id": "p1", "name": "A"}, {"id": "p2", "name": "B"}],
           "current_filters": {"a": [1, 2]}}"#,
    )
    .unwrap();
    assert_eq!(page_read.page.count, Some(2));
    assert!(page_read.page.next.is_some());
    let ids: Vec<_> = page_read.page.results.iter().map(Prompt::id).collect();
    assert_eq!(ids, [Some("p1"), Some("p2")]);
    assert!(page_read.page.problems.is_empty());
    assert_eq!(page_read.bytes, 50, "the items' JSON text");
    let last = prompts(r#"{"count": "many", "next": null, "results": []}"#).unwrap();
    assert_eq!((last.page.count, last.page.next), (None, None));
}

#[test]
fn a_reply_that_is_not_a_page_says_what_came() {
    assert_eq!(not_a_page("{}"), "an empty object `{}`");
    assert_eq!(not_a_page("[]"), "a list");
    assert_eq!(not_a_page("  "), "an empty body");
    assert_eq!(not_a_page(r#""ok""#), "a string");
    assert_eq!(not_a_page("null"), "null");
    assert_eq!(not_a_page("7"), "a number");
    assert_eq!(
        not_a_page(r#"{"detail": "Invalid page."}"#),
        r#"an object with `detail` "Invalid page." (an error, not a page)"#
    );
    assert_eq!(
        not_a_page(r#"{"count": 3, "next": null, "data": []}"#),
        "an object without `results` (its keys: `count`, `next`, `data`)"
    );
    assert_eq!(
        not_a_page(r#"{"count": 1, "next": null, "results": {"id": "p1"}}"#),
        "`results` that is an object, not a list"
    );
    assert_eq!(
        not_a_page(r#"{"next": null, "results": null}"#),
        "`results` that is null, not a list"
    );
    assert_eq!(
        not_a_page(r#"{"count": 0, "results": []}"#),
        "an object without `next`"
    );
    assert_eq!(
        not_a_page(r#"{"next": 2, "results": []}"#),
        "`next` that is a number, neither a URL nor null"
    );
    // Not JSON at all is the parser's to say.
    assert!(matches!(
        prompts("{\"results\": [}"),
        Err(DecodeError::Json(_))
    ));
    assert!(matches!(
        prompts(r#"{"next": null, "results": []} trailing"#),
        Err(DecodeError::Json(_))
    ));
}

#[test]
fn a_malformed_item_costs_only_itself_and_names_its_prompt_when_it_can() {
    let page_read = prompts(
        r#"{"next": null, "results": [
            {"id": "prm_1", "name": "Good"},
            {"id": "prm_2", "name": "Bad", "current_version": {"version": "three"}},
            {"id": 7, "name": ["not", "a", "name"]},
            {"id": "..", "name": "Dots"},
            {"id": "prm_4", "name": "Good too"}
        ]}"#,
    )
    .unwrap();
    let ids: Vec<_> = page_read.page.results.iter().map(Prompt::id).collect();
    assert_eq!(ids, [Some("prm_1"), Some("prm_4")]);
    let problems = &page_read.page.problems;
    assert_eq!(problems.len(), 3);
    assert_eq!(
        (
            problems[0].index,
            problems[0].prompt_id.as_deref(),
            problems[0].name.as_deref()
        ),
        (1, Some("prm_2"), Some("Bad"))
    );
    assert!(
        problems[0].reason.contains("version"),
        "{}",
        problems[0].reason
    );
    assert_eq!(
        (problems[1].prompt_id.as_ref(), problems[1].name.as_ref()),
        (None, None)
    );
    // An id a path cannot hold: the prompt is named, so no second one of that name is
    // made, and its id is never used.
    assert_eq!(
        (
            problems[2].index,
            problems[2].prompt_id.as_deref(),
            problems[2].name.as_deref()
        ),
        (3, None, Some("Dots"))
    );
    assert!(
        problems[2].reason.contains(r#"its id "..""#),
        "{}",
        problems[2].reason
    );

    let versions = read::<Version>(
        br#"{"next": "https://x/?page=2", "results": [{"version": 2}, {"version": null}, {"version": 1}]}"#,
        limits(),
    )
    .unwrap();
    assert_eq!(versions.page.results.len(), 2);
    assert_eq!(versions.page.problems[0].index, 1);
    assert_eq!(versions.page.problems[0].prompt_id, None);
    assert!(
        versions.page.problems[0]
            .reason
            .contains("whole number in `version`"),
        "{}",
        versions.page.problems[0].reason
    );
}

#[test]
fn a_page_holds_no_more_items_than_asked_for() {
    let items: Vec<String> = (0..101).map(|i| format!(r#"{{"id": "p{i}"}}"#)).collect();
    let body = format!(r#"{{"next": null, "results": [{}]}}"#, items.join(","));
    assert!(matches!(
        prompts(&body),
        Err(DecodeError::TooManyItems { size: 100 })
    ));
    // 300,000 tiny items: refused at the 101st, whatever follows.
    let mut body = String::from(r#"{"next": null, "results": ["#);
    body.push_str(&vec!["{}"; 300_000].join(","));
    body.push_str("]}");
    assert!(matches!(
        prompts(&body),
        Err(DecodeError::TooManyItems { size: 100 })
    ));
}

#[test]
fn the_values_an_item_builds_are_counted() {
    let zeros = vec!["0"; 1000].join(",");
    let body = format!(
        r#"{{"next": null, "results": [{{"id": "p1", "current_version": {{"version": 1, "tools": [{zeros}]}}}}]}}"#
    );
    let small = PageLimits {
        size: 100,
        values: 500,
    };
    assert!(matches!(
        read::<Prompt>(body.as_bytes(), small),
        Err(DecodeError::TooManyValues { budget: 500 })
    ));
    let kept = read::<Prompt>(body.as_bytes(), limits()).unwrap();
    // The version object, `version`, `tools` and its 1000 numbers.
    assert_eq!(kept.values, 1003);
    let json = json!(
        kept.page.results[0]
            .current_version
            .as_ref()
            .unwrap()
            .fields["tools"]
    );
    assert_eq!(json.as_array().map(Vec::len), Some(1000));
}

/// An account page keeps each prompt small: its facts and its text, which reads
/// back as the prompt a page of [`Prompt`]s gives; what cannot be read, or used, is
/// refused alike, and only the text is counted as held (no values kept).
#[test]
fn an_account_page_keeps_facts_and_text_and_refuses_what_a_prompt_page_refuses() {
    use crate::api::types::{AccountPrompt, Listed};
    let body = r#"{"count": 3, "next": null, "results": [
        {"id": "p1", "name": "A", "current_version": {"version": 3, "messages": []},
         "live_version": {"version": 2, "model": "gpt-4o"}},
        {"id": 7, "name": "B"},
        {"id": "p3", "name": "C", "current_version": {"version": "x"}}]}"#;
    let account = read::<AccountPrompt>(body.as_bytes(), limits()).unwrap();
    let full = prompts(body).unwrap();
    assert_eq!(account.page.results.len(), 1);
    let item = &account.page.results[0];
    assert_eq!(
        (
            item.prompt_id.as_str(),
            item.name.as_deref(),
            item.current_version,
            item.live_version
        ),
        ("p1", Some("A"), Some(3), Some(2))
    );
    let again: Prompt = serde_json::from_str(item.text()).unwrap();
    assert_eq!(again, full.page.results[0]);
    assert_eq!(account.page.problems, full.page.problems);
    assert_eq!(account.bytes, full.bytes, "the text kept");
    const { assert!(!AccountPrompt::KEEPS_VALUES && Prompt::KEEPS_VALUES) };
}
