//! The event reader: one pass over the YAML parser's events (granit-parser, the parser
//! serde-saphyr itself uses, with the same options) to the JSON value and the position
//! of every node, for the files every prompt repository is made of. The parser does all
//! the syntax; what is ours is how a plain scalar resolves (YAML 1.2 core schema, as
//! serde-saphyr resolves it with our options: `null`/`~`/empty, `true`/`false`,
//! integers with `0x`/`0o`/`0b`, `_` and a sign, floats with `.inf`/`.nan`, a decimal
//! with a leading zero as text), and the rules [`super::scalar_value`] applies.
//!
//! It takes a file only when it can be sure to read it exactly as [`super::tree`] does,
//! and leaves it (`None`) otherwise: a syntax error, a tag, an anchor or an alias, a
//! list or mapping as a key, a merge key, a key twice (by its text or as serde-saphyr
//! compares keys), a `%` directive, no document or more than one, or a size near the
//! depth and node limits. The tree reader then reads the file and says what is wrong.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use serde_json::map::Entry;
use serde_json::{Map, Value};
use serde_saphyr::granit_parser::{Event, Marker, ScalarStyle, ScanError, Span};

use super::{
    Document, MAX_DEPTH, MAX_NODES, NodePos, Pos, PosIndex, Problems, Scalar, key_name,
    push_escaped, scalar_value,
};

/// Scalar text a file may hold before it is left to the tree reader, which enforces
/// serde-saphyr's own limit (64 MiB).
const MAX_SCALAR_BYTES: usize = 32 << 20;

/// The file's one document, or `None` when the tree reader is to read the file.
pub(super) fn read(text: &str) -> Option<Document> {
    let mut reader = EventReader {
        text,
        events: serde_saphyr::granit_parser::Parser::new_from_str(text),
        index: HashMap::new(),
        problems: Problems::default(),
        nodes: 0,
        depth: 0,
        scalar_bytes: 0,
    };
    let value = reader.document()?;
    Some(Document {
        value,
        index: PosIndex {
            nodes: reader.index,
        },
        problems: reader.problems,
    })
}

struct EventReader<'a, I> {
    text: &'a str,
    events: I,
    index: HashMap<String, NodePos>,
    problems: Problems,
    /// Scalars, lists and mappings so far, keys included (as serde-saphyr counts them).
    nodes: usize,
    /// Lists and mappings open.
    depth: usize,
    scalar_bytes: usize,
}

impl<'a, I> EventReader<'a, I>
where
    I: Iterator<Item = Result<(Event<'a>, Span), ScanError>>,
{
    /// The next event; `None` at a syntax error too.
    fn next(&mut self) -> Option<(Event<'a>, Span)> {
        self.events.next()?.ok()
    }

    fn document(&mut self) -> Option<Value> {
        let (Event::StreamStart, _) = self.next()? else {
            return None;
        };
        let (Event::DocumentStart(_, None), _) = self.next()? else {
            return None;
        };
        let (event, span) = self.next()?;
        let mut pointer = String::new();
        let value = self.node(event, &span, None, &mut pointer)?;
        let (Event::DocumentEnd, _) = self.next()? else {
            return None;
        };
        let (Event::StreamEnd, _) = self.next()? else {
            return None;
        };
        Some(value)
    }

    /// Count a node; `None` near the node limit.
    fn count(&mut self) -> Option<()> {
        self.nodes += 1;
        (self.nodes < MAX_NODES).then_some(())
    }

    /// The node `event` starts (its position recorded at `pointer`), read to its end.
    fn node(
        &mut self,
        event: Event<'a>,
        span: &Span,
        key: Option<Pos>,
        pointer: &mut String,
    ) -> Option<Value> {
        self.count()?;
        let value_pos = pos_of(&span.start)
            .or(key)
            .unwrap_or(Pos { line: 1, column: 1 });
        self.index.insert(
            pointer.clone(),
            NodePos {
                key,
                value: value_pos,
            },
        );
        match event {
            Event::Scalar(value, style, 0, None) => {
                let scalar = self.scalar(value, style)?;
                let written = source(self.text, span);
                Some(scalar_value(
                    scalar,
                    written,
                    value_pos,
                    pointer,
                    &mut self.problems,
                ))
            }
            Event::SequenceStart(_, 0, None) => {
                self.enter()?;
                let mut out = Vec::new();
                loop {
                    let (event, span) = self.next()?;
                    if let Event::SequenceEnd = event {
                        break;
                    }
                    let len = pointer.len();
                    pointer.push('/');
                    write!(pointer, "{}", out.len()).ok()?;
                    out.push(self.node(event, &span, None, pointer)?);
                    pointer.truncate(len);
                }
                self.depth -= 1;
                Some(Value::Array(out))
            }
            Event::MappingStart(_, 0, None) => {
                self.enter()?;
                let value = self.mapping(value_pos, pointer)?;
                self.depth -= 1;
                Some(value)
            }
            // An anchor, an alias, a tag: the tree reader's.
            _ => None,
        }
    }

    /// Open a list or mapping; `None` near the depth limit.
    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth < MAX_DEPTH).then_some(())
    }

    /// The entries of a mapping, to its end.
    fn mapping(&mut self, pos: Pos, pointer: &mut String) -> Option<Value> {
        let mut out = Map::new();
        // Keys that are integers, as serde-saphyr compares them (`1` is `0x1`).
        // A set: a hostile file may hold a mapping of many thousand integer keys.
        let mut integers: HashSet<(bool, u128)> = HashSet::new();
        loop {
            let (event, span) = self.next()?;
            let (text, style) = match event {
                Event::MappingEnd => break,
                Event::Scalar(text, style, 0, None) => (text, style),
                // A list or mapping as a key, an anchor, an alias, a tag.
                _ => return None,
            };
            self.count()?;
            let plain = style == ScalarStyle::Plain;
            if plain && text == "<<" {
                return None;
            }
            if plain
                && let Some(integer) = integer_identity(&text)
                && !integers.insert(integer)
            {
                return None;
            }
            let written = source(self.text, &span);
            let scalar = self.scalar(text.clone(), style)?;
            // A key resolved to other than text is named as written: that must be
            // what was resolved (it always is on one line).
            if !matches!(scalar, Scalar::Str(_)) && written != Some(text.as_ref()) {
                return None;
            }
            let Entry::Vacant(entry) = out.entry(key_name(scalar, written)) else {
                return None;
            };
            let key_pos = pos_of(&span.start).unwrap_or(pos);
            let (event, span) = self.next()?;
            let len = pointer.len();
            pointer.push('/');
            push_escaped(pointer, entry.key());
            entry.insert(self.node(event, &span, Some(key_pos), pointer)?);
            pointer.truncate(len);
        }
        Some(Value::Object(out))
    }

    /// A scalar resolved; `None` past the scalar text limit.
    fn scalar(&mut self, text: Cow<'a, str>, style: ScalarStyle) -> Option<Scalar> {
        self.scalar_bytes += text.len();
        (self.scalar_bytes < MAX_SCALAR_BYTES).then(|| resolve(text, style))
    }
}

/// The 1-based position of a parser marker, as serde-saphyr gives it.
fn pos_of(marker: &Marker) -> Option<Pos> {
    (marker.line() > 0).then(|| Pos {
        line: marker.line(),
        column: marker.col() + 1,
    })
}

/// The text of a node as written in the file.
fn source<'t>(text: &'t str, span: &Span) -> Option<&'t str> {
    let start = span.start.byte_offset()?;
    let end = span.end.byte_offset()?.max(start);
    text.get(start..end)
}

/// A scalar as serde-saphyr resolves it with our options: a quoted or block scalar is
/// text; a plain one is null, a boolean (YAML 1.2 spellings only), an integer, a float
/// or else text, in that order, and a decimal with a redundant leading zero is text.
fn resolve(text: Cow<'_, str>, style: ScalarStyle) -> Scalar {
    if style != ScalarStyle::Plain {
        return Scalar::Str(text.into_owned());
    }
    if matches!(text.as_ref(), "" | "~" | "null" | "Null" | "NULL") {
        return Scalar::Null;
    }
    let t = text.trim_matches([' ', '\t', '\r', '\n']);
    match t {
        "true" | "True" | "TRUE" => return Scalar::Bool(true),
        "false" | "False" | "FALSE" => return Scalar::Bool(false),
        _ => {}
    }
    if redundant_zero(t) {
        return Scalar::Str(text.into_owned());
    }
    if let Some((negative, magnitude)) = integer_parts(t) {
        if negative {
            if let Some(v) = i128::try_from(magnitude)
                .ok()
                .and_then(|m| i64::try_from(-m).ok())
            {
                return Scalar::Int(v);
            }
        } else if let Ok(v) = u64::try_from(magnitude) {
            return Scalar::UInt(v);
        }
    }
    match float(t) {
        Some(v) => Scalar::Float(v),
        None => Scalar::Str(text.into_owned()),
    }
}

/// A decimal written with a redundant leading zero (`0123`, `-007`).
fn redundant_zero(t: &str) -> bool {
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    digits.len() > 1 && digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit())
}

/// An integer's sign (`-`) and magnitude: decimal (no redundant leading zero), or
/// `0x`, `0o`, `0b` digits; a `_` may stand between two digits.
fn integer_parts(t: &str) -> Option<(bool, u128)> {
    let (negative, rest) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let prefixed = |lower: &str, upper: &str| {
        rest.strip_prefix(lower)
            .or_else(|| rest.strip_prefix(upper))
    };
    let (radix, digits) = if let Some(digits) = prefixed("0x", "0X") {
        (16, digits)
    } else if let Some(digits) = prefixed("0o", "0O") {
        (8, digits)
    } else if let Some(digits) = prefixed("0b", "0B") {
        (2, digits)
    } else if rest.starts_with('0') && rest != "0" {
        return None;
    } else {
        (10, rest)
    };
    let bytes = digits.as_bytes();
    let mut magnitude: u128 = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'_' {
            let between =
                i > 0 && bytes[i - 1] != b'_' && bytes.get(i + 1).is_some_and(|n| *n != b'_');
            if !between {
                return None;
            }
            continue;
        }
        let digit = char::from(b).to_digit(radix)?;
        magnitude = magnitude
            .checked_mul(u128::from(radix))?
            .checked_add(u128::from(digit))?;
    }
    bytes
        .iter()
        .any(|b| *b != b'_')
        .then_some((negative, magnitude))
}

/// A plain key's identity as an integer, as serde-saphyr compares keys (`1`, `+1`
/// and `0x1` are one key). Wider than serde-saphyr's range: a false match only sends
/// the file to the tree reader.
fn integer_identity(text: &str) -> Option<(bool, u128)> {
    let t = text.trim_matches([' ', '\t', '\r', '\n']);
    let (negative, magnitude) = integer_parts(t)?;
    Some((negative && magnitude != 0, magnitude))
}

/// A float: `.inf`, `.nan` (any sign, three spellings each), or a decimal Rust reads,
/// which overflows to an infinity only when it starts with a digit (`1e999`).
fn float(t: &str) -> Option<f64> {
    let (negative, unsigned) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    match unsigned {
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        ".inf" | ".Inf" | ".INF" if negative => return Some(f64::NEG_INFINITY),
        ".inf" | ".Inf" | ".INF" => return Some(f64::INFINITY),
        _ => {}
    }
    let v: f64 = t.parse().ok()?;
    let digit_first = t
        .strip_prefix(['+', '-'])
        .unwrap_or(t)
        .starts_with(|c: char| c.is_ascii_digit());
    (v.is_finite() || (v.is_infinite() && digit_first)).then_some(v)
}
