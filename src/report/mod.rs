//! Text and JSON reports of a pass or a validation. The only writer to stdout: every
//! result a command prints goes through [`Stdout`], which redacts every secret
//! promptsync holds (`secret::Redacting`); logs go to stderr. A command's report is
//! printed by [`print()`], as text or as one JSON document, one target's or several's
//! ([`Grouped`]).

pub mod github;
pub mod pass;
pub mod pull;
pub mod status;
pub mod validate;

use std::io::{self, Write};

use serde::Serialize;

use crate::Error;
use crate::secret::Redacting;

/// A command's report: one JSON document (its `Serialize` shape) or text for people.
pub trait Printable: Serialize {
    /// The report for people.
    fn text(&self) -> String;
}

/// Print `report` on stdout, as its JSON document (`json`) or as its text, and flush:
/// the one writer of every command's report.
pub fn print<R: Printable + ?Sized>(report: &R, json: bool) -> Result<(), Error> {
    let mut out = Stdout::new();
    let written = if json {
        out.json(report)
    } else {
        out.text(&report.text())
    };
    written
        .and_then(|()| out.flush())
        .map_err(|source| Error::Io {
            what: "cannot write the report".into(),
            source,
        })
}

/// The reports of several targets (`[targets]`) as one: text, a heading per target
/// (`== target NAME ==`) and its report; JSON, one document `{"format": 1,
/// "targets": [...]}`, each report naming its `target`. Each report is rendered only
/// as what is printed.
#[derive(Debug, Default)]
pub struct Grouped {
    json: bool,
    text: String,
    targets: Vec<serde_json::Value>,
}

impl Grouped {
    /// Reports to print as one JSON document (`json`) or as text.
    pub fn new(json: bool) -> Grouped {
        Grouped {
            json,
            ..Grouped::default()
        }
    }

    /// Add `target`'s report.
    pub fn push<R: Printable>(&mut self, target: &str, report: &R) {
        if self.json {
            self.push_doc(target, serde_json::to_value(report).unwrap_or_default());
        } else {
            self.push_text(target, &report.text());
        }
    }

    /// Add `target`'s error, in place of its report: `error: MESSAGE` in the text,
    /// `{"target", "error": {"class", "message"}}` in the JSON.
    pub fn push_error(&mut self, target: &str, error: &Error) {
        let message = crate::failure::chain(error);
        if self.json {
            let doc = serde_json::json!({
                "target": target,
                "error": { "class": error.class(), "message": message },
            });
            self.push_doc(target, doc);
        } else {
            self.push_text(target, &format!("error: {message}\n"));
        }
    }

    fn push_text(&mut self, target: &str, text: &str) {
        self.text.push_str(&format!("== target {target} ==\n"));
        self.text.push_str(text);
        if !self.text.ends_with('\n') {
            self.text.push('\n');
        }
    }

    /// `doc` (an object) with its `target`.
    fn push_doc(&mut self, target: &str, mut doc: serde_json::Value) {
        if let Some(map) = doc.as_object_mut() {
            map.insert("target".to_owned(), target.into());
        }
        self.targets.push(doc);
    }

    /// Print the reports (see [`print()`]).
    pub fn print(&self) -> Result<(), Error> {
        print(self, self.json)
    }
}

impl Serialize for Grouped {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serde_json::json!({ "format": 1, "targets": self.targets }).serialize(serializer)
    }
}

impl Printable for Grouped {
    fn text(&self) -> String {
        self.text.clone()
    }
}

/// A remote prompt no file names, for people: `"NAME" (ID), v3 live` (or `nothing
/// live`), escaped.
fn unmanaged_line(prompt: &crate::reconcile::Unmanaged) -> String {
    let live = prompt
        .live_version
        .map_or_else(|| "nothing live".to_owned(), |v| format!("v{v} live"));
    format!(
        "{:?} ({}), {live}",
        crate::term::line(prompt.name.as_deref().unwrap_or("")),
        crate::term::line(&prompt.prompt_id)
    )
}

/// Locked, buffered, redacted stdout for one report. Write errors other than a closed
/// pipe are returned; a closed pipe (`promptsync plan | head`) ends the output quietly.
#[derive(Debug)]
pub struct Stdout {
    out: io::BufWriter<Redacting<io::StdoutLock<'static>>>,
}

impl Stdout {
    pub fn new() -> Self {
        Stdout {
            out: io::BufWriter::new(Redacting::new(io::stdout().lock())),
        }
    }

    /// Whether stdout is a terminal (colours, progress).
    pub fn is_terminal() -> bool {
        io::IsTerminal::is_terminal(&io::stdout())
    }

    /// Whether to colour what goes to stdout: a terminal, and `NO_COLOR` not set.
    pub fn wants_color() -> bool {
        let color =
            Self::is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        console::set_colors_enabled(color);
        color
    }

    /// Write `text` followed by a newline.
    pub fn line(&mut self, text: &str) -> io::Result<()> {
        ignore_broken_pipe(writeln!(self.out, "{text}"))
    }

    /// Write `text` as is.
    pub fn text(&mut self, text: &str) -> io::Result<()> {
        ignore_broken_pipe(self.out.write_all(text.as_bytes()))
    }

    /// Write `value` as pretty JSON followed by a newline.
    pub fn json<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> io::Result<()> {
        let text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
        self.line(&text)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        ignore_broken_pipe(self.out.flush())
    }
}

impl Default for Stdout {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Stdout {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

fn ignore_broken_pipe(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Counted {
        format: u32,
        count: usize,
    }

    impl Printable for Counted {
        fn text(&self) -> String {
            format!("{} counted", self.count)
        }
    }

    /// A target's report and another's error, grouped to print as JSON or as text.
    fn grouped(json: bool) -> Grouped {
        let mut grouped = Grouped::new(json);
        grouped.push(
            "prod",
            &Counted {
                format: 1,
                count: 2,
            },
        );
        grouped.push_error("staging", &Error::Usage("no such thing".into()));
        grouped
    }

    #[test]
    fn grouped_reports_have_a_heading_each_as_text() {
        assert_eq!(
            grouped(false).text(),
            "== target prod ==\n2 counted\n== target staging ==\nerror: no such thing\n"
        );
    }

    #[test]
    fn grouped_reports_are_one_json_document_each_naming_its_target() {
        assert_eq!(
            serde_json::to_string(&grouped(true)).unwrap(),
            r#"{"format":1,"targets":[{"format":1,"count":2,"target":"prod"},{"target":"staging","error":{"class":"stalled","message":"no such thing"}}]}"#
        );
    }

    #[test]
    fn an_unmanaged_prompt_shows_its_name_id_and_live_version_escaped() {
        let mut prompt = crate::reconcile::Unmanaged {
            prompt_id: "prm_1".into(),
            name: Some("Old \u{1b}[2J one".into()),
            live_version: Some(3),
            newest_version: Some(4),
        };
        assert_eq!(
            unmanaged_line(&prompt),
            r#""Old \\u{1b}[2J one" (prm_1), v3 live"#
        );
        prompt.live_version = None;
        prompt.name = None;
        assert_eq!(unmanaged_line(&prompt), r#""" (prm_1), nothing live"#);
    }
}
