//! The emulator's records (respan-api.md 4.13: per prompt and per version) and how
//! they render as the API's JSON objects (2.1, 2.2, 2.2.1). Records are also the
//! persisted form. Pure; knows nothing about HTTP.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use super::validate::VERSION_FIELDS;

/// A prompt and all its versions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PromptRecord {
    pub id: String,
    /// Creation order; `sort_by=-id` means newest first.
    pub seq: u64,
    pub name: String,
    pub description: Option<String>,
    pub prompt_slug: String,
    /// Tag objects; no endpoint sets them, a state file can.
    #[serde(default)]
    pub tags: Vec<Value>,
    #[serde(default)]
    pub starred: bool,
    pub creator_email: String,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default)]
    pub deleted_at: Option<String>,
    /// The number the next version gets; never goes back (4.3).
    pub next_version: u32,
    /// The live version's number.
    #[serde(default)]
    pub live: Option<u32>,
    /// Ascending by number.
    pub versions: Vec<VersionRecord>,
}

/// One version: its number, state and content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct VersionRecord {
    pub id: String,
    pub version: u32,
    pub readonly: bool,
    pub created_at: String,
    pub updated_at: String,
    /// Every field of [`VERSION_FIELDS`], in that order.
    pub fields: Map<String, Value>,
}

/// The fake user every change is attributed to.
pub(crate) const EDITOR_EMAIL: &str = "emulator@promptsync.invalid";

impl PromptRecord {
    pub(crate) fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }

    /// The newest version: the draft if there is one (4.1).
    pub(crate) fn current(&self) -> Option<&VersionRecord> {
        self.versions.last()
    }

    pub(crate) fn live_version(&self) -> Option<&VersionRecord> {
        self.live.and_then(|n| self.version(n))
    }

    /// The draft's position, if the newest version is one.
    pub(crate) fn draft_index(&self) -> Option<usize> {
        let last = self.versions.len().checked_sub(1)?;
        (!self.versions[last].readonly).then_some(last)
    }

    pub(crate) fn index_of(&self, number: u32) -> Option<usize> {
        self.versions
            .binary_search_by_key(&number, |v| v.version)
            .ok()
    }

    pub(crate) fn version(&self, number: u32) -> Option<&VersionRecord> {
        self.index_of(number).map(|i| &self.versions[i])
    }

    /// Read-only versions (the `commit_count` filter field).
    pub(crate) fn commit_count(&self) -> usize {
        self.versions.iter().filter(|v| v.readonly).count()
    }

    /// The full prompt object (E4, list items).
    pub(crate) fn to_json(&self) -> Value {
        to_value(self.view())
    }

    /// The full prompt object, to serialize without copying the record (a list page).
    pub(crate) fn view(&self) -> PromptView<'_> {
        PromptView(self)
    }

    /// The short prompt object of an update (E5).
    pub(crate) fn update_json(&self) -> Value {
        json!({
            "id": self.id,
            "prompt_id": self.id,
            "name": self.name,
            "description": self.description,
            "updated_at": self.updated_at,
        })
    }
}

impl VersionRecord {
    /// The full version object (E8, E9, E10, list items), given the prompt's live number.
    pub(crate) fn to_json(&self, live: Option<u32>) -> Value {
        to_value(self.view(live))
    }

    /// The full version object, to serialize without copying the record.
    pub(crate) fn view(&self, live: Option<u32>) -> VersionView<'_> {
        VersionView {
            record: self,
            live,
            fields: &VERSION_FIELDS,
        }
    }

    /// The short version object of commit and deploy responses (2.2.1).
    pub(crate) fn short_json(&self, live: Option<u32>) -> Value {
        to_value(VersionView {
            record: self,
            live,
            fields: &["description", "messages", "model"],
        })
    }
}

/// A view as a JSON tree. Cannot fail: every key is a string.
fn to_value(view: impl Serialize) -> Value {
    serde_json::to_value(view).unwrap_or(Value::Null)
}

/// [`PromptRecord::to_json`]'s object, serialized from the record in place.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PromptView<'a>(&'a PromptRecord);

impl Serialize for PromptView<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let p = self.0;
        let mut map = serializer.serialize_map(Some(12))?;
        map.serialize_entry("id", &p.id)?;
        map.serialize_entry("prompt_id", &p.id)?;
        map.serialize_entry("name", &p.name)?;
        map.serialize_entry("description", &p.description)?;
        map.serialize_entry("prompt_slug", &p.prompt_slug)?;
        map.serialize_entry("tags", &p.tags)?;
        map.serialize_entry("starred", &p.starred)?;
        map.serialize_entry("commit_count", &p.commit_count())?;
        map.serialize_entry("current_version", &p.current().map(|v| v.view(p.live)))?;
        map.serialize_entry("live_version", &p.live_version().map(|v| v.view(p.live)))?;
        map.serialize_entry("created_at", &p.created_at)?;
        map.serialize_entry("updated_at", &p.updated_at)?;
        map.end()
    }
}

/// A version object, serialized from the record in place: its head, its fields (null
/// when unset; all of [`VERSION_FIELDS`] for the full object), its tail.
#[derive(Debug, Clone, Copy)]
pub(crate) struct VersionView<'a> {
    record: &'a VersionRecord,
    live: Option<u32>,
    fields: &'a [&'a str],
}

impl Serialize for VersionView<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let v = self.record;
        let mut map = serializer.serialize_map(Some(3 + self.fields.len() + 5))?;
        map.serialize_entry("id", &v.id)?;
        map.serialize_entry("prompt_version_id", &v.id)?;
        map.serialize_entry("version", &v.version)?;
        for field in self.fields {
            map.serialize_entry(field, v.fields.get(*field).unwrap_or(&Value::Null))?;
        }
        map.serialize_entry("readonly", &v.readonly)?;
        map.serialize_entry("is_deployed", &(self.live == Some(v.version)))?;
        map.serialize_entry("edited_by", &EditedBy)?;
        map.serialize_entry("created_at", &v.created_at)?;
        map.serialize_entry("updated_at", &v.updated_at)?;
        map.end()
    }
}

/// The fake user every change is attributed to, as `edited_by`.
struct EditedBy;

impl Serialize for EditedBy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(4))?;
        map.serialize_entry("id", &1)?;
        map.serialize_entry("email", EDITOR_EMAIL)?;
        map.serialize_entry("first_name", "Prompt")?;
        map.serialize_entry("last_name", "Sync")?;
        map.end()
    }
}

/// A timestamp as the API prints it: ISO 8601, microseconds, `Z`.
pub(crate) fn format_time(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    at.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    ))
    .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// An RFC 3339 timestamp, or a plain date (midnight UTC), as filters accept them.
pub(crate) fn parse_time(text: &str) -> Option<OffsetDateTime> {
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(at);
    }
    let date = time::Date::parse(text, format_description!("[year]-[month]-[day]")).ok()?;
    Some(date.midnight().assume_utc())
}

/// The slug the API derives from a name (`Customer Support` -> `customer-support`).
pub(crate) fn slugify(name: &str) -> String {
    let mut slug = String::with_capacity(name.len());
    for ch in name.trim().chars() {
        if ch.is_ascii_alphanumeric() || ch == '_' {
            slug.push(ch.to_ascii_lowercase());
        } else if (ch.is_whitespace() || ch == '-') && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_follow_the_examples() {
        assert_eq!(
            slugify("Customer Support Assistant"),
            "customer-support-assistant"
        );
        assert_eq!(slugify("  A -- b_c!? "), "a-b_c");
        assert_eq!(slugify("Ünïcode name"), "ncode-name");
    }

    #[test]
    fn times_print_with_z_and_parse_back() {
        let at = time::macros::datetime!(2026-03-02 09:15:00.5 UTC);
        let text = format_time(at);
        assert_eq!(text, "2026-03-02T09:15:00.500000Z");
        assert_eq!(parse_time(&text), Some(at));
        assert_eq!(
            parse_time("2026-03-02"),
            Some(time::macros::datetime!(2026-03-02 0:00 UTC))
        );
        assert_eq!(parse_time("yesterday"), None);
    }
}
