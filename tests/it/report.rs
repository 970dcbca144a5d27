//! The text report for people, end to end: text from outside (prompt content, names,
//! file paths, remote versions) never reaches the terminal raw, and differences a
//! terminal would not show are visible in `plan`'s diffs. The JSON report stays exact.

use serde_json::json;

use crate::support::scenario::{Scenario, json_of, prompt, texts};

/// Whether `text` holds a control character other than a line feed.
fn raw_control(text: &str) -> Option<char> {
    text.chars().find(|c| c.is_control() && *c != '\n')
}

#[test]
fn plan_output_carries_no_raw_control_characters() {
    let s = Scenario::new();
    // A prompt whose remote version holds escapes too.
    let id = s.emu.create_prompt("Remote");
    s.emu.create_version(
        &id,
        json!({"model": "gpt-4o", "description": "from the UI \u{1b}[2J",
            "messages": [{"role": "system", "content": "Old \u{1b}]0;pwned\u{7}\ntext\n"}]}),
    );
    s.repo
        .write(
            "evil.prompt.yaml",
            "name: Evil\nmodel: gpt-4o\nmessages:\n  - role: system\n    content: \"Title \\e]0;owned\\a\\nclear \\e[2J\\n\"\n",
        )
        // A name cannot hold a control character: the file is invalid, and its
        // finding is shown escaped too.
        .write("badname.prompt.yaml", "name: \"Evil \\e[31mname\"\nmodel: gpt-4o\nmessages:\n  - role: system\n    content: hi\n")
        .write("clear\u{1b}[2J.prompt.yaml", &prompt("Path", "Hello."))
        .write("remote.prompt.yaml", &prompt("Remote", "New text."));
    s.repo.commit("Escapes everywhere");

    let (out, _) = texts(&s.run(&["plan"], 1));
    assert_eq!(raw_control(&out), None, "{out:?}");
    assert!(
        out.contains("`name` contains the control character `\\u{1b}`"),
        "{out}"
    );
    assert!(out.contains("Title \\u{1b}]0;owned\\u{7}"), "{out}");
    assert!(out.contains("clear \\u{1b}[2J"), "{out}");
    assert!(
        out.contains("Old \\u{1b}]0;pwned\\u{7}"),
        "the remote side: {out}"
    );
    assert!(
        out.contains("clear\\u{1b}[2J.prompt.yaml"),
        "the path: {out}"
    );
    let report = json_of(&s.run(&["plan", "--output", "json"], 1));
    let path = report["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Path")
        .unwrap();
    assert_eq!(
        path["file"], "clear\u{1b}[2J.prompt.yaml",
        "JSON stays exact"
    );

    let (out, _) = texts(&s.run(&["sync"], 1));
    assert_eq!(raw_control(&out), None, "{out:?}");
}

#[test]
fn plan_shows_a_newline_added_at_the_end_of_a_message() {
    let s = Scenario::new();
    let file = |content: &str| {
        format!(
            "name: Greeter\nmodel: gpt-4o\nmessages:\n  - role: system\n    content: {content:?}\n"
        )
    };
    s.repo.write("greeter.prompt.yaml", &file("Hello.\nBye."));
    s.repo.commit("Greeter");
    s.sync();
    s.repo.write("greeter.prompt.yaml", &file("Hello.\nBye.\n"));
    s.repo.commit("A newline at the end");
    let (out, _) = texts(&s.run(&["plan", "--detailed-exitcode"], 2));
    assert!(out.contains("update greeter.prompt.yaml"), "{out}");
    assert!(
        out.contains("       Bye.\n-      \\ No newline at end of text\n"),
        "{out}"
    );
}
