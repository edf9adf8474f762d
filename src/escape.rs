//! Control characters from the network, from files and from file names must never reach a
//! terminal as themselves: an ESC sequence in a certificate subject, a SAN, a daemon's answer or
//! a folder name could clear the screen and print a forged "ALL OK". Everything the tool prints
//! goes through this module, text and JSON alike.
//!
//! Escaped, visibly: C0 controls (U+0000–U+001F), DEL, C1 controls (U+0080–U+009F), and the
//! Unicode format controls that reorder or hide text (bidi embeddings, overrides and isolates,
//! zero-width characters, the BOM, tag characters). Each is written as a JSON escape, `\u001b`,
//! `\u202e` (a UTF-16 pair above U+FFFF): visible on a terminal, and inside a JSON document the
//! same value again. serde_json escapes only C0, so JSON output needs this as well: a raw U+009B
//! (8-bit CSI) or U+202E would otherwise pass through it.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write as _;

/// Whether `c` must not reach a terminal as itself.
fn is_dangerous(c: char) -> bool {
    c.is_control() // C0, DEL and C1
        || matches!(c,
            '\u{061c}'                  // Arabic letter mark
            | '\u{200b}'..='\u{200f}'   // zero-width space/joiners, LRM, RLM
            | '\u{2028}' | '\u{2029}'   // line and paragraph separators
            | '\u{202a}'..='\u{202e}'   // bidi embeddings and overrides
            | '\u{2060}'..='\u{206f}'   // word joiner, invisible operators, bidi isolates
            | '\u{feff}'                // BOM / zero-width no-break space
            | '\u{fff9}'..='\u{fffb}'   // interlinear annotation controls
            | '\u{e0000}'..='\u{e007f}') // tag characters (invisible ASCII)
}

fn escape_with(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(|c| is_dangerous(c) && !keep(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !is_dangerous(c) || keep(c) {
            out.push(c);
        } else {
            for unit in c.encode_utf16(&mut [0; 2]) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
    Cow::Owned(out)
}

/// One value inside a line (a name, a path, a subject, a server's answer): every control
/// character is escaped, line breaks and tabs included, so a value cannot start a forged line.
pub fn field(text: &str) -> Cow<'_, str> {
    escape_with(text, |_| false)
}

/// Text made of whole lines (a message, a rendered report, a diff) or a JSON document: line
/// breaks and tabs stay (they move the cursor forward only; serde_json has already escaped any
/// inside a JSON string), every other control character is escaped.
pub fn text(text: &str) -> Cow<'_, str> {
    escape_with(text, |c| c == '\n' || c == '\t')
}

/// A path as one escaped field (paths may hold any byte but `/` and NUL).
pub fn path(path: &std::path::Path) -> String {
    field(&path.to_string_lossy()).into_owned()
}

/// Writes text or a JSON document to stdout, escaped as [`text`].
pub fn print_stdout(rendered: &str) {
    let _ = std::io::stdout().write_all(text(rendered).as_bytes());
}

/// Writes one message line to stderr, escaped as [`text`] (a message may carry a `hint:` line).
pub fn print_stderr_line(message: &str) {
    let mut line = text(message).into_owned();
    line.push('\n');
    let _ = std::io::stderr().write_all(line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_visibly_and_plain_text_is_untouched() {
        assert!(matches!(field("tcp://daemon:2376 ok"), Cow::Borrowed(_)));
        assert_eq!(field("é, 日本, ünïcode 🦀"), "é, 日本, ünïcode 🦀");
        assert_eq!(field("\x1b[2JALL OK"), "\\u001b[2JALL OK");
        assert_eq!(field("a\nb\tc\r\0"), "a\\u000ab\\u0009c\\u000d\\u0000");
        assert_eq!(field("\x7f\u{9b}\u{85}"), "\\u007f\\u009b\\u0085");
        assert_eq!(
            field("\u{202e}evil\u{2066}\u{2069}\u{200b}\u{feff}\u{e0041}"),
            "\\u202eevil\\u2066\\u2069\\u200b\\ufeff\\udb40\\udc41"
        );
        assert_eq!(
            text("line 1\x1b]0;title\x07\n\tline 2\r"),
            "line 1\\u001b]0;title\\u0007\n\tline 2\\u000d"
        );
    }

    #[test]
    fn nothing_dangerous_survives_any_input() {
        for c in (0u32..=0x10_ffff).filter_map(char::from_u32) {
            let escaped = field(&c.to_string()).into_owned();
            assert!(
                escaped.chars().all(|e| !is_dangerous(e)),
                "U+{:04X} gave {escaped:?}",
                c as u32
            );
            let kept = text(&c.to_string()).into_owned();
            assert!(
                kept.chars()
                    .all(|e| e == '\n' || e == '\t' || !is_dangerous(e))
            );
        }
    }

    #[test]
    fn escaped_json_is_the_same_json() {
        let value = serde_json::json!({
            "subject": "CN=\x1b[2J\u{9b}31mALL OK\u{202e}\u{e0041}",
            "lines": "a\nb\t\"c\"\\",
        });
        let raw = serde_json::to_string_pretty(&value).unwrap();
        let safe = text(&raw);
        assert!(
            safe.chars().all(|c| c == '\n' || !is_dangerous(c)),
            "{safe}"
        );
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, value);
    }
}
