//! How dockerd reads one `hosts` entry of daemon.json (or one `-H` flag): what it listens on,
//! or why it refuses to start. Pure; follows moby 20.10's `opts.ParseHost`, `parseDaemonHost`
//! and `ParseTCPAddr` (opts/hosts.go), the parts of Go's `net/url.Parse` and
//! `net.SplitHostPort` they rely on, and what `daemon/listeners` then does with the result on
//! Linux. Every case here was also checked against a real dockerd 20.10.24.

use std::fmt;

/// dockerd's unix socket when `unix://` names none.
pub const DEFAULT_UNIX_SOCKET: &str = "/var/run/docker.sock";
/// dockerd's port when a tcp host names none (IANA's docker port).
pub const DEFAULT_HTTP_PORT: u16 = 2375;
/// dockerd's port for an empty host when TLS is on (`dockerd --tlsverify` alone).
pub const DEFAULT_TLS_PORT: u16 = 2376;
/// dockerd's host when a tcp entry names none (`tcp://:2375`, `:2375`).
pub const DEFAULT_HTTP_HOST: &str = "localhost";

/// What one hosts entry makes dockerd listen on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listener {
    /// A TCP socket: the API is reachable over the network (or from every local process).
    Tcp { host: String, port: u16 },
    /// A unix socket at this path.
    Unix(String),
    /// The sockets systemd passed in (`fd://`, `fd://*` or `fd://N`): whatever docker.socket's
    /// `ListenStream=` lines say, which may be TCP too.
    Fd(String),
}

impl Listener {
    /// Whether the API is reachable over TCP through this listener (`Fd` may be: see its doc).
    pub fn is_tcp(&self) -> bool {
        matches!(self, Listener::Tcp { .. })
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listener::Tcp { host, port } => {
                write!(f, "tcp://{}", join_host_port(host, &port.to_string()))
            }
            Listener::Unix(path) => write!(f, "unix://{path}"),
            Listener::Fd(which) => write!(f, "fd://{which}"),
        }
    }
}

/// Parses one hosts entry as dockerd does. `tls` is whether dockerd runs with TLS on (daemon.json
/// `tls` or `tlsverify`): it decides what an empty entry means. Err carries why dockerd refuses
/// to start with this entry, in dockerd's own words where it has them.
pub fn parse_daemon_host(entry: &str, tls: bool) -> Result<Listener, String> {
    // Go's strings.TrimSpace and Rust's trim both strip Unicode White_Space.
    let host = entry.trim();
    if host.is_empty() {
        return Ok(if tls {
            Listener::Tcp {
                host: DEFAULT_HTTP_HOST.into(),
                port: DEFAULT_TLS_PORT,
            }
        } else {
            Listener::Unix(DEFAULT_UNIX_SOCKET.into())
        });
    }
    // No "://" at all means tcp; the scheme is compared case-sensitively ("TCP://" is refused).
    let (scheme, rest) = host.split_once("://").unwrap_or(("tcp", host));
    match scheme {
        "tcp" => parse_tcp(rest),
        "unix" => {
            let path = rest.strip_prefix("unix://").unwrap_or(rest);
            if path.contains("://") {
                return Err(format!(
                    "Invalid proto, expected unix: {}",
                    crate::escape::value(path)
                ));
            }
            Ok(Listener::Unix(if path.is_empty() {
                DEFAULT_UNIX_SOCKET.into()
            } else {
                path.into()
            }))
        }
        // Valid on Windows only: on Linux the listener code knows no such protocol.
        "npipe" => {
            Err("invalid protocol format: \"npipe\" (named pipes exist on Windows only)".into())
        }
        "fd" => {
            if rest.is_empty() || rest == "*" || rest.parse::<i64>().is_ok() {
                Ok(Listener::Fd(rest.into()))
            } else {
                Err(format!(
                    "failed to parse systemd fd address: should be a number: {}",
                    crate::escape::value(rest)
                ))
            }
        }
        _ => Err(format!(
            "Invalid bind address format: {}",
            crate::escape::value(host)
        )),
    }
}

/// `ParseTCPAddr(addr, "tcp://localhost:2375")`, then what `net.Listen` refuses.
fn parse_tcp(try_addr: &str) -> Result<Listener, String> {
    let default = || Listener::Tcp {
        host: DEFAULT_HTTP_HOST.into(),
        port: DEFAULT_HTTP_PORT,
    };
    if try_addr.is_empty() || try_addr == "tcp://" {
        return Ok(default());
    }
    let addr = try_addr.strip_prefix("tcp://").unwrap_or(try_addr);
    if addr.contains("://") || addr.is_empty() {
        return Err(format!(
            "Invalid proto, expected tcp: {}",
            crate::escape::value(try_addr)
        ));
    }
    let mut addr = addr.to_string();
    if addr.ends_with("]:") {
        addr.push_str(&DEFAULT_HTTP_PORT.to_string());
    }
    let (host_port, path) = parse_url_host_and_path(&addr)?;
    let (host, port) = split_host_port(&host_port)
        .or_else(|_| split_host_port(&join_host_port(&host_port, "2375")))
        .map_err(|_| {
            format!(
                "Invalid bind address format: {}",
                crate::escape::value(try_addr)
            )
        })?;
    let host = if host.is_empty() {
        DEFAULT_HTTP_HOST.to_string()
    } else {
        host
    };
    let port = if port.is_empty() { "2375".into() } else { port };
    // dockerd keeps a path ("tcp://h:2376/x") and then fails to listen on "h:2376/x".
    if !path.is_empty() {
        return Err(format!(
            "listen tcp: address {}: unknown port",
            crate::escape::value(&format!("{}{path}", join_host_port(&host, &port)))
        ));
    }
    // The url parser lets only digits through; Go's Listen refuses a port over 65535.
    let port = port.parse::<u16>().map_err(|_| {
        format!(
            "listen tcp: address {}: invalid port",
            crate::escape::value(&port)
        )
    })?;
    Ok(Listener::Tcp { host, port })
}

/// `url.Parse("tcp://" + addr)`: the decoded `host[:port]` and path, or Go's refusal.
fn parse_url_host_and_path(addr: &str) -> Result<(String, String), String> {
    let quoted = format!("parse \"tcp://{}\"", crate::escape::value(addr));
    let (before_fragment, fragment) = addr.split_once('#').unwrap_or((addr, ""));
    if before_fragment.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(format!(
            "{quoted}: net/url: invalid control character in URL"
        ));
    }
    // A trailing lone "?" is dropped; otherwise the query starts at the first "?".
    let rest = match before_fragment.strip_suffix('?') {
        Some(stripped) if !stripped.contains('?') => stripped,
        _ => before_fragment
            .split_once('?')
            .map_or(before_fragment, |(r, _)| r),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let host = match authority.rfind('@') {
        Some(i) => {
            let userinfo = &authority[..i];
            if !userinfo
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._:~!$&'()*+,;=%@".contains(c))
            {
                return Err(format!("{quoted}: net/url: invalid userinfo"));
            }
            unescape(userinfo, Mode::Other).map_err(|e| format!("{quoted}: {e}"))?;
            parse_url_host(&authority[i + 1..])
        }
        None => parse_url_host(authority),
    }
    .map_err(|e| format!("{quoted}: {e}"))?;
    let path = unescape(path, Mode::Other).map_err(|e| format!("{quoted}: {e}"))?;
    unescape(fragment, Mode::Other).map_err(|e| format!("{quoted}: {e}"))?;
    Ok((host, path))
}

/// Go's `url.parseHost`.
fn parse_url_host(host: &str) -> Result<String, String> {
    if host.starts_with('[') {
        let Some(end) = host.rfind(']') else {
            return Err("missing ']' in host".into());
        };
        let colon_port = &host[end + 1..];
        if !valid_optional_port(colon_port) {
            return Err(format!(
                "invalid port \"{}\" after host",
                crate::escape::value(colon_port)
            ));
        }
        // An IPv6 zone ("[fe80::1%25eth0]") is decoded by laxer rules.
        if let Some(zone) = host[..end].find("%25") {
            return Ok(unescape(&host[..zone], Mode::Host)?
                + &unescape(&host[zone..end], Mode::Zone)?
                + &unescape(&host[end..], Mode::Host)?);
        }
    } else if let Some(i) = host.rfind(':') {
        let colon_port = &host[i..];
        if !valid_optional_port(colon_port) {
            return Err(format!(
                "invalid port \"{}\" after host",
                crate::escape::value(colon_port)
            ));
        }
    }
    unescape(host, Mode::Host)
}

/// ":" followed by digits only, or nothing.
fn valid_optional_port(port: &str) -> bool {
    port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|digits| digits.bytes().all(|b| b.is_ascii_digit()))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Host,
    Zone,
    Other,
}

/// Characters Go's url parser refuses unescaped in a host.
fn host_needs_escape(c: u8) -> bool {
    !(c.is_ascii_alphanumeric() || b"-_.~$&'()*+,;=:[]<>\"".contains(&c))
}

/// Go's `url.unescape` in the modes the tcp parser uses.
fn unescape(s: &str, mode: Mode) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'%' {
            let hex = |b: u8| (b as char).to_digit(16);
            let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) else {
                let bad: String = s[i..].chars().take(3).collect();
                return Err(format!("invalid URL escape \"{bad}\""));
            };
            let escape = &s[i..i + 3];
            let value = (hi * 16 + lo) as u8;
            // In a host, %-encoding is only for non-ASCII bytes (and %25 in a zone).
            if mode == Mode::Host && hi < 8 && escape != "%25" {
                return Err(format!("invalid URL escape \"{escape}\""));
            }
            if mode == Mode::Zone && escape != "%25" && value != b' ' && host_needs_escape(value) {
                return Err(format!("invalid URL escape \"{escape}\""));
            }
            out.push(value);
            i += 3;
            continue;
        }
        if mode != Mode::Other && c < 0x80 && host_needs_escape(c) {
            return Err(format!("invalid character \"{}\" in host name", c as char));
        }
        out.push(c);
        i += 1;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Go's `net.SplitHostPort`.
fn split_host_port(hostport: &str) -> Result<(String, String), &'static str> {
    let Some(i) = hostport.rfind(':') else {
        return Err("missing port in address");
    };
    let (host, j, k) = if hostport.starts_with('[') {
        let Some(end) = hostport.find(']') else {
            return Err("missing ']' in address");
        };
        if end + 1 == hostport.len() {
            return Err("missing port in address");
        }
        if end + 1 != i {
            return Err(if hostport.as_bytes()[end + 1] == b':' {
                "too many colons in address"
            } else {
                "missing port in address"
            });
        }
        (&hostport[1..end], 1, end + 1)
    } else {
        let host = &hostport[..i];
        if host.contains(':') {
            return Err("too many colons in address");
        }
        (host, 0, 0)
    };
    if hostport[j..].contains('[') {
        return Err("unexpected '[' in address");
    }
    if hostport[k..].contains(']') {
        return Err("unexpected ']' in address");
    }
    Ok((host.to_string(), hostport[i + 1..].to_string()))
}

/// Go's `net.JoinHostPort`: brackets around a host holding a colon.
fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The port of the first `tcp://HOST:PORT` in daemon.json's `hosts` (a JSON array); None
/// when no entry names one.
pub fn first_tcp_port(hosts: &serde_json::Value) -> Option<u16> {
    // Read as dockerd reads each entry: "127.0.0.1:3000" and ":4000" are TCP listeners too,
    // and "tcp://0.0.0.0:2376x" is no listener at all. TLS is on in a PKI's daemon.json, and
    // it only matters for an empty entry (whose default port is then 2376).
    hosts
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h.as_str())
        .find_map(|entry| match parse_daemon_host(entry, true) {
            Ok(Listener::Tcp { port, .. }) => Some(port),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> Result<Listener, String> {
        Ok(Listener::Tcp {
            host: host.into(),
            port,
        })
    }

    #[test]
    fn the_first_tcp_port_is_read_as_dockerd_reads_hosts() {
        let port = |hosts: serde_json::Value| first_tcp_port(&hosts);
        assert_eq!(port(serde_json::json!(["127.0.0.1:3000"])), Some(3000));
        assert_eq!(
            port(serde_json::json!(["unix:///run/docker.sock", ":4000"])),
            Some(4000)
        );
        assert_eq!(port(serde_json::json!(["tcp://0.0.0.0:2376x"])), None);
        assert_eq!(
            port(serde_json::json!(["fd://", "tcp://[::1]:2377"])),
            Some(2377)
        );
        assert_eq!(port(serde_json::json!("tcp://0.0.0.0:2376")), None);
    }

    #[test]
    fn entries_without_a_scheme_are_tcp() {
        assert_eq!(
            parse_daemon_host("127.0.0.1:23750", false),
            tcp("127.0.0.1", 23750)
        );
        assert_eq!(parse_daemon_host(":2375", false), tcp("localhost", 2375));
        assert_eq!(parse_daemon_host("0.0.0.0", false), tcp("0.0.0.0", 2375));
        assert_eq!(
            parse_daemon_host("docker.example.com:2376", true),
            tcp("docker.example.com", 2376)
        );
        // A path without a scheme is a tcp host too, and dockerd then cannot listen.
        assert!(
            parse_daemon_host("/var/run/docker.sock", false)
                .unwrap_err()
                .contains("unknown port")
        );
    }

    #[test]
    fn whitespace_is_trimmed_and_empty_means_the_default() {
        assert_eq!(
            parse_daemon_host("  tcp://127.0.0.1:2376\t\n", false),
            tcp("127.0.0.1", 2376)
        );
        assert_eq!(
            parse_daemon_host("\u{a0}127.0.0.1:1\u{2003}", false),
            tcp("127.0.0.1", 1)
        );
        assert_eq!(
            parse_daemon_host(" ", false),
            Ok(Listener::Unix(DEFAULT_UNIX_SOCKET.into()))
        );
        assert_eq!(parse_daemon_host("", true), tcp("localhost", 2376));
    }

    #[test]
    fn tcp_defaults_fill_an_empty_host_or_port() {
        assert_eq!(parse_daemon_host("tcp://", false), tcp("localhost", 2375));
        assert_eq!(
            parse_daemon_host("tcp://tcp://", true),
            tcp("localhost", 2375)
        );
        assert_eq!(
            parse_daemon_host("tcp://:2376", false),
            tcp("localhost", 2376)
        );
        assert_eq!(
            parse_daemon_host("tcp://10.0.0.1", false),
            tcp("10.0.0.1", 2375)
        );
        assert_eq!(
            parse_daemon_host("tcp://10.0.0.1:", false),
            tcp("10.0.0.1", 2375)
        );
        assert_eq!(
            parse_daemon_host("tcp://tcp://10.0.0.1:5", false),
            tcp("10.0.0.1", 5)
        );
        assert_eq!(
            parse_daemon_host("tcp://10.0.0.1:0", false),
            tcp("10.0.0.1", 0)
        );
        assert_eq!(
            parse_daemon_host("tcp://10.0.0.1:02376", false),
            tcp("10.0.0.1", 2376)
        );
    }

    #[test]
    fn ipv6_with_and_without_brackets() {
        assert_eq!(
            parse_daemon_host("tcp://[::1]:2376", false),
            tcp("::1", 2376)
        );
        assert_eq!(parse_daemon_host("tcp://[::1]:", false), tcp("::1", 2375));
        // Brackets without a port: dockerd refuses ("Invalid bind address format: [::1]").
        assert!(parse_daemon_host("tcp://[::1]", false).is_err());
        // Unbracketed: the whole text is the host (measured: dockerd listened on [::1]:2375).
        assert_eq!(parse_daemon_host("tcp://::1", false), tcp("::1", 2375));
        assert_eq!(
            parse_daemon_host("tcp://::1:2376", false),
            tcp("::1:2376", 2375)
        );
        assert_eq!(
            parse_daemon_host("tcp://[fe80::1%25eth0]:2376", false),
            tcp("fe80::1%eth0", 2376)
        );
        assert!(parse_daemon_host("tcp://[::1", false).is_err());
        assert!(parse_daemon_host("tcp://[::1]x", false).is_err());
    }

    #[test]
    fn url_parts_dockerd_drops_or_refuses() {
        // Userinfo, a query and a fragment are dropped (measured: dockerd listened).
        assert_eq!(
            parse_daemon_host("tcp://u:p@127.0.0.1:2376", false),
            tcp("127.0.0.1", 2376)
        );
        assert_eq!(
            parse_daemon_host("tcp://127.0.0.1:2376?x=1", false),
            tcp("127.0.0.1", 2376)
        );
        assert_eq!(
            parse_daemon_host("tcp://127.0.0.1:2376#x", false),
            tcp("127.0.0.1", 2376)
        );
        assert_eq!(
            parse_daemon_host("tcp://127.0.0.1:2376?", false),
            tcp("127.0.0.1", 2376)
        );
        // Each of these made the real dockerd refuse to start.
        for refused in [
            "tcp://127.0.0.1:2376/path",
            "tcp://127.0.0.1:2376#%zz",
            "tcp://127.0.0.%31:2376",
            "tcp://127.0.0.1:2376\u{1}",
            "tcp://127.0.0.1:99999",
            "tcp://127.0.0.1:2376x",
            "tcp://127.0.0.1 :2376",
            "tcp://a b@127.0.0.1:2376",
        ] {
            assert!(parse_daemon_host(refused, false).is_err(), "{refused:?}");
        }
    }

    #[test]
    fn other_schemes() {
        assert_eq!(
            parse_daemon_host("unix:///run/d.sock", false),
            Ok(Listener::Unix("/run/d.sock".into()))
        );
        assert_eq!(
            parse_daemon_host("unix://", true),
            Ok(Listener::Unix(DEFAULT_UNIX_SOCKET.into()))
        );
        assert_eq!(
            parse_daemon_host("unix://unix:///x", false),
            Ok(Listener::Unix("/x".into()))
        );
        assert!(parse_daemon_host("unix://a://b", false).is_err());
        assert_eq!(
            parse_daemon_host("fd://", false),
            Ok(Listener::Fd(String::new()))
        );
        assert_eq!(
            parse_daemon_host("fd://3", false),
            Ok(Listener::Fd("3".into()))
        );
        assert!(parse_daemon_host("fd://x", false).is_err());
        for refused in [
            "TCP://127.0.0.1:2376",
            "Unix:///x",
            "ssh://127.0.0.1",
            "npipe:////./pipe/docker_engine",
            "http://127.0.0.1:2375",
            "://x",
        ] {
            assert!(parse_daemon_host(refused, false).is_err(), "{refused:?}");
        }
    }

    #[test]
    fn listeners_print_as_dockerd_names_them() {
        assert_eq!(
            parse_daemon_host("::1", false).unwrap().to_string(),
            "tcp://[::1]:2375"
        );
        assert_eq!(
            parse_daemon_host(":1", false).unwrap().to_string(),
            "tcp://localhost:1"
        );
        assert_eq!(
            parse_daemon_host("unix://", false).unwrap().to_string(),
            "unix:///var/run/docker.sock"
        );
    }
}
