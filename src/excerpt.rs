//! Short excerpts of what a user or a file gave, for messages: a value quoted in an
//! error (a `--rev`, a key, a `content_file`, a path) is shown whole when it is short,
//! and otherwise as its start and end around an ellipsis, with its full length, so no
//! message grows with its input; or, where only a bounded start is wanted
//! (configuration problems), as its [`head`]. Counts are written with thousands
//! separators. Pure; escaping for the terminal is [`term`](crate::term)'s job, after
//! this.

use std::borrow::Cow;

/// The most characters of a value a message quotes (a path of a repository, however
/// deep, usually fits).
pub(crate) const MAX_CHARS: usize = 100;
/// Of a longer value: the characters kept from its start, and from its end.
const HEAD: usize = 60;
const TAIL: usize = 30;

/// `text` as it is when it has at most [`MAX_CHARS`] characters; otherwise its first
/// and last characters around `…`, followed by its length: `abc…xyz (100,000
/// characters)`.
pub(crate) fn excerpt(text: &str) -> Cow<'_, str> {
    match cut(text) {
        None => Cow::Borrowed(text),
        Some((head, tail, chars)) => {
            Cow::Owned(format!("{head}…{tail} ({} characters)", thousands(chars)))
        }
    }
}

/// `text` in backticks, cut like [`excerpt`] with the length outside them:
/// `` `abc` ``, or `` `abc…xyz` (100,000 characters) ``.
pub(crate) fn quoted(text: &str) -> String {
    match cut(text) {
        None => format!("`{text}`"),
        Some((head, tail, chars)) => {
            format!("`{head}…{tail}` ({} characters)", thousands(chars))
        }
    }
}

/// Of a long `text`: its head, its tail and its length in characters; `None` when it
/// is short enough to quote whole.
fn cut(text: &str) -> Option<(&str, &str, usize)> {
    // Short by bytes is short by characters; only a long text is counted.
    if text.len() <= MAX_CHARS {
        return None;
    }
    let head_end = text
        .char_indices()
        .nth(HEAD)
        .map_or(text.len(), |(at, _)| at);
    let chars = HEAD + text[head_end..].chars().count();
    if chars <= MAX_CHARS {
        return None;
    }
    let tail_start = text
        .char_indices()
        .rev()
        .nth(TAIL - 1)
        .map_or(head_end, |(at, _)| at);
    Some((&text[..head_end], &text[tail_start..], chars))
}

/// `text` cut to at most `max` characters, the cut marked with `…` (which counts as
/// one of them): `ééééé` at 3 is `éé…`.
pub(crate) fn head(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => Cow::Borrowed(text),
        Some(_) => {
            let keep = text
                .char_indices()
                .nth(max.saturating_sub(1))
                .map_or(text.len(), |(at, _)| at);
            Cow::Owned(format!("{}…", &text[..keep]))
        }
    }
}

/// `n` with a comma every three digits: `79,950`.
pub(crate) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_quoted_whole() {
        assert!(matches!(excerpt("HEAD~2"), Cow::Borrowed("HEAD~2")));
        assert_eq!(quoted("HEAD~2"), "`HEAD~2`");
        let exactly = "é".repeat(MAX_CHARS);
        assert_eq!(excerpt(&exactly), exactly);
    }

    #[test]
    fn long_text_keeps_its_ends_and_says_its_length() {
        let rev = format!("{}{}", "x".repeat(99_990), "0123456789");
        assert_eq!(
            excerpt(&rev),
            format!(
                "{}…{}0123456789 (100,000 characters)",
                "x".repeat(60),
                "x".repeat(20)
            )
        );
        assert_eq!(
            quoted(&rev),
            format!(
                "`{}…{}0123456789` (100,000 characters)",
                "x".repeat(60),
                "x".repeat(20)
            )
        );
        // Characters, not bytes; never a cut inside one.
        let wide = "ü".repeat(101);
        assert_eq!(
            excerpt(&wide),
            format!("{}…{} (101 characters)", "ü".repeat(60), "ü".repeat(30))
        );
    }

    #[test]
    fn a_head_is_cut_to_its_length_in_characters() {
        assert_eq!(head("short", 10), "short");
        assert_eq!(head("ééééé", 3), "éé…");
        assert_eq!(head(&"k".repeat(10_000), 80).chars().count(), 80);
    }

    #[test]
    fn counts_have_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(79_950), "79,950");
        assert_eq!(thousands(1_048_577), "1,048,577");
    }
}
