//! YAML text to an untyped JSON value plus the position of every node, so that
//! checks made on the JSON value (schema, identities, variables) can point at the line
//! and column of the YAML they came from. The YAML syntax is serde-saphyr's parser's
//! (granit-parser); nothing here parses YAML by hand. A file is read in one pass over
//! the parser's events ([`events`]), or, when that pass cannot be sure of it (an error,
//! a tag, an anchor or alias, a key twice, a size near a limit), by serde-saphyr into a
//! tree ([`tree`]: duplicate keys, alias and size limits). Both read a file alike.
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

use serde_json::{Number, Value};

use super::pointer::display_path;
pub(crate) use super::pointer::push_escaped;
use super::schema;
use crate::diagnostic::{Severity, Tally};
use crate::excerpt;

#[cfg(test)]
mod differential;
mod events;
mod syntax;
mod tree;

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
pub struct NodePos {
    pub key: Option<Pos>,
    pub value: Pos,
}

/// Positions by JSON pointer (`""` for the root, `/messages/0/role`, ...).
#[derive(Debug, Clone, Default)]
pub struct PosIndex {
    nodes: HashMap<String, NodePos>,
}

impl PosIndex {
    pub fn get(&self, pointer: &str) -> Option<NodePos> {
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
///
/// Most files are read in one pass over the parser's events ([`events`]); a file that
/// pass does not take (a syntax error, a tag, an anchor or alias, a key twice, a size
/// near a limit) is read by serde-saphyr into a tree ([`tree`]), which says what is
/// wrong. Both give the same document for any file the first one takes (the tests of
/// [`events`] compare them).
pub(crate) fn parse(text: &str) -> Result<Document, Problems> {
    match events::read(text) {
        Some(document) => Ok(document),
        None => tree::parse(text),
    }
}

fn not_finite(pos: Pos, raw: &str) -> Problem {
    Problem::new(
        pos,
        format!("{} is not a finite number", excerpt::quoted(raw)),
    )
    .help("give a number, or quote the value to make it text")
}

/// A scalar as YAML resolves it, before our rules.
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
}

impl Scalar {
    /// A non-text scalar (number, boolean) read back as its source text, `written`
    /// (for an alias, as written at its anchor); its own form when that is unknown.
    fn as_written(&self, written: Option<&str>) -> Option<String> {
        let fallback = match self {
            Scalar::Bool(v) => v.to_string(),
            Scalar::Int(v) => v.to_string(),
            Scalar::UInt(v) => v.to_string(),
            Scalar::Float(v) => v.to_string(),
            Scalar::Null | Scalar::Str(_) => return None,
        };
        Some(written.map_or(fallback, str::to_owned))
    }
}

/// The JSON value of a scalar at `pointer`, by our rules: text where the format wants
/// text, an integer where it wants one, a problem for what JSON cannot hold.
fn scalar_value(
    scalar: Scalar,
    written: Option<&str>,
    pos: Pos,
    pointer: &str,
    problems: &mut Problems,
) -> Value {
    if matches!(
        scalar,
        Scalar::Bool(_) | Scalar::Int(_) | Scalar::UInt(_) | Scalar::Float(_)
    ) && schema::accepts_text(pointer)
        && let Some(text) = scalar.as_written(written)
    {
        return Value::String(text);
    }
    if matches!(scalar, Scalar::UInt(_) | Scalar::Float(_)) && schema::wants_integer(pointer) {
        return integer(scalar, written, pos, pointer, problems);
    }
    match scalar {
        Scalar::Null => Value::Null,
        Scalar::Bool(v) => Value::Bool(v),
        Scalar::Int(v) => Value::from(v),
        Scalar::UInt(v) => Value::from(v),
        Scalar::Float(v) => match Number::from_f64(v) {
            Some(number) => Value::Number(number),
            None => {
                let raw = written.map_or_else(|| v.to_string(), str::to_owned);
                problems.push(not_finite(pos, &raw));
                Value::Null
            }
        },
        Scalar::Str(v) => Value::String(v),
    }
}

/// A number where the format wants an integer: an integral one (`2048.0`, `1e3`) is
/// that integer, as `1` and `1.0` are the same number; one past the 64-bit range is
/// a problem (the schema then reports any fraction).
fn integer(
    scalar: Scalar,
    written: Option<&str>,
    pos: Pos,
    pointer: &str,
    problems: &mut Problems,
) -> Value {
    // 2^63: the first integral float past `i64::MAX`.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    let in_range = match scalar {
        Scalar::UInt(v) => i64::try_from(v).ok().map(Value::from),
        Scalar::Float(v) if v.fract() != 0.0 || !v.is_finite() => {
            return match Number::from_f64(v) {
                Some(number) => Value::Number(number),
                None => {
                    let raw = scalar.as_written(written).unwrap_or_default();
                    problems.push(not_finite(pos, &raw));
                    Value::Null
                }
            };
        }
        // In range, the conversion is exact.
        Scalar::Float(v) => (-LIMIT..LIMIT).contains(&v).then(|| Value::from(v as i64)),
        _ => None,
    };
    in_range.unwrap_or_else(|| {
        let raw = scalar.as_written(written).unwrap_or_default();
        problems.push(Problem::new(
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
/// `true`, `~`).
fn key_name(scalar: Scalar, written: Option<&str>) -> String {
    match scalar {
        Scalar::Str(text) => text,
        Scalar::Null => written.unwrap_or_default().to_owned(),
        other => other.as_written(written).unwrap_or_default(),
    }
}

fn duplicate_key(pos: Pos, name: &str) -> Problem {
    Problem::new(pos, format!("duplicate key {}", excerpt::quoted(name)))
        .help("a key may appear only once in a mapping: keep one of them")
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
