//! Error replies in the API's shapes (respan-api.md 2.7): `{"detail": ...}` for
//! 401/403/404/422/429, DRF field maps for validation 400s. The rules in `store`
//! return [`Failure`]; only the `IntoResponse` impl here knows axum.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// A refused request: an HTTP status and a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Failure {
    pub status: u16,
    pub body: Value,
}

impl Failure {
    /// Any status with `{"detail": message}`.
    pub(crate) fn detail(status: u16, message: impl Into<String>) -> Failure {
        Failure {
            status,
            body: json!({ "detail": message.into() }),
        }
    }

    /// 400 with `{"detail": message}` (lifecycle rules).
    pub(crate) fn bad_request(message: impl Into<String>) -> Failure {
        Failure::detail(400, message)
    }

    /// 400 with a DRF field map, e.g. `{"temperature": ["Ensure ..."]}`.
    pub(crate) fn fields(errors: FieldErrors) -> Failure {
        Failure {
            status: 400,
            body: Value::Object(errors.into_map()),
        }
    }

    /// 400 with one field error.
    pub(crate) fn field(field: &str, message: impl Into<String>) -> Failure {
        let mut errors = FieldErrors::default();
        errors.add(field, message);
        Failure::fields(errors)
    }

    /// 404 `Not found.`
    pub(crate) fn not_found() -> Failure {
        Failure::detail(404, "Not found.")
    }

    /// One line for a bulk item error or a log: the detail, or the field map flattened.
    pub(crate) fn message(&self) -> String {
        if let Some(detail) = self.body.get("detail").and_then(Value::as_str) {
            return detail.to_owned();
        }
        match &self.body {
            Value::Object(map) => map
                .iter()
                .map(|(field, messages)| format!("{field}: {}", flatten(messages)))
                .collect::<Vec<_>>()
                .join("; "),
            other => other.to_string(),
        }
    }
}

fn flatten(messages: &Value) -> String {
    match messages {
        Value::Array(items) => items.iter().map(flatten).collect::<Vec<_>>().join(" "),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Validation errors collected per field, in the order found (DRF style).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FieldErrors(Map<String, Value>);

impl FieldErrors {
    pub(crate) fn add(&mut self, field: &str, message: impl Into<String>) {
        let entry = self
            .0
            .entry(field.to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = entry {
            list.push(Value::String(message.into()));
        }
    }

    /// Set a field's errors to a nested structure (a list serializer's per-item maps).
    pub(crate) fn set(&mut self, field: &str, detail: Value) {
        self.0.insert(field.to_owned(), detail);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn into_map(self) -> Map<String, Value> {
        self.0
    }

    /// `Ok(())` when nothing was found, else the 400.
    pub(crate) fn into_result(self) -> Result<(), Failure> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(Failure::fields(self))
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(self.body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"api\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_flattens_field_maps() {
        let mut errors = FieldErrors::default();
        errors.add(
            "temperature",
            "Ensure this value is less than or equal to 2.",
        );
        errors.add("messages", "This list may not be empty.");
        let failure = Failure::fields(errors);
        assert_eq!(failure.status, 400);
        assert_eq!(
            failure.message(),
            "temperature: Ensure this value is less than or equal to 2.; \
             messages: This list may not be empty."
        );
        assert_eq!(Failure::not_found().message(), "Not found.");
    }
}
