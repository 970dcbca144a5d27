//! `{{variable}}` placeholders in message text, compared with the declared
//! `variables`: a placeholder nobody declared, or a declared variable no message uses,
//! is a warning. Understands the plain `{{name}}` form and enough of Jinja
//! (`{{ name.field | filter }}`, `{% for x in items %}`, `{% if flag %}`,
//! `{% set x = ... %}`) not to warn about loop and local names. Pure, no I/O.

use std::collections::{BTreeSet, HashSet};

/// The variables a template reads, in order of first use, without its local names.
/// Linear in the text: each name is looked up in a set, never in the list so far.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut used = Used::default();
    let mut locals: BTreeSet<String> = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find(['{']) {
        let tail = &rest[start..];
        let (close, is_block) = if tail.starts_with("{{") {
            ("}}", false)
        } else if tail.starts_with("{%") {
            ("%}", true)
        } else {
            rest = &tail[1..];
            continue;
        };
        let Some(end) = tail[2..].find(close) else {
            break;
        };
        let inner =
            tail[2..2 + end].trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
        if is_block {
            block(inner, &mut used, &mut locals);
        } else if let Some(name) = leading_identifier(inner) {
            push_use(&mut used, &locals, name);
        }
        rest = &tail[2 + end + close.len()..];
    }
    used.order
}

/// The names used so far: in order, and as a set.
#[derive(Default)]
struct Used {
    order: Vec<String>,
    seen: HashSet<String>,
}

fn block(inner: &str, used: &mut Used, locals: &mut BTreeSet<String>) {
    let mut words = inner.split_whitespace();
    match words.next() {
        Some("for") => {
            let head: Vec<&str> = words.collect();
            let Some(in_at) = head.iter().position(|w| *w == "in") else {
                return;
            };
            for local in head[..in_at].join(" ").split(',') {
                if let Some(name) = leading_identifier(local.trim()) {
                    locals.insert(name.to_owned());
                }
            }
            if let Some(name) = head.get(in_at + 1).and_then(|w| leading_identifier(w)) {
                push_use(used, locals, name);
            }
        }
        Some("if" | "elif") => {
            let mut condition = words.filter(|w| *w != "not");
            if let Some(name) = condition.next().and_then(leading_identifier) {
                push_use(used, locals, name);
            }
        }
        Some("set") => {
            if let Some(name) = words.next().and_then(leading_identifier) {
                locals.insert(name.to_owned());
            }
        }
        _ => {}
    }
}

fn push_use(used: &mut Used, locals: &BTreeSet<String>, name: &str) {
    const KEYWORDS: [&str; 6] = ["true", "false", "none", "True", "False", "None"];
    if locals.contains(name) || KEYWORDS.contains(&name) || used.seen.contains(name) {
        return;
    }
    used.seen.insert(name.to_owned());
    used.order.push(name.to_owned());
}

/// The identifier at the start of `text` (`a_b` of `a_b.c | upper`).
fn leading_identifier(text: &str) -> Option<&str> {
    let end = text
        .char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map_or(text.len(), |(i, _)| i);
    let name = &text[..end];
    let first = name.chars().next()?;
    (first.is_alphabetic() || first == '_').then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_placeholders() {
        assert_eq!(
            placeholders("Hi {{name}}, about {{ topic }} and {{name}} again"),
            ["name", "topic"]
        );
        assert_eq!(
            placeholders("no placeholders { here }"),
            Vec::<String>::new()
        );
        assert_eq!(placeholders("{{ unclosed"), Vec::<String>::new());
        assert_eq!(placeholders("{{ 42 }} {{ \"lit\" }}"), Vec::<String>::new());
    }

    #[test]
    fn jinja_forms() {
        assert_eq!(
            placeholders("{{- input.key | upper -}} {% if not flag %}x{% endif %}"),
            ["input", "flag"]
        );
        assert_eq!(
            placeholders("{% for k, v in pairs %}{{ k }}={{ v }} {{ sep }}{% endfor %}"),
            ["pairs", "sep"]
        );
        assert_eq!(
            placeholders("{% set x = 1 %}{{ x }}{{ true }}"),
            Vec::<String>::new()
        );
    }

    /// Each name is looked up in a set: 200,000 distinct names take a moment, where a
    /// scan of the names so far for each (20 billion comparisons) takes minutes.
    #[test]
    fn many_distinct_names_take_linear_time() {
        let text: String = (0..200_000).map(|i| format!("{{{{v{i}}}}}")).collect();
        let started = std::time::Instant::now();
        let names = placeholders(&text);
        assert_eq!(names.len(), 200_000);
        assert_eq!(names[199_999], "v199999");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn unicode_is_fine() {
        assert_eq!(placeholders("héllo {{ café }} ✓"), ["café"]);
    }
}
