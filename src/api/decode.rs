//! Reading a 2xx body into typed values, within bounds no server can push: the body is
//! never turned into one JSON tree (list pages: `api::page`). The JSON values a reply
//! may build (the fields of the versions it holds, kept as JSON) are counted against a
//! budget, so a reply of many tiny values costs no more memory than the budget allows.
//! Knows nothing of HTTP.

use std::cell::Cell;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess,
    Visitor,
};
use serde_json::{Map, Value};

/// The JSON values one reply may build: 250,000. A page of 100 prompts with their two
/// versions in full holds about 10,000; one version made from a prompt file at the
/// 1 MiB cap, rarely more than 100,000. At most about 16 MiB of memory.
pub(crate) const MAX_REPLY_VALUES: u64 = 250_000;

/// The values a small piece of a reply may build (an error body, a 429's body).
const SMALL_VALUES: u64 = 10_000;

thread_local! {
    /// Values the decode running on this thread may still build; `None`: no decode
    /// runs (values our own code builds are not counted).
    static LEFT: Cell<Option<u64>> = const { Cell::new(None) };
    /// The budget ran out during the running decode.
    static RAN_OUT: Cell<bool> = const { Cell::new(false) };
}

/// The serde message of a budget that ran out (the caller names the bound).
pub(super) const RAN_OUT_TEXT: &str = "more JSON values than promptsync reads";

/// A budget of values for the decode on this thread, for as long as it lives (decoding
/// is synchronous, so nothing else runs on the thread meanwhile); the one before is
/// back when it is dropped.
pub(super) struct Budget {
    before: Option<u64>,
    before_ran_out: bool,
}

impl Budget {
    pub(super) fn set(values: u64) -> Budget {
        Budget {
            before: LEFT.replace(Some(values)),
            before_ran_out: RAN_OUT.replace(false),
        }
    }

    pub(super) fn left(&self) -> u64 {
        LEFT.get().unwrap_or(0)
    }

    pub(super) fn ran_out(&self) -> bool {
        RAN_OUT.get()
    }
}

impl Drop for Budget {
    fn drop(&mut self) {
        LEFT.set(self.before);
        RAN_OUT.set(self.before_ran_out);
    }
}

/// The values the running decode may still build (`None`: no decode runs).
pub(super) fn values_left() -> Option<u64> {
    LEFT.get()
}

/// Whether the budget of the running decode ran out.
pub(super) fn ran_out() -> bool {
    RAN_OUT.get()
}

/// Take one value from the budget.
pub(super) fn take<E: de::Error>() -> Result<(), E> {
    match LEFT.get() {
        None => Ok(()),
        Some(0) => {
            RAN_OUT.set(true);
            Err(E::custom(RAN_OUT_TEXT))
        }
        Some(n) => {
            LEFT.set(Some(n - 1));
            Ok(())
        }
    }
}

/// Why a reply did not decode.
#[derive(Debug)]
pub(crate) enum DecodeError {
    /// Not JSON, or JSON of another shape; serde's message.
    Json(serde_json::Error),
    /// A page that is not a page: what came instead.
    NotAPage(String),
    /// A page with more items than asked for.
    TooManyItems { size: usize },
    /// More JSON values than the budget.
    TooManyValues { budget: u64 },
}

/// One reply (a prompt, a version), within `values` JSON values (at most
/// [`MAX_REPLY_VALUES`]), and the values it built; an empty body reads as `null` (a
/// DELETE's, or a reply whose body is not used).
pub(crate) fn reply<T: DeserializeOwned>(
    body: &[u8],
    values: u64,
) -> Result<(T, u64), DecodeError> {
    let values = values.min(MAX_REPLY_VALUES);
    let budget = Budget::set(values);
    let parsed = if body.iter().all(u8::is_ascii_whitespace) {
        T::deserialize(Value::Null)
    } else {
        serde_json::from_slice(body)
    };
    match parsed {
        Ok(value) => Ok((value, values - budget.left())),
        Err(_) if budget.ran_out() => Err(DecodeError::TooManyValues { budget: values }),
        Err(err) => Err(DecodeError::Json(err)),
    }
}

/// A small piece of a reply (an error body, a throttle's body), if it reads as `T`
/// within a small budget.
pub(crate) fn small<T: DeserializeOwned>(body: &[u8]) -> Option<T> {
    let _budget = Budget::set(SMALL_VALUES);
    serde_json::from_slice(body).ok()
}

/// Any JSON value, counted against the running budget (unbounded outside a decode).
pub(crate) struct Bounded;

impl<'de> DeserializeSeed<'de> for Bounded {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

/// [`Bounded`] as a type, for `Deserialize` fields.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BoundedValue(pub Value);

impl<'de> serde::Deserialize<'de> for BoundedValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Bounded.deserialize(deserializer).map(BoundedValue)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        take()?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        take()?;
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        take()?;
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        take()?;
        Ok(Value::from(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        take()?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        take()?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        take()?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        take()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Bounded)? {
            items.push(item);
        }
        // No room to spare from doubling: what is kept is what was sent.
        items.shrink_to_fit();
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        ObjectVisitor("a JSON object")
            .visit_map(map)
            .map(Value::Object)
    }
}

/// A JSON object of bounded values; anything else is "invalid type: ..., expected
/// `self.0`".
struct ObjectVisitor(&'static str);

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        take()?;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Bounded)?;
            object.insert(key, value);
        }
        Ok(object)
    }
}

/// A JSON object whose values are counted against the running budget; `expecting`
/// names it in the message when something else came ("a version object").
pub(crate) fn object<'de, D: Deserializer<'de>>(
    deserializer: D,
    expecting: &'static str,
) -> Result<Map<String, Value>, D::Error> {
    deserializer.deserialize_map(ObjectVisitor(expecting))
}

/// A JSON value's shape: scalars as read, lists and objects passed over unread, so a
/// field of an unexpected type costs nothing and can still be named in a message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Shape {
    Null,
    Bool,
    /// A number; its value when it is a whole number that is not negative.
    Number(Option<u64>),
    Text(String),
    List,
    Object,
}

impl Shape {
    /// What it is, for messages ("a number").
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Shape::Null => "null",
            Shape::Bool => "a boolean",
            Shape::Number(_) => "a number",
            Shape::Text(_) => "a string",
            Shape::List => "a list",
            Shape::Object => "an object",
        }
    }

    /// The text, when it is a string.
    pub(crate) fn into_text(self) -> Option<String> {
        match self {
            Shape::Text(text) => Some(text),
            _ => None,
        }
    }

    /// The number, when it is a whole one that is not negative.
    pub(crate) fn whole(&self) -> Option<u64> {
        match self {
            Shape::Number(whole) => *whole,
            _ => None,
        }
    }
}

impl<'de> serde::Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ShapeVisitor;
        impl<'de> Visitor<'de> for ShapeVisitor {
            type Value = Shape;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Shape, E> {
                Ok(Shape::Null)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Shape, E> {
                Ok(Shape::Bool)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Shape, E> {
                Ok(Shape::Number(Some(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Shape, E> {
                Ok(Shape::Number(u64::try_from(v).ok()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Shape, E> {
                let whole = v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < 9.0e15;
                Ok(Shape::Number(whole.then_some(v as u64)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Shape, E> {
                Ok(Shape::Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Shape, E> {
                Ok(Shape::Text(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Shape, A::Error> {
                IgnoredAny.visit_seq(seq).map(|_| Shape::List)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Shape, A::Error> {
                IgnoredAny.visit_map(map).map(|_| Shape::Object)
            }
        }
        deserializer.deserialize_any(ShapeVisitor)
    }
}

/// The longest text of a reply quoted in a message, in characters.
const QUOTED_CHARS: usize = 200;

/// `text` for a message: one line, at most [`QUOTED_CHARS`] characters.
pub(crate) fn quoted(text: &str) -> String {
    let mut shown: String = text.chars().take(QUOTED_CHARS).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    crate::term::line(&shown).into_owned()
}

#[cfg(test)]
mod tests;
