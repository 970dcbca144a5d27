//! The JSON Schema of the prompt file format, generated from the types in
//! [`format`](super::format) with schemars. The checked-in copy in
//! `config/prompt.schema.json` is compared with it by a test.

use std::sync::LazyLock;

use serde_json::Value;

use super::format::PromptFile;

/// Where the schema is checked in, relative to the repository of promptsync itself.
pub const SCHEMA_PATH: &str = "config/prompt.schema.json";

/// The schema as a JSON value.
pub fn schema() -> Value {
    let mut schema = schemars::schema_for!(PromptFile);
    schema.insert(
        "$id".to_owned(),
        Value::from("https://github.com/promptsync/promptsync/blob/main/config/prompt.schema.json"),
    );
    schema.to_value()
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

    #[test]
    fn print() {
        println!("{}", schema_text());
    }
}
