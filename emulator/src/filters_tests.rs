//! Unit tests of filters and sorting (filters.rs).

use serde_json::json;

use super::*;

fn version(number: u32, readonly: bool, model: &str, updated_at: &str) -> VersionRecord {
    let mut fields = Map::new();
    fields.insert("model".into(), json!(model));
    fields.insert("temperature".into(), json!(0.7));
    fields.insert("description".into(), Value::Null);
    VersionRecord {
        id: format!("pv_{number}"),
        version: number,
        readonly,
        created_at: updated_at.to_owned(),
        updated_at: updated_at.to_owned(),
        fields,
    }
}

fn prompt(seq: u64, name: &str, versions: Vec<VersionRecord>, live: Option<u32>) -> PromptRecord {
    PromptRecord {
        id: format!("prm_{seq}"),
        seq,
        name: name.to_owned(),
        description: None,
        prompt_slug: super::super::model::slugify(name),
        tags: vec![json!({"id": "tag_a", "name": "a"})],
        starred: false,
        creator_email: "bot@example.com".to_owned(),
        created_at: "2026-01-01T00:00:00.000000Z".to_owned(),
        updated_at: "2026-01-01T00:00:00.000000Z".to_owned(),
        deleted_at: None,
        next_version: u32::try_from(versions.len()).unwrap() + 1,
        live,
        versions,
    }
}

fn filter(body: Value) -> Result<Filter, Failure> {
    Filter::parse(body.as_object().unwrap(), Scope::List)
}

/// Whether `filters` (the value of the body's `filters` key) selects `prompt`.
fn selects(filters: Value, prompt: &PromptRecord) -> bool {
    filter(json!({ "filters": filters }))
        .unwrap()
        .matches(prompt)
}

#[test]
fn string_operators() {
    let p = prompt(1, "Support Assistant", vec![], None);
    let cases = [
        (
            json!({"name": {"operator": "", "value": ["Support Assistant"]}}),
            true,
        ),
        (json!({"name": {"value": ["support assistant"]}}), false),
        (
            json!({"name": {"operator": "iexact", "value": ["support assistant"]}}),
            true,
        ),
        (
            json!({"name": {"operator": "in", "value": ["x", "Support Assistant"]}}),
            true,
        ),
        (
            json!({"name": {"operator": "not", "value": ["Support Assistant"]}}),
            false,
        ),
        (
            json!({"name": {"operator": "not_in", "value": ["x", "y"]}}),
            true,
        ),
        (
            json!({"name": {"operator": "contains", "value": ["Assist"]}}),
            true,
        ),
        (
            json!({"name": {"operator": "contains", "value": ["assist"]}}),
            false,
        ),
        (
            json!({"name": {"operator": "icontains", "value": ["ASSIST"]}}),
            true,
        ),
        (
            json!({"name": {"operator": "not_contains", "value": ["zzz"]}}),
            true,
        ),
        (
            json!({"name": {"operator": "startswith", "value": ["Supp"]}}),
            true,
        ),
        (
            json!({"name": {"operator": "not_startswith", "value": ["Supp"]}}),
            false,
        ),
        (
            json!({"name": {"operator": "endswith", "value": ["tant"]}}),
            true,
        ),
        (
            json!({"name": {"operator": "not_endswith", "value": ["tant"]}}),
            false,
        ),
        (json!({"name": {"operator": "lt", "value": ["T"]}}), true),
        (json!({"name": {"operator": "empty", "value": [""]}}), false),
        (
            json!({"name": {"operator": "not_empty", "value": [""]}}),
            true,
        ),
        (
            json!({"description": {"operator": "isnull", "value": [true]}}),
            true,
        ),
        (
            json!({"description": {"operator": "empty", "value": [""]}}),
            true,
        ),
        (
            json!({"description": {"operator": "not", "value": ["x"]}}),
            true,
        ),
        (
            json!({"prompt_slug": {"operator": "", "value": ["support-assistant"]}}),
            true,
        ),
        (
            json!({"creator_email": {"operator": "icontains", "value": ["EXAMPLE"]}}),
            true,
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(selects(body.clone(), &p), expected, "{body}");
    }
}

#[test]
fn version_fields_numbers_times_and_missing_live() {
    let p = prompt(
        1,
        "A",
        vec![
            version(1, true, "gpt-4o", "2026-02-01T00:00:00.000000Z"),
            version(2, false, "gpt-4o-mini", "2026-03-01T00:00:00.000000Z"),
        ],
        None,
    );
    let cases = [
        (
            json!({"current_version__model": {"operator": "in", "value": ["gpt-4o-mini"]}}),
            true,
        ),
        (
            json!({"current_version__version": {"operator": "gte", "value": [2]}}),
            true,
        ),
        (
            json!({"current_version__version": {"operator": "gt", "value": ["2"]}}),
            false,
        ),
        (
            json!({"current_version__temperature": {"operator": "lt", "value": [1]}}),
            true,
        ),
        (
            json!({"current_version__readonly": {"operator": "", "value": [false]}}),
            true,
        ),
        (
            json!({"current_version__updated_at": {"operator": "gt", "value": ["2026-02-15"]}}),
            true,
        ),
        (
            json!({"current_version__updated_at": [
                {"operator": "gte", "value": ["2026-01-01T00:00:00Z"]},
                {"operator": "lt", "value": ["2026-02-15T00:00:00Z"]},
            ]}),
            false,
        ),
        (
            json!({"live_version__model": {"operator": "not", "value": ["x"]}}),
            false,
        ),
        (
            json!({"live_version__model": {"operator": "isnull", "value": [true]}}),
            true,
        ),
        (
            json!({"live_version__model": {"operator": "isnull", "value": [false]}}),
            false,
        ),
        (
            json!({"live_version__version": {"operator": "empty", "value": [""]}}),
            true,
        ),
        (
            json!({"commit_count": {"operator": "", "value": [1]}}),
            true,
        ),
        (json!({"starred": {"value": [false]}}), true),
        (
            json!({"tags": {"operator": "in", "value": ["tag_a"]}}),
            true,
        ),
        (
            json!({"tags": {"operator": "not_in", "value": ["tag_a"]}}),
            false,
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(selects(body.clone(), &p), expected, "{body}");
    }
    let live = prompt(
        2,
        "B",
        vec![version(1, true, "gpt-4o", "2026-02-01T00:00:00Z")],
        Some(1),
    );
    assert!(selects(
        json!({"live_version__is_deployed": {"value": [true]}}),
        &live
    ));
}

#[test]
fn deleted_prompts_only_when_asked_and_or_combines() {
    let mut gone = prompt(1, "Gone", vec![], None);
    gone.deleted_at = Some("2026-01-02T00:00:00Z".into());
    let here = prompt(2, "Here", vec![], None);
    assert!(!selects(json!({}), &gone));
    assert!(selects(json!({}), &here));
    let deleted = json!({"filters": {"is_deleted": {"value": [true]}}});
    assert!(filter(deleted.clone()).unwrap().matches(&gone));
    assert!(!filter(deleted).unwrap().matches(&here));
    let either = json!({"operator": "OR", "filters": {
        "name": {"value": ["Nope"]}, "prompt_slug": {"value": ["here"]}
    }});
    assert!(filter(either).unwrap().matches(&here));
}

#[test]
fn bad_filters_are_400s_naming_the_field() {
    let bad = [
        json!({"filters": {"colour": {"value": ["red"]}}}),
        json!({"filters": {"name": {"operator": "like", "value": ["x"]}}}),
        json!({"filters": {"name": {"operator": "icontains", "value": []}}}),
        json!({"filters": {"name": {"operator": "", "value": "bare"}}}),
        json!({"filters": {"commit_count": {"operator": "icontains", "value": ["1"]}}}),
        json!({"filters": {"commit_count": {"value": ["many"]}}}),
        json!({"filters": {"current_version__messages": {"value": ["x"]}}}),
        json!({"filters": {"current_version__updated_at": {"operator": "gt", "value": ["soon"]}}}),
        json!({"filters": ["name"]}),
        json!({"operator": "XOR"}),
    ];
    for body in bad {
        let failure = Filter::parse(body.as_object().unwrap(), Scope::List).unwrap_err();
        assert_eq!(failure.status, 400, "{body}");
    }
    let failure = Filter::parse(
        json!({"filters": {"colour": {"value": []}}})
            .as_object()
            .unwrap(),
        Scope::List,
    )
    .unwrap_err();
    assert_eq!(
        failure.body,
        json!({"filters": {"colour": ["Unsupported filter field \"colour\"."]}})
    );
    let summary = json!({"filters": {"creator_email": {"value": ["a"]}}});
    assert!(Filter::parse(summary.as_object().unwrap(), Scope::Summary).is_err());
}

#[test]
fn sorting() {
    let a = prompt(
        1,
        "b",
        vec![version(1, false, "m", "2026-03-01T00:00:00Z")],
        None,
    );
    let b = prompt(2, "a", vec![], None);
    let c = prompt(
        3,
        "c",
        vec![version(1, false, "m", "2026-01-01T00:00:00Z")],
        None,
    );
    let order = |sort: &str| {
        let sort = Sort::parse(Some(sort)).unwrap();
        let mut all = [&a, &b, &c];
        all.sort_by(|x, y| sort.compare(x, y));
        all.iter().map(|p| p.seq).collect::<Vec<_>>()
    };
    assert_eq!(order("-id"), [3, 2, 1]);
    assert_eq!(order("id"), [1, 2, 3]);
    assert_eq!(order("name"), [2, 1, 3]);
    assert_eq!(order("-current_version__updated_at"), [1, 3, 2]);
    assert_eq!(order("current_version__updated_at"), [3, 1, 2]);
    assert!(Sort::parse(Some("-colour")).is_err());
    assert!(Sort::parse(None).is_ok());
}
