//! The JSON Schema of the prompt file format, generated from the types in
//! `format` with schemars, and lookups in it (which schema applies at
//! a JSON pointer). The checked-in copy in `config/prompt.schema.json` is compared
//! with it by a test.

use std::sync::LazyLock;

use serde_json::{Map, Value};

use super::format::PromptFile;

/// Where the schema is checked in, relative to the repository of promptsync itself.
pub const SCHEMA_PATH: &str = "config/prompt.schema.json";

/// The schema as a JSON value: `$schema`, `title` and `description` first,
/// and no `"default": null` noise (every optional field defaults to "not set").
pub fn schema() -> Value {
    let mut generated = schemars::schema_for!(PromptFile).to_value();
    drop_null_defaults(&mut generated);
    let mut ordered = Map::new();
    if let Value::Object(generated) = generated {
        for key in ["$schema", "title", "description"] {
            if let Some(value) = generated.get(key) {
                ordered.insert(key.to_owned(), value.clone());
            }
        }
        for (key, value) in generated {
            if !ordered.contains_key(&key) {
                ordered.insert(key, value);
            }
        }
    }
    Value::Object(ordered)
}

fn drop_null_defaults(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.get("default") == Some(&Value::Null) {
                map.remove("default");
            }
            map.values_mut().for_each(drop_null_defaults);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_null_defaults),
        _ => {}
    }
}

/// The top-level keys of a prompt file, in the schema's (and the format's) order.
pub fn property_names() -> Vec<&'static str> {
    SCHEMA
        .get("properties")
        .and_then(Value::as_object)
        .map(|properties| properties.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

/// The generated schema, built once.
pub(crate) static SCHEMA: LazyLock<Value> = LazyLock::new(schema);

/// The schema that applies to the node at `pointer`, `$ref`s followed; for a node
/// under an `anyOf`, the first branch that has the node.
pub(crate) fn schema_at(pointer: &str) -> Option<&'static Value> {
    let mut schema = resolve(&SCHEMA)?;
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        schema = child(schema, &token)?;
    }
    Some(schema)
}

/// Whether the format wants text at `pointer`: the schema there takes a string (alone,
/// or as one of its types or `anyOf` branches). Unknown places and free-form values
/// (`variables`, `tools`) do not.
pub(crate) fn accepts_text(pointer: &str) -> bool {
    schema_at(pointer).is_some_and(takes_string)
}

/// Whether the format wants an integer at `pointer` (`max_tokens`, `seed`).
pub(crate) fn wants_integer(pointer: &str) -> bool {
    schema_at(pointer).is_some_and(|schema| match schema.get("type") {
        Some(Value::String(ty)) => ty == "integer",
        Some(Value::Array(types)) => types.iter().any(|ty| ty == "integer"),
        _ => false,
    })
}

fn takes_string(schema: &'static Value) -> bool {
    match schema.get("type") {
        Some(Value::String(ty)) => ty == "string",
        Some(Value::Array(types)) => types.iter().any(|ty| ty == "string"),
        _ => schema
            .get("anyOf")
            .and_then(Value::as_array)
            .is_some_and(|branches| branches.iter().filter_map(resolve).any(takes_string)),
    }
}

fn child(schema: &'static Value, token: &str) -> Option<&'static Value> {
    if let Some(property) = schema.get("properties").and_then(|p| p.get(token)) {
        return resolve(property);
    }
    if token.bytes().all(|b| b.is_ascii_digit())
        && let Some(items) = schema.get("items")
    {
        return resolve(items);
    }
    schema
        .get("anyOf")?
        .as_array()?
        .iter()
        .filter_map(resolve)
        .find_map(|branch| child(branch, token))
}

/// Follow `$ref`s into `$defs` (keeping the referring node when it has its own
/// properties, as schemars writes `{"$ref": ..., "description": ...}`).
fn resolve(schema: &'static Value) -> Option<&'static Value> {
    let mut schema = schema;
    for _ in 0..8 {
        let Some(reference) = schema.get("$ref").and_then(Value::as_str) else {
            break;
        };
        let name = reference.strip_prefix("#/$defs/")?;
        schema = SCHEMA.get("$defs")?.get(name)?;
    }
    if let Some(any_of) = schema.get("anyOf").and_then(Value::as_array) {
        // `Option<T>`: anyOf [T, null]; look through to T.
        let non_null: Vec<&Value> = any_of
            .iter()
            .filter(|branch| branch.get("type") != Some(&Value::from("null")))
            .collect();
        if let [only] = non_null.as_slice() {
            return resolve(only);
        }
    }
    Some(schema)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema as the text of `config/prompt.schema.json`: pretty JSON and a newline.
    fn schema_text() -> String {
        let mut text = serde_json::to_string_pretty(&schema()).unwrap_or_default();
        text.push('\n');
        text
    }

    /// The checked-in schema must be what the types generate. To regenerate it after
    /// changing the format types: `UPDATE_SCHEMA=1 cargo test --lib schema`.
    #[test]
    fn checked_in_schema_matches_the_types() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SCHEMA_PATH);
        let generated = schema_text();
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "{SCHEMA_PATH} is out of date with the prompt format types; regenerate it with \
             `UPDATE_SCHEMA=1 cargo test --lib schema` and commit it"
        );
    }

    #[test]
    fn schema_at_follows_refs_items_and_options() {
        let role = schema_at("/messages/3/role").unwrap();
        assert_eq!(role["enum"][0], "system");
        let weight = schema_at("/load_balance_models/0/weight").unwrap();
        assert_eq!(weight["minimum"], 0);
        let part = schema_at("/messages/0/content/1").unwrap();
        assert_eq!(part["required"][0], "type");
        assert!(schema_at("/nope").is_none());
        assert_eq!(schema_at("").unwrap()["title"], SCHEMA["title"]);
    }

    #[test]
    fn text_places_come_from_the_schema() {
        for pointer in [
            "/prompt_id",
            "/name",
            "/description",
            "/model",
            "/reasoning_effort",
            "/verbosity",
            "/fallback_models/0",
            "/load_balance_models/1/model",
            "/messages/0/role",
            "/messages/0/name",
            "/messages/0/tool_call_id",
            "/messages/0/content",
            "/messages/0/content_file",
            "/messages/0/content/0/type",
            "/tool_choice",
        ] {
            assert!(accepts_text(pointer), "{pointer}");
        }
        for pointer in [
            "",
            "/temperature",
            "/max_tokens",
            "/seed",
            "/stream",
            "/load_balance_models/0/weight",
            "/variables/x",
            "/tools/0/type",
            "/messages/0/content/0/text",
            "/nope",
        ] {
            assert!(!accepts_text(pointer), "{pointer}");
        }
    }

    #[test]
    fn the_schema_compiles_and_says_its_draft() {
        assert_eq!(
            SCHEMA["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        jsonschema::validator_for(&SCHEMA).unwrap();
    }
}
