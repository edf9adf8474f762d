//! The SSH layer of `deploy`: the target `[USER@]HOST[:PORT]`, the `--ssh-option` values, and
//! the system's `ssh` run without a shell on this side (so ~/.ssh/config, the agent,
//! known_hosts and ProxyJump work as they do for the operator). Host-key checking is never
//! turned off: the options are checked one by one, then the configuration ssh will really use
//! (`ssh -G`, which includes ~/.ssh/config) is checked again.

use std::io::{Read, Write};
use std::net::Ipv6Addr;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::Error;

/// Seconds ssh may take to connect (ssh's `ConnectTimeout`); a user's own option wins.
const CONNECT_TIMEOUT_SECS: u32 = 10;
/// How long a shared connection outlives its last use if `ssh -O exit` never comes.
const CONTROL_PERSIST_SECS: u32 = 30;
/// The most of a remote command's stdout or stderr kept (a hostile host cannot fill memory).
const MAX_OUTPUT: u64 = 1 << 20;

/// Where to deploy: `[USER@]HOST[:PORT]`, checked so that no part can be read by ssh as an
/// option or carry a control character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub user: Option<String>,
    /// A DNS name, an ssh config alias, or an IP address (IPv6 without brackets).
    pub host: String,
    pub port: Option<u16>,
}

impl Target {
    /// Parses `[USER@]HOST[:PORT]`; IPv6 in brackets when a port follows (`[::1]:22`).
    pub fn parse(text: &str) -> Result<Target, Error> {
        let bad = |why: &str| {
            Error::refused(format!(
                "host '{}': {why}",
                crate::escape::value(text)
            ))
            .hint("give [USER@]HOST[:PORT], e.g. root@docker1.example.com or admin@[2001:db8::1]:2222")
        };
        if text.is_empty() || text.len() > 255 {
            return Err(bad("give 1 to 255 characters"));
        }
        if text.starts_with('-') {
            return Err(bad(
                "it must not start with '-' (ssh would read it as an option)",
            ));
        }
        if text.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad("control characters and spaces are not allowed"));
        }
        let (user, rest) = match text.split_once('@') {
            Some((user, rest)) => (Some(user), rest),
            None => (None, text),
        };
        if let Some(user) = user
            && (user.is_empty()
                || user.starts_with('-')
                || !user
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)))
        {
            return Err(bad(
                "the user name may hold letters, digits, '.', '_' and '-'",
            ));
        }
        let (host, port) = split_port(rest).map_err(&bad)?;
        let dns_like = !host.is_empty()
            && !host.starts_with(['-', '.'])
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !dns_like && host.parse::<Ipv6Addr>().is_err() {
            return Err(bad(
                "the host must be a DNS name, an ssh alias or an IP address",
            ));
        }
        Ok(Target {
            user: user.map(str::to_string),
            host: host.to_string(),
            port,
        })
    }

    /// As the operator wrote it, for messages and the state file.
    pub fn display(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let user = self
            .user
            .as_ref()
            .map_or(String::new(), |u| format!("{u}@"));
        let port = self.port.map_or(String::new(), |p| format!(":{p}"));
        format!("{user}{host}{port}")
    }
}

/// `HOST[:PORT]` or `[IPV6][:PORT]` into the host and the port.
fn split_port(text: &str) -> Result<(&str, Option<u16>), &'static str> {
    let parse_port = |p: &str| match p.parse::<u16>() {
        Ok(port) if port > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(port)),
        _ => Err("the port must be a number from 1 to 65535"),
    };
    if let Some(inner) = text.strip_prefix('[') {
        let (ip, after) = inner
            .split_once(']')
            .ok_or("a '[' without its ']' around an IPv6 address")?;
        if ip.parse::<Ipv6Addr>().is_err() {
            return Err("only an IPv6 address goes in brackets");
        }
        return match after {
            "" => Ok((ip, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((ip, parse_port(port)?)),
                None => Err("after ']' only ':PORT' may follow"),
            },
        };
    }
    match text.matches(':').count() {
        0 => Ok((text, None)),
        1 => {
            let (host, port) = text.split_once(':').unwrap_or((text, ""));
            Ok((host, parse_port(port)?))
        }
        // A bare IPv6 address (no port possible without brackets).
        _ => Ok((text, None)),
    }
}

/// One `--ssh-option`, checked: `Key=Value` or `Key Value`, as ssh's `-o` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshOption(String);

/// Options that would let ssh talk to a host it cannot authenticate, or prompt.
const WEAKENING: &str = "it would weaken or bypass host-key checking, which deploy never does";

impl SshOption {
    /// Checks one value of `--ssh-option`.
    pub fn parse(text: &str) -> Result<SshOption, Error> {
        let bad = |why: &str| {
            Error::refused(format!(
                "--ssh-option '{}': {why}",
                crate::escape::value(text)
            ))
            .hint("give one ssh option as Key=Value, e.g. --ssh-option IdentityFile=~/.ssh/deploy_ed25519 (ssh_config(5) lists them)")
        };
        if text.chars().any(char::is_control) {
            return Err(bad("control characters are not allowed"));
        }
        let trimmed = text.trim();
        let split = trimmed
            .find(|c: char| c == '=' || c.is_whitespace())
            .ok_or_else(|| bad("give Key=Value"))?;
        let (key, rest) = trimmed.split_at(split);
        let value = rest.trim_start().strip_prefix('=').unwrap_or(rest).trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) || value.is_empty() {
            return Err(bad("give Key=Value, the key in letters and digits"));
        }
        let lower = key.to_ascii_lowercase();
        // Only a command line may hold spaces; elsewhere a space would smuggle a second value
        // (a second known-hosts file, say) past this check.
        let spaced = matches!(lower.as_str(), "proxycommand" | "localcommand");
        if !spaced && value.chars().any(char::is_whitespace) {
            return Err(bad(
                "only ProxyCommand and LocalCommand values may hold spaces",
            ));
        }
        if let Some(why) = refusal(&lower, value) {
            let error = bad(why);
            return Err(if why == WEAKENING {
                error.hint("add the host's key to known_hosts instead: log in once with ssh and check the key, or --ssh-option StrictHostKeyChecking=accept-new for a first deploy")
            } else {
                error
            });
        }
        Ok(SshOption(format!("{key}={value}")))
    }

    /// The value given to `ssh -o`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why an option (key in lower case) cannot be taken, if it cannot.
fn refusal(key: &str, value: &str) -> Option<&'static str> {
    let lower = value.to_ascii_lowercase();
    match key {
        "stricthostkeychecking" if !matches!(lower.as_str(), "yes" | "accept-new" | "ask") => {
            Some(WEAKENING)
        }
        "userknownhostsfile" | "globalknownhostsfile" if known_hosts_off(value) => Some(WEAKENING),
        // It can answer "trusted" for any key.
        "knownhostscommand" => Some(WEAKENING),
        "batchmode" if lower != "yes" => Some("deploy never prompts: BatchMode stays yes"),
        // Not options of one connection: they would pull in other configuration.
        "include" | "match" | "host" => Some("not an option of one connection"),
        _ => None,
    }
}

/// Whether a known-hosts file list contains a file that forgets every key: `none`, /dev/null
/// however spelled (`/dev//null`, `/dev/./null`, `/dev/../dev/null`), or any path that is a
/// character device (a link to /dev/null, /dev/zero, ...).
fn known_hosts_off(list: &str) -> bool {
    list.split_whitespace().any(|file| {
        file.eq_ignore_ascii_case("none")
            || lexical(file) == Path::new("/dev/null")
            || is_char_device(file)
    })
}

/// A path with `.`, `..` and repeated slashes resolved by its text alone (no link followed).
fn lexical(file: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for part in Path::new(file).components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Whether `file` (a leading `~/` meaning $HOME, as ssh reads it) is, after links, a character
/// device: ssh would read no key from it and write none to it.
fn is_char_device(file: &str) -> bool {
    use std::os::unix::fs::FileTypeExt;
    let path = match (file.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(file),
    };
    std::fs::metadata(path).is_ok_and(|meta| meta.file_type().is_char_device())
}

/// How to run ssh towards one target. Cheap to clone (one per host of `deploy --all`).
#[derive(Debug, Clone)]
pub struct Ssh {
    pub target: Target,
    pub options: Vec<SshOption>,
    /// A private folder (0700) for the connection's control socket: the calls of one deploy
    /// to a host share one SSH connection (one handshake and one authentication instead of
    /// one a call). None: every call connects anew.
    pub control: Option<PathBuf>,
}

/// What a remote command printed, and how it ended.
pub struct Ran {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ssh {
    /// The arguments before the remote command: ours first where ours must win (ssh takes the
    /// first value it sees), the operator's next, then our defaults.
    fn base_args(&self) -> Vec<String> {
        let mut args = vec!["-o".to_string(), "BatchMode=yes".to_string()];
        for option in &self.options {
            args.push("-o".into());
            args.push(option.as_str().into());
        }
        args.push("-o".into());
        args.push(format!("ConnectTimeout={CONNECT_TIMEOUT_SECS}"));
        if let Some(path) = self.control_path() {
            // After the operator's options: a ControlMaster=no of theirs wins.
            args.extend([
                "-o".into(),
                "ControlMaster=auto".into(),
                "-o".into(),
                format!("ControlPath={path}"),
                "-o".into(),
                format!("ControlPersist={CONTROL_PERSIST_SECS}"),
            ]);
        }
        if let Some(port) = self.target.port {
            args.push("-p".into());
            args.push(port.to_string());
        }
        if let Some(user) = &self.target.user {
            args.push("-l".into());
            args.push(user.clone());
        }
        args
    }

    /// The control socket's path (ssh expands `%C` to a hash of the host, port and user), when
    /// it fits in a unix socket address with room to spare; else None (no sharing).
    fn control_path(&self) -> Option<String> {
        let folder = self.control.as_ref()?.to_str()?;
        let path = format!("{folder}/%C");
        // %C is 40 hex digits; ssh adds a random suffix while binding; sun_path is 108 bytes.
        (folder.len() + 41 + 20 < 104 && !path.contains(char::is_whitespace)).then_some(path)
    }

    /// Ends the shared connection to the host, if one was made (`ssh -O exit`); quietly:
    /// deploy's work there is done either way, and the master ends itself after
    /// [`CONTROL_PERSIST_SECS`].
    pub fn close(&self) {
        let Some(path) = self.control_path() else {
            return;
        };
        let mut args = vec!["-o".to_string(), format!("ControlPath={path}")];
        if let Some(port) = self.target.port {
            args.extend(["-p".into(), port.to_string()]);
        }
        if let Some(user) = &self.target.user {
            args.extend(["-l".into(), user.clone()]);
        }
        args.extend([
            "-O".into(),
            "exit".into(),
            "--".into(),
            self.target.host.clone(),
        ]);
        let _ = Command::new("ssh")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// The full argv of `ssh ... -- HOST COMMAND`; `remote` is already quoted for the remote
    /// shell (see [`remote_command`]).
    pub fn argv(&self, remote: &str) -> Vec<String> {
        let mut args = self.base_args();
        args.push("--".into());
        args.push(self.target.host.clone());
        args.push(remote.into());
        args
    }

    /// Refuses a configuration (options plus ~/.ssh/config and /etc/ssh/ssh_config, as ssh
    /// resolves them with `ssh -G`) that turns host-key checking off; returns the host name
    /// ssh will really connect to (an alias of ~/.ssh/config resolved).
    pub fn check_config(&self) -> Result<String, Error> {
        let mut args = vec!["-G".to_string()];
        args.extend(self.base_args());
        args.push("--".into());
        args.push(self.target.host.clone());
        let output = Command::new("ssh")
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .map_err(|err| {
                Error::refused(format!("cannot run ssh: {err}"))
                    .hint("install the OpenSSH client (Debian: apt-get install openssh-client)")
            })?;
        if !output.status.success() {
            let why = String::from_utf8_lossy(&output.stderr);
            return Err(Error::refused(format!(
                "ssh refuses the options for {}: {}",
                self.target.display(),
                crate::escape::excerpt(why.trim().lines().next().unwrap_or("no reason given"))
            ))
            .hint("check --ssh-option and ~/.ssh/config"));
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let value = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix(' '))
                .unwrap_or("")
        };
        let off = value("stricthostkeychecking") == "false"
            || known_hosts_off(value("userknownhostsfile"))
            || known_hosts_off(value("globalknownhostsfile"))
            || !value("knownhostscommand").is_empty() && value("knownhostscommand") != "none";
        if off {
            return Err(Error::refused(format!(
                "ssh's configuration for {} turns host-key checking off (StrictHostKeyChecking no, a known-hosts file /dev/null or a KnownHostsCommand): deploy never talks to a host it cannot authenticate",
                self.target.display()
            ))
            .hint("remove that setting from ~/.ssh/config (or the --ssh-option), and add the host's key with ssh once, or with StrictHostKeyChecking=accept-new"));
        }
        let hostname = value("hostname");
        Ok(if hostname.is_empty() {
            self.target.host.clone()
        } else {
            hostname.to_string()
        })
    }

    /// Runs `remote` on the host, feeding `input` on its stdin; output is bounded.
    pub fn run(&self, remote: &str, input: &[u8]) -> Result<Ran, Error> {
        let mut child = Command::new("ssh")
            .args(self.argv(remote))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| Error::failed(format!("cannot run ssh: {err}")))?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let read = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut text = Vec::new();
                if let Some(pipe) = pipe {
                    let mut limited = pipe.take(MAX_OUTPUT);
                    let _ = limited.read_to_end(&mut text);
                    // Drain the rest so the remote side is never blocked on a full pipe.
                    let _ = std::io::copy(&mut limited.into_inner(), &mut std::io::sink());
                }
                String::from_utf8_lossy(&text).into_owned()
            })
        };
        let out = read(stdout.map(|p| Box::new(p) as Box<dyn Read + Send>));
        let err = read(stderr.map(|p| Box::new(p) as Box<dyn Read + Send>));
        if let Some(mut stdin) = child.stdin.take() {
            // A host that stops reading (failed early) closes the pipe: its error says why.
            let _ = stdin.write_all(input);
        }
        let status = child
            .wait()
            .map_err(|e| Error::failed(format!("ssh: {e}")))?;
        Ok(Ran {
            status: status.code(),
            stdout: out.join().unwrap_or_default(),
            stderr: err.join().unwrap_or_default(),
        })
    }
}

/// The remote command line: `sh -c SCRIPT sh ARGS...`, every word quoted for the remote
/// shell (ssh joins its arguments with spaces and hands the line to the login shell).
pub fn remote_command(script: &str, args: &[&str]) -> String {
    let mut words = vec!["sh", "-c", script, "sh"];
    words.extend_from_slice(args);
    shell_words::join(words)
}

/// Why ssh itself failed (exit 255), in one line naming the host, with what to do.
pub fn connection_error(target: &Target, stderr: &str) -> Error {
    let host = target.display();
    let first = stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
        .unwrap_or("no reason given");
    // The remote's answer: a sentence, cut when it is a 100 KB line.
    let first = crate::escape::excerpt(first);
    if stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
        return Error::failed(format!(
            "the host key of {host} has changed: it may be another machine (or a man in the middle); nothing was sent"
        ))
        .hint(format!(
            "if the host was reinstalled, check its new key out of band, then remove the old one with: ssh-keygen -R {}",
            shell_words::quote(&known_hosts_name(target))
        ));
    }
    if stderr.contains("Host key verification failed") || stderr.contains("No ED25519 host key") {
        return Error::failed(format!(
            "the host key of {host} is not known here: deploy never trusts an unknown host; nothing was sent"
        ))
        .hint(format!(
            "check the key and add it with: ssh {} true (or --ssh-option StrictHostKeyChecking=accept-new)",
            shell_words::quote(&host)
        ));
    }
    if stderr.contains("Connection refused") {
        return Error::failed(format!(
            "cannot connect to {host}: nothing listens there (connection refused); nothing was sent"
        ))
        .hint("check the host and port, and that sshd runs there");
    }
    if stderr.contains("Permission denied") {
        return Error::failed(format!(
            "{host} refused the login ({first}); nothing was sent"
        ))
        .hint("check the user and key: ssh-add your key, or --ssh-option IdentityFile=PATH");
    }
    Error::failed(format!("ssh to {host} failed: {first}"))
        .hint(format!("try: ssh {} true", shell_words::quote(&host)))
}

/// The host as known_hosts names it (`[host]:port` for another port).
fn known_hosts_name(target: &Target) -> String {
    match target.port {
        Some(port) if port != 22 => format!("[{}]:{port}", target.host),
        _ => target.host.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(text: &str) -> Target {
        Target::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn targets_parse_with_user_port_and_ipv6() {
        assert_eq!(
            target("root@docker1.example.com:2222"),
            Target {
                user: Some("root".into()),
                host: "docker1.example.com".into(),
                port: Some(2222)
            }
        );
        assert_eq!(target("h").port, None);
        assert_eq!(target("[::1]:22").host, "::1");
        assert_eq!(target("[::1]:22").display(), "[::1]:22");
        assert_eq!(target("admin@2001:db8::1").host, "2001:db8::1");
        assert_eq!(target("a@b:7").display(), "a@b:7");
    }

    #[test]
    fn hostile_targets_are_refused() {
        for bad in [
            "",
            "-oProxyCommand=x",
            "root@-oProxyCommand=x",
            "-l@h",
            "h:0",
            "h:65536",
            "h:+22",
            "h:",
            "a b",
            "h\n",
            "h\u{1b}[31m",
            "[h]:22",
            "[::1",
            "[::1]x",
            "@h",
            "ro ot@h",
            "h;rm",
            "h/x",
            ".h",
        ] {
            let err = Target::parse(bad).expect_err(bad);
            assert_eq!(err.exit_code(), 2, "{bad}");
            assert!(!err.message().contains('\n'), "{bad}");
            assert!(!err.message().contains('\u{1b}'), "{bad}");
        }
    }

    #[test]
    fn options_that_turn_host_key_checking_off_are_refused() {
        for bad in [
            "StrictHostKeyChecking=no",
            "stricthostkeychecking off",
            "StrictHostKeyChecking = no",
            "UserKnownHostsFile=/dev/null",
            "UserKnownHostsFile=/a /dev/null",
            "GlobalKnownHostsFile=/dev/null",
            "UserKnownHostsFile none",
            // /dev/null spelled otherwise, and other character devices.
            "UserKnownHostsFile=/dev//null",
            "UserKnownHostsFile=/dev/./null",
            "UserKnownHostsFile=/dev/../dev/null",
            "GlobalKnownHostsFile=//dev/null/",
            "UserKnownHostsFile=/dev/zero",
            "UserKnownHostsFile=/dev/full",
            "KnownHostsCommand=/bin/true",
            "BatchMode=no",
            "Port=22 StrictHostKeyChecking=no",
            "IdentityFile=/k\nStrictHostKeyChecking=no",
            "Include=/tmp/x",
            "NoValue",
            "=x",
            "Key=",
            "Bad-Key=1",
        ] {
            let err = SshOption::parse(bad).expect_err(bad);
            assert_eq!(err.exit_code(), 2, "{bad}");
        }
        for good in [
            "StrictHostKeyChecking=accept-new",
            "UserKnownHostsFile=/root/.ssh/fleet_known_hosts",
            "IdentityFile=/root/.ssh/id_deploy",
            "ProxyJump=bastion.example.com",
            "ProxyCommand=ssh -W %h:%p bastion",
            "ConnectTimeout 3",
        ] {
            SshOption::parse(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        assert_eq!(
            SshOption::parse("ConnectTimeout 3").unwrap().as_str(),
            "ConnectTimeout=3"
        );
    }

    #[test]
    fn a_link_to_dev_null_is_a_known_hosts_file_that_forgets_every_key() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("known_hosts");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        let option = format!("UserKnownHostsFile={}", link.display());
        assert_eq!(SshOption::parse(&option).expect_err(&option).exit_code(), 2);
        let plain = dir.path().join("kept");
        std::fs::write(&plain, "").unwrap();
        SshOption::parse(&format!("UserKnownHostsFile={}", plain.display())).unwrap();
    }

    #[test]
    fn refused_values_are_escaped_never_debug_printed() {
        let err = SshOption::parse("Foo=a\u{1b}b").unwrap_err();
        assert!(
            err.message().contains("'Foo=a\\u001bb'"),
            "{}",
            err.message()
        );
        assert!(!err.message().contains("\\u{1b}"), "{}", err.message());
        let err = Target::parse("h\u{1b}x").unwrap_err();
        assert!(err.message().contains("'h\\u001bx'"), "{}", err.message());
    }

    #[test]
    fn argv_keeps_batch_mode_first_and_ends_options_before_the_host() {
        let ssh = Ssh {
            target: target("deploy@h:2200"),
            options: vec![SshOption::parse("IdentityFile=/k").unwrap()],
            control: None,
        };
        let argv = ssh.argv("true");
        assert_eq!(&argv[..2], ["-o", "BatchMode=yes"]);
        assert_eq!(&argv[2..4], ["-o", "IdentityFile=/k"]);
        let tail: Vec<&str> = argv[argv.len() - 3..].iter().map(String::as_str).collect();
        assert_eq!(tail, ["--", "h", "true"]);
        assert!(argv.windows(2).any(|w| w == ["-p", "2200"]));
        assert!(argv.windows(2).any(|w| w == ["-l", "deploy"]));
    }

    #[test]
    fn the_configuration_ssh_would_use_is_checked_again() {
        if Command::new("ssh").arg("-V").output().is_err() {
            eprintln!("SKIPPED: no ssh client");
            return;
        }
        // Options that got past the per-option check some other way (as ~/.ssh/config would
        // bring them): `ssh -G` shows them, and they are refused.
        for raw in [
            "StrictHostKeyChecking=no",
            "UserKnownHostsFile=/dev/null",
            "GlobalKnownHostsFile=/dev/null",
            "KnownHostsCommand=/bin/true",
        ] {
            let ssh = Ssh {
                target: target("root@h.invalid"),
                options: vec![SshOption(raw.into())],
                control: None,
            };
            let err = ssh.check_config().expect_err(raw);
            assert!(
                err.message().contains("turns host-key checking off"),
                "{raw}: {err}"
            );
        }
        let fine = Ssh {
            target: target("root@h.invalid"),
            options: vec![SshOption::parse("StrictHostKeyChecking=accept-new").unwrap()],
            control: None,
        };
        assert_eq!(fine.check_config().unwrap(), "h.invalid");
    }

    #[test]
    fn the_remote_command_quotes_every_word() {
        let line = remote_command("echo \"$1\"", &["a b; rm -rf /", "$(x)"]);
        let words = shell_words::split(&line).unwrap();
        assert_eq!(
            words,
            ["sh", "-c", "echo \"$1\"", "sh", "a b; rm -rf /", "$(x)"]
        );
    }
}
