//! Logging setup with tracing-subscriber: `pretty` (compact, for people) or `json` (one
//! object per line, with span fields) on stderr; the level from settings (`log.level`,
//! `-v`/`-q`), with `RUST_LOG` winning when set. Every line is redacted of the secrets
//! promptsync holds on its way out ([`Redacted`]). Results never go through here:
//! stdout belongs to [`report`](crate::report). Owns its settings ([`LogSettings`],
//! [`LogFormat`]), which configuration fills and the command line names; knows nothing
//! about either, nor about what is logged.

use std::io::IsTerminal;

use thiserror::Error;
use tracing::Subscriber;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::secret::Redacting;

/// The environment variable that overrides the configured filter.
pub const RUST_LOG: &str = "RUST_LOG";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    /// No layer chose the format: it is the built-in default (the daemon then logs
    /// JSON when stderr is not a terminal).
    pub format_is_default: bool,
    /// An EnvFilter directive (`info`, `promptsync=debug`); RUST_LOG wins when set.
    pub filter: String,
}

impl LogSettings {
    /// Log settings from `--log-format` and `-v`/`-q` alone, for commands that read no
    /// configuration (`emulator`).
    pub fn from_flags(format: Option<LogFormat>, verbose: u8, quiet: u8) -> LogSettings {
        LogSettings {
            format: format.unwrap_or_default(),
            format_is_default: format.is_none(),
            filter: verbosity_level(verbose, quiet).unwrap_or("info").to_owned(),
        }
    }
}

/// The level that `-v`/`-q` ask for, or `None` when neither was given.
pub fn verbosity_level(verbose: u8, quiet: u8) -> Option<&'static str> {
    match (verbose, quiet) {
        (0, 0) => None,
        (1, _) => Some("debug"),
        (2.., _) => Some("trace"),
        (_, 1) => Some("warn"),
        (_, 2..) => Some("error"),
    }
}

#[derive(Debug, Error)]
pub enum LoggingError {
    #[error(
        "RUST_LOG={value:?} is not a valid log filter: {message}; use a level such as \
         `debug` or directives such as `info,promptsync=trace`, or unset RUST_LOG"
    )]
    InvalidRustLog { value: String, message: String },

    #[error("RUST_LOG is not valid UTF-8; set it to a filter such as `debug`, or unset it")]
    RustLogNotUnicode,

    #[error(
        "log level {value:?} is not a valid log filter: {message}; use a level such as \
         `info` or directives such as `info,promptsync=debug`"
    )]
    InvalidLevel { value: String, message: String },

    #[error("logging is already set up in this process ({0}); set it up once, at start")]
    AlreadyInitialized(String),
}

/// Check that `filter` parses as a log filter (for configuration validation).
pub fn check_filter(filter: &str) -> Result<(), String> {
    parse_filter(filter).map(|_| ())
}

/// Install the global subscriber, writing to stderr. Reads `RUST_LOG`. Returns an
/// error, not a panic, when called a second time.
pub fn init(settings: &LogSettings) -> Result<(), LoggingError> {
    let rust_log = match std::env::var(RUST_LOG) {
        Ok(value) => Some(value),
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => return Err(LoggingError::RustLogNotUnicode),
    };
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    subscriber(settings, rust_log.as_deref(), std::io::stderr, ansi)?
        .try_init()
        .map_err(|err| LoggingError::AlreadyInitialized(err.to_string()))
}

/// The subscriber [`init`] installs, writing to `writer`; `rust_log` is the value of
/// `RUST_LOG` (it wins over the settings unless empty). Tests use it with
/// `tracing::subscriber::with_default` to capture what would be logged.
pub fn subscriber<W>(
    settings: &LogSettings,
    rust_log: Option<&str>,
    writer: W,
    ansi: bool,
) -> Result<impl Subscriber + Send + Sync + 'static, LoggingError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = match rust_log.map(str::trim).filter(|value| !value.is_empty()) {
        Some(value) => parse_filter(value).map_err(|message| LoggingError::InvalidRustLog {
            value: value.to_owned(),
            message,
        })?,
        None => parse_filter(&settings.filter).map_err(|message| LoggingError::InvalidLevel {
            value: settings.filter.clone(),
            message,
        })?,
    };
    // notify reports at INFO what is routine for us (a watch descriptor that the
    // kernel dropped when git-sync removed an old worktree, with a path of notify's own
    // sources): its warnings and errors are kept, unless a filter names it.
    let named = rust_log
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .unwrap_or(&settings.filter)
        .contains("notify");
    let filter = if named {
        filter
    } else {
        filter.add_directive("notify=warn".parse().map_err(
            |err: tracing_subscriber::filter::ParseError| LoggingError::InvalidLevel {
                value: "notify=warn".to_owned(),
                message: err.to_string(),
            },
        )?)
    };
    let writer = Redacted(writer);
    let layer = match settings.format {
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .compact()
            .with_ansi(ansi)
            .with_writer(writer)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(writer)
            .boxed(),
    };
    Ok(Registry::default().with(layer.with_filter(filter)))
}

/// A `MakeWriter` whose writers redact every secret promptsync holds
/// (`secret::Redacting`): each event is one line, written when the writer is dropped
/// at the latest.
#[derive(Debug)]
pub struct Redacted<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Redacted<M> {
    type Writer = Redacting<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        Redacting::new(self.0.make_writer())
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        Redacting::new(self.0.make_writer_for(meta))
    }
}

/// Parse a filter. Stricter than `EnvFilter` alone: a bare word must be a level, so
/// that a misspelt level (`debgu`) is an error instead of a target that matches nothing.
fn parse_filter(filter: &str) -> Result<EnvFilter, String> {
    if filter.trim().is_empty() {
        return Err("it is empty".to_owned());
    }
    let directives = filter.split(',').map(str::trim).filter(|d| !d.is_empty());
    for directive in directives {
        let plain = !directive.contains('=') && !directive.contains('[');
        if plain && directive.parse::<LevelFilter>().is_err() {
            return Err(format!(
                "{directive:?} is not a level (trace, debug, info, warn, error, off); \
                 write target=level to filter a module"
            ));
        }
    }
    EnvFilter::builder()
        .parse(filter)
        .map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    fn settings(format: LogFormat, filter: &str) -> LogSettings {
        LogSettings {
            format,
            format_is_default: false,
            filter: filter.to_owned(),
        }
    }

    /// What `log` writes through the subscriber built from `settings`.
    fn capture(settings: &LogSettings, rust_log: Option<&str>, log: impl FnOnce()) -> String {
        let file = tempfile::NamedTempFile::new().unwrap();
        let writer = file.reopen().unwrap();
        let subscriber = subscriber(settings, rust_log, writer, false).unwrap();
        tracing::subscriber::with_default(subscriber, log);
        std::fs::read_to_string(file.path()).unwrap()
    }

    #[test]
    fn json_is_one_object_per_line_with_span_fields() {
        let text = capture(&settings(LogFormat::Json, "info"), None, || {
            let span = tracing::info_span!("pass", trigger = "timer");
            let _entered = span.enter();
            tracing::info!(prompts = 3, "pass finished");
            tracing::debug!("not shown at info");
        });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        let event: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(event["level"], "INFO");
        assert_eq!(event["message"], "pass finished");
        assert_eq!(event["prompts"], 3);
        assert_eq!(event["span"]["trigger"], "timer");
        assert_eq!(event["spans"][0]["name"], "pass");
    }

    #[test]
    fn pretty_is_compact_text_without_colour_when_asked() {
        let text = capture(&settings(LogFormat::Pretty, "debug"), None, || {
            tracing::debug!(file = "a.prompt.yaml", "parsed");
        });
        assert!(text.contains("DEBUG"), "{text}");
        assert!(text.contains("parsed"), "{text}");
        assert!(text.contains("file=\"a.prompt.yaml\""), "{text}");
        assert!(!text.contains('\u{1b}'), "{text:?}");
    }

    #[test]
    fn notify_s_routine_info_lines_are_left_out_unless_a_filter_names_it() {
        let log = || {
            tracing::info!(target: "notify::inotify", "unable to remove watch descriptor");
            tracing::warn!(target: "notify::inotify", "a notify warning");
            tracing::info!("ours");
        };
        let text = capture(&settings(LogFormat::Json, "info"), None, log);
        assert!(!text.contains("unable to remove"), "{text}");
        assert!(
            text.contains("a notify warning") && text.contains("ours"),
            "{text}"
        );
        let named = capture(
            &settings(LogFormat::Json, "info"),
            Some("info,notify=info"),
            log,
        );
        assert!(named.contains("unable to remove"), "{named}");
    }

    #[test]
    fn secrets_are_redacted_from_every_line() {
        let key = crate::secret::ApiKey::new("sk_unit_logged_secret_31");
        for format in [LogFormat::Pretty, LogFormat::Json] {
            let text = capture(&settings(format, "info"), None, || {
                tracing::info!(body = key.expose(), "the server said {}", key.expose());
            });
            assert!(!text.contains(key.expose()), "{text}");
            assert_eq!(text.matches("[redacted]").count(), 2, "{text}");
        }
    }

    #[test]
    fn rust_log_wins_over_the_settings_unless_empty() {
        let quiet = settings(LogFormat::Pretty, "error");
        let text = capture(&quiet, Some("trace"), || tracing::trace!("deep"));
        assert!(text.contains("deep"), "{text}");
        let text = capture(&quiet, Some("  "), || tracing::warn!("hidden"));
        assert!(text.is_empty(), "{text}");
    }

    #[test]
    fn invalid_filters_are_clear_errors() {
        let err = subscriber(
            &settings(LogFormat::Pretty, "info"),
            Some("promptsync=loud"),
            io::sink,
            false,
        )
        .err()
        .unwrap();
        assert!(
            err.to_string()
                .starts_with("RUST_LOG=\"promptsync=loud\" is not a valid log filter"),
            "{err}"
        );
        let err = subscriber(&settings(LogFormat::Json, "verbose"), None, io::sink, false)
            .err()
            .unwrap();
        assert!(matches!(err, LoggingError::InvalidLevel { .. }), "{err}");
        assert!(check_filter("").is_err());
        assert!(check_filter("info,promptsync=trace").is_ok());
    }

    #[test]
    fn init_twice_is_an_error_not_a_panic() {
        // The only test that installs the global subscriber; "off" keeps it silent.
        let off = settings(LogFormat::Pretty, "off");
        let first = init(&off);
        if std::env::var_os(RUST_LOG).is_none() {
            assert!(first.is_ok(), "{first:?}");
        }
        if first.is_ok() {
            let second = init(&off);
            assert!(
                matches!(second, Err(LoggingError::AlreadyInitialized(_))),
                "{second:?}"
            );
        }
    }
}
