//! The JSON Schema of the prompt file format, generated from the types in
//! [`format`](super::format) with schemars. The checked-in copy in
//! `config/prompt.schema.json` is compared with it by a test.

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

/// The schema as the text of `config/prompt.schema.json`: pretty JSON and a newline.
pub fn schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    text.push('\n');
    text
}

/// The generated schema, built once.
pub(crate) static SCHEMA: LazyLock<Value> = LazyLock::new(schema);

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_schema_compiles_and_says_its_draft() {
        assert_eq!(
            SCHEMA["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        jsonschema::validator_for(&SCHEMA).unwrap();
    }
}
