//! Secrets, and the redactor in front of every output channel.
//!
//! A secret is a value promptsync holds and must never show: the API key (an
//! [`ApiKey`]), and the tokens and webhook secrets that later settings add (a
//! [`Secret`], or [`register`] for a value held in another type). Every secret registers
//! itself in one process-wide registry when it is created; [`redact`] replaces each
//! registered value in a text with `[redacted]`, and [`Redacting`] does the same for a
//! byte stream. Every channel promptsync writes to goes through one of them: the
//! reports on stdout ([`report::Stdout`](crate::report::Stdout)), the logs on stderr
//! ([`logging`](crate::logging)), the binary's last error line, GitHub annotations and
//! job summaries, and every body of the daemon's probe server. It is the last line of
//! defence, as CI systems mask their secrets: the first is that no code prints a
//! secret (`Debug` and `Display` show `[redacted]`).
//!
//! Values shorter than [`MIN_SECRET_CHARS`] are not redacted: a one-letter test key
//! would mangle every output, and no real key is that short. Knows nothing about where
//! secrets come from or where text goes.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Write};
use std::sync::{Arc, PoisonError, RwLock};

use aho_corasick::{AhoCorasick, MatchKind};
use secrecy::{ExposeSecret, SecretString};

/// What replaces a secret in output.
pub(crate) const REDACTED: &str = "[redacted]";

/// Values shorter than this (in bytes) are not redacted.
pub(crate) const MIN_SECRET_CHARS: usize = 8;

/// At most this many values are remembered (a daemon whose key file is rotated for
/// years registers each key once); the oldest are forgotten first.
const MAX_SECRETS: usize = 256;

/// A line longer than this without a line break is written in parts (see
/// [`Redacting`]).
const MAX_PENDING: usize = 64 * 1024;

/// A secret value of any kind: `Debug` and `Display` print `[redacted]`, creating one
/// registers it with the redactor, and [`Secret::expose`] is the only way to its text.
#[derive(Clone)]
pub(crate) struct Secret(SecretString);

impl Secret {
    pub(crate) fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        register(&value);
        Secret(SecretString::from(value))
    }

    /// The text, for the one place that sends it (a header, a signature).
    pub(crate) fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// `Debug` and `Display` that print `[redacted]`, for each type that holds a secret.
macro_rules! shown_redacted {
    ($($ty:ty),+) => {$(
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(REDACTED)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(REDACTED)
            }
        }
    )+};
}

shown_redacted!(Secret, ApiKey);

/// A Respan API key. Never printed, logged or serialised; registered with the
/// redactor when created.
#[derive(Clone)]
pub struct ApiKey(Secret);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(Secret::new(key))
    }

    /// The key's text, for the Authorization header only.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

/// The registered values and the automaton that finds them.
#[derive(Default)]
struct Registry {
    /// Every form of every secret, oldest first, each once.
    values: Vec<String>,
    /// Finds any of `values`, leftmost-longest; `None` while there are none.
    finder: Option<Arc<AhoCorasick>>,
}

static REGISTRY: RwLock<Registry> = RwLock::new(Registry {
    values: Vec::new(),
    finder: None,
});

/// Register `value` as a secret: from now on [`redact`] and [`Redacting`] replace it,
/// and the forms it takes in JSON and Rust's `Debug` output (`"` and `\` escaped).
/// A value with line breaks is registered line by line. Values shorter than
/// [`MIN_SECRET_CHARS`] are ignored.
pub(crate) fn register(value: &str) {
    let mut forms: Vec<String> = Vec::new();
    for line in value.lines().map(str::trim) {
        if line.len() < MIN_SECRET_CHARS {
            continue;
        }
        forms.push(line.to_owned());
        let escaped = line.replace('\\', "\\\\").replace('"', "\\\"");
        if escaped != line {
            forms.push(escaped);
        }
    }
    if forms.is_empty() {
        return;
    }
    let mut registry = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
    let before = registry.values.len();
    for form in forms {
        if !registry.values.contains(&form) {
            registry.values.push(form);
        }
    }
    if registry.values.len() == before {
        return;
    }
    let excess = registry.values.len().saturating_sub(MAX_SECRETS);
    registry.values.drain(..excess);
    // Leftmost-longest: of two secrets where one starts the other, the longer goes.
    registry.finder = AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(&registry.values)
        .ok()
        .map(Arc::new);
}

/// The automaton over the registered secrets, if any are.
fn finder() -> Option<Arc<AhoCorasick>> {
    REGISTRY
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .finder
        .clone()
}

/// The length of the longest registered form, in bytes (0 with none).
fn longest() -> usize {
    REGISTRY
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .values
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(0)
}

/// `text` with every registered secret replaced by `[redacted]`; borrowed when there
/// is none in it.
pub(crate) fn redact(text: &str) -> Cow<'_, str> {
    match finder() {
        Some(finder) if finder.is_match(text) => {
            Cow::Owned(finder.replace_all(text, &vec![REDACTED; finder.patterns_len()]))
        }
        _ => Cow::Borrowed(text),
    }
}

/// [`redact`] for bytes (which need not be UTF-8).
pub(crate) fn redact_bytes(bytes: &[u8]) -> Cow<'_, [u8]> {
    match finder() {
        Some(finder) if finder.is_match(bytes) => Cow::Owned(
            finder.replace_all_bytes(bytes, &vec![REDACTED.as_bytes(); finder.patterns_len()]),
        ),
        _ => Cow::Borrowed(bytes),
    }
}

/// Whether `text` holds a registered secret (for output that must not be written at
/// all when it does, such as a file).
pub(crate) fn holds_secret(text: &str) -> bool {
    finder().is_some_and(|finder| finder.is_match(text))
}

/// A writer that redacts what goes through it. It holds back the last, unfinished line
/// (a secret never spans a line break, so every complete line can be redacted as a
/// whole) and writes it on [`flush`](Write::flush) or when dropped. A line longer than
/// 64 KiB is written in parts, each part redacted, the last bytes that could begin a
/// secret held back for the next part.
#[derive(Debug)]
pub struct Redacting<W: Write> {
    inner: W,
    pending: Vec<u8>,
}

impl<W: Write> Redacting<W> {
    pub fn new(inner: W) -> Self {
        Redacting {
            inner,
            pending: Vec::new(),
        }
    }

    /// Write the complete lines held, and a part of an overlong unfinished one.
    fn write_ready(&mut self) -> io::Result<()> {
        if let Some(end) = self.pending.iter().rposition(|&b| b == b'\n') {
            let rest = self.pending.split_off(end + 1);
            let lines = std::mem::replace(&mut self.pending, rest);
            self.inner.write_all(&redact_bytes(&lines))?;
        }
        if self.pending.len() > MAX_PENDING {
            let redacted = redact_bytes(&self.pending).into_owned();
            // What could still become a secret with the next bytes stays behind.
            let keep = longest().saturating_sub(1).min(redacted.len());
            let (ready, tail) = redacted.split_at(redacted.len() - keep);
            self.inner.write_all(ready)?;
            self.pending = tail.to_vec();
        }
        Ok(())
    }

    fn write_pending(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            self.inner.write_all(&redact_bytes(&pending))?;
        }
        Ok(())
    }
}

impl<W: Write> Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        self.write_ready()?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_pending()?;
        self.inner.flush()
    }
}

impl<W: Write> Drop for Redacting<W> {
    fn drop(&mut self) {
        let _ = self.write_pending();
        let _ = self.inner.flush();
    }
}

/// Print panics through the redactor: the standard hook writes a panic's message to
/// stderr as it is, and the message can hold any value the panicking code formatted.
/// Same text as the standard hook (thread, location, message, and the backtrace when
/// `RUST_BACKTRACE` asks for one), every secret replaced.
pub fn redact_panics() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
        let backtrace = std::backtrace::Backtrace::capture();
        let text = panic_text(
            thread.name().unwrap_or("<unnamed>"),
            location.as_deref(),
            info.payload_as_str().unwrap_or("Box<dyn Any>"),
            &backtrace,
        );
        // Nothing is left to tell about a failed write to stderr.
        let _ = io::stderr().lock().write_all(redact(&text).as_bytes());
    }));
}

/// What [`redact_panics`] prints, before redaction.
fn panic_text(
    thread: &str,
    location: Option<&str>,
    message: &str,
    backtrace: &std::backtrace::Backtrace,
) -> String {
    let at = location.map(|l| format!(" at {l}")).unwrap_or_default();
    let trace = match backtrace.status() {
        std::backtrace::BacktraceStatus::Captured => format!("stack backtrace:\n{backtrace}\n"),
        _ => "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n"
            .to_owned(),
    };
    format!("\nthread '{thread}' panicked{at}:\n{message}\n{trace}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panics_message_is_redacted() {
        register("sk_unit_panic_secret_31");
        let text = panic_text(
            "main",
            Some("src/x.rs:1:2"),
            "bad value sk_unit_panic_secret_31",
            &std::backtrace::Backtrace::disabled(),
        );
        assert!(
            text.contains("thread 'main' panicked at src/x.rs:1:2:"),
            "{text}"
        );
        assert!(text.contains("RUST_BACKTRACE=1"), "{text}");
        assert_eq!(
            redact(&text).lines().nth(2),
            Some("bad value [redacted]"),
            "{text}"
        );
    }

    #[test]
    fn debug_and_display_hide_the_key() {
        let key = ApiKey::new("sk_live_very_secret");
        assert_eq!(format!("{key:?}"), "[redacted]");
        assert_eq!(format!("{key}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(key.clone())), "Some([redacted])");
        assert_eq!(key.expose(), "sk_live_very_secret");
        let token = Secret::new("ghp_token_for_tests_0001");
        assert_eq!(format!("{token:?} {token}"), "[redacted] [redacted]");
    }

    #[test]
    fn a_new_key_is_redacted_everywhere_in_a_text() {
        let key = ApiKey::new("sk_unit_redact_4242");
        let text = format!("a {} b\n{}{}", key.expose(), key.expose(), key.expose());
        assert_eq!(redact(&text), "a [redacted] b\n[redacted][redacted]");
        assert!(holds_secret(&text));
        assert!(matches!(redact("nothing here"), Cow::Borrowed(_)));
        assert_eq!(
            redact_bytes(b"\xffsk_unit_redact_4242\xfe").as_ref(),
            b"\xff[redacted]\xfe"
        );
    }

    #[test]
    fn escaped_forms_and_lines_of_a_value_are_registered() {
        register("sk_unit_\"quoted\\_77");
        assert_eq!(
            redact(r#"json "sk_unit_\"quoted\\_77" raw sk_unit_"quoted\_77"#),
            r#"json "[redacted]" raw [redacted]"#
        );
        register("first_line_secret_1\nsecond_line_secret_2\n");
        assert_eq!(
            redact("second_line_secret_2 first_line_secret_1"),
            "[redacted] [redacted]"
        );
    }

    #[test]
    fn short_values_are_not_secrets() {
        register("abc");
        register("");
        assert_eq!(redact("abc abc"), "abc abc");
    }

    #[test]
    fn the_writer_redacts_a_secret_split_across_writes() {
        register("sk_unit_split_secret_99");
        let mut out = Vec::new();
        {
            let mut writer = Redacting::new(&mut out);
            writer.write_all(b"one sk_unit_sp").unwrap();
            writer
                .write_all(b"lit_secret_99 two\nthree sk_unit_")
                .unwrap();
            writer.write_all(b"split_secret_99").unwrap();
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "one [redacted] two\nthree [redacted]"
        );
    }

    #[test]
    fn an_overlong_line_is_written_in_redacted_parts() {
        register("sk_unit_long_line_secret_5");
        let mut text = "x".repeat(MAX_PENDING + 10);
        text.push_str("sk_unit_long_line_secret_5");
        let mut out = Vec::new();
        let mut writer = Redacting::new(&mut out);
        for chunk in text.as_bytes().chunks(1000) {
            writer.write_all(chunk).unwrap();
        }
        assert!(
            writer.pending.len() < MAX_PENDING,
            "{}",
            writer.pending.len()
        );
        writer.flush().unwrap();
        drop(writer);
        let written = String::from_utf8(out).unwrap();
        assert!(
            written.ends_with("x[redacted]"),
            "{}",
            &written[written.len() - 40..]
        );
        assert_eq!(written.len(), MAX_PENDING + 10 + REDACTED.len());
    }
}
