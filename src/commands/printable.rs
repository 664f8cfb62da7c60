//! Text that came from outside the program (a state file, a database error, the control
//! plane's words, another user's files when `list` runs as root) made safe for a terminal:
//! every control character is shown escaped, so an escape sequence cannot recolour,
//! retitle or rewrite the screen, and a newline cannot forge a line of output. `list` and
//! `status` pass every such text through [`printable`] before printing it.

use std::borrow::Cow;

/// Characters that move or hide text without being control characters: the bidirectional
/// overrides and isolates ("Trojan Source").
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with each control character (C0, DEL, C1, bidirectional controls) escaped:
/// `\n`, `\r`, `\t`, else `\u{1b}`. Everything else, backslashes included, is kept.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || is_bidi_control(c) => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Serialized JSON with the control characters serde_json leaves raw (DEL and the C1
/// range, which some terminals obey) written as `\u` escapes; still the same JSON.
pub fn json_for_terminal(json: String) -> String {
    // Outside strings JSON has only spaces and newlines; serde_json escapes C0 inside
    // them. Anything else that is a control character is inside a string.
    if !json
        .chars()
        .any(|c| c.is_control() && c != '\n' || is_bidi_control(c))
    {
        return json;
    }
    json.chars()
        .map(|c| {
            if (c.is_control() && c != '\n') || is_bidi_control(c) {
                format!("\\u{:04x}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(
            printable("plain text, ü ✓ \\path"),
            "plain text, ü ✓ \\path"
        );
        assert_eq!(
            printable("a\x1b]0;owned\x07b\nFAKE\r\t\u{9b}\u{7f}"),
            "a\\u{1b}]0;owned\\u{7}b\\nFAKE\\r\\t\\u{9b}\\u{7f}"
        );
        assert_eq!(printable("x\u{202e}y"), "x\\u{202e}y");
    }

    #[test]
    fn json_keeps_its_meaning_without_raw_controls() {
        let text = "a\u{9b}2J\u{7f}\u{1b}\u{202e}";
        let json = json_for_terminal(serde_json::to_string_pretty(&[text]).unwrap());
        assert!(!json.chars().any(|c| c.is_control() && c != '\n'), "{json}");
        let back: Vec<String> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, [text]);
    }
}
