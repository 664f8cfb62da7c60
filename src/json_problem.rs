//! How a JSON text fails to parse, told without quoting it. serde_json's own messages
//! quote the value they stumble on ("invalid type: integer `80512349871`"), and the JSON
//! this agent reads holds passwords and verifiers: the journal, the identity files, the
//! control plane's answers, the providers' snapshots. Every error about such a text goes
//! through [`JsonProblem`], so no log line or error chain carries what the text holds.
//! A leaf: imports nothing from this crate.

use std::fmt;

/// Where and how a JSON text fails to parse, and nothing of the text itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonProblem {
    pub kind: &'static str,
    pub line: usize,
    pub column: usize,
}

impl JsonProblem {
    pub fn of(e: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        let kind = match e.classify() {
            Category::Io => "a read error",
            Category::Syntax => "a syntax error",
            Category::Data => "a value of the wrong type or a missing field",
            Category::Eof => "an unexpected end of the text",
        };
        JsonProblem {
            kind,
            line: e.line(),
            column: e.column(),
        }
    }
}

impl fmt::Display for JsonProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {}, column {}",
            self.kind, self.line, self.column
        )
    }
}

impl std::error::Error for JsonProblem {}

#[cfg(test)]
mod tests {
    use super::*;

    /// serde's message quotes the stray value; ours names only its kind and place.
    #[test]
    fn the_message_names_the_place_not_the_value() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Answer {
            value: String,
        }
        for (text, hidden, kind) in [
            (r#"{"value": 80512349871}"#, "80512349871", "wrong type"),
            (r#"{"value": ["hunter2"]}"#, "hunter2", "wrong type"),
            (r#"{"value": "hunter2" x"#, "hunter2", "syntax error"),
            (r#"{"value": "hunter2"#, "hunter2", "end of the text"),
        ] {
            let e = serde_json::from_str::<Answer>(text).unwrap_err();
            let message = JsonProblem::of(&e).to_string();
            assert!(!message.contains(hidden), "{message}");
            assert!(message.contains(kind), "{message}");
            assert!(message.contains("at line 1, column"), "{message}");
        }
    }
}
