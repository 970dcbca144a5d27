//! The reader of files the event reader ([`super::events`]) leaves: serde-saphyr reads
//! the whole document into a tree of nodes (syntax, duplicate keys, anchors and aliases
//! within the size limits, each error a typed one that [`super::syntax`] says in our
//! words), which is then walked into the JSON value and positions. YAML tags are found
//! by a scan of the parser's events first.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use serde_saphyr::granit_parser::{self, Event};
use serde_saphyr::{Location, Spanned};

use super::{
    Document, MAX_DEPTH, MAX_NODES, NodePos, Pos, PosIndex, Problem, Problems, Scalar,
    duplicate_key, key_name, push_escaped, scalar_value, syntax,
};
use crate::excerpt;

/// Parse one YAML document with serde-saphyr (see [`super::parse`] for the rules).
pub(super) fn parse(text: &str) -> Result<Document, Problems> {
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

/// A YAML node as serde-saphyr hands it over, with positions on every child.
#[derive(Debug)]
enum Node {
    Scalar(Scalar),
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
        Ok(Node::Scalar(Scalar::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar(Scalar::Null))
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Scalar(Scalar::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Scalar(Scalar::Int(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Scalar(Scalar::UInt(v)))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        // Out of the 64-bit range: as a float, like any other number JSON holds.
        Ok(Node::Scalar(
            i64::try_from(v).map_or(Scalar::Float(v as f64), Scalar::Int),
        ))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        Ok(Node::Scalar(
            u64::try_from(v).map_or(Scalar::Float(v as f64), Scalar::UInt),
        ))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Scalar(Scalar::Float(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Scalar(Scalar::Str(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Scalar(Scalar::Str(v)))
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

/// The node as written in `text` (for an alias, as written at its anchor).
fn source_text<'t>(text: &'t str, defined: &Location) -> Option<&'t str> {
    let span = defined.span();
    let start = usize::try_from(span.byte_offset()?).ok()?;
    let len = usize::try_from(span.byte_len()?).ok()?;
    text.get(start..start.checked_add(len)?)
}

impl<'a> Reader<'a> {
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
        match node.value {
            Node::Scalar(scalar) => {
                let written = source_text(self.text, &node.defined);
                scalar_value(
                    scalar,
                    written,
                    value_pos,
                    pointer,
                    &mut self.document.problems,
                )
            }
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
                        self.document.problems.push(duplicate_key(key_pos, &name));
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

    /// A mapping key as text (see [`key_name`]). A list or mapping as a key is a problem.
    fn key_text(&mut self, name: Spanned<Node>, pos: Pos) -> Option<String> {
        match name.value {
            Node::Scalar(scalar) => Some(key_name(scalar, source_text(self.text, &name.defined))),
            Node::Seq(_) | Node::Map(_) => {
                self.document.problems.push(
                    Problem::new(pos, "a list or mapping cannot be a key")
                        .help("keys are plain names, like `model` or a variable's name"),
                );
                None
            }
        }
    }
}
