//! A file that serde-saphyr could not read as one YAML document: its error in our
//! words, at the place a person has to look. The parser's own position is moved where
//! it misleads: a tab is reported where the tab is (the parser points at the scalar it
//! was reading, often the line before), and a `[` or `{` that is never closed is named
//! at the bracket (the parser trips later, on the next `key:`). Library wording never
//! reaches the user; whatever this does not know is said generically, with a position.

use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::granit_parser::{self, ErrorKind, Event, ScanError, StructureStyle};
use serde_saphyr::{ExternalMessageSource, Location};

use super::{MAX_DEPTH, MAX_NODES, Pos, Problem};
use crate::excerpt;

/// The hint for the usual indentation slips.
const INDENTATION: &str = "check the indentation: the keys of one mapping, and the `-` entries of one list, start in the same column; what belongs to a key or an entry is indented further, with spaces (never tabs)";

/// serde-saphyr's error about `text`, in our words.
pub(super) fn problem(text: &str, err: &serde_saphyr::Error) -> Problem {
    use serde_saphyr::Error as E;
    let pos = err
        .location()
        .and_then(pos_of)
        .unwrap_or(Pos { line: 1, column: 1 });
    let err = innermost(err);
    match err {
        E::DuplicateMappingKey { key, .. } => {
            let message = match key {
                Some(key) => format!("duplicate key {}", excerpt::quoted(key)),
                None => "duplicate key".to_owned(),
            };
            Problem::new(pos, message)
                .help("a key may appear only once in a mapping: keep one of them")
        }
        E::MultipleDocuments { .. } => multiple_documents(pos),
        E::Budget { breach, .. } => budget_problem(pos, breach),
        E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. }
        | E::AliasReplayCounterOverflow { .. } => too_many_aliases(pos),
        E::UnknownAnchor { .. } => Problem::new(
            pos,
            "invalid YAML: this alias (`*name`) refers to no anchor (`&name`) defined before it",
        )
        .help("define the anchor first, or write the value out"),
        E::RecursiveReferencesRequireWeakTypes { .. } => Problem::new(
            pos,
            "invalid YAML: this alias refers to a node that contains it",
        )
        .help("an alias cannot repeat its own surroundings: write the value out"),
        E::MergeKeyNotAllowed { .. } | E::MergeValueNotMapOrSeqOfMaps { .. } => {
            Problem::new(pos, "YAML merge keys (`<<`) are not supported").help(
                "write the keys out; an alias of a whole value (`key: *anchor`) still works. \
                 Merge keys are YAML 1.1, which promptsync does not read",
            )
        }
        E::FoldedBlockScalarMustIndentContent { .. } => Problem::new(
            pos,
            "invalid YAML: the text of a `>` or `|` block must be indented further than its key",
        )
        .help(INDENTATION),
        E::Eof { .. } => Problem::new(pos, "invalid YAML: the file ends in the middle of a value"),
        E::NonFiniteFloat { value, .. } => super::not_finite(pos, value),
        E::ExternalMessage { source, .. } => match source.as_ref() {
            ExternalMessageSource::Parser(scan) => scan_problem(text, pos, scan),
            _ => unknown(pos),
        },
        _ => unknown(pos),
    }
}

/// A 1-based position of serde-saphyr's.
pub(super) fn pos_of(location: Location) -> Option<Pos> {
    let line = usize::try_from(location.line()).ok()?;
    let column = usize::try_from(location.column()).ok()?;
    (line > 0 && column > 0).then_some(Pos { line, column })
}

/// Any other error the library reports: no library text, which can quote the input
/// at length and names the library's own types.
fn unknown(pos: Pos) -> Problem {
    Problem::new(
        pos,
        "invalid YAML: the file cannot be read as YAML from here",
    )
    .help(
        "check the YAML syntax at this line: quotes, brackets, `key: value` pairs and indentation",
    )
}

/// The error an alias error or a snippet wrapper is about.
fn innermost(err: &serde_saphyr::Error) -> &serde_saphyr::Error {
    let mut err = err;
    for _ in 0..8 {
        err = match err {
            serde_saphyr::Error::AliasError { error, .. } => error,
            serde_saphyr::Error::WithSnippet { error, .. } => error,
            _ => break,
        };
    }
    err
}

pub(super) fn budget_problem(pos: Pos, breach: &BudgetBreach) -> Problem {
    match breach {
        BudgetBreach::Depth { .. } => Problem::new(
            pos,
            format!("the file nests lists and mappings more than {MAX_DEPTH} levels deep"),
        )
        .help("flatten it: a prompt file needs only a few levels"),
        BudgetBreach::Nodes { .. } => Problem::new(
            pos,
            format!(
                "the file holds more than {MAX_NODES} values (an alias counts all the values of its anchor each time it is used)"
            ),
        )
        .help("write less, or use fewer aliases; a prompt file needs far fewer values"),
        BudgetBreach::Aliases { .. }
        | BudgetBreach::AliasAnchorRatio { .. }
        | BudgetBreach::RecordedAnchorEvents { .. }
        | BudgetBreach::RecordedAnchorBytes { .. }
        | BudgetBreach::MergeKeys { .. } => too_many_aliases(pos),
        BudgetBreach::Documents { .. } => multiple_documents(pos),
        _ => Problem::new(pos, "the file is too large or too repetitive to read")
            .help("a prompt file is a small mapping of keys: split it up"),
    }
}

fn multiple_documents(pos: Pos) -> Problem {
    Problem::new(
        pos,
        "the file holds more than one YAML document; a second one starts here",
    )
    .help("one prompt per file: move what follows the `---` line into a file of its own")
}

fn too_many_aliases(pos: Pos) -> Problem {
    Problem::new(
        pos,
        "the file's aliases (`*name`) expand to far more than a prompt file holds",
    )
    .help("write the values out, or use fewer aliases")
}

/// A parser (syntax) error. The usual slips get our words, a hint, and the position of
/// their cause.
fn scan_problem(text: &str, pos: Pos, scan: &ScanError) -> Problem {
    use ErrorKind as K;
    let kind = scan.kind();
    if let Some(open) = unclosed_bracket(text, pos, kind) {
        return open;
    }
    let message = match kind {
        K::ExpectedBlockMappingKey => {
            "expected a `key: value` here, in the column of the keys above it"
        }
        K::ExpectedBlockSequenceEntry => {
            "expected a list entry (`- ...`) here, in the column of the entries above it"
        }
        K::MappingValueNotAllowed | K::InvalidColonPlacement => {
            "a `key: value` is not allowed here (is it indented too far?)"
        }
        K::BlockSequenceEntryNotAllowed => "a list entry (`- ...`) is not allowed here",
        K::InvalidIndentation
        | K::InvalidFlowScalarIndent
        | K::InvalidQuotedScalarIndent
        | K::InvalidBlockScalarIndent => "wrong indentation",
        K::TabNotAllowed
        | K::TabInIndentation
        | K::TabInBlockIndentation
        | K::TabInPlainScalar
        | K::TabAtBlockScalarStart => {
            let at = tab_at(text, pos).unwrap_or(pos);
            return Problem::new(at, "invalid YAML: a tab where YAML allows only spaces")
                .help(INDENTATION);
        }
        K::UnexpectedCharacter { character } if character.is_control() => {
            return Problem::new(
                pos,
                format!(
                    "invalid YAML: the control character `{}` cannot appear in YAML text",
                    character.escape_debug()
                ),
            )
            .help(
                "write it as an escape in a double-quoted string (`\\e`, `\\x07`), or remove it",
            );
        }
        K::RecursionLimitExceeded => return budget_problem(pos, &BudgetBreach::Depth { depth: 0 }),
        _ => return other_scan_problem(pos, kind),
    };
    Problem::new(pos, format!("invalid YAML: {message}")).help(INDENTATION)
}

/// Parser errors other than the indentation slips, each in a sentence of ours.
fn other_scan_problem(pos: Pos, kind: &ErrorKind) -> Problem {
    use ErrorKind as K;
    let (message, help) = match kind {
        K::UnclosedQuotedScalar => (
            "unclosed quote".to_owned(),
            "end the text with the quote it starts with; inside double quotes write `\\\"` for a quote, inside single quotes `''`",
        ),
        K::UnclosedFlowCollection { open } => {
            return unclosed(pos, *open);
        }
        K::MismatchedFlowCollectionEnd { open, close } => (
            format!("`{close}` closes a `{open}`"),
            "close a `[` with `]` and a `{` with `}`",
        ),
        K::MisplacedFlowCollectionEnd => (
            "a `]` or `}` that closes nothing".to_owned(),
            "remove it, or open the list (`[`) or mapping (`{`) it is meant to close",
        ),
        K::UnknownQuotedScalarEscape
        | K::InvalidQuotedScalarHexEscape
        | K::InvalidUnicodeEscape
        | K::InvalidLowSurrogateHexEscape
        | K::InvalidLowSurrogate
        | K::MissingLowSurrogate
        | K::UnpairedLowSurrogate => (
            "an escape (`\\...`) that double-quoted YAML text does not know".to_owned(),
            "write `\\\\` for a backslash, or use single quotes, where `\\` is an ordinary character",
        ),
        K::InvalidTrailingSingleQuotedScalar | K::InvalidTrailingDoubleQuotedScalar => (
            "text after the closing quote".to_owned(),
            "quote the whole value, or nothing of it",
        ),
        K::CommentNotSeparated => (
            "a `#` right after a value".to_owned(),
            "put a space before a `#` comment, or quote a value that holds `#`",
        ),
        K::UnexpectedCharacter { character } => (
            format!("`{}` cannot start a value here", character.escape_debug()),
            "quote the value: `@` and `` ` `` are reserved at the start of a plain value",
        ),
        K::UnexpectedEof
        | K::UnexpectedEofBlockMapping
        | K::UnexpectedEofBlockSequence
        | K::UnexpectedEofFlowMapping
        | K::UnexpectedEofFlowSequence
        | K::UnexpectedEofImplicitFlowMapping => (
            "the file ends in the middle of a value".to_owned(),
            "finish the value, or remove what is left of it",
        ),
        K::ExpectedNodeContent | K::SimpleKeyExpected | K::InvalidSimpleKey => (
            "expected a value here".to_owned(),
            "check the YAML syntax at this line: quotes, brackets and `key: value` pairs",
        ),
        K::ExpectedFlowMappingSeparator => (
            "expected `,` or `}` here, in a mapping written in braces".to_owned(),
            "separate the entries with `,` and close the mapping with `}`",
        ),
        K::ExpectedFlowSequenceSeparator => (
            "expected `,` or `]` here, in a list written in brackets".to_owned(),
            "separate the entries with `,` and close the list with `]`",
        ),
        K::BlockEntryInFlowCollection => (
            "a `- ` entry inside brackets or braces".to_owned(),
            "inside `[...]` separate the entries with `,`; or write the list in block style, one `- ` entry a line",
        ),
        K::BomInsideDocument => (
            "a byte order mark (U+FEFF) inside the file".to_owned(),
            "remove it: it is only allowed as the file's very first character",
        ),
        K::DirectiveDisallowed
        | K::DuplicateVersionDirective
        | K::UnsupportedYamlMajorVersion
        | K::DuplicateTagDirective
        | K::MissingDocumentEndBeforeDirective => (
            "a `%` directive promptsync does not read here".to_owned(),
            "remove the `%YAML` or `%TAG` line",
        ),
        _ => return unknown(pos),
    };
    Problem::new(pos, format!("invalid YAML: {message}")).help(help)
}

fn unclosed(pos: Pos, open: char) -> Problem {
    let (close, what) = if open == '{' {
        ('}', "mapping")
    } else {
        (']', "list")
    };
    Problem::new(
        pos,
        format!("invalid YAML: this `{open}` is never closed: the {what} it starts has no `{close}`"),
    )
    .help(format!(
        "end the {what} with `{close}`; it may span lines, but a `key:` at the start of a line cannot be inside it"
    ))
}

/// The `[` or `{` a syntax error at `pos` is really about: the innermost one still open
/// there, opened on an earlier line, when the error is one an unclosed bracket causes
/// (the parser reads on into the next `key:` and trips there).
fn unclosed_bracket(text: &str, pos: Pos, kind: &ErrorKind) -> Option<Problem> {
    use ErrorKind as K;
    if !matches!(
        kind,
        K::InvalidColonPlacement
            | K::MappingValueNotAllowed
            | K::ExpectedFlowMappingSeparator
            | K::ExpectedFlowSequenceSeparator
            | K::BlockEntryInFlowCollection
            | K::UnclosedFlowCollection { .. }
            | K::UnexpectedEofFlowMapping
            | K::UnexpectedEofFlowSequence
    ) {
        return None;
    }
    // The collections the parser opened before it failed, innermost last.
    let mut open: Vec<Option<(Pos, char)>> = Vec::new();
    for event in granit_parser::Parser::new_from_str(text) {
        let Ok((event, span)) = event else {
            break;
        };
        match event {
            Event::SequenceStart(style, ..) | Event::MappingStart(style, ..) => {
                let at = Pos {
                    line: span.start.line().max(1),
                    column: span.start.col() + 1,
                };
                let bracket = (style == StructureStyle::Flow)
                    .then(|| char_at(text, at))
                    .flatten()
                    .filter(|c| matches!(c, '[' | '{'));
                open.push(bracket.map(|c| (at, c)));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                open.pop();
            }
            _ => {}
        }
    }
    // A flow collection holds flow collections only: the innermost bracket open.
    let (at, bracket) = open.iter().rev().find_map(|entry| *entry)?;
    (at.line < pos.line || matches!(kind, K::UnclosedFlowCollection { .. }))
        .then(|| unclosed(at, bracket))
}

/// The byte offset of 1-based `pos` in `text`; lines end as YAML ends them.
fn offset_of(text: &str, pos: Pos) -> Option<usize> {
    let mut line = 1;
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut at = 0;
    while line < pos.line {
        match bytes.get(at)? {
            b'\n' => {
                line += 1;
                start = at + 1;
            }
            b'\r' => {
                line += 1;
                if bytes.get(at + 1) == Some(&b'\n') {
                    at += 1;
                }
                start = at + 1;
            }
            _ => {}
        }
        at += 1;
    }
    let rest = text.get(start..)?;
    let column = rest
        .char_indices()
        .nth(pos.column - 1)
        .map_or(rest.len(), |(i, _)| i);
    Some(start + column)
}

fn char_at(text: &str, pos: Pos) -> Option<char> {
    text.get(offset_of(text, pos)?..)?.chars().next()
}

/// The 1-based position of byte `offset` of `text`.
fn pos_at(text: &str, offset: usize) -> Pos {
    let before = &text[..offset];
    let line_start = before.rfind(['\n', '\r']).map_or(0, |i| i + 1);
    let line = 1 + before.matches('\n').count() + before.matches('\r').count()
        - before.matches("\r\n").count();
    Pos {
        line,
        column: before[line_start..].chars().count() + 1,
    }
}

/// Where the tab that a tab error at `pos` is about is: the parser reports the start of
/// what it was reading (`name: A` for a tab that starts the next line) or the character
/// after the tab. The first tab in the indentation of `pos`'s line, else the tab at
/// `pos`, else the first tab that indents a later line, else the next tab on the line.
fn tab_at(text: &str, pos: Pos) -> Option<Pos> {
    let at = offset_of(text, pos)?;
    let line_start = text[..at].rfind(['\n', '\r']).map_or(0, |i| i + 1);
    let indent = text[line_start..]
        .find(|c| c != ' ' && c != '\t')
        .unwrap_or(text.len() - line_start);
    if let Some(tab) = text[line_start..line_start + indent].find('\t') {
        return Some(pos_at(text, line_start + tab));
    }
    if text[at..].starts_with('\t') {
        return Some(pos);
    }
    let mut line_at = at;
    while let Some(next) = text[line_at..].find(['\n', '\r']) {
        line_at += next + 1;
        let indent = text[line_at..]
            .find(|c| c != ' ' && c != '\t')
            .unwrap_or(text.len() - line_at);
        // A blank line's whitespace indents nothing.
        let blank = matches!(
            text[line_at + indent..].chars().next(),
            None | Some('\n' | '\r')
        );
        if blank {
            continue;
        }
        if let Some(tab) = text[line_at..line_at + indent].find('\t') {
            return Some(pos_at(text, line_at + tab));
        }
    }
    let line_end = text[at..].find(['\n', '\r']).map_or(text.len(), |i| at + i);
    text[at..line_end]
        .find('\t')
        .map(|tab| pos_at(text, at + tab))
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    fn found(text: &str) -> Vec<(usize, usize, String)> {
        let problems = match parse(text) {
            Ok(doc) => doc.problems.list,
            Err(problems) => problems.list,
        };
        problems
            .into_iter()
            .map(|p| (p.pos.line, p.pos.column, p.message))
            .collect()
    }

    const TAB: &str = "invalid YAML: a tab where YAML allows only spaces";

    #[test]
    fn tabs_are_reported_where_they_are() {
        let cases = [
            ("name: A\n\tmodel: m\n", (2, 1)),
            ("messages:\n\t- role: user\n", (2, 1)),
            ("a:\n  b: 1\n\tc: 2\n", (3, 1)),
            ("- a\n\t- b\n", (2, 1)),
            ("a: |\n\tfoo\n", (2, 1)),
            ("a: x\r\n\tb: 1\r\n", (2, 1)),
        ];
        for (text, (line, column)) in cases {
            assert_eq!(found(text), [(line, column, TAB.to_owned())], "{text:?}");
        }
        // A tab after a key, or alone on a line, is fine in YAML.
        assert_eq!(found("model:\tm\n"), []);
        assert_eq!(found("a: 1\n\t\nb: 2\n"), []);
    }

    #[test]
    fn an_unclosed_bracket_is_named_at_the_bracket() {
        let list = "invalid YAML: this `[` is never closed: the list it starts has no `]`";
        let mapping = "invalid YAML: this `{` is never closed: the mapping it starts has no `}`";
        let cases = [
            (
                "name: A\nx: [a, b\nmessages:\n  - role: user\n",
                (2, 4),
                list,
            ),
            ("name: A\nx: [a, b\n", (2, 4), list),
            ("x: {type: y\nmessages: []\n", (1, 4), mapping),
            ("x: {type: y\n", (1, 4), mapping),
            ("x: [a, [b, c]\ny: 1\n", (1, 4), list),
            // Both are open: the parser tells of the outer one.
            ("x: [a,\n  [b, c\ny: 1\n", (1, 4), list),
        ];
        for (text, (line, column), message) in cases {
            assert_eq!(
                found(text),
                [(line, column, message.to_owned())],
                "{text:?}"
            );
        }
        // A list that spans lines and closes is fine.
        assert_eq!(found("x: [a,\n  b]\ny: 1\n"), []);
    }

    #[test]
    fn other_slips_in_our_words() {
        let cases = [
            ("a: \"hi\n", (1, 4), "invalid YAML: unclosed quote"),
            ("a: 'hi\n", (1, 4), "invalid YAML: unclosed quote"),
            ("x: [a, {b: c]\n", (1, 8), "invalid YAML: `]` closes a `{`"),
            (
                "a: \"\\q\"\n",
                (1, 4),
                "invalid YAML: an escape (`\\...`) that double-quoted YAML text does not know",
            ),
            (
                "a: 'x' y\n",
                (1, 8),
                "invalid YAML: text after the closing quote",
            ),
            (
                "base: &b {model: m}\n<<: *b\n",
                (2, 1),
                "YAML merge keys (`<<`) are not supported",
            ),
        ];
        for (text, (line, column), message) in cases {
            let got = found(text);
            assert_eq!(got.len(), 1, "{text:?}: {got:?}");
            assert_eq!(got[0].2, message, "{text:?}");
            assert_eq!((got[0].0, got[0].1), (line, column), "{text:?}");
        }
    }

    #[test]
    fn positions_and_offsets_agree() {
        let text = "ab\r\ncé\rd\ne";
        for (offset, _) in text.char_indices() {
            let pos = pos_at(text, offset);
            if text[offset..].starts_with('\n') && offset > 0 && text[..offset].ends_with('\r') {
                continue;
            }
            assert_eq!(offset_of(text, pos), Some(offset), "{pos:?}");
        }
    }
}
