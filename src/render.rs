//! The files and texts dockertls emits, rendered from `templates/` (embedded at build time).
//! Filling is strict: a placeholder without a value, or a value without a placeholder, is a bug
//! caught by the tests rather than a half-rendered file.

use std::net::SocketAddr;
use std::path::Path;

use crate::store::layout::{self, Holder, Pki};

const DAEMON_JSON: &str = include_str!("../templates/daemon.json");
const OVERRIDE_CONF: &str = include_str!("../templates/override.conf");
const NEXT_STEPS: &str = include_str!("../templates/next-steps.txt");

/// Replaces every `{{name}}` in `template`. Panics only on a template/code mismatch, which the
/// unit tests exercise for every template.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    let mut used = vec![false; values.len()];
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").expect("unclosed {{ in a template");
        let name = &after[..end];
        let index = values
            .iter()
            .position(|(key, _)| *key == name)
            .unwrap_or_else(|| panic!("template placeholder {{{{{name}}}}} has no value"));
        used[index] = true;
        out.push_str(values[index].1);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    if let Some(unused) = used.iter().position(|u| !u) {
        panic!("value {} matches no template placeholder", values[unused].0);
    }
    out
}

fn json_string(value: &str) -> String {
    serde_json::Value::String(value.to_string()).to_string()
}

/// daemon.json with exactly the TLS keys. `hosts` stays on one line: Docker Bench for
/// Security's check 2.7 only sees a tcp listener written that way.
pub fn daemon_json(listen: SocketAddr, install_dir: &Path) -> String {
    let path = |file: &str| json_string(&install_dir.join(file).to_string_lossy());
    fill(
        DAEMON_JSON,
        &[
            ("tcp_host", &json_string(&format!("tcp://{listen}"))),
            ("tlscacert", &path(layout::CA_CERT)),
            ("tlscert", &path(layout::SERVER_CERT)),
            ("tlskey", &path(layout::SERVER_KEY)),
        ],
    )
}

/// The systemd drop-in that starts dockerd without `-H`.
pub fn override_conf(dockerd: &Path) -> String {
    fill(OVERRIDE_CONF, &[("dockerd", &dockerd.to_string_lossy())])
}

/// What the operator does next, with absolute paths ready to paste.
pub struct NextSteps<'a> {
    pub dir: &'a Path,
    /// The server's name (its folder servers/NAME).
    pub server: &'a str,
    pub install_dir: &'a Path,
    pub docker_host: &'a str,
    pub client: &'a str,
    pub context: &'a str,
}

/// Renders the next-steps text.
pub fn next_steps(steps: &NextSteps<'_>) -> String {
    let path = |p: &Path| shell_quote(&p.to_string_lossy());
    let client_dir = Pki::new(steps.dir).client_dir(steps.client);
    let file = |name: &str| client_dir.join(name).to_string_lossy().into_owned();
    let (ca, cert, key) = (
        file(layout::CA_CERT),
        file(layout::CLIENT_CERT),
        file(layout::CLIENT_KEY),
    );
    let context_docker = docker_context_value(&[
        ("host", steps.docker_host),
        ("ca", &ca),
        ("cert", &cert),
        ("key", &key),
    ]);
    fill(
        NEXT_STEPS,
        &[
            (
                "server_dir",
                &path(&Pki::new(steps.dir).server_dir(steps.server)),
            ),
            ("install_dir", &path(steps.install_dir)),
            ("client_dir", &path(&client_dir)),
            ("docker_host", &shell_quote(steps.docker_host)),
            ("context", &shell_quote(steps.context)),
            ("context_docker", &shell_quote(&context_docker)),
        ],
    )
}

/// What re-issues a server certificate with more SANs: in a dockertls PKI, the `rotate`
/// command that adds `missing` (keeping the CA and every other SAN); elsewhere, the SANs the
/// new certificate needs. `place` is the server folder (DIR/servers/NAME, or format 1's
/// DIR/server) or the PKI folder itself.
pub fn reissue_hint(place: Option<&Path>, missing: &[String], all: &[String]) -> String {
    let missing: Vec<&str> = missing
        .iter()
        .map(String::as_str)
        .filter(|m| !m.is_empty())
        .collect();
    let is_pki = |dir: &Path| Pki::new(dir).key(&Holder::Ca).is_file();
    let found = place.and_then(|place| {
        let parent = place.parent().filter(|p| !p.as_os_str().is_empty());
        let grandparent = parent.and_then(Path::parent);
        let name = place.file_name().map(|n| n.to_string_lossy().into_owned());
        match (parent, grandparent) {
            (Some(servers), Some(dir))
                if servers.file_name() == Some(layout::SERVERS_DIR.as_ref()) && is_pki(dir) =>
            {
                Some((dir.to_path_buf(), name))
            }
            (Some(dir), _) if is_pki(dir) => Some((dir.to_path_buf(), None)),
            _ if is_pki(place) => Some((place.to_path_buf(), None)),
            _ => None,
        }
    });
    match found {
        Some((dir, server)) if !missing.is_empty() => format!(
            "dockertls --dir {} rotate --server{} --allow {} (then restart dockerd)",
            shell_quote(&dir.display().to_string()),
            server.map_or(String::new(), |s| format!(" {}", shell_quote(&s))),
            shell_quote(&missing.join(","))
        ),
        _ => format!("a new server certificate with the SANs {}", all.join(", ")),
    }
}

/// The `--docker` value of `docker context create`: comma-separated `key=value` fields, which
/// the docker CLI reads as one CSV record (Go's encoding/csv): a field holding a comma, a quote
/// or a line break is written in double quotes with its quotes doubled, so that a folder named
/// `x,host=tcp://elsewhere` cannot add a field. (encoding/csv turns a quoted CR LF into LF:
/// callers refuse paths with control characters.)
pub fn docker_context_value(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(key, value)| {
            let field = format!("{key}={value}");
            if field.contains([',', '"', '\n', '\r']) || field.starts_with(' ') {
                format!("\"{}\"", field.replace('"', "\"\""))
            } else {
                field
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A word that sh, bash and zsh read as itself: characters with no meaning inside a word (`=`
/// only means something at the start of a word, in zsh).
fn is_plain(word: &str) -> bool {
    !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@,=%".contains(c))
        && !word.starts_with(['-', '=', '%'])
}

/// Quotes a word for a POSIX shell (sh, bash, zsh) only when it needs it.
///
/// shell-words quotes every character POSIX sh gives a meaning to; bash and zsh add a few of
/// their own (`{a,b}` brace expansion, `!` history, `^`, and any non-ASCII byte a locale may
/// split on), which it leaves bare: those words are single-quoted too (they hold no `'` and no
/// newline, or shell-words would have quoted them).
pub fn shell_quote(word: &str) -> String {
    if is_plain(word) {
        return word.to_string();
    }
    let quoted = shell_words::quote(word);
    if quoted.starts_with('\'') {
        quoted.into_owned()
    } else {
        format!("'{word}'")
    }
}

/// Quotes a word for fish: single quotes, in which fish gives a meaning to `\'` and `\\` only
/// (fish 3 documentation, "Quotes"); every other character, newline included, is literal.
pub fn fish_quote(word: &str) -> String {
    let mut out = String::with_capacity(word.len() + 2);
    out.push('\'');
    for c in word.chars() {
        if c == '\\' || c == '\'' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// The characters PowerShell takes as a single quote: the ASCII one and the typographic
/// U+2018, U+2019, U+201A and U+201B (its tokenizer's `IsSingleQuote`).
const POWERSHELL_SINGLE_QUOTES: [char; 5] = ['\'', '\u{2018}', '\u{2019}', '\u{201A}', '\u{201B}'];

/// Quotes a word for PowerShell: a verbatim single-quoted string, in which nothing expands
/// (`$`, backtick and double quotes are literal) and a quote character is written twice
/// ("about_Quoting_Rules"). Every one of the five quote characters is doubled, as each of them
/// would end the string.
pub fn powershell_quote(word: &str) -> String {
    let mut out = String::with_capacity(word.len() + 2);
    out.push('\'');
    for c in word.chars() {
        if POWERSHELL_SINGLE_QUOTES.contains(&c) {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_json_is_valid_json_with_tlsverify_and_hosts_on_one_line() {
        let text = daemon_json(
            "0.0.0.0:2376".parse().unwrap(),
            Path::new("/etc/docker/tls"),
        );
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["tlsverify"], serde_json::Value::Bool(true));
        assert_eq!(value["tls"], serde_json::Value::Bool(true));
        assert_eq!(value["tlskey"], "/etc/docker/tls/server-key.pem");
        assert_eq!(value.as_object().unwrap().len(), 6);
        let hosts_line = text.lines().find(|l| l.contains("\"hosts\"")).unwrap();
        assert!(hosts_line.contains("tcp://0.0.0.0:2376"), "{hosts_line}");
        assert!(
            hosts_line.contains("unix:///var/run/docker.sock"),
            "{hosts_line}"
        );
    }

    #[test]
    fn ipv6_listen_is_bracketed() {
        let text = daemon_json("[::]:2376".parse().unwrap(), Path::new("/t"));
        assert!(text.contains("\"tcp://[::]:2376\""), "{text}");
    }

    #[test]
    fn override_resets_execstart_and_has_no_host_flag() {
        let text = override_conf(Path::new("/usr/sbin/dockerd"));
        let exec: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("ExecStart="))
            .collect();
        assert_eq!(
            exec,
            [
                "ExecStart=",
                "ExecStart=/usr/sbin/dockerd --containerd=/run/containerd/containerd.sock"
            ]
        );
        assert!(exec.iter().all(|line| !line.contains("-H")));
    }

    #[test]
    fn next_steps_fill_every_placeholder() {
        let text = next_steps(&NextSteps {
            dir: Path::new("/home/op/docker tls"),
            server: "example.com",
            install_dir: Path::new("/etc/docker/tls"),
            docker_host: "tcp://example.com:2376",
            client: "alice",
            context: "example.com",
        });
        assert!(!text.contains("{{"));
        assert!(
            text.contains("DOCKER_CERT_PATH='/home/op/docker tls/clients/alice'"),
            "{text}"
        );
    }

    #[test]
    fn next_steps_lead_with_install_and_name_the_drop_in_install_writes() {
        let text = next_steps(&NextSteps {
            dir: Path::new("/home/op/pki"),
            server: "example.com",
            install_dir: Path::new("/srv/docker-tls"),
            docker_host: "tcp://example.com:2376",
            client: "alice",
            context: "example.com",
        });
        let dry_run = text.find("dockertls install --from /root/dockertls --dry-run");
        assert!(
            text.contains("/home/op/pki/servers/example.com ("),
            "{text}"
        );
        let by_hand = text.find("install -d -m 0700");
        assert!(
            dry_run.is_some() && dry_run < by_hand && by_hand.is_some(),
            "{text}"
        );
        // The same drop-in name as install's, never a second one beside it.
        let dropin = crate::install::DROPIN;
        assert!(
            text.contains(&format!("override.conf {dropin}\n")),
            "{text}"
        );
        assert!(!text.contains("/dockertls.conf"), "{text}");
        assert!(override_conf(Path::new("/usr/bin/dockerd")).contains(&format!("#   {dropin}\n")));
        // The dockerd path differs by package: both named, and how to check.
        assert!(text.contains("/usr/sbin/dockerd") && text.contains("command -v dockerd"));
        // The PKI's real install folder, in the install hint and the by-hand steps.
        assert!(text.contains("/srv/docker-tls (root only)"), "{text}");
        assert!(text.contains("install -d -m 0700 -o root -g root /srv/docker-tls\n"));
        assert!(!text.contains("/etc/docker/tls"), "{text}");
    }

    #[test]
    fn shell_quote_quotes_only_when_needed() {
        assert_eq!(shell_quote("/a/b"), "/a/b");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        // bash's brace expansion and history, which shell-words leaves bare.
        assert_eq!(shell_quote("/tmp/{a,b}"), "'/tmp/{a,b}'");
        assert_eq!(shell_quote("a!b^c"), "'a!b^c'");
        assert_eq!(shell_quote("/tmp/caf\u{e9}"), "'/tmp/caf\u{e9}'");
        assert_eq!(shell_quote("-n"), "'-n'");
    }

    #[test]
    fn docker_context_fields_with_commas_or_quotes_are_csv_quoted() {
        assert_eq!(
            docker_context_value(&[("host", "tcp://h:2376"), ("ca", "/p/ca.pem")]),
            "host=tcp://h:2376,ca=/p/ca.pem"
        );
        assert_eq!(
            docker_context_value(&[("ca", "/x,host=tcp://evil:1/ca.pem"), ("key", "/q\"/k")]),
            r#""ca=/x,host=tcp://evil:1/ca.pem","key=/q""/k""#
        );
    }

    #[test]
    fn fish_quote_escapes_only_backslash_and_quote() {
        assert_eq!(fish_quote("/a/b"), "'/a/b'");
        assert_eq!(fish_quote(r"it's a \ $(x)"), r"'it\'s a \\ $(x)'");
        assert_eq!(fish_quote("a\nb"), "'a\nb'");
        assert_eq!(fish_quote(""), "''");
    }

    /// PowerShell is not packaged for Debian, so its quoting is checked here against its
    /// documented rules instead of by a real pwsh: a verbatim string '...' ends at any of the
    /// five single-quote characters unless the next one is also a single quote, in which case
    /// the pair stands for its second character. This decoder follows that rule (the tokenizer's
    /// ScanStringLiteral) and must give back exactly the input.
    fn powershell_unquote(quoted: &str) -> Option<String> {
        let mut chars = quoted.chars().peekable();
        if !POWERSHELL_SINGLE_QUOTES.contains(&chars.next()?) {
            return None;
        }
        let mut out = String::new();
        while let Some(c) = chars.next() {
            if POWERSHELL_SINGLE_QUOTES.contains(&c) {
                match chars.peek() {
                    Some(next) if POWERSHELL_SINGLE_QUOTES.contains(next) => {
                        out.push(chars.next()?);
                    }
                    // The string ended: nothing may follow it.
                    _ => return chars.next().is_none().then_some(out),
                }
            } else {
                out.push(c);
            }
        }
        None
    }

    #[test]
    fn powershell_quote_doubles_every_single_quote_character() {
        assert_eq!(powershell_quote("/a/b"), "'/a/b'");
        assert_eq!(powershell_quote("it's"), "'it''s'");
        assert_eq!(powershell_quote("a\u{2019}b"), "'a\u{2019}\u{2019}b'");
        assert_eq!(powershell_quote("$(x) `y` \"z\""), "'$(x) `y` \"z\"'");
        for word in [
            "",
            "plain",
            "it's",
            "\u{2018}\u{2019}\u{201A}\u{201B}'",
            "'; Remove-Item -Recurse C:\\ ; '",
            "\u{2019}; calc; \u{2018}",
            "$env:PATH `n\n\"\u{201C}\u{201D}",
        ] {
            let quoted = powershell_quote(word);
            assert_eq!(
                powershell_unquote(&quoted).as_deref(),
                Some(word),
                "{quoted}"
            );
        }
        // The decoder does catch a string that a smart quote ends early.
        assert_eq!(powershell_unquote("'a\u{2019}b'"), None);
    }

    proptest::proptest! {
        #[test]
        fn powershell_quote_round_trips(word in "\\PC*|['\u{2018}\u{2019}\u{201A}\u{201B}a$`\"\n]*") {
            proptest::prop_assert_eq!(powershell_unquote(&powershell_quote(&word)), Some(word));
        }
    }
}
