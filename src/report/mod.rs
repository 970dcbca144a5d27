//! Text and JSON reports of a pass or a validation. The only writer to stdout: every
//! result a command prints goes through [`Stdout`], which redacts every secret
//! promptsync holds ([`secret::Redacting`]); logs go to stderr.

pub mod github;
pub mod pass;
pub mod pull;
pub mod status;
pub mod validate;

use std::io::{self, Write};

use crate::secret::Redacting;

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
    pub fn json<T: serde::Serialize>(&mut self, value: &T) -> io::Result<()> {
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
