//! The one classification of failures, by what happens next. Each error type decides
//! its own class, the lowest one that can: [`crate::api::ApiError::class`] for
//! everything the API answered (or did not), [`crate::Error::class`] for the rest,
//! delegating to the API's. The pass's outcome, the CLI's report and the daemon's retry
//! rule (for a pass and for one prompt) all read it from there and decide nothing of
//! their own. And how any error is said in one line with its causes ([`chain`]).
//! Knows no error type.

/// What to do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// No retry can mend it: a refused key, bad configuration, a request the server
    /// refuses (400, 404, 422), a reply that is not what the contract says (undecodable,
    /// oversized, a listing that does not page). Nothing is retried until something
    /// changes: a commit, the configuration or key, a person's request.
    Stalled,
    /// It may pass on its own (the API or the repository was not reachable, the server
    /// was busy or asked to wait): retried with backoff.
    Transient,
    /// A bug or a broken runtime.
    Fatal,
}

impl FailureClass {
    /// Whether retrying later may help.
    pub fn is_transient(self) -> bool {
        self == FailureClass::Transient
    }

    /// The name used in reports, metrics and `/status`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Stalled => "stalled",
            FailureClass::Transient => "transient",
            FailureClass::Fatal => "fatal",
        }
    }
}

/// An error and its causes as one line of text, `a: b: c`, leaving out a cause whose
/// text the message already holds (many of our messages name their cause).
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    with_causes(error.to_string(), error.source())
}

/// `text` followed by `cause` and its own causes, `text: b: c`, leaving out a cause
/// whose text is already said.
pub(crate) fn with_causes(mut text: String, cause: Option<&dyn std::error::Error>) -> String {
    let mut source = cause;
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
