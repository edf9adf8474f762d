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
//!
//! Long values are cut in messages (review item m9): a value echoed in an `error:` or `warning:`
//! line (an argument, a file's contents, a server's answer) keeps its first [`VALUE_KEEP`]
//! characters, then says how long it was: `aaaa... (100000 bytes)`. Operators read these lines
//! in terminals and journals, where a 100 KB line hides the reason. Paths are kept whole up to
//! [`PATH_MAX`] bytes (the kernel refuses a longer one, so a real path is never cut); a longer
//! one is cut like a value. As a last guard, [`print_stderr_line`] cuts the middle of a line
//! longer than [`LINE_MAX`] bytes, keeping its head (what) and its tail (why).

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
            push_escaped(&mut out, c);
        }
    }
    Cow::Owned(out)
}

/// Appends `c` as its JSON escape (a UTF-16 pair above U+FFFF).
fn push_escaped(out: &mut String, c: char) {
    for unit in c.encode_utf16(&mut [0; 2]) {
        let _ = write!(out, "\\u{unit:04x}");
    }
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

/// A path as one escaped field (paths may hold any byte but `/` and NUL), kept whole up to
/// [`PATH_MAX`] bytes and cut as a [`value`] beyond.
pub fn path(path: &std::path::Path) -> String {
    let text = path.to_string_lossy();
    if path.as_os_str().len() <= PATH_MAX {
        field(&text).into_owned()
    } else {
        cut(&text, VALUE_KEEP, path.as_os_str().len())
    }
}

/// How many characters of a value a message keeps (an escape such as `\u001b` counts as its
/// six characters): enough to recognise a host name, a client name or a flag's argument.
pub const VALUE_KEEP: usize = 80;

/// The longest path a message keeps whole, in bytes: Linux's PATH_MAX (the kernel refuses a
/// longer path with ENAMETOOLONG, so no path that names a file is ever cut).
pub const PATH_MAX: usize = 4096;

/// The longest line [`print_stderr_line`] prints whole, in bytes; longer lines lose their middle.
/// Above two whole paths and a message, far below what hides a reason from a reader.
pub const LINE_MAX: usize = 16 * 1024;

/// A value inside a message line (a flag's argument, a name, a value read from a file, a
/// server's answer): escaped as [`field`], and cut after [`VALUE_KEEP`] characters, never
/// inside an escape or a character, followed by `... (N bytes)` with the value's whole length.
pub fn value(text: &str) -> String {
    cut(text, VALUE_KEEP, text.len())
}

/// How many characters of another program's message (ssh's, dockerd's, the docker CLI's, a
/// daemon's HTTP answer) a message keeps: a sentence with its reason, not a 100 KB line.
pub const EXCERPT_KEEP: usize = 300;

/// Another program's message or answer inside ours: escaped as [`field`], and cut after
/// [`EXCERPT_KEEP`] characters as [`value`] cuts.
pub fn excerpt(text: &str) -> String {
    cut(text, EXCERPT_KEEP, text.len())
}

/// A library's message that quotes the value it refused (serde_json says ``unknown variant
/// `aaa...`, expected `here` `` or ``invalid type: string "aaa..."``): each quoted run (between
/// backquotes, or double quotes with `\"` inside) is cut as a [`value`] when it is longer than
/// [`VALUE_KEEP`] bytes; the rest is kept, escaped as [`field`].
pub fn quoted_values(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(open) = rest.find(['`', '"']) {
        let quote = rest.as_bytes()[open];
        out.push_str(&field(&rest[..=open]));
        let inside = &rest[open + 1..];
        let mut escaped = false;
        let close = inside.char_indices().find_map(|(i, c)| {
            let end = c as u32 == u32::from(quote) && !escaped;
            escaped = quote == b'"' && c == '\\' && !escaped;
            end.then_some(i)
        });
        let (quoted, after) = match close {
            Some(i) => (&inside[..i], &inside[i..]),
            None => (inside, ""),
        };
        out.push_str(&value(quoted));
        match after.split_at_checked(1) {
            Some((closing, next)) => {
                out.push_str(closing);
                rest = next;
            }
            None => rest = "",
        }
    }
    out.push_str(&field(rest));
    out
}

/// `text` escaped as [`field`]; when the escaped text is longer than `keep` characters, its
/// first whole escapes and characters that fit in `keep`, then `... (N bytes)`.
fn cut(text: &str, keep: usize, bytes: usize) -> String {
    let mut out = String::new();
    let mut kept = 0;
    let mut piece = String::new();
    for c in text.chars() {
        piece.clear();
        if is_dangerous(c) {
            push_escaped(&mut piece, c);
        } else {
            piece.push(c);
        }
        let width = piece.chars().count();
        if kept + width > keep {
            let _ = write!(out, "... ({bytes} bytes)");
            return out;
        }
        kept += width;
        out.push_str(&piece);
    }
    out
}

/// `line` whole when it is at most [`LINE_MAX`] bytes; otherwise its head and its tail, each
/// cut at a character boundary, around a note of how many bytes were left out.
fn bound_line(line: &str) -> Cow<'_, str> {
    if line.len() <= LINE_MAX {
        return Cow::Borrowed(line);
    }
    let half = LINE_MAX / 2;
    let head_end = (0..=half)
        .rev()
        .find(|&i| line.is_char_boundary(i))
        .unwrap_or(0);
    let tail_start = (line.len() - half..line.len())
        .find(|&i| line.is_char_boundary(i))
        .unwrap_or(line.len());
    Cow::Owned(format!(
        "{} ... ({} bytes left out) ... {}",
        &line[..head_end],
        tail_start - head_end,
        &line[tail_start..]
    ))
}

/// Writes text or a JSON document to stdout, escaped as [`text`].
pub fn print_stdout(rendered: &str) {
    let _ = std::io::stdout().write_all(text(rendered).as_bytes());
}

/// Writes one message line to stderr, escaped as [`text`] (a message may carry a `hint:` line),
/// its middle cut when it is longer than [`LINE_MAX`] bytes.
pub fn print_stderr_line(message: &str) {
    let mut line = bound_line(&text(message)).into_owned();
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
    fn a_long_value_is_cut_after_its_first_characters_with_its_length() {
        let long = "a".repeat(100_000);
        assert_eq!(
            value(&long),
            format!("{}... (100000 bytes)", "a".repeat(80))
        );
        // Exactly at the limit: whole, no note; one more: cut.
        assert_eq!(value(&"b".repeat(VALUE_KEEP)), "b".repeat(VALUE_KEEP));
        assert_eq!(
            value(&"b".repeat(VALUE_KEEP + 1)),
            format!("{}... (81 bytes)", "b".repeat(80))
        );
        assert_eq!(value(""), "");
        assert_eq!(value("docker1.example.com"), "docker1.example.com");
        let answer = "ssh: connect to host docker1.example.com port 22: Connection refused";
        assert_eq!(excerpt(answer), answer);
        assert_eq!(
            excerpt(&"x".repeat(100_000)),
            format!("{}... (100000 bytes)", "x".repeat(EXCERPT_KEEP))
        );
    }

    #[test]
    fn a_cut_never_splits_a_character_or_an_escape() {
        // 79 ASCII, then a 3-byte character: it fits as the 80th character, whole.
        let text = format!("{}日{}", "x".repeat(79), "y".repeat(10));
        assert_eq!(
            value(&text),
            format!("{}日... ({} bytes)", "x".repeat(79), text.len())
        );
        // 78 ASCII, then ESC (6 characters escaped): it does not fit, and is left out whole.
        let text = format!("{}\x1b[2J{}", "x".repeat(78), "y".repeat(10));
        assert_eq!(
            value(&text),
            format!("{}... ({} bytes)", "x".repeat(78), text.len())
        );
        // 68 ASCII, then a tag character (a 12-character UTF-16 pair): exactly fits.
        let text = format!("{}\u{e0041}z", "x".repeat(68));
        assert_eq!(
            value(&text),
            format!("{}\\udb40\\udc41... ({} bytes)", "x".repeat(68), text.len())
        );
        // Escapes count as what they print: 80 characters of escapes is 13 ESCs, then cut.
        let cut = value(&"\x1b".repeat(20));
        assert_eq!(cut, format!("{}... (20 bytes)", "\\u001b".repeat(13)));
        for c in ['é', '日', '🦀', '\u{9b}', '\u{202e}'] {
            for n in 70..90 {
                let text = format!("{}{}", "a".repeat(n), c.to_string().repeat(20));
                let shown = value(&text);
                assert!(shown.chars().all(|c| !is_dangerous(c)), "{shown}");
                assert!(shown.chars().count() <= VALUE_KEEP + 30, "{shown}");
            }
        }
    }

    #[test]
    fn paths_are_whole_up_to_path_max_and_cut_beyond() {
        let whole = std::path::PathBuf::from(format!("/{}", "d".repeat(PATH_MAX - 1)));
        assert_eq!(path(&whole), whole.to_string_lossy());
        let long = std::path::PathBuf::from(format!("/{}", "d".repeat(PATH_MAX)));
        assert_eq!(
            path(&long),
            format!("/{}... ({} bytes)", "d".repeat(79), PATH_MAX + 1)
        );
        assert_eq!(path(std::path::Path::new("/tmp/\x1bx")), "/tmp/\\u001bx");
    }

    #[test]
    fn a_librarys_message_keeps_its_words_and_cuts_the_values_it_quotes() {
        let long = "a".repeat(100_000);
        let cut = format!("{}... (100000 bytes)", "a".repeat(80));
        assert_eq!(
            quoted_values(&format!(
                "unknown variant `{long}`, expected `here` or `elsewhere`"
            )),
            format!("unknown variant `{cut}`, expected `here` or `elsewhere`")
        );
        assert_eq!(
            quoted_values(&format!(
                "invalid type: string \"x\\\"{long}\", expected u64 at line 1"
            )),
            format!(
                "invalid type: string \"x\\\"{}... (100003 bytes)\", expected u64 at line 1",
                "a".repeat(77)
            )
        );
        // No closing quote: the rest is the value.
        assert_eq!(
            quoted_values(&format!("bad `{long}")),
            format!("bad `{cut}")
        );
        let short = "expected `a`, \"b\" or `c` at line 1 column 2";
        assert_eq!(quoted_values(short), short);
        assert_eq!(quoted_values("ESC `\x1b` here"), "ESC `\\u001b` here");
    }

    #[test]
    fn a_line_too_long_keeps_its_head_and_its_tail() {
        let short = format!("error: {}", "v".repeat(LINE_MAX - 7));
        assert!(matches!(bound_line(&short), Cow::Borrowed(_)));
        let line = format!("error: --x '{}': the reason", "日".repeat(100_000));
        let bounded = bound_line(&line);
        assert!(bounded.len() <= LINE_MAX + 64, "{}", bounded.len());
        assert!(bounded.starts_with("error: --x '日"));
        assert!(bounded.ends_with("日': the reason"));
        assert!(bounded.contains(" bytes left out) ... "));
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
