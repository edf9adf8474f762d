//! The findings model `verify` and `probe` share: a check (id, status, message, hint), its
//! rendering as a text line or a JSON object, the status colours, and the exit code of the
//! monitoring-plugin convention. Commands return an [`Outcome`]; `main` prints it.

use std::io::IsTerminal;

use serde_json::json;

use crate::error::{Error, Exit};

/// A check's outcome; ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    /// The JSON spelling.
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }

    /// The exit code of the monitoring-plugin convention: 0 ok, 1 warning, 2 failure.
    pub fn exit(self) -> Exit {
        match self {
            Status::Ok => Exit::Success,
            Status::Warn => Exit::FailedOrWarning,
            Status::Fail => Exit::RefusedOrFailure,
        }
    }

    /// The status in capitals, in its colour (green, yellow, red) when `colour`.
    pub fn painted(self, colour: bool) -> String {
        let word = self.name().to_uppercase();
        let code = match self {
            Status::Ok => "32",
            Status::Warn => "33",
            Status::Fail => "31",
        };
        if colour {
            format!("\x1b[{code}m{word}\x1b[0m")
        } else {
            word
        }
    }
}

/// One check: its id (a contract, see README), status, what was found and, where it is said
/// apart from the message, what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub id: &'static str,
    pub status: Status,
    pub message: String,
    pub hint: Option<String>,
}

impl Check {
    /// A check without a separate hint.
    pub fn new(id: &'static str, status: Status, message: impl Into<String>) -> Check {
        Check {
            id,
            status,
            message: message.into(),
            hint: None,
        }
    }

    /// The JSON object: id, status, message, and hint when there is one.
    pub fn json(&self) -> serde_json::Value {
        let mut value =
            json!({"id": self.id, "status": self.status.name(), "message": self.message});
        if let Some(hint) = &self.hint {
            value["hint"] = json!(hint);
        }
        value
    }

    /// The text line (`{indent}fail id: message`) and, when there is one, an indented
    /// `hint:` line. The message and hint are escaped (see `escape`).
    pub fn text(&self, indent: &str, colour: bool) -> String {
        let mut out = format!(
            "{indent}{} {}: {}\n",
            self.status.painted(colour).to_lowercase(),
            self.id,
            crate::escape::field(&self.message)
        );
        if let Some(hint) = &self.hint {
            out.push_str(&format!(
                "{indent}    hint: {}\n",
                crate::escape::field(hint)
            ));
        }
        out
    }
}

/// The worst status among `checks` (ok when there are none).
pub fn worst(checks: &[Check]) -> Status {
    checks.iter().map(|c| c.status).max().unwrap_or(Status::Ok)
}

/// `--format`: text for people, JSON for machines (declared with clap in `cli`).
pub use crate::cli::Format;

/// Whether text output is coloured: only on a terminal, and never with `NO_COLOR` set.
pub fn colour_wanted() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A JSON document as printed: pretty, with C1 and bidi controls (which serde_json leaves raw)
/// as JSON escapes, and a final newline.
pub fn json_document(value: &serde_json::Value) -> String {
    let json = serde_json::to_string_pretty(value).unwrap_or_default();
    let mut text = crate::escape::text(&json).into_owned();
    text.push('\n');
    text
}

/// A line for stderr besides the report.
#[derive(Debug)]
pub enum Notice {
    /// Something that could not be checked: printed as `error:` (and `hint:`) lines.
    Error(Error),
    /// Something skipped: printed as a `warning:` line.
    Warning(String),
}

/// What `verify` or `probe` produced: the report for stdout (already escaped and coloured),
/// notices for stderr in order, and the exit code.
#[derive(Debug)]
pub struct Outcome {
    pub stdout: String,
    pub notices: Vec<Notice>,
    pub exit: Exit,
}

impl Outcome {
    /// A command's report for stdout, escaped (it names paths and values from outside), with
    /// exit 0.
    pub fn report(text: &str) -> Outcome {
        Outcome {
            stdout: crate::escape::text(text).into_owned(),
            notices: Vec::new(),
            exit: Exit::Success,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_render_with_their_hint_on_a_line_of_its_own() {
        let mut check = Check::new("tls", Status::Fail, "refused\x1b[2J");
        assert_eq!(check.text("  ", false), "  fail tls: refused\\u001b[2J\n");
        assert_eq!(check.json().as_object().map(|o| o.len()), Some(3));
        check.hint = Some("re-issue it".into());
        assert_eq!(
            check.text("  ", true),
            "  \x1b[31mfail\x1b[0m tls: refused\\u001b[2J\n      hint: re-issue it\n"
        );
        assert_eq!(check.json()["hint"], "re-issue it");
        assert_eq!(worst(&[check]).exit().code(), 2);
        assert_eq!(worst(&[]).exit().code(), 0);
        assert_eq!(Status::Warn.exit().code(), 1);
    }
}
