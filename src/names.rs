//! Validation of the names that end up in certificates and paths: the addresses the daemon is
//! dialled at (SANs) and client names (CN and folder name). Pure: no I/O.

use std::fmt;
use std::net::IpAddr;

/// One subject alternative name of the server certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// A DNS name, lower-cased, without a trailing dot.
    Dns(String),
    /// An IP address; IPv4 is always kept as 4 bytes.
    Ip(IpAddr),
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Dns(name) => f.write_str(name),
            Address::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// The DNS and IP SANs of a certificate, in order (other kinds are skipped; a malformed IP
/// length is skipped too: `verify`'s `san` check reports it).
pub fn certificate_sans(cert: &x509_parser::certificate::X509Certificate<'_>) -> Vec<Address> {
    use x509_parser::extensions::GeneralName;
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(Address::Dns(dns.to_string())),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes)
                    .ok()
                    .map(|b| Address::Ip(b.into())),
                16 => <[u8; 16]>::try_from(*bytes)
                    .ok()
                    .map(|b| Address::Ip(b.into())),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// An address that parsed, with a note when it was normalised.
#[derive(Debug)]
pub struct ParsedAddress {
    pub address: Address,
    pub note: Option<String>,
}

/// Parses what a user gave to `--host` or `--allow` (named by `flag` in messages).
pub fn parse_address(flag: &str, input: &str) -> Result<ParsedAddress, String> {
    // The value is cut in messages (a 100 KB argument would hide the reason).
    let shown = crate::escape::value(input);
    let why = |reason: String| format!("{flag} '{shown}': {reason}");
    if input.is_empty() {
        return Err(format!("{flag} is empty: give a DNS name or an IP address"));
    }
    if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(why("contains white space or a control character".into()));
    }
    if let Some((scheme, rest)) = input.split_once("://") {
        let bare = rest.split(['/', ':']).next().unwrap_or_default();
        return Err(why(format!(
            "is a URL ({}://); pass the bare name or IP: {flag} {} (the port goes in --listen)",
            crate::escape::value(scheme),
            crate::escape::value(bare)
        )));
    }
    // "[::1]" is a common way to write an IPv6 address; "[::1]:2376" carries a port.
    let unbracketed = match input.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((inner, "")) => inner,
            Some((inner, _)) => {
                return Err(why(format!(
                    "includes a port; pass the bare address: {flag} {} (the port goes in --listen)",
                    crate::escape::value(inner)
                )));
            }
            None => return Err(why("has '[' without a closing ']'".into())),
        },
        None => input,
    };
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return parse_ip(ip).map_err(why);
    }
    if unbracketed.contains('%') {
        return Err(why(
            "an IPv6 zone (%interface) cannot be in a certificate; pass the address alone".into(),
        ));
    }
    if let Some((host, port)) = input.rsplit_once(':') {
        if !host.contains(':') && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(why(format!(
                "includes a port; pass the bare name: {flag} {} (the port goes in --listen)",
                crate::escape::value(host)
            )));
        }
        return Err(why("is not a valid IP address or DNS name".into()));
    }
    if input.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(why("is not a valid IPv4 address".into()));
    }
    let name = parse_dns_name(input).map_err(why)?;
    Ok(ParsedAddress {
        address: Address::Dns(name),
        note: None,
    })
}

fn parse_ip(ip: IpAddr) -> Result<ParsedAddress, String> {
    if ip.is_unspecified() {
        return Err(
            "is a bind address, not one clients dial: list the addresses clients dial".into(),
        );
    }
    if ip.is_multicast() {
        return Err("is a multicast address: list the addresses clients dial".into());
    }
    if let IpAddr::V6(v6) = ip
        && let Some(v4) = v6.to_ipv4_mapped()
    {
        // OpenSSL and pyca refuse an IPv4 SAN stored as IPv4-mapped IPv6; Go accepts it.
        return Ok(ParsedAddress {
            address: Address::Ip(IpAddr::V4(v4)),
            note: Some(format!(
                "{ip} is IPv4-mapped: stored as the IPv4 address {v4}"
            )),
        });
    }
    Ok(ParsedAddress {
        address: Address::Ip(ip),
        note: None,
    })
}

/// Checks a DNS name as RFC 1035 host syntax (letters, digits, hyphens), returning it in
/// lower case.
fn parse_dns_name(input: &str) -> Result<String, String> {
    if input.contains('*') {
        return Err("wildcards are not allowed: list each name the daemon is reached at".into());
    }
    if let Some(bare) = input.strip_suffix('.') {
        return Err(format!(
            "ends with a dot, which Go's TLS refuses; pass {}",
            crate::escape::value(bare)
        ));
    }
    if input.len() > 253 {
        return Err(format!(
            "is {} characters long; a DNS name has at most 253",
            input.len()
        ));
    }
    for label in input.split('.') {
        if label.is_empty() {
            return Err("has an empty label (two dots in a row, or a leading dot)".into());
        }
        if label.len() > 63 {
            return Err(format!(
                "has a label of {} characters; a DNS label has at most 63",
                label.len()
            ));
        }
        if let Some(bad) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!(
                "'{bad}' is not allowed in a DNS name (letters, digits, '-' and '.' only)"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("the label '{label}' starts or ends with '-'"));
        }
    }
    Ok(input.to_ascii_lowercase())
}

/// The longest client name: a certificate's CN holds at most 64 characters (RFC 5280).
pub const CLIENT_NAME_MAX: usize = 64;

/// Checks a client name: the certificate's CN and one safe path component (`clients/NAME`).
pub fn parse_client_name(input: &str) -> Result<String, String> {
    let shown = crate::escape::value(input);
    let why = |reason: &str| format!("--client '{shown}': {reason}");
    if input.is_empty() {
        return Err("--client is empty: give a user name such as alice".into());
    }
    if input.contains('/') || input.contains('\\') {
        return Err(why(
            "must be one path component (it names the folder clients/NAME): no '/' or '\\'",
        ));
    }
    if input.starts_with('.') {
        return Err(why("must not start with '.' (hidden or relative folder)"));
    }
    if input.chars().count() > CLIENT_NAME_MAX {
        return Err(why(
            "is longer than 64 characters, the most a certificate CN holds",
        ));
    }
    if let Some(bad) = input
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')))
    {
        return Err(format!(
            "--client '{shown}': '{}' is not allowed (letters, digits, '.', '_', '-', '@')",
            bad.escape_default()
        ));
    }
    if input.starts_with('-') {
        return Err(why("must not start with '-'"));
    }
    Ok(input.to_string())
}

/// The DOCKER_HOST for a daemon dialled at `host` on `port` (an IPv6 address in brackets).
pub fn docker_host(host: &Address, port: u16) -> String {
    match host {
        Address::Ip(std::net::IpAddr::V6(v6)) => format!("tcp://[{v6}]:{port}"),
        other => format!("tcp://{other}:{port}"),
    }
}

/// The docker context dockertls names for `host`: `dockertls-HOST`, with every character but
/// letters, digits, '.' and '-' turned into '-'.
pub fn context_name(host: &Address) -> String {
    let name: String = host
        .to_string()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("dockertls-{}", name.trim_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> Address {
        parse_address("--allow", input).unwrap().address
    }
    fn err(input: &str) -> String {
        parse_address("--allow", input).unwrap_err()
    }

    #[test]
    fn accepts_names_and_ips() {
        assert_eq!(ok("Example.COM"), Address::Dns("example.com".into()));
        assert_eq!(ok("localhost"), Address::Dns("localhost".into()));
        assert_eq!(
            ok("192.168.1.1"),
            Address::Ip("192.168.1.1".parse().unwrap())
        );
        assert_eq!(
            ok("[2001:db8::1]"),
            Address::Ip("2001:db8::1".parse().unwrap())
        );
        assert_eq!(ok("a-b.c1"), Address::Dns("a-b.c1".into()));
    }

    #[test]
    fn ipv4_mapped_becomes_ipv4_with_a_note() {
        let parsed = parse_address("--allow", "::ffff:10.0.0.1").unwrap();
        assert_eq!(parsed.address, Address::Ip("10.0.0.1".parse().unwrap()));
        assert!(parsed.note.unwrap().contains("10.0.0.1"));
    }

    #[test]
    fn refuses_bad_input_naming_value_and_reason() {
        for (input, reason) in [
            ("", "empty"),
            ("a..b", "empty label"),
            (".a", "empty label"),
            (&"x".repeat(64), "at most 63"),
            ("host.", "ends with a dot"),
            ("my host", "white space"),
            ("*.example.com", "wildcard"),
            ("host:2376", "includes a port"),
            ("tcp://host:2376", "is a URL"),
            ("[::1]:2376", "includes a port"),
            ("0.0.0.0", "bind address"),
            ("::", "bind address"),
            ("256.1.1.1", "not a valid IPv4"),
            ("1.2.3", "not a valid IPv4"),
            ("fe80::1%eth0", "zone"),
            ("a_b", "'_' is not allowed"),
            ("-a", "starts or ends with '-'"),
            ("1:2:3", "not a valid IP"),
        ] {
            let message = err(input);
            assert!(message.contains(reason), "{input:?}: {message}");
            if !input.is_empty() {
                assert!(message.contains(&format!("'{input}'")), "{message}");
            }
        }
        let long = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(63),
        ]
        .join(".");
        assert!(err(&long).contains("at most 253"));
    }

    #[test]
    fn client_names_are_one_safe_path_component() {
        assert_eq!(parse_client_name("alice").unwrap(), "alice");
        assert_eq!(
            parse_client_name("ci-bot_2@example.com").unwrap(),
            "ci-bot_2@example.com"
        );
        for (input, reason) in [
            ("", "empty"),
            ("../x", "one path component"),
            ("a/b", "one path component"),
            (".hidden", "start with '.'"),
            ("..", "start with '.'"),
            ("a b", "not allowed"),
            ("-rf", "start with '-'"),
            ("é", "not allowed"),
        ] {
            let message = parse_client_name(input).unwrap_err();
            assert!(message.contains(reason), "{input:?}: {message}");
        }
        assert!(
            parse_client_name(&"a".repeat(65))
                .unwrap_err()
                .contains("64")
        );
    }
}
