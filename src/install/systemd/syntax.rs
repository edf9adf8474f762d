//! systemd's file syntax, exactly as systemd 252–257 reads it (pure):
//! - unit files and drop-ins: systemd.syntax(7) and `config_parse()` in src/shared/conf-parser.c
//!   (comment lines are dropped even inside a backslash continuation, an odd trailing backslash
//!   joins the next line with a space, whitespace around `=` is ignored);
//! - command lines: systemd.service(5) "COMMAND LINES" and `extract_first_word()` with
//!   `EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE` (quotes anywhere in a word, C escapes inside and
//!   outside quotes, a lone `;` separates commands, `\;` is a literal `;`);
//! - environment files: `parse_env_file_internal()` in src/basic/env-file.c.
//!
//! No crate parses these: the INI crates do not know continuations or comments inside them, and
//! shell-words/shlex follow POSIX shell, where a backslash inside single quotes is literal and
//! `\x41`, `\s`, `%%` or a lone `;` mean nothing; systemd differs on each.

/// One `Key=Value` of a section, with the physical line it starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub section: String,
    pub key: String,
    pub value: String,
    pub line: usize,
}

const WHITESPACE: &[char] = &[' ', '\t', '\n', '\r'];

/// The assignments of a unit file or drop-in, in order. An invalid section header makes systemd
/// refuse the whole file: that is an error here too.
pub fn assignments(text: &str) -> Result<Vec<Assignment>, String> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut continuation: Option<(String, usize)> = None;
    // systemd drops a UTF-8 byte order mark at the start of the file.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (index, raw) in physical_lines(text).into_iter().enumerate() {
        let physical = index + 1;
        let first = raw.trim_start_matches(WHITESPACE).chars().next();
        if matches!(first, Some('#' | ';')) {
            // A comment line, also in the middle of a continuation (systemd.syntax(7)).
            continue;
        }
        let (mut joined, start) = match continuation.take() {
            Some((mut text, start)) => {
                text.push_str(raw);
                (text, start)
            }
            None => (raw.to_string(), physical),
        };
        if ends_escaped(&joined) {
            joined.pop();
            joined.push(' ');
            continuation = Some((joined, start));
            continue;
        }
        parse_line(&joined, start, &mut section, &mut out)?;
    }
    if let Some((joined, start)) = continuation {
        parse_line(&joined, start, &mut section, &mut out)?;
    }
    Ok(out)
}

/// Lines as systemd's `read_line()` ends them: at "\n", "\r\n", a lone "\r", or a NUL byte.
fn physical_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'\n' | b'\0' => {
                lines.push(&text[start..index]);
                start = index + 1;
            }
            b'\r' => {
                lines.push(&text[start..index]);
                if bytes.get(index + 1) == Some(&b'\n') {
                    index += 1;
                }
                start = index + 1;
            }
            _ => {}
        }
        index += 1;
    }
    lines.push(&text[start..]);
    lines
}

/// Whether the text ends in an unpaired backslash (conf-parser counts every backslash).
fn ends_escaped(text: &str) -> bool {
    let mut escaped = false;
    for c in text.chars() {
        escaped = !escaped && c == '\\';
    }
    escaped
}

fn parse_line(
    line: &str,
    number: usize,
    section: &mut String,
    out: &mut Vec<Assignment>,
) -> Result<(), String> {
    let line = line.trim_matches(WHITESPACE);
    if line.is_empty() || line.starts_with(['#', ';']) {
        return Ok(());
    }
    if let Some(rest) = line.strip_prefix('[') {
        let Some(name) = rest.strip_suffix(']') else {
            return Err(format!(
                "line {number}: invalid section header {}",
                crate::escape::value(line)
            ));
        };
        *section = name.to_string();
        return Ok(());
    }
    // Without '=' systemd warns and ignores the line.
    if let Some((key, value)) = line.split_once('=') {
        out.push(Assignment {
            section: section.clone(),
            key: key.trim_matches(WHITESPACE).to_string(),
            value: value.trim_matches(WHITESPACE).to_string(),
            line: number,
        });
    }
    Ok(())
}

/// One word of a command line: its text as written (quotes, escapes and specifiers kept, for
/// writing it back unchanged) and its value once systemd has unquoted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub raw: String,
    pub text: String,
}

/// The commands of an `ExecStart=` value (a lone `;` separates commands).
pub fn command_lines(value: &str) -> Result<Vec<Vec<Word>>, String> {
    let mut commands = vec![Vec::new()];
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches(WHITESPACE);
        if rest.is_empty() {
            break;
        }
        let current = commands.last_mut().map(|c| c.is_empty()).unwrap_or(true);
        // An unquoted lone ";" ends a command; "\;" is a literal ";" word.
        let token_end = rest.find(WHITESPACE).unwrap_or(rest.len());
        let token = &rest[..token_end];
        if token == ";" {
            if !current {
                commands.push(Vec::new());
            }
            rest = &rest[token_end..];
            continue;
        }
        if token == "\\;" {
            if let Some(command) = commands.last_mut() {
                command.push(Word {
                    raw: token.to_string(),
                    text: ";".to_string(),
                });
            }
            rest = &rest[token_end..];
            continue;
        }
        let (word, after) = extract_word(rest, true)?;
        let raw = rest[..rest.len() - after.len()].to_string();
        if current && word == ";" {
            // systemd compares the first word after unquoting.
            rest = after;
            continue;
        }
        if let Some(command) = commands.last_mut() {
            command.push(Word {
                raw,
                text: word.replace("%%", "%"),
            });
        }
        rest = after;
    }
    commands.retain(|c| !c.is_empty());
    Ok(commands)
}

/// Splits a string into words as `extract_first_word(EXTRACT_UNQUOTE [| EXTRACT_CUNESCAPE])`.
pub fn words(text: &str, cunescape: bool) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches(WHITESPACE);
        if rest.is_empty() {
            return Ok(out);
        }
        let (word, after) = extract_word(rest, cunescape)?;
        out.push(word);
        rest = after;
    }
}

/// The first word of `text` (which starts with a non-space) and what follows it.
fn extract_word(text: &str, cunescape: bool) -> Result<(String, &str), String> {
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((index, c)) = chars.next() {
        match (quote, c) {
            (_, '\\') => {
                let Some(&(_, next)) = chars.peek() else {
                    return Err(format!("a backslash ends {}", crate::escape::value(text)));
                };
                if cunescape {
                    let rest = &text[index + 1..];
                    let (decoded, used) = unescape_one(rest).ok_or_else(|| {
                        format!("invalid escape \\{next} in {}", crate::escape::value(text))
                    })?;
                    word.push(decoded);
                    for _ in 0..used {
                        chars.next();
                    }
                } else {
                    word.push(next);
                    chars.next();
                }
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => quote = Some(c),
            (None, c) if WHITESPACE.contains(&c) => return Ok((word, &text[index..])),
            (None, c) => word.push(c),
        }
    }
    if quote.is_some() {
        return Err(format!(
            "unterminated quote in {}",
            crate::escape::value(text)
        ));
    }
    Ok((word, ""))
}

/// `cunescape_one()`: the character an escape after a backslash stands for, and how many
/// characters of `rest` it used.
fn unescape_one(rest: &str) -> Option<(char, usize)> {
    let mut chars = rest.chars();
    let c = chars.next()?;
    let simple = match c {
        'a' => Some('\u{7}'),
        'b' => Some('\u{8}'),
        'f' => Some('\u{c}'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\u{b}'),
        '\\' | '"' | '\'' => Some(c),
        's' => Some(' '),
        _ => None,
    };
    if let Some(decoded) = simple {
        return Some((decoded, 1));
    }
    let number = |digits: usize, radix: u32| -> Option<u32> {
        let part: String = rest.chars().skip(1).take(digits).collect();
        if part.chars().count() != digits {
            return None;
        }
        u32::from_str_radix(&part, radix).ok()
    };
    let (code, used) = match c {
        'x' => (number(2, 16)?, 3),
        'u' => (number(4, 16)?, 5),
        'U' => (number(8, 16)?, 9),
        '0'..='7' => {
            let part: String = rest.chars().take(3).collect();
            (u32::from_str_radix(&part, 8).ok()?, 3)
        }
        _ => return None,
    };
    // systemd refuses NUL.
    if code == 0 {
        return None;
    }
    char::from_u32(code).map(|decoded| (decoded, used))
}

/// One `NAME=value` of an environment file, with its line (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvAssignment {
    pub name: String,
    pub value: String,
    pub line: usize,
}

/// An environment file as `EnvironmentFile=` reads it. `comment_continues`: before systemd 254 a
/// comment line ending in a backslash swallowed the next line; since 254 it does not. Read both
/// ways when what matters is every value dockerd could be given.
pub fn env_file(text: &str, comment_continues: bool) -> Vec<EnvAssignment> {
    let mut parser = EnvParser {
        state: EnvState::PreKey,
        key: String::new(),
        value: String::new(),
        last_key_ws: None,
        last_value_ws: None,
        line: 1,
        key_line: 1,
        comment_continues,
        out: Vec::new(),
    };
    for c in text.chars() {
        parser.step(c);
        if c == '\n' {
            parser.line += 1;
        }
    }
    match parser.state {
        EnvState::PreValue
        | EnvState::Value
        | EnvState::ValueEscape
        | EnvState::SingleQuote
        | EnvState::DoubleQuote
        | EnvState::DoubleQuoteEscape => parser.emit(parser.state == EnvState::Value),
        _ => {}
    }
    // systemd ignores assignments whose name is not a valid variable name.
    parser.out.retain(|a| is_env_name(&a.name));
    parser.out
}

/// The states of `parse_env_file_internal()`.
#[derive(Clone, Copy, PartialEq)]
enum EnvState {
    PreKey,
    Key,
    PreValue,
    Value,
    ValueEscape,
    SingleQuote,
    DoubleQuote,
    DoubleQuoteEscape,
    Comment,
    CommentEscape,
}

/// `parse_env_file_internal()`'s state machine, one character at a time.
struct EnvParser {
    state: EnvState,
    key: String,
    value: String,
    /// Where trailing white space of the key (or unquoted value) starts: cut when emitted.
    last_key_ws: Option<usize>,
    last_value_ws: Option<usize>,
    line: usize,
    key_line: usize,
    comment_continues: bool,
    out: Vec<EnvAssignment>,
}

fn is_ws(c: char) -> bool {
    WHITESPACE.contains(&c)
}

fn is_nl(c: char) -> bool {
    c == '\n' || c == '\r'
}

impl EnvParser {
    /// Ends the current assignment (`in_value`: its value was unquoted text, whose trailing
    /// white space is dropped).
    fn emit(&mut self, in_value: bool) {
        if let Some(at) = self.last_key_ws {
            self.key.truncate(at);
        }
        if in_value && let Some(at) = self.last_value_ws {
            self.value.truncate(at);
        }
        self.out.push(EnvAssignment {
            name: std::mem::take(&mut self.key),
            value: std::mem::take(&mut self.value),
            line: self.key_line,
        });
    }

    fn step(&mut self, c: char) {
        match self.state {
            EnvState::PreKey => self.pre_key(c),
            EnvState::Key => self.in_key(c),
            EnvState::PreValue => self.pre_value(c),
            EnvState::Value => self.in_value(c),
            EnvState::ValueEscape => {
                self.state = EnvState::Value;
                if !is_nl(c) {
                    self.value.push(c);
                }
            }
            EnvState::SingleQuote => match c {
                '\'' => self.state = EnvState::PreValue,
                _ => self.value.push(c),
            },
            EnvState::DoubleQuote => match c {
                '"' => self.state = EnvState::PreValue,
                '\\' => self.state = EnvState::DoubleQuoteEscape,
                _ => self.value.push(c),
            },
            EnvState::DoubleQuoteEscape => {
                self.state = EnvState::DoubleQuote;
                if "\"\\`$".contains(c) {
                    self.value.push(c);
                } else if c != '\n' {
                    self.value.push('\\');
                    self.value.push(c);
                }
            }
            EnvState::Comment if c == '\\' => self.state = EnvState::CommentEscape,
            EnvState::Comment if is_nl(c) => self.state = EnvState::PreKey,
            EnvState::Comment => {}
            EnvState::CommentEscape => {
                self.state = if is_nl(c) && !self.comment_continues {
                    EnvState::PreKey
                } else {
                    EnvState::Comment
                };
            }
        }
    }

    fn pre_key(&mut self, c: char) {
        if c == '#' || c == ';' {
            self.state = EnvState::Comment;
        } else if !is_ws(c) {
            self.state = EnvState::Key;
            self.key.clear();
            self.value.clear();
            self.last_key_ws = None;
            self.last_value_ws = None;
            self.key_line = self.line;
            self.key.push(c);
        }
    }

    fn in_key(&mut self, c: char) {
        match c {
            _ if is_nl(c) => self.state = EnvState::PreKey,
            '=' => self.state = EnvState::PreValue,
            _ => push_noting_white_space(&mut self.key, &mut self.last_key_ws, c),
        }
    }

    fn pre_value(&mut self, c: char) {
        self.state = match c {
            _ if is_nl(c) => {
                self.emit(false);
                EnvState::PreKey
            }
            '\'' => EnvState::SingleQuote,
            '"' => EnvState::DoubleQuote,
            '\\' => EnvState::ValueEscape,
            _ if is_ws(c) => EnvState::PreValue,
            _ => {
                self.value.push(c);
                EnvState::Value
            }
        };
    }

    fn in_value(&mut self, c: char) {
        match c {
            _ if is_nl(c) => {
                self.state = EnvState::PreKey;
                self.emit(true);
            }
            '\\' => {
                self.state = EnvState::ValueEscape;
                self.last_value_ws = None;
            }
            _ => push_noting_white_space(&mut self.value, &mut self.last_value_ws, c),
        }
    }
}

/// Appends `c` to `text`, keeping in `last_ws` where its trailing white space starts.
fn push_noting_white_space(text: &mut String, last_ws: &mut Option<usize>, c: char) {
    if !is_ws(c) {
        *last_ws = None;
    } else if last_ws.is_none() {
        *last_ws = Some(text.len());
    }
    text.push(c);
}

/// A valid environment variable name (`env_name_is_valid()`).
pub fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(value: &str) -> Vec<Vec<String>> {
        command_lines(value)
            .unwrap()
            .into_iter()
            .map(|c| c.into_iter().map(|w| w.text).collect())
            .collect()
    }

    /// (section, key, value, line) of each assignment.
    fn flat(got: &[Assignment]) -> Vec<(&str, &str, &str, usize)> {
        got.iter()
            .map(|a| (a.section.as_str(), a.key.as_str(), a.value.as_str(), a.line))
            .collect()
    }

    #[test]
    fn assignments_follow_systemd_syntax() {
        // The example of systemd.syntax(7), plus spaces around '='.
        let text = "[Section A]\nKeyOne=value 1\n\n# a comment\n[Section C]\nKeyThree=value 3\\\n# this line is ignored\n; this line is ignored too\n       value 3 continued\nExecStart = /usr/bin/dockerd  \\\n  --data-root=/srv/docker\nNoEquals\n";
        let got = assignments(text).unwrap();
        let pairs = flat(&got);
        assert_eq!(
            pairs,
            [
                ("Section A", "KeyOne", "value 1", 2),
                (
                    "Section C",
                    "KeyThree",
                    "value 3        value 3 continued",
                    6
                ),
                (
                    "Section C",
                    "ExecStart",
                    "/usr/bin/dockerd     --data-root=/srv/docker",
                    10
                ),
            ]
        );
        // A paired backslash does not continue; a comment ending in one does not either.
        let got = assignments("[S]\nA=x\\\\\nB=y\n# c \\\nC=z\n").unwrap();
        let keys: Vec<&str> = got.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(keys, ["A", "B", "C"]);
        assert!(assignments("[Service\nA=b\n").is_err());
        // A lone CR and a NUL end a line too, CRLF is one line end, and a BOM is dropped
        // (measured with systemd-analyze verify 252).
        let got = assignments("\u{feff}[S]\rA=1\0B=2\r\nC=3\\\r\n  4\n").unwrap();
        let pairs = flat(&got);
        assert_eq!(
            pairs,
            [
                ("S", "A", "1", 2),
                ("S", "B", "2", 3),
                ("S", "C", "3   4", 4)
            ]
        );
    }

    #[test]
    fn command_lines_unquote_as_systemd() {
        assert_eq!(
            texts(
                r#"-/usr/bin/dockerd --label "a b" --label='c "d"' x"y z"w \x41\s\101 %% "\u00e9""#
            ),
            [[
                "-/usr/bin/dockerd",
                "--label",
                "a b",
                "--label=c \"d\"",
                "xy zw",
                "A A",
                "%",
                "é"
            ]]
        );
        // Single quotes do not stop escapes (unlike a shell).
        assert_eq!(texts(r"'a\tb'"), [["a\tb"]]);
        assert_eq!(
            texts("/bin/a 1 ; /bin/b \\; 2"),
            [vec!["/bin/a", "1"], vec!["/bin/b", ";", "2"]]
        );
        assert!(command_lines("/bin/a \"open").is_err());
        assert!(command_lines(r"/bin/a \d").is_err());
        let words = command_lines(r#"/usr/bin/dockerd --label "a b"  %%x"#).unwrap();
        let raws: Vec<&str> = words[0].iter().map(|w| w.raw.as_str()).collect();
        assert_eq!(raws, ["/usr/bin/dockerd", "--label", "\"a b\"", "%%x"]);
    }

    #[test]
    fn env_files_parse_as_systemd() {
        let text = "# comment\nDOCKER_OPTS=\"-H tcp://0.0.0.0:2375 --label \\\"x y\\\"\"\n  A = 'one  two'  \nB=plain value   \nC=a\\\n b\nexport D=1\n1BAD=x\nE\n";
        let got = env_file(text, false);
        let pairs: Vec<(&str, &str, usize)> = got
            .iter()
            .map(|a| (a.name.as_str(), a.value.as_str(), a.line))
            .collect();
        assert_eq!(
            pairs,
            [
                ("DOCKER_OPTS", "-H tcp://0.0.0.0:2375 --label \"x y\"", 2),
                ("A", "one  two", 3),
                ("B", "plain value", 4),
                ("C", "a b", 5),
            ]
        );
        let old = env_file("# note \\\nDOCKER_OPTS=-H x\n", true);
        assert!(old.is_empty());
        let new = env_file("# note \\\nDOCKER_OPTS=-H x\n", false);
        assert_eq!(new[0].value, "-H x");
        assert_eq!(new[0].line, 2);
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Hostile unit and environment files never make the parsers panic.
        #[test]
        fn parsers_never_panic(
            text in "[\\\\\"' \t\n\r\u{0}%$;=#\\[\\]a-zA-Z{}x0-9é\u{feff}-]{0,200}",
            any in "(?s).{0,200}",
        ) {
            for input in [&text, &any] {
                let _ = assignments(input);
                let _ = command_lines(input);
                let _ = words(input, true);
                let _ = words(input, false);
                let _ = env_file(input, true);
                let _ = env_file(input, false);
            }
        }
    }
}
