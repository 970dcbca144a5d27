//! One list page (respan-api.md 2.5), read item by item: each item straight into its
//! type from the raw text the parser points at, within the running value budget
//! (`api::decode`), so one that does not read costs only itself and no page is ever a
//! tree of JSON values. A page must be a page: an object with `results`, a list of at
//! most the items asked for, and `next`, a URL or null; anything else is an error that
//! says what came instead (an empty object, a list, an error message with status 200),
//! never an empty page. Pure: no I/O.

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::decode::{Budget, DecodeError, RAN_OUT_TEXT, Shape, quoted, ran_out};
use super::types::{ItemProblem, Listed, Page};

/// The `visit_*` methods of the scalars, each refusing what came by its kind through
/// `self.refuse(kind)`: a page and its `results` are never scalars.
macro_rules! refuse_scalars {
    () => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            self.refuse("a boolean")
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            self.refuse("a number")
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            self.refuse("a number")
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            self.refuse("a number")
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            self.refuse("a string")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            self.refuse("null")
        }
    };
}

/// What one page may hold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageLimits {
    /// Items asked for.
    pub size: usize,
    /// JSON values it may build.
    pub values: u64,
}

/// A page read, and what its items cost.
#[derive(Debug)]
pub(crate) struct PageRead<T> {
    pub page: Page<T>,
    /// Bytes of the items kept (their JSON text).
    pub bytes: u64,
    /// JSON values they built.
    pub values: u64,
}

/// One list page (respan-api.md 2.5), item by item.
#[cfg(test)]
pub(crate) fn read<T: Listed>(body: &[u8], limits: PageLimits) -> Result<PageRead<T>, DecodeError> {
    read_each(body, limits, &|_| {})
}

/// One list page (respan-api.md 2.5), item by item, `each` called on every usable
/// item as soon as it is read (before the next is).
pub(crate) fn read_each<T: Listed>(
    body: &[u8],
    limits: PageLimits,
    each: &dyn Fn(&mut T),
) -> Result<PageRead<T>, DecodeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(DecodeError::NotAPage("an empty body".to_owned()));
    }
    let budget = Budget::set(limits.values);
    let mut problem = None;
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let read = PageVisitor::<T> {
        limits,
        problem: &mut problem,
        each,
    };
    let read = deserializer
        .deserialize_any(read)
        .and_then(|read| deserializer.end().map(|()| read));
    match read {
        Ok((page, bytes)) => Ok(PageRead {
            page,
            bytes,
            values: limits.values - budget.left(),
        }),
        Err(err) => Err(match problem {
            Some(problem) => problem,
            None if budget.ran_out() => DecodeError::TooManyValues {
                budget: limits.values,
            },
            None => DecodeError::Json(err),
        }),
    }
}

/// The page object. A page that is not one sets `problem` and stops the parse.
struct PageVisitor<'p, T> {
    limits: PageLimits,
    problem: &'p mut Option<DecodeError>,
    each: &'p dyn Fn(&mut T),
}

impl<'p, T> PageVisitor<'p, T> {
    fn refuse<E: de::Error, R>(self, what: &str) -> Result<R, E> {
        *self.problem = Some(DecodeError::NotAPage(what.to_owned()));
        Err(E::custom("not a page"))
    }
}

impl<'de, T: Listed> Visitor<'de> for PageVisitor<'_, T> {
    type Value = (Page<T>, u64);

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a page")
    }

    refuse_scalars!();

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        self.refuse("a list")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut count = None;
        let mut next = None;
        let mut items = None;
        let mut detail = None;
        let mut keys: Vec<String> = Vec::new();
        let mut more_keys = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "count" => count = map.next_value::<Shape>()?.whole(),
                "next" => next = Some(map.next_value::<Shape>()?),
                "results" => {
                    let seed = Items::<T> {
                        limits: self.limits,
                        problem: &mut *self.problem,
                        each: self.each,
                    };
                    items = Some(map.next_value_seed(seed)?);
                }
                "detail" => detail = map.next_value::<Shape>()?.into_text(),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            if keys.len() < 6 {
                keys.push(key);
            } else {
                more_keys = true;
            }
        }
        let Some((results, problems, bytes)) = items else {
            let what = if keys.is_empty() {
                "an empty object `{}`".to_owned()
            } else if let Some(detail) = detail {
                format!(
                    "an object with `detail` \"{}\" (an error, not a page)",
                    quoted(&detail)
                )
            } else {
                let mut listed = keys
                    .iter()
                    .map(|k| format!("`{}`", quoted(k)))
                    .collect::<Vec<_>>()
                    .join(", ");
                if more_keys {
                    listed.push_str(", ...");
                }
                format!("an object without `results` (its keys: {listed})")
            };
            return self.refuse(&what);
        };
        let next = match next {
            None => return self.refuse("an object without `next`"),
            Some(Shape::Text(url)) => Some(url),
            Some(Shape::Null) => None,
            Some(other) => {
                let kind = other.kind();
                return self.refuse(&format!("`next` that is {kind}, neither a URL nor null"));
            }
        };
        let page = Page {
            count,
            next,
            results,
            problems,
        };
        Ok((page, bytes))
    }
}

/// The `results` list: at most `limits.size` items, each read on its own from its raw
/// text, so that one that does not read costs only itself.
struct Items<'p, T> {
    limits: PageLimits,
    problem: &'p mut Option<DecodeError>,
    each: &'p dyn Fn(&mut T),
}

impl<'de, T: Listed> DeserializeSeed<'de> for Items<'_, T> {
    type Value = (Vec<T>, Vec<ItemProblem>, u64);

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, T: Listed> Visitor<'de> for Items<'_, T> {
    type Value = (Vec<T>, Vec<ItemProblem>, u64);

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a list of items")
    }

    refuse_scalars!();

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        self.refuse("an object")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut results = Vec::new();
        let mut problems = Vec::new();
        let mut bytes = 0u64;
        let mut index = 0;
        while let Some(raw) = seq.next_element::<&'de RawValue>()? {
            if index == self.limits.size {
                *self.problem = Some(DecodeError::TooManyItems {
                    size: self.limits.size,
                });
                return Err(de::Error::custom("too many items"));
            }
            let text = raw.get();
            let reason = match T::from_item(text) {
                Ok(mut item) => match item.unusable() {
                    None => {
                        bytes += text.len() as u64;
                        (self.each)(&mut item);
                        results.push(item);
                        None
                    }
                    Some(reason) => Some(reason),
                },
                Err(_) if ran_out() => {
                    *self.problem = Some(DecodeError::TooManyValues {
                        budget: self.limits.values,
                    });
                    return Err(de::Error::custom(RAN_OUT_TEXT));
                }
                Err(err) => Some(err.to_string()),
            };
            if let Some(reason) = reason {
                let (prompt_id, name) = T::identify(text);
                problems.push(ItemProblem {
                    page: 0,
                    index,
                    prompt_id,
                    name,
                    reason,
                });
            }
            index += 1;
        }
        Ok((results, problems, bytes))
    }
}

impl<T> Items<'_, T> {
    fn refuse<E: de::Error, R>(self, kind: &str) -> Result<R, E> {
        *self.problem = Some(DecodeError::NotAPage(format!(
            "`results` that is {kind}, not a list"
        )));
        Err(E::custom("not a page"))
    }
}

#[cfg(test)]
mod tests;
