//! Behaviour knobs (respan-api.md section 4.13): where the sources disagree, each knob
//! picks one reading, so promptsync can be tested against both. Also the defaults a
//! version create fills in for fields the request left out. Pure; knows nothing about
//! HTTP or storage.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// What a commit does to the draft (4.5).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitMode {
    /// The draft is frozen under its own number; no new draft appears (C).
    #[default]
    Freeze,
    /// The draft is frozen and a new draft N+1 with the same content appears (WO, MCP).
    Bump,
}

/// What deploying a draft does (4.6, 4.7).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployDraft {
    /// 400: only committed versions deploy.
    #[default]
    Reject,
    /// The draft is committed first, then deployed (MCP).
    AutoCommit,
}

/// What a content edit aimed at a read-only version does (4.4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EditReadonly {
    /// 400 `Version N is read-only.`
    #[default]
    Reject,
    /// A new draft copied from the target, with the edit applied (MCP).
    Fork,
}

/// Whether the live version can be deleted (4.10).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeleteLive {
    /// 400 `The live version cannot be deleted.` (W)
    #[default]
    Reject,
    /// Deleted; the prompt has nothing live afterwards (C).
    Allow,
}

/// What `deploy: true` on a version create does (4.8).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreateDeploy {
    /// 400 (C).
    #[default]
    Reject,
    /// The new version is frozen and made live; no draft remains (S0, S2).
    CommitAndDeploy,
}

/// What `count` in a page envelope counts (2.5).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CountMode {
    /// The items of the returned page (C).
    #[default]
    Page,
    /// Every matching item (W).
    Total,
}

/// Which defaults a version create fills in for omitted fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillDefaults {
    /// Section 4.13: temperature 0.7, max_tokens 4096, top_p 1.0, penalties 0, ...
    #[default]
    Standard,
    /// What another backend might do: temperature 1.0, max_tokens 1024, penalties
    /// spelled `0.0`, and string message content turned into a list of text parts.
    Alternate,
}

/// The behaviour knobs of respan-api.md 4.13, defaults first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Knobs {
    pub commit_mode: CommitMode,
    pub deploy_draft: DeployDraft,
    pub edit_readonly: EditReadonly,
    pub delete_live: DeleteLive,
    pub create_deploy: CreateDeploy,
    pub count_mode: CountMode,
    /// PATCH prompt `{"deploy": true}` deploys the newest read-only version (KW).
    pub legacy_prompt_deploy: bool,
    /// A version create without `model` is a 400 instead of getting `gpt-4o-mini`.
    pub require_model: bool,
    pub fill_defaults: FillDefaults,
}

/// The model a create without `model` gets (SDK `DEFAULT_MODEL`).
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";

impl Knobs {
    /// These knobs with the keys of `patch` set. Unknown keys and bad values are
    /// refused with a message naming the key and the accepted values.
    pub fn patched(&self, patch: &Map<String, Value>) -> Result<Knobs, String> {
        let Value::Object(mut merged) = serde_json::to_value(self).map_err(|e| e.to_string())?
        else {
            return Err("knobs do not serialise to an object".to_owned());
        };
        for (key, value) in patch {
            if !merged.contains_key(key) {
                let known: Vec<&str> = merged.keys().map(String::as_str).collect();
                return Err(format!(
                    "unknown knob `{key}`; known knobs: {}",
                    known.join(", ")
                ));
            }
            merged.insert(key.clone(), value.clone());
        }
        serde_json::from_value(Value::Object(merged))
            .map_err(|e| format!("invalid knob value: {e}"))
    }

    /// The value a create stores for `field` when the request left it out.
    pub fn default_for(&self, field: &str) -> Value {
        let alternate = self.fill_defaults == FillDefaults::Alternate;
        match field {
            "model" => json!(DEFAULT_MODEL),
            "stream" | "is_enforcing_response_format" => json!(false),
            "temperature" if alternate => json!(1.0),
            "temperature" => json!(0.7),
            "max_tokens" if alternate => json!(1024),
            "max_tokens" => json!(4096),
            "top_p" if alternate => json!(1),
            "top_p" => json!(1.0),
            "frequency_penalty" | "presence_penalty" if alternate => json!(0.0),
            "frequency_penalty" | "presence_penalty" => json!(0),
            "variables" => json!({}),
            _ => Value::Null,
        }
    }

    /// Messages as this backend stores them: unchanged by default; with
    /// [`FillDefaults::Alternate`], string content becomes `[{"type":"text","text":..}]`.
    pub fn store_messages(&self, messages: Value) -> Value {
        if self.fill_defaults != FillDefaults::Alternate {
            return messages;
        }
        let Value::Array(items) = messages else {
            return messages;
        };
        let converted = items
            .into_iter()
            .map(|mut message| {
                if let Some(content) = message.get_mut("content")
                    && let Value::String(text) = content
                {
                    *content = json!([{"type": "text", "text": std::mem::take(text)}]);
                }
                message
            })
            .collect();
        Value::Array(converted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_section_4_13_readings() {
        let knobs = Knobs::default();
        assert_eq!(knobs.commit_mode, CommitMode::Freeze);
        assert_eq!(knobs.deploy_draft, DeployDraft::Reject);
        assert_eq!(knobs.count_mode, CountMode::Page);
        assert!(!knobs.require_model && !knobs.legacy_prompt_deploy);
        assert_eq!(knobs.default_for("temperature"), json!(0.7));
        assert_eq!(knobs.default_for("max_tokens"), json!(4096));
        assert_eq!(knobs.default_for("seed"), Value::Null);
    }

    #[test]
    fn patch_sets_known_keys_and_refuses_others() {
        let patch = json!({"commit_mode": "bump", "require_model": true});
        let knobs = Knobs::default()
            .patched(patch.as_object().unwrap())
            .unwrap();
        assert_eq!(knobs.commit_mode, CommitMode::Bump);
        assert!(knobs.require_model);
        assert_eq!(knobs.deploy_draft, DeployDraft::Reject);

        let err = Knobs::default()
            .patched(json!({"comit_mode": "bump"}).as_object().unwrap())
            .unwrap_err();
        assert!(err.contains("unknown knob `comit_mode`"), "{err}");
        let err = Knobs::default()
            .patched(json!({"commit_mode": "sideways"}).as_object().unwrap())
            .unwrap_err();
        assert!(err.contains("sideways"), "{err}");
    }

    #[test]
    fn alternate_fill_converts_only_string_content() {
        let knobs = Knobs {
            fill_defaults: FillDefaults::Alternate,
            ..Knobs::default()
        };
        let stored = knobs.store_messages(json!([
            {"role": "system", "content": "hi"},
            {"role": "user", "content": [{"type": "text", "text": "x"}]},
            {"role": "assistant", "content": null},
        ]));
        assert_eq!(
            stored,
            json!([
                {"role": "system", "content": [{"type": "text", "text": "hi"}]},
                {"role": "user", "content": [{"type": "text", "text": "x"}]},
                {"role": "assistant", "content": null},
            ])
        );
        assert_eq!(knobs.default_for("temperature"), json!(1.0));
        let plain = Knobs::default().store_messages(json!([{"role": "user", "content": "hi"}]));
        assert_eq!(plain, json!([{"role": "user", "content": "hi"}]));
    }
}
