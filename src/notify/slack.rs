//! A pass's message for a Slack incoming webhook: a `text` fallback and `blocks` (a
//! header, the prompts in a section, the facts in a context), with `&`, `<` and `>`
//! escaped as Slack asks (so a prompt name cannot mention `@channel` or make a link),
//! within Slack's limits (a header of 150 characters, a section of 3,000). Pure.

use serde_json::{Value, json};

use super::event::Payload;

const HEADER_LIMIT: usize = 150;
const SECTION_LIMIT: usize = 3000;
/// Prompts listed by name before "and N more".
const LISTED: usize = 15;

/// The Slack message of `payload`.
pub(crate) fn message(payload: &Payload) -> Value {
    let headline = payload.headline();
    let d = &payload.data;
    let mut lines = Vec::new();
    for p in d.prompts.iter().take(LISTED) {
        let who = p
            .name
            .as_deref()
            .or(p.prompt_id.as_deref())
            .unwrap_or(&p.file);
        let versions = match (p.version_before, p.version_after) {
            (Some(a), Some(b)) if a != b => format!(" v{a} → v{b}"),
            (None, Some(b)) => format!(" v{b}"),
            _ => String::new(),
        };
        let live = match (p.live_before, p.live_after) {
            (a, Some(b)) if a != Some(b) => format!(", live v{b}"),
            _ => String::new(),
        };
        let action = serde_json::to_value(p.action)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let mut line = format!(
            "• *{}* `{}`: {action}{versions}{live}",
            escape(who),
            escape(&p.file)
        );
        if p.drift {
            line.push_str(" (drift)");
        }
        if let Some(error) = &p.error {
            line.push_str(&format!(": {}", escape(error)));
        }
        lines.push(line);
    }
    if d.prompts.len() > LISTED {
        lines.push(format!("… and {} more", d.prompts.len() - LISTED));
    }
    let mut facts = vec![format!("target `{}`", escape(&d.target))];
    if let Some(after) = &d.revision.after {
        facts.push(format!(
            "commit `{}`",
            escape(after.get(..10).unwrap_or(after))
        ));
    }
    if let Some(release) = &d.release {
        facts.push(format!("release `{}`", escape(&release.tag)));
    }
    if d.suppressed > 0 {
        facts.push(format!("{} earlier message(s) held back", d.suppressed));
    }
    let mut blocks = vec![json!({
        "type": "header",
        "text": { "type": "plain_text", "text": limit(&headline, HEADER_LIMIT) },
    })];
    if !lines.is_empty() {
        blocks.push(json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": limit(&lines.join("\n"), SECTION_LIMIT) },
        }));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{ "type": "mrkdwn", "text": limit(&facts.join(" · "), SECTION_LIMIT) }],
    }));
    json!({ "text": limit(&escape(&headline), SECTION_LIMIT), "blocks": blocks })
}

/// Text for Slack's markup: its three control characters as entities.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// At most `max` characters, `…` where cut.
fn limit(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::event::{Payload, pass_events};
    use crate::report::pass::{Mode, PassReport};

    #[test]
    fn slack_text_is_escaped_and_within_limits() {
        assert_eq!(
            escape("<!channel> & <x|y>"),
            "&lt;!channel&gt; &amp; &lt;x|y&gt;"
        );
        let report = PassReport::failed_early(
            Mode::Sync,
            &crate::Error::Internal(format!("<!channel> {}", "x".repeat(400))),
        );
        let message = message(&Payload::new(
            "default",
            &report,
            pass_events(&report),
            None,
        ));
        let header = message["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(header.chars().count() <= HEADER_LIMIT, "{header}");
        assert!(!message["text"].as_str().unwrap().contains("<!channel>"));
    }
}
