//! YAML text to an untyped JSON value plus the position of every node, so that
//! checks made on the JSON value (schema, identities, variables) can point at the line
//! and column of the YAML they came from. The YAML itself is read by serde-saphyr
//! (syntax, duplicate keys, alias limits); nothing here parses YAML by hand.

use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::{Location, Spanned};

/// A 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    fn from_location(location: Location) -> Option<Pos> {
        let line = usize::try_from(location.line()).ok()?;
        let column = usize::try_from(location.column()).ok()?;
        (line > 0 && column > 0).then_some(Pos { line, column })
    }
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

/// A parsed document: the JSON value, node positions, and problems the JSON form
/// cannot hold (non-finite numbers), each with its position.
#[derive(Debug, Clone)]
pub struct Document {
    pub value: Value,
    pub index: PosIndex,
    pub problems: Vec<(Pos, String)>,
}

/// A YAML syntax error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: Option<Pos>,
    pub message: String,
}

/// Parse one YAML document. YAML 1.2 booleans only (`yes` is a string).
pub fn parse(text: &str) -> Result<Document, SyntaxError> {
    let options = serde_saphyr::options! {
        strict_booleans: true,
        with_snippet: false,
    };
    let root: Spanned<Node> =
        serde_saphyr::from_str_with_options(text, options).map_err(|err| SyntaxError {
            pos: err.location().and_then(Pos::from_location),
            message: syntax_message(&err),
        })?;
    let mut document = Document {
        value: Value::Null,
        index: PosIndex::default(),
        problems: Vec::new(),
    };
    let mut pointer = String::new();
    document.value = to_json(root, None, &mut pointer, &mut document);
    Ok(document)
}

/// serde-saphyr's message without its trailing "at line X column Y" (we print the
/// position ourselves).
fn syntax_message(err: &serde_saphyr::Error) -> String {
    let text = err.without_snippet().to_string();
    let text = match text.rfind(" at line ") {
        Some(cut) if text[cut..].contains("column") => text[..cut].to_owned(),
        _ => text,
    };
    let text = text.trim().trim_end_matches('.').to_owned();
    if text.is_empty() {
        "invalid YAML".to_owned()
    } else {
        text
    }
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
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
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
        match i64::try_from(v) {
            Ok(v) => Ok(Node::Int(v)),
            Err(_) => Err(E::custom(format_args!("the integer {v} is too large"))),
        }
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        match u64::try_from(v) {
            Ok(v) => Ok(Node::UInt(v)),
            Err(_) => Err(E::custom(format_args!("the integer {v} is too large"))),
        }
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
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

fn to_json(
    node: Spanned<Node>,
    key: Option<Pos>,
    pointer: &mut String,
    document: &mut Document,
) -> Value {
    let value_pos = Pos::from_location(node.referenced)
        .or(key)
        .unwrap_or(Pos { line: 1, column: 1 });
    document.index.nodes.insert(
        pointer.clone(),
        NodePos {
            key,
            value: value_pos,
        },
    );
    match node.value {
        Node::Null => Value::Null,
        Node::Bool(v) => Value::Bool(v),
        Node::Int(v) => Value::from(v),
        Node::UInt(v) => Value::from(v),
        Node::Float(v) => match Number::from_f64(v) {
            Some(number) => Value::Number(number),
            None => {
                document
                    .problems
                    .push((value_pos, format!("`{v}` is not a finite number")));
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
                out.push(to_json(item, None, pointer, document));
                pointer.truncate(len);
            }
            Value::Array(out)
        }
        Node::Map(entries) => {
            let mut out = Map::with_capacity(entries.len());
            for (name, value) in entries {
                let len = pointer.len();
                pointer.push('/');
                push_escaped(pointer, &name.value);
                let key = Pos::from_location(name.referenced).or(Some(value_pos));
                let value = to_json(value, key, pointer, document);
                pointer.truncate(len);
                out.insert(name.value, value);
            }
            Value::Object(out)
        }
    }
}

/// Append `token` to a JSON pointer, escaped per RFC 6901.
pub fn push_escaped(pointer: &mut String, token: &str) {
    for c in token.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
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

    #[test]
    fn syntax_errors_have_a_position() {
        let err = parse("model: gpt-4o\nmessages: [\n").unwrap_err();
        assert!(err.pos.is_some(), "{err:?}");
        assert!(!err.message.contains(" at line "), "{err:?}");
        let err = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(err.pos.map(|p| p.line), Some(2), "{err:?}");
        assert!(err.message.contains("duplicate"), "{err:?}");
    }

    #[test]
    fn non_finite_numbers_are_refused() {
        let err = parse("temperature: .nan\n").unwrap_err();
        assert_eq!(err.pos, Some(pos(1, 14)));
        assert!(err.message.contains("non-finite"), "{err:?}");
    }

    #[test]
    fn pointers_escape_slashes_and_tildes() {
        let doc = parse("variables:\n  a/b~c: 1\n").unwrap();
        assert!(doc.index.get("/variables/a~1b~0c").is_some());
    }
}
