//! The event reader against the tree reader: for every file the event reader takes, the
//! same value, the same position of every node and key, and the same problems; and
//! [`super::parse`] the same as the tree reader for every file, taken or not. Over the
//! repository's YAML files, mutated prompt files (the mutations of the fuzz test in
//! `tests/it/badinput.rs`), generated documents and scalar spellings.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use std::cell::Cell;

use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use super::{Document, MAX_DEPTH, MAX_NODES, events, parse, tree};

/// Whether the event reader took `text`; panics where the readers differ.
fn agree(text: &str) -> bool {
    let old = tree::parse(text);
    let new = events::read(text);
    let taken = new.is_some();
    if let Some(new) = new {
        match &old {
            Ok(old) => same(old, &new, text),
            Err(problems) => panic!(
                "the event reader took a file the tree reader refuses: {text:?}: {:?}",
                problems.list
            ),
        }
    }
    match (&old, parse(text)) {
        (Ok(old), Ok(new)) => same(old, &new, text),
        (Err(old), Err(new)) => assert_eq!(old.list, new.list, "{text:?}"),
        (old, new) => panic!("{text:?}: {old:?} / {new:?}"),
    }
    taken
}

fn same(old: &Document, new: &Document, text: &str) {
    assert_eq!(new.value, old.value, "{text:?}");
    // Key order and the sign of a zero too.
    assert_eq!(new.value.to_string(), old.value.to_string(), "{text:?}");
    assert_eq!(new.index.nodes, old.index.nodes, "{text:?}");
    assert_eq!(new.problems.list, old.problems.list, "{text:?}");
    assert_eq!(
        new.problems.tally.left_out(),
        old.problems.tally.left_out(),
        "{text:?}"
    );
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml")
        {
            out.push(path);
        }
    }
}

#[test]
fn the_repository_yaml_files_read_alike() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["tests", "examples"] {
        yaml_files(&root.join(dir), &mut files);
    }
    let (mut read, mut taken) = (0, 0);
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        read += 1;
        taken += usize::from(agree(&text));
    }
    // 82 files when this was written; most of them are read by the event reader.
    assert!(read >= 80, "{read} files");
    assert!(taken * 2 > read, "the event reader took {taken} of {read}");
}

/// Valid prompt files to mutate, like the fuzz test's: every part of the format, flow
/// and block styles, numbers as text, block scalars, and one with anchors.
const SEEDS: &[&str] = &[
    "name: A\nmodel: m\nmessages:\n  - role: user\n    content: hi\n",
    "prompt_id: 4f7c2a9e1b\nname: Numbers\nsync: false\nmodel: gpt-4o\ntemperature: 0.7\n\
     max_tokens: 2048\ntop_p: 1\nfrequency_penalty: 0\npresence_penalty: -0.5\nseed: 42\n\
     stream: false\nmessages: [{role: user, content: x}]\n",
    "name: Parts\nmodel: gpt-4o\nvariables: {topic: billing, q: How?}\nmessages:\n\
     \x20 - role: system\n    content: |\n      You help with {{topic}}.\n\
     \x20 - role: user\n    name: alice\n    content:\n      - {type: text, text: \"{{q}}\"}\n\
     \x20     - type: image_url\n        image_url: {url: \"https://e.com/a.png\"}\n",
    "name: Tools\nmodel: gpt-4o\nthinking: {type: enabled, budget_tokens: 1024}\n\
     tools: [{type: function, function: {name: lookup, parameters: {type: object}}}]\n\
     messages:\n  - role: tool\n    tool_call_id: c1\n    content: >-\n      folded\n      text\n",
    "name: &n Models\nmodel: &m gpt-4o\nfallback_models: [gpt-4o-mini, 'o3', *m]\n\
     load_balance_models:\n  - {model: *m, weight: 0.8}\ndescription: *n\n",
    "name: 2024\nmodel: 0123\nmessages: [{role: user, content: 37159387308e4920}]\n",
];

const SNIPPETS: &[&str] = &[
    ": ",
    "- ",
    "\n",
    "  ",
    "\t",
    "\r",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "!!str ",
    "---\n",
    "...\n",
    "# c",
    "'",
    "\"",
    "|\n",
    ">-\n",
    "? ",
    "\u{feff}",
    "é",
    "~",
    "<<: *a\n",
    "\\",
    "%YAML 1.2\n",
    "0x",
    "1e9",
    "_",
    ".",
    "+",
    "-",
];

/// Plain scalars of every resolution, and their near misses.
const SCALARS: &[&str] = &[
    "",
    "~",
    "null",
    "Null",
    "NULL",
    "nULL",
    "true",
    "True",
    "TRUE",
    "tRUE",
    "false",
    "FALSE",
    "yes",
    "no",
    "on",
    "0",
    "-0",
    "+0",
    "00",
    "0123",
    "-0123",
    "+0123",
    "007",
    "1_000",
    "1__0",
    "_1",
    "1_",
    "0_1",
    "0x10",
    "0X1f",
    "-0x10",
    "+0x10",
    "0x",
    "0x_1",
    "0o17",
    "0o8",
    "0b101",
    "0b2",
    "0B1",
    "-0b1",
    "12",
    "-12",
    "+12",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999",
    "340282366920938463463374607431768211456",
    "1.5",
    "1.50",
    "-1.5",
    "+1.5",
    ".5",
    "5.",
    "1e3",
    "1E3",
    "1e-3",
    "-1e3",
    "2048.0",
    "1e0",
    "1e999",
    "-1e999",
    ".5e999",
    "1.0e400",
    ".inf",
    ".Inf",
    ".INF",
    "-.inf",
    "+.inf",
    ".iNF",
    "inf",
    "-inf",
    "infinity",
    ".nan",
    ".NaN",
    ".NAN",
    "-.nan",
    "nan",
    "NaN",
    "1.2.3",
    "1e",
    "e3",
    "0x1p3",
    "37159387308e4920",
    "1,000",
    "١٢",
    "12abc",
    "a b",
    "gpt-4o",
    "<<",
    "=",
];

#[derive(Debug, Clone)]
enum Mutation {
    Byte(usize, u8),
    Insert(usize, &'static str),
    Delete(usize, usize),
    DropLine(usize),
    DupLine(usize),
    Indent(usize, i8),
    Value(usize, &'static str),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        (at, any::<u8>()).prop_map(|(at, byte)| Mutation::Byte(at, byte)),
        (at, prop::sample::select(SNIPPETS)).prop_map(|(at, text)| Mutation::Insert(at, text)),
        (at, 1..30usize).prop_map(|(at, len)| Mutation::Delete(at, len)),
        at.prop_map(Mutation::DropLine),
        at.prop_map(Mutation::DupLine),
        (at, -3..=3i8).prop_map(|(line, by)| Mutation::Indent(line, by)),
        (at, prop::sample::select(SCALARS)).prop_map(|(line, v)| Mutation::Value(line, v)),
    ]
}

fn mutate(text: &str, mutation: &Mutation) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    let mut lines: Vec<Vec<u8>> = bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    let line = |at: usize| at % lines.len();
    match *mutation {
        Mutation::Byte(at, byte) => {
            let at = at % bytes.len().max(1);
            if let Some(b) = bytes.get_mut(at) {
                *b = byte;
            }
            return bytes;
        }
        Mutation::Insert(at, text) => {
            let at = at % (bytes.len() + 1);
            bytes.splice(at..at, text.bytes());
            return bytes;
        }
        Mutation::Delete(at, len) => {
            let at = at % bytes.len().max(1);
            let end = (at + len).min(bytes.len());
            bytes.drain(at.min(end)..end);
            return bytes;
        }
        Mutation::DropLine(at) => {
            lines.remove(line(at));
        }
        Mutation::DupLine(at) => {
            let at = line(at);
            lines.insert(at, lines[at].clone());
        }
        Mutation::Indent(at, by) => {
            let at = line(at);
            let spaces = lines[at].iter().take_while(|b| **b == b' ').count();
            let by = usize::from(by.unsigned_abs());
            if by == 0 || spaces < by {
                lines[at].splice(0..0, std::iter::repeat_n(b' ', by));
            } else {
                lines[at].drain(..by);
            }
        }
        Mutation::Value(at, value) => {
            let at = line(at);
            if let Some(colon) = lines[at].windows(2).position(|w| w == b": ") {
                lines[at].truncate(colon + 2);
                lines[at].extend_from_slice(value.as_bytes());
            }
        }
    }
    lines.join(&b'\n')
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    )
}

#[test]
fn mutated_prompt_files_read_alike() {
    let strategy = (
        prop::sample::select(SEEDS),
        prop::collection::vec(mutation(), 1..4),
    );
    let taken = Cell::new(0);
    runner(3000)
        .run(&strategy, |(seed, mutations)| {
            let mut bytes = seed.as_bytes().to_vec();
            for mutation in &mutations {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                bytes = mutate(&text, mutation);
            }
            let text = String::from_utf8_lossy(&bytes);
            taken.set(taken.get() + usize::from(agree(&text)));
            Ok(())
        })
        .unwrap();
    let taken = taken.get();
    assert!(taken > 300, "the event reader took {taken} mutated files");
}

/// A generated YAML value: its text at `indent` in block style, or in flow style.
#[derive(Debug, Clone)]
enum Gen {
    Scalar(String),
    List(Vec<Gen>, bool),
    Map(Vec<(String, Gen)>, bool),
}

fn render(value: &Gen, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Gen::Scalar(text) => out.push_str(text),
        Gen::List(items, flow) if *flow || items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render_flow(item, out);
            }
            out.push(']');
        }
        Gen::Map(entries, flow) if *flow || entries.is_empty() => {
            out.push('{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(key);
                out.push_str(": ");
                render_flow(item, out);
            }
            out.push('}');
        }
        Gen::List(items, _) => {
            for item in items {
                out.push('\n');
                out.push_str(&pad);
                out.push_str("- ");
                render(item, indent + 2, out);
            }
        }
        Gen::Map(entries, _) => {
            for (key, item) in entries {
                out.push('\n');
                out.push_str(&pad);
                out.push_str(key);
                out.push(':');
                if !matches!(item, Gen::Scalar(_)) && !is_flow(item) {
                    render(item, indent + 2, out);
                } else {
                    out.push(' ');
                    render(item, indent + 2, out);
                }
            }
        }
    }
}

fn is_flow(value: &Gen) -> bool {
    match value {
        Gen::Scalar(_) => true,
        Gen::List(items, flow) => *flow || items.is_empty(),
        Gen::Map(entries, flow) => *flow || entries.is_empty(),
    }
}

fn render_flow(value: &Gen, out: &mut String) {
    match value {
        Gen::Scalar(text) => out.push_str(text),
        Gen::List(items, _) => render(&Gen::List(items.clone(), true), 0, out),
        Gen::Map(entries, _) => render(&Gen::Map(entries.clone(), true), 0, out),
    }
}

/// Keys the format gives meaning to (text, integers, numbers), and others.
const KEYS: &[&str] = &[
    "name",
    "model",
    "prompt_id",
    "description",
    "temperature",
    "max_tokens",
    "seed",
    "top_p",
    "messages",
    "role",
    "content",
    "variables",
    "fallback_models",
    "load_balance_models",
    "weight",
    "stream",
    "reasoning_effort",
    "x",
    "a/b~c",
    "'quoted'",
    "\"dq\"",
    "1",
    "0x1",
    "+1",
    "01",
    "1.5",
    "true",
    "~",
    "null",
    "''",
    "\"\"",
    "é",
];

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(SCALARS).prop_map(str::to_owned),
        prop::sample::select(SCALARS).prop_map(|s| format!("'{s}'")),
        prop::sample::select(SCALARS).prop_map(|s| format!("\"{s}\"")),
        "[0-9a-fxob_.+eE-]{1,8}",
    ]
}

fn generated() -> impl Strategy<Value = Gen> {
    scalar()
        .prop_map(Gen::Scalar)
        .prop_recursive(5, 60, 6, |inner| {
            prop_oneof![
                (prop::collection::vec(inner.clone(), 0..5), any::<bool>())
                    .prop_map(|(items, flow)| Gen::List(items, flow)),
                (
                    prop::collection::vec((prop::sample::select(KEYS), inner), 0..6),
                    any::<bool>()
                )
                    .prop_map(|(entries, flow)| Gen::Map(
                        entries
                            .into_iter()
                            .map(|(k, v)| (k.to_owned(), v))
                            .collect(),
                        flow
                    )),
            ]
        })
}

#[test]
fn generated_documents_read_alike() {
    let strategy = prop::collection::vec((prop::sample::select(KEYS), generated()), 0..8);
    let taken = Cell::new(0);
    runner(3000)
        .run(&strategy, |entries| {
            let entries = entries
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value))
                .collect();
            let mut text = String::new();
            render(&Gen::Map(entries, false), 0, &mut text);
            text.push('\n');
            taken.set(taken.get() + usize::from(agree(&text)));
            Ok(())
        })
        .unwrap();
    let taken = taken.get();
    assert!(taken > 300, "the event reader took {taken} generated files");
}

#[test]
fn every_scalar_spelling_reads_alike() {
    for value in SCALARS {
        for place in ["x", "name", "max_tokens", "temperature", "fallback_models"] {
            agree(&format!("{place}: {value}\n"));
            agree(&format!("{place}: [{value}]\n"));
            agree(&format!("{place}:\n  - {value}\n"));
        }
        agree(&format!("messages: [{{role: user, content: {value}}}]\n"));
        agree(&format!("variables:\n  {value}: v\n"));
    }
    for key in SCALARS {
        for other in SCALARS {
            agree(&format!("{key}: 1\n{other}: 2\n"));
        }
    }
}

#[test]
fn what_the_event_reader_leaves_reads_alike() {
    let nest = |depth: usize| format!("x: {}1{}\n", "[".repeat(depth), "]".repeat(depth));
    for depth in MAX_DEPTH - 3..MAX_DEPTH + 3 {
        agree(&nest(depth));
    }
    assert!(agree(&nest(MAX_DEPTH - 2)));
    // The most values the event reader takes (the list and its items); one more goes
    // to the tree reader (the limit itself: `tests::library_wording_does_not_leak`).
    assert!(agree(&format!("[{}]", vec!["1"; MAX_NODES - 2].join(","))));
    for text in [
        "",
        "# only a comment\n",
        "---\n",
        "--- a\n",
        "a: 1\n...\n",
        "a: 1\n---\nb: 2\n",
        "%YAML 1.2\n---\na: 1\n",
        "a: &x 1\nb: *x\n",
        "a: !!str 1\n",
        "a: 1\na: 2\n",
        "1: a\n0x1: b\n",
        "'a': 1\na: 2\n",
        "\"1\": a\n1: b\n",
        "~: a\nnull: b\n",
        "'': a\n: b\n",
        "? [a]\n: x\n",
        "<<: {a: 1}\n",
        "? |\n  block key\n: v\n",
        "? a\n  b\n: v\n",
        "a: [1, 2\n",
        "\u{feff}a: 1\n",
        "a: 1\r\nb: 2\r\n",
        "a:\tb\n",
    ] {
        agree(text);
    }
}
