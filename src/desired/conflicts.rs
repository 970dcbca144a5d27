//! Conflicts: two or more files naming one remote prompt (one `prompt_id`, or one
//! `name`) each get an error naming the others, and none of them syncs. Also the
//! conflict keys as the load cache keeps them. No I/O.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{DesiredPrompt, PromptKey};
use crate::diagnostic::Severity;
use crate::excerpt;
use crate::prompt::ParsedFile;
use crate::prompt::check::Finding;

/// The keys the conflict check compares: `prompt_id` (0) and `name` (1), as written.
pub(super) const CONFLICT_KEYS: [&str; 2] = ["prompt_id", "name"];

pub(super) fn conflict_keys(value: &Value) -> impl Iterator<Item = (usize, &str)> {
    CONFLICT_KEYS.iter().enumerate().filter_map(|(i, key)| {
        let v = value.get(*key)?.as_str()?;
        (!v.trim().is_empty()).then_some((i, v))
    })
}

/// The conflict keys of a valid file, read from its prompt: the file's `prompt_id`
/// and `name` are its prompt's, as written (the load cache keeps the prompt, not
/// the file's value). The same keys as [`conflict_keys`] reads from the file.
pub(super) fn prompt_keys(prompt: &DesiredPrompt) -> impl Iterator<Item = (usize, &str)> {
    let id = match &prompt.key {
        PromptKey::Id(id) => Some(id.as_str()),
        PromptKey::Name(_) => None,
    };
    [id, prompt.name.as_deref()]
        .into_iter()
        .enumerate()
        .filter_map(|(i, key)| Some((i, key?)))
        .filter(|(_, key)| !key.trim().is_empty())
}

/// Two or more files with one `prompt_id`, or one `name`, are a conflict: each of
/// them gets an error naming the others, and none of them syncs.
pub(super) fn check_conflicts(files: &mut [&mut ParsedFile]) {
    for key in ["prompt_id", "name"] {
        let mut by_value: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, file) in files.iter().enumerate() {
            if let Some(value) = file.value.get(key).and_then(Value::as_str)
                && !value.trim().is_empty()
            {
                by_value.entry(value.to_owned()).or_default().push(i);
            }
        }
        for (value, owners) in by_value.into_iter().filter(|(_, owners)| owners.len() > 1) {
            let paths: Vec<String> = owners.iter().map(|&i| files[i].path.clone()).collect();
            // A few of the others by name, and how many more.
            const NAMED: usize = 5;
            for &i in &owners {
                let mut others: Vec<String> = paths
                    .iter()
                    .filter(|path| **path != files[i].path)
                    .take(NAMED)
                    .map(|path| excerpt::quoted(path))
                    .collect();
                if owners.len() - 1 > NAMED {
                    others.push(format!(
                        "and {} more files",
                        excerpt::thousands(owners.len() - 1 - NAMED)
                    ));
                }
                let what = if key == "prompt_id" {
                    "prompt id"
                } else {
                    "name"
                };
                let finding = Finding {
                    pointer: format!("/{key}"),
                    at_key: false,
                    message: format!(
                        "{what} {} is also used by {}",
                        excerpt::quoted(&value),
                        others.join(", ")
                    ),
                    help: Some(format!(
                        "one prompt, one file: give each file its own `{key}` (neither file syncs until then)"
                    )),
                };
                files[i].add(Severity::Error, [finding]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt;

    fn file(path: &str, keys: &str) -> ParsedFile {
        let text = format!("{keys}model: gpt-4o\nmessages:\n  - role: user\n    content: Hi\n");
        let file = prompt::parse_file(path, text.as_bytes());
        assert!(!file.has_errors(), "{:?}", file.diagnostics);
        file
    }

    #[test]
    fn files_sharing_a_name_or_an_id_name_each_other_and_none_syncs() {
        let mut a = file("a.prompt.yaml", "name: Shared\n");
        let mut b = file("b.prompt.yaml", "name: Shared\n");
        let mut c = file("c.prompt.yaml", "prompt_id: p-1\nname: Own\n");
        let mut d = file("d.prompt.yaml", "prompt_id: p-1\n");
        check_conflicts(&mut [&mut a, &mut b, &mut c, &mut d]);

        let errors = |file: &ParsedFile| -> Vec<String> {
            file.diagnostics
                .iter()
                .filter(|d| d.is_error())
                .map(|d| d.message.clone())
                .collect()
        };
        assert_eq!(
            errors(&a),
            ["name `Shared` is also used by `b.prompt.yaml`"]
        );
        assert_eq!(
            errors(&b),
            ["name `Shared` is also used by `a.prompt.yaml`"]
        );
        assert_eq!(
            errors(&c),
            ["prompt id `p-1` is also used by `d.prompt.yaml`"]
        );
        assert!(a.prompt.is_none() && b.prompt.is_none() && d.prompt.is_none());
    }

    #[test]
    fn many_owners_are_named_a_few_and_counted() {
        let mut files: Vec<ParsedFile> = (0..8)
            .map(|i| file(&format!("{i}.prompt.yaml"), "name: Same\n"))
            .collect();
        check_conflicts(&mut files.iter_mut().collect::<Vec<_>>());
        let message = &files[0].diagnostics[0].message;
        assert!(
            message.ends_with("`5.prompt.yaml`, and 2 more files"),
            "{message}"
        );
    }

    #[test]
    fn blank_keys_are_not_written_and_conflict_with_nothing() {
        let value = serde_json::json!({"prompt_id": "  ", "name": "A"});
        assert_eq!(conflict_keys(&value).collect::<Vec<_>>(), [(1, "A")]);

        let mut a = file("a.prompt.yaml", "name: A\n");
        let mut b = file("b.prompt.yaml", "name: B\n");
        a.value["prompt_id"] = Value::from(" ");
        b.value["prompt_id"] = Value::from(" ");
        check_conflicts(&mut [&mut a, &mut b]);
        assert!(!a.has_errors() && !b.has_errors());
    }

    #[test]
    fn a_valid_files_prompt_has_the_conflict_keys_of_the_file() {
        for keys in [
            "name: A\n",
            "prompt_id: p-1\n",
            "prompt_id: p-1\nname: A\n",
            "name: \" spaced \"\n",
        ] {
            let parsed = file("a.prompt.yaml", keys);
            let prompt = parsed.prompt.as_deref().expect("a valid file");
            let desired = crate::desired::spec::desired_prompt(
                &parsed.path,
                prompt,
                &std::collections::BTreeMap::new(),
            );
            assert_eq!(
                prompt_keys(&desired).collect::<Vec<_>>(),
                conflict_keys(&parsed.value).collect::<Vec<_>>(),
                "{keys}"
            );
        }
    }
}
