//! JSON pointers (RFC 6901) as findings use them: built while the YAML is read and
//! while a value is checked ([`push_escaped`]), and shown to a person as the path a
//! program would write ([`display_path`]). Pure.

/// Append `token` to a JSON pointer, escaped per RFC 6901.
pub(crate) fn push_escaped(pointer: &mut String, token: &str) {
    for c in token.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

/// `messages[0].role` for `/messages/0/role`; `the file` for the root.
pub(crate) fn display_path(pointer: &str) -> String {
    if pointer.is_empty() {
        return "the file".to_owned();
    }
    let mut out = String::new();
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{token}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&token);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_read_like_code() {
        assert_eq!(display_path(""), "the file");
        assert_eq!(display_path("/messages/0/role"), "messages[0].role");
        assert_eq!(display_path("/variables/a~1b"), "variables.a/b");
    }

    #[test]
    fn tokens_are_escaped_and_read_back() {
        let mut pointer = String::from("/variables/");
        push_escaped(&mut pointer, "a/b~c");
        assert_eq!(pointer, "/variables/a~1b~0c");
        assert_eq!(display_path(&pointer), "variables.a/b~c");
    }
}
