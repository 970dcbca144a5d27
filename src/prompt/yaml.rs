//! YAML text to an untyped JSON value plus the position of every node, so that
//! checks made on the JSON value (schema, identities, variables) can point at the line
//! and column of the YAML they came from. The YAML itself is read by serde-saphyr
//! (syntax, duplicate keys, alias and size limits); nothing here parses YAML by hand.
//!
//! Two rules are ours. A plain scalar where the format wants text (`prompt_id: 0123`,
//! `name: 2024`) is that text exactly as written, whatever it would resolve to
//! elsewhere; which places want text is read from the format's JSON Schema. And YAML
//! tags (`!!binary`, `!secret`) are refused wherever they are, found by a scan of the
//! parser's events before the value is read; so are merge keys (`<<`, YAML 1.1 only).
//! An integral number where the format wants an integer (`max_tokens: 2048.0`) is that
//! integer. Library wording never reaches the user: every error is said in our words,
//! with a position ([`syntax`] for files that do not parse), and at most
//! [`MAX_PER_KIND`](crate::diagnostic::MAX_PER_KIND) problems of a kind are kept.

use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::Spanned;
use serde_saphyr::granit_parser::{self, Event};

use super::pointer::display_path;
pub(crate) use super::pointer::push_escaped;
use super::schema;
use crate::diagnostic::{Severity, Tally};
use crate::excerpt;

mod syntax;

/// The deepest nesting of lists and mappings a prompt file may have. Reading a level
/// takes tens of kilobytes of stack in a debug build, and files are read on threads with
/// 2 MiB stacks (tokio's blocking pool, test threads): 32 keeps well inside that.
pub(crate) const MAX_DEPTH: usize = 32;
/// The most values (scalars, lists, mappings; aliases counted each time they are used)
/// a prompt file may hold.
pub(crate) const MAX_NODES: usize = 250_000;

/// A 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// Where a node of the document is: its value and, for a mapping entry, its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct NodePos {
    pub key: Option<Pos>,
    pub value: Pos,
}

/// Positions by JSON pointer (`""` for the root, `/messages/0/role`, ...).
#[derive(Debug, Clone, Default)]
pub struct PosIndex {
    nodes: HashMap<String, NodePos>,
}

impl PosIndex {
    #[cfg(test)]
    pub(crate) fn get(&self, pointer: &str) -> Option<NodePos> {
        self.nodes.get(pointer).copied()
    }

    /// The value's position at `pointer`, or that of its nearest ancestor.
    pub fn value_pos(&self, pointer: &str) -> Pos {
        self.nearest(pointer).value
    }

    /// The key's position at `pointer` (the value's when it has no key), or that of
    /// its nearest ancestor.
    pub fn key_pos(&self, pointer: &str) -> Pos {
        let node = self.nearest(pointer);
        node.key.unwrap_or(node.value)
    }

    /// Keep the positions of `pointers` and of the root alone (what findings added
    /// later can still point at); the rest is dropped.
    pub fn retain(&mut self, pointers: &[&str]) {
        self.nodes
            .retain(|pointer, _| pointer.is_empty() || pointers.contains(&pointer.as_str()));
        self.nodes.shrink_to_fit();
    }

    fn nearest(&self, pointer: &str) -> NodePos {
        let mut pointer = pointer;
        loop {
            if let Some(node) = self.nodes.get(pointer) {
                return *node;
            }
            match pointer.rfind('/') {
                Some(cut) => pointer = &pointer[..cut],
                None => return NodePos::default(),
            }
        }
    }
}

/// A problem with the YAML of a file, in our words, at a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub pos: Pos,
    pub message: String,
    pub help: Option<String>,
}

impl Problem {
    fn new(pos: Pos, message: impl Into<String>) -> Problem {
        Problem {
            pos,
            message: message.into(),
            help: None,
        }
    }

    fn help(mut self, help: impl Into<String>) -> Problem {
        self.help = Some(help.into());
        self
    }
}

/// The problems of one file, at most [`MAX_PER_KIND`](crate::diagnostic::MAX_PER_KIND)
/// of a kind kept; `tally` counts them all.
#[derive(Debug, Clone, Default)]
pub(crate) struct Problems {
    pub list: Vec<Problem>,
    pub tally: Tally,
}

impl Problems {
    fn push(&mut self, problem: Problem) {
        if self.tally.admit(Severity::Error, &problem.message) {
            self.list.push(problem);
        }
    }

    fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    fn one(problem: Problem) -> Problems {
        let mut problems = Problems::default();
        problems.push(problem);
        problems
    }
}

/// A parsed document: the JSON value, node positions, and problems found in a document
/// that did parse (tags, values the JSON form cannot hold), each with its position.
#[derive(Debug, Clone)]
pub(crate) struct Document {
    pub value: Value,
    pub index: PosIndex,
    pub problems: Problems,
}

/// Parse one YAML document. YAML 1.2 booleans only (`yes` is a string); a decimal
/// with redundant leading zeros (`0755`) is a string, as serde_yaml read it; merge keys
/// (`<<`) are refused. Err holds the problems of a file that could not be read as one
/// YAML document at all.
pub(crate) fn parse(text: &str) -> Result<Document, Problems> {
    let tags = tag_problems(text);
    let options = serde_saphyr::options! {
        strict_booleans: true,
        with_snippet: false,
        leading_zero_numbers_as_strings: true,
        ignore_binary_tag_for_string: true,
        merge_keys: serde_saphyr::MergeKeyPolicy::Error,
        non_finite_float_policy: serde_saphyr::NonFiniteFloatPolicy::PassThrough,
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            max_nodes: MAX_NODES,
        },
    };
    let root: Spanned<Node> = match serde_saphyr::from_str_with_options(text, options) {
        Ok(root) => root,
        // A tag can be why the rest failed (`!!int abc`): say the tag first, alone.
        Err(_) if !tags.is_empty() => return Err(tags),
        Err(err) => return Err(Problems::one(syntax::problem(text, &err))),
    };
    let mut document = Document {
        value: Value::Null,
        index: PosIndex::default(),
        problems: tags,
    };
    let mut pointer = String::new();
    let mut reader = Reader {
        text,
        document: &mut document,
    };
    let value = reader.read(root, None, &mut pointer);
    document.value = value;
    Ok(document)
}

/// Every explicit tag of the document (`!!str`, `!secret`, `!<tag:...>`), on keys and
/// values at any depth. Stops at the first syntax error: parsing reports that.
fn tag_problems(text: &str) -> Problems {
    let mut problems = Problems::default();
    // Every tag starts with `!`: without one there is nothing to scan for.
    if !text.contains('!') {
        return problems;
    }
    for event in granit_parser::Parser::new_from_str(text) {
        let Ok((event, span)) = event else {
            break;
        };
        let tag = match &event {
            Event::Scalar(_, _, _, tag)
            | Event::SequenceStart(_, _, tag)
            | Event::MappingStart(_, _, tag) => tag,
            _ => continue,
        };
        if let Some(tag) = tag {
            let marker = span.tag_start.unwrap_or(span.start);
            let pos = Pos {
                line: marker.line().max(1),
                column: marker.col() + 1,
            };
            problems.push(
                Problem::new(
                    pos,
                    format!(
                        "YAML tags are not supported: {}",
                        excerpt::quoted(&tag.original())
                    ),
                )
                .help(
                    "remove the tag; values are read as plain YAML (quote a value to keep it text)",
                ),
            );
        }
    }
    problems
}

fn not_finite(pos: Pos, raw: &str) -> Problem {
    Problem::new(
        pos,
        format!("{} is not a finite number", excerpt::quoted(raw)),
    )
    .help("give a number, or quote the value to make it text")
}

/// A YAML node as serde-saphyr hands it over, with positions on every child.
#[derive(Debug)]
enum Node {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<Node>, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::UInt(v))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        // Out of the 64-bit range: as a float, like any other number JSON holds.
        Ok(i64::try_from(v).map_or(Node::Float(v as f64), Node::Int))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        Ok(u64::try_from(v).map_or(Node::Float(v as f64), Node::UInt))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Node>>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

/// Turns nodes into JSON, recording positions and problems.
struct Reader<'a> {
    text: &'a str,
    document: &'a mut Document,
}

impl Reader<'_> {
    /// The scalar as written in the file (for an alias, as written at its anchor).
    fn source_text(&self, node: &Spanned<Node>) -> Option<&str> {
        let span = node.defined.span();
        let start = usize::try_from(span.byte_offset()?).ok()?;
        let len = usize::try_from(span.byte_len()?).ok()?;
        self.text.get(start..start.checked_add(len)?)
    }

    /// A non-text scalar (number, boolean) read back as its source text.
    fn as_written(&self, node: &Spanned<Node>) -> Option<String> {
        let fallback = match &node.value {
            Node::Bool(v) => v.to_string(),
            Node::Int(v) => v.to_string(),
            Node::UInt(v) => v.to_string(),
            Node::Float(v) => v.to_string(),
            _ => return None,
        };
        Some(self.source_text(node).map_or(fallback, str::to_owned))
    }

    fn read(&mut self, node: Spanned<Node>, key: Option<Pos>, pointer: &mut String) -> Value {
        let value_pos = syntax::pos_of(node.referenced)
            .or(key)
            .unwrap_or(Pos { line: 1, column: 1 });
        self.document.index.nodes.insert(
            pointer.clone(),
            NodePos {
                key,
                value: value_pos,
            },
        );
        if matches!(
            node.value,
            Node::Bool(_) | Node::Int(_) | Node::UInt(_) | Node::Float(_)
        ) && schema::accepts_text(pointer)
            && let Some(text) = self.as_written(&node)
        {
            return Value::String(text);
        }
        if matches!(node.value, Node::UInt(_) | Node::Float(_)) && schema::wants_integer(pointer) {
            return self.integer(node, value_pos, pointer);
        }
        match node.value {
            Node::Null => Value::Null,
            Node::Bool(v) => Value::Bool(v),
            Node::Int(v) => Value::from(v),
            Node::UInt(v) => Value::from(v),
            Node::Float(v) => match Number::from_f64(v) {
                Some(number) => Value::Number(number),
                None => {
                    let raw = self
                        .source_text(&node)
                        .map_or_else(|| v.to_string(), str::to_owned);
                    self.document.problems.push(not_finite(value_pos, &raw));
                    Value::Null
                }
            },
            Node::Str(v) => Value::String(v),
            Node::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    let len = pointer.len();
                    pointer.push('/');
                    pointer.push_str(&i.to_string());
                    out.push(self.read(item, None, pointer));
                    pointer.truncate(len);
                }
                Value::Array(out)
            }
            Node::Map(entries) => {
                let mut out = Map::with_capacity(entries.len());
                for (name, value) in entries {
                    let key_pos = syntax::pos_of(name.referenced).unwrap_or(value_pos);
                    let Some(name) = self.key_text(name, key_pos) else {
                        continue;
                    };
                    if out.contains_key(&name) {
                        self.document.problems.push(
                            Problem::new(
                                key_pos,
                                format!("duplicate key {}", excerpt::quoted(&name)),
                            )
                            .help("a key may appear only once in a mapping: keep one of them"),
                        );
                        continue;
                    }
                    let len = pointer.len();
                    pointer.push('/');
                    push_escaped(pointer, &name);
                    let value = self.read(value, Some(key_pos), pointer);
                    pointer.truncate(len);
                    out.insert(name, value);
                }
                Value::Object(out)
            }
        }
    }

    /// A number where the format wants an integer: an integral one (`2048.0`, `1e3`) is
    /// that integer, as `1` and `1.0` are the same number; one past the 64-bit range is
    /// a problem (the schema then reports any fraction).
    fn integer(&mut self, node: Spanned<Node>, pos: Pos, pointer: &str) -> Value {
        // 2^63: the first integral float past `i64::MAX`.
        const LIMIT: f64 = 9_223_372_036_854_775_808.0;
        let in_range = match node.value {
            Node::UInt(v) => i64::try_from(v).ok().map(Value::from),
            Node::Float(v) if v.fract() != 0.0 || !v.is_finite() => {
                return match Number::from_f64(v) {
                    Some(number) => Value::Number(number),
                    None => {
                        let raw = self.as_written(&node).unwrap_or_default();
                        self.document.problems.push(not_finite(pos, &raw));
                        Value::Null
                    }
                };
            }
            // In range, the conversion is exact.
            Node::Float(v) => (-LIMIT..LIMIT).contains(&v).then(|| Value::from(v as i64)),
            _ => None,
        };
        in_range.unwrap_or_else(|| {
            let raw = self.as_written(&node).unwrap_or_default();
            self.document.problems.push(Problem::new(
                pos,
                format!(
                    "`{}` is {}, out of range: it must be at most {}",
                    display_path(pointer),
                    excerpt::excerpt(&raw),
                    i64::MAX
                ),
            ));
            Value::Null
        })
    }

    /// A mapping key as text: a string as it is, any other scalar as written (`1.5`,
    /// `true`, `~`). A list or mapping as a key is a problem.
    fn key_text(&mut self, name: Spanned<Node>, pos: Pos) -> Option<String> {
        let written = self.source_text(&name).map(str::to_owned);
        match name.value {
            Node::Str(text) => Some(text),
            Node::Seq(_) | Node::Map(_) => {
                self.document.problems.push(
                    Problem::new(pos, "a list or mapping cannot be a key")
                        .help("keys are plain names, like `model` or a variable's name"),
                );
                None
            }
            Node::Null => Some(written.unwrap_or_default()),
            _ => self.as_written(&name).or(written),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(line: usize, column: usize) -> Pos {
        Pos { line, column }
    }

    #[test]
    fn every_node_has_its_position() {
        let doc = parse(
            "model: gpt-4o\ntemperature: 0.7\nmessages:\n  - role: system\n    content: |\n      Hi\n",
        )
        .unwrap();
        assert_eq!(doc.value["temperature"], serde_json::json!(0.7));
        assert_eq!(doc.value["messages"][0]["content"], "Hi\n");
        let model = doc.index.get("/model").unwrap();
        assert_eq!(model.key, Some(pos(1, 1)));
        assert_eq!(model.value, pos(1, 8));
        let role = doc.index.get("/messages/0/role").unwrap();
        assert_eq!(role.key, Some(pos(4, 5)));
        assert_eq!(role.value, pos(4, 11));
        assert_eq!(doc.index.get("/messages/0").unwrap().value.line, 4);
        assert_eq!(doc.index.value_pos("/messages/0/missing"), pos(4, 5));
    }

    #[test]
    fn scalars_follow_yaml_1_2() {
        let doc = parse("a: yes\nb: true\nc: 1\nd: 1.5\ne: '1'\nf: ~\ng: 0x10\n").unwrap();
        assert_eq!(
            doc.value,
            serde_json::json!({"a": "yes", "b": true, "c": 1, "d": 1.5, "e": "1", "f": null, "g": 16})
        );
    }

    fn problems(text: &str) -> Vec<(Pos, String, Option<String>)> {
        let problems = match parse(text) {
            Ok(doc) => doc.problems.list,
            Err(problems) => problems.list,
        };
        problems
            .into_iter()
            .map(|p| (p.pos, p.message, p.help))
            .collect()
    }

    fn messages(text: &str) -> Vec<String> {
        problems(text).into_iter().map(|(_, m, _)| m).collect()
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let err = parse("model: gpt-4o\nmessages: [\n").unwrap_err().list;
        assert_eq!(err.len(), 1);
        assert!(err[0].message.starts_with("invalid YAML: "), "{err:?}");
        assert!(!err[0].message.contains(" at line "), "{err:?}");
        let err = parse("a: 1\na: 2\n").unwrap_err().list;
        assert_eq!(err[0].pos, pos(2, 1), "{err:?}");
        assert_eq!(err[0].message, "duplicate key `a`");
    }

    #[test]
    fn non_finite_numbers_are_refused_where_numbers_go() {
        assert_eq!(
            problems("temperature: .nan\n"),
            [(
                pos(1, 14),
                "`.nan` is not a finite number".to_owned(),
                Some("give a number, or quote the value to make it text".to_owned())
            )]
        );
        assert_eq!(messages("x: [-.inf, 1e999]\n").len(), 2);
    }

    #[test]
    fn plain_scalars_are_text_where_the_format_wants_text() {
        let doc = parse(
            "prompt_id: 37159387308e4920\nname: 2024\ndescription: 1e3\nmodel: 0123\n\
             reasoning_effort: true\nverbosity: 0x10\nfallback_models: [1.50, -0, .inf]\n\
             load_balance_models: [{model: 4.0, weight: 1e0}]\n\
             messages:\n  - role: user\n    name: 12\n    tool_call_id: 007\n    content: 3.14\n\
             \x20 - role: user\n    content_file: 1_000\n    content: ~\n\
             temperature: 1e0\nmax_tokens: 100\nseed: 0x10\nstream: true\n\
             variables: {n: 1e3, z: 0123}\nanchored: &a 1.0\n",
        )
        .unwrap();
        let v = &doc.value;
        assert_eq!(v["prompt_id"], "37159387308e4920");
        assert_eq!(v["name"], "2024");
        assert_eq!(v["description"], "1e3");
        assert_eq!(v["model"], "0123");
        assert_eq!(v["reasoning_effort"], "true");
        assert_eq!(v["verbosity"], "0x10");
        assert_eq!(
            v["fallback_models"],
            serde_json::json!(["1.50", "-0", ".inf"])
        );
        assert_eq!(v["load_balance_models"][0]["model"], "4.0");
        assert_eq!(
            v["load_balance_models"][0]["weight"],
            serde_json::json!(1.0)
        );
        let message = &v["messages"][0];
        assert_eq!(message["name"], "12");
        assert_eq!(message["tool_call_id"], "007");
        assert_eq!(message["content"], "3.14");
        assert_eq!(v["messages"][1]["content_file"], "1_000");
        assert_eq!(v["messages"][1]["content"], Value::Null);
        // Numbers stay numbers where the format wants numbers, and in free-form values.
        assert_eq!(v["temperature"], serde_json::json!(1.0));
        assert_eq!(v["max_tokens"], serde_json::json!(100));
        assert_eq!(v["seed"], serde_json::json!(16));
        assert_eq!(v["stream"], serde_json::json!(true));
        assert_eq!(
            v["variables"],
            serde_json::json!({"n": 1000.0, "z": "0123"})
        );
        assert!(doc.problems.is_empty(), "{:?}", doc.problems.list);
    }

    #[test]
    fn aliases_give_the_text_of_their_anchor() {
        let doc = parse("description: &d 1e3\nname: *d\n").unwrap();
        assert_eq!(doc.value["name"], "1e3");
        assert_eq!(doc.index.get("/name").unwrap().value, pos(2, 7));
    }

    #[test]
    fn keys_are_read_as_written() {
        let doc = parse("variables:\n  1.50: a\n  true: b\n  ~: c\n  007: d\n").unwrap();
        let keys: Vec<&String> = doc.value["variables"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["1.50", "true", "~", "007"]);
        assert_eq!(
            messages("variables:\n  ? [a]\n  : x\n"),
            ["a list or mapping cannot be a key"]
        );
        assert_eq!(
            messages("variables:\n  \"1\": a\n  1: b\n"),
            ["duplicate key `1`"]
        );
    }

    #[test]
    fn tags_are_refused_wherever_they_are() {
        let found = problems(
            "name: !secret A\nmodel: !!binary aGVsbG8=\n!key k: 1\nmessages: !!seq\n  - {role: user, content: !!str 12}\n  - ! x\n  - !<tag:example.com,2000:x> y\n",
        );
        let found: Vec<(Pos, &str)> = found.iter().map(|(p, m, _)| (*p, m.as_str())).collect();
        assert_eq!(
            found,
            [
                (pos(1, 7), "YAML tags are not supported: `!secret`"),
                (pos(2, 8), "YAML tags are not supported: `!!binary`"),
                (pos(3, 1), "YAML tags are not supported: `!key`"),
                (pos(4, 11), "YAML tags are not supported: `!!seq`"),
                (pos(5, 27), "YAML tags are not supported: `!!str`"),
                (pos(6, 5), "YAML tags are not supported: `!`"),
                (
                    pos(7, 5),
                    "YAML tags are not supported: `!<tag:example.com,2000:x>`"
                ),
            ]
        );
        // A tag that breaks the value is reported alone.
        assert_eq!(
            messages("max_tokens: !!int abc\n"),
            ["YAML tags are not supported: `!!int`"]
        );
    }

    #[test]
    fn library_wording_does_not_leak() {
        let deep = format!("x: {}{}\n", "[".repeat(40), "]".repeat(40));
        let deeper = format!("x: {}{}\n", "[".repeat(5000), "]".repeat(5000));
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9u8 {
            let (name, prev) = ((b'a' + i) as char, (b'a' + i - 1) as char);
            bomb.push_str(&format!(
                "{name}: &{name} [{}]\n",
                vec![format!("*{prev}"); 10].join(", ")
            ));
        }
        let cases = [
            ("a: 1\na: 2\n", "duplicate key `a`"),
            (
                "a: 1\n---\nb: 2\n",
                "the file holds more than one YAML document; a second one starts here",
            ),
            (
                deep.as_str(),
                "the file nests lists and mappings more than 32 levels deep",
            ),
            (
                deeper.as_str(),
                "the file nests lists and mappings more than 32 levels deep",
            ),
            (
                bomb.as_str(),
                "the file holds more than 250000 values (an alias counts all the values of its anchor each time it is used)",
            ),
            (
                "a: b\u{1b}[2J\n",
                "invalid YAML: the control character `\\u{1b}` cannot appear in YAML text",
            ),
            (
                "a: *nope\n",
                "invalid YAML: this alias (`*name`) refers to no anchor (`&name`) defined before it",
            ),
            (
                "messages:\n  - role: user\n   content: x\n",
                "invalid YAML: expected a list entry (`- ...`) here, in the column of the entries above it",
            ),
            (
                "messages:\n- role: user\n  content: x\n    bad: 1\n",
                "invalid YAML: a `key: value` is not allowed here (is it indented too far?)",
            ),
        ];
        for (text, expected) in cases {
            let found = problems(text);
            assert_eq!(found.len(), 1, "{found:?}");
            assert_eq!(found[0].1, expected);
            for word in ["Options", "from_str", "budget", "Depth", "Nodes", "policy"] {
                assert!(!found[0].1.contains(word), "{found:?}");
            }
            assert!(found[0].2.is_some(), "{found:?}");
        }
        let indentation = problems("messages:\n  - role: user\n   content: x\n");
        assert!(
            indentation[0]
                .2
                .as_deref()
                .unwrap()
                .starts_with("check the indentation")
        );
    }

    #[test]
    fn pointers_escape_slashes_and_tildes() {
        let doc = parse("variables:\n  a/b~c: 1\n").unwrap();
        assert!(doc.index.get("/variables/a~1b~0c").is_some());
    }
}
