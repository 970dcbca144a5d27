//! The `rewrite` fault: the request runs, then the JSON body of its reply is changed
//! at a JSON pointer (RFC 6901): `value` is put there (the key is added to its object
//! if missing), or, without `value`, the key or array item is removed. So a test can
//! hand a client a malformed item (`/results/1/version` set to `"three"`) or a summary
//! where a full object was due. A reply that is not JSON, or a pointer that leads
//! nowhere, is sent unchanged. Knows nothing about prompts.

use axum::body::Body;
use axum::http::header;
use axum::response::Response;
use serde_json::Value;

use super::reqlog::FaultMark;

/// Largest reply body the fault reads back (the emulator's own replies are smaller).
const MAX_REPLY: usize = 64 * 1024 * 1024;

/// The rule's own check: `pointer` with kind `rewrite` and only then, and well formed.
pub(crate) fn check(rewrite: bool, pointer: Option<&str>, value: bool) -> Result<(), String> {
    match (rewrite, pointer) {
        (true, None) => Err("a `rewrite` fault needs `pointer`".to_owned()),
        (true, Some(p)) if !p.is_empty() && !p.starts_with('/') => Err(format!(
            "`pointer` must be empty or start with `/` (RFC 6901): {p}"
        )),
        (false, Some(_)) => Err("`pointer` only goes with kind `rewrite`".to_owned()),
        (false, None) if value => Err("`value` only goes with kind `rewrite`".to_owned()),
        _ => Ok(()),
    }
}

/// `response` with its JSON body changed at `pointer`.
pub(crate) async fn rewritten(
    response: Response,
    pointer: &str,
    value: Option<&Value>,
) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_REPLY).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let changed = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|mut json| apply(&mut json, pointer, value).then_some(json))
        .and_then(|json| serde_json::to_vec(&json).ok());
    let body = match changed {
        Some(changed) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            Body::from(changed)
        }
        None => Body::from(bytes),
    };
    let mut response = Response::from_parts(parts, body);
    response.extensions_mut().insert(FaultMark("rewrite"));
    response
}

/// Put `value` at `pointer` (or remove what is there); whether anything changed.
fn apply(json: &mut Value, pointer: &str, value: Option<&Value>) -> bool {
    if let (Some(slot), Some(value)) = (json.pointer_mut(pointer), value) {
        *slot = value.clone();
        return true;
    }
    let Some((parent, key)) = pointer.rsplit_once('/') else {
        return false;
    };
    let key = key.replace("~1", "/").replace("~0", "~");
    match (json.pointer_mut(parent), value) {
        (Some(Value::Object(map)), Some(value)) => {
            map.insert(key, value.clone());
            true
        }
        (Some(Value::Object(map)), None) => map.remove(&key).is_some(),
        (Some(Value::Array(items)), None) => match key.parse::<usize>() {
            Ok(index) if index < items.len() => {
                items.remove(index);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_set_added_and_removed_at_the_pointer() {
        let mut reply = json!({"results": [{"version": 1, "a/b": 2}, {"version": 2}]});
        assert!(apply(&mut reply, "/results/0/version", Some(&json!("one"))));
        assert!(apply(&mut reply, "/results/1/extra", Some(&json!(true))));
        assert!(apply(&mut reply, "/results/0/a~1b", None));
        assert_eq!(
            reply,
            json!({"results": [{"version": "one"}, {"version": 2, "extra": true}]})
        );
        assert!(apply(&mut reply, "/results/0", None));
        assert_eq!(reply["results"].as_array().map(Vec::len), Some(1));
        assert!(!apply(&mut reply, "/nowhere/at/all", Some(&json!(1))));
        assert!(!apply(&mut reply, "/results/7", None));
    }

    #[test]
    fn rules_need_a_well_formed_pointer_with_rewrite_only() {
        assert!(check(true, Some("/results/0"), true).is_ok());
        assert!(check(true, Some(""), false).is_ok());
        assert!(check(true, None, true).is_err());
        assert!(check(true, Some("results"), true).is_err());
        assert!(check(false, Some("/x"), false).is_err());
        assert!(check(false, None, true).is_err());
        assert!(check(false, None, false).is_ok());
    }
}
