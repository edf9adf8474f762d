//! The interactive wizard, driven through a real pseudo-terminal: bad answers are asked again,
//! the printed equivalent command reproduces the same PKI, Ctrl-C leaves nothing behind, and
//! without a terminal it never prompts.

mod common;

use std::path::Path;
use std::process::Command;

use rexpect::session::{PtySession, spawn_command};

use common::{dockertls, tree};

const TIMEOUT_MS: u64 = 60_000;

/// Runs dockertls in a shell that survives Ctrl-C and then reports the exit status and
/// whether the terminal still echoes (a hidden prompt turns echo off).
fn in_shell(dir: &Path, extra: &[&str]) -> PtySession {
    let script = format!(
        "stty echo; trap : INT; \"$0\" --dir \"$1\" init {}; echo \"EXIT=$?\"; stty -a | tr ' ;' '\\n\\n' | grep -x -e echo -e -echo | sed 's/^/TERMINAL=/'",
        extra.join(" ")
    );
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_dockertls"))
        .arg(dir)
        .env("TERM", "xterm")
        .env_remove("DOCKERTLS_DIR");
    spawn_command(command, Some(TIMEOUT_MS)).unwrap()
}

fn wizard(dir: &Path, extra: &[&str]) -> PtySession {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dockertls"));
    command
        .arg("--dir")
        .arg(dir)
        .arg("init")
        .args(extra)
        .env("TERM", "xterm")
        .env_remove("DOCKERTLS_DIR");
    spawn_command(command, Some(TIMEOUT_MS)).unwrap()
}

/// Sends keys and flushes them to the terminal (send() alone buffers).
fn press(session: &mut PtySession, keys: &str) {
    session.send(keys).unwrap();
    session.flush().unwrap();
}

fn exit_code(session: &mut PtySession) -> String {
    format!("{:?}", session.process().wait().unwrap())
}

/// Certificate facts that must match between two PKIs made from the same answers.
fn facts(pki: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for (cert, key) in [
        (
            "servers/docker.example.com/server-cert.pem",
            "servers/docker.example.com/server-key.pem",
        ),
        ("clients/alice/cert.pem", "clients/alice/key.pem"),
        ("clients/bob/cert.pem", "clients/bob/key.pem"),
    ] {
        let pem = std::fs::read(pki.join(cert)).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
        let c = pem.parse_x509().unwrap();
        let v = c.validity();
        let sans = c
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|s| format!("{:?}", s.value.general_names))
            .unwrap_or_default();
        let curve = format!(
            "{:?}",
            c.public_key()
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
        );
        out.push(format!(
            "{cert}: {} {sans} {curve} {}",
            c.subject(),
            v.not_after.timestamp() - v.not_before.timestamp()
        ));
        assert!(
            std::fs::read_to_string(pki.join(key))
                .unwrap()
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
    }
    let ca = std::fs::read(pki.join("ca/ca.pem")).unwrap();
    let (_, ca) = x509_parser::pem::parse_x509_pem(&ca).unwrap();
    let ca = ca.parse_x509().unwrap();
    out.push(format!(
        "ca: {}",
        ca.validity().not_after.timestamp() - ca.validity().not_before.timestamp()
    ));
    let ca_key = std::fs::read_to_string(pki.join("ca/ca-key.pem")).unwrap();
    out.push(format!(
        "ca key encrypted: {}",
        ca_key.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    ));
    out
}

#[test]
fn the_whole_wizard_with_mistakes_and_its_equivalent_command() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    let mut s = wizard(&pki, &[]);
    s.exp_string("Host name clients dial").unwrap();
    s.send_line("bad..host").unwrap();
    s.exp_string("empty label").unwrap();
    s.send_line("docker.example.com").unwrap();
    // The machine's own addresses come first, when it has any besides loopback.
    let (_, prompt) = s
        .exp_regex("(Other addresses of this machine|More addresses or DNS names)")
        .unwrap();
    if prompt.starts_with("Other") {
        // Keys go once the menu is drawn (the terminal is in raw mode then).
        s.exp_string("[ ]").unwrap();
        press(&mut s, "\r");
        s.exp_string("More addresses or DNS names").unwrap();
    }
    s.send_line("300.1.2.3").unwrap();
    s.exp_string("not a valid IPv4 address").unwrap();
    s.send_line("10.1.2.3,node.example.com").unwrap();
    s.exp_string("Client names").unwrap();
    s.send_line("alice,bob").unwrap();
    s.exp_string("Key type").unwrap();
    s.exp_string("rsa-4096").unwrap();
    press(&mut s, "\x1b[B"); // ecdsa-p384
    press(&mut s, "\r");
    s.exp_string("Validity of the server and client certificates")
        .unwrap();
    s.send_line("0").unwrap();
    s.exp_string("--days 0: give a whole number of days from 1 to")
        .unwrap();
    s.send_line("90").unwrap();
    s.exp_string("Validity of the CA").unwrap();
    s.send_line("900").unwrap();
    s.exp_string("Protect the CA key with a passphrase?")
        .unwrap();
    s.exp_string("[Y/n]").unwrap();
    press(&mut s, "y");
    s.exp_string("Passphrase for the CA key").unwrap();
    s.send_line("short").unwrap();
    s.exp_string("at least 8 characters").unwrap();
    s.send_line("correct horse").unwrap();
    s.exp_string("Repeat it").unwrap();
    s.send_line("wrong horse").unwrap();
    s.exp_string("differ").unwrap();
    s.exp_string("Passphrase for the CA key").unwrap();
    s.send_line("correct horse").unwrap();
    s.exp_string("Repeat it").unwrap();
    s.send_line("correct horse").unwrap();
    s.exp_string("Output folder").unwrap();
    s.send_line("").unwrap();
    s.exp_string("The same, without questions:").unwrap();
    let command = s.exp_string("Create it?").unwrap();
    let command = command
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("dockertls "))
        .unwrap()
        .to_string();
    s.exp_string("[Y/n]").unwrap();
    press(&mut s, "y");
    let rest = s.exp_eof().unwrap();
    let status = exit_code(&mut s);
    assert!(
        status.contains("Exited(") && status.contains(", 0)"),
        "{status}: {rest}"
    );
    assert!(rest.contains("Created a Docker TLS PKI"), "{rest}");
    assert!(!rest.contains("correct horse"), "the passphrase was echoed");

    assert_eq!(
        command,
        format!(
            "dockertls --dir {} init --host docker.example.com --allow 10.1.2.3,node.example.com --client alice,bob --key-type ecdsa-p384 --days 90 --ca-days 900 --encrypt-ca-key",
            pki.display()
        )
    );
    // The printed command, run without a terminal (so with the passphrase in a file), makes
    // the same PKI: names, SANs, key type, validity, protected CA key.
    let again = work.path().join("again");
    let pass = work.path().join("pass");
    std::fs::write(&pass, "correct horse\n").unwrap();
    std::fs::set_permissions(&pass, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let words: Vec<String> = command.split(' ').map(str::to_string).collect();
    let output = dockertls()
        .args(&words[1..])
        .arg("--dir")
        .arg(&again)
        .arg("--ca-passphrase-file")
        .arg(&pass)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(facts(&pki), facts(&again));
}

#[test]
fn ctrl_c_at_any_prompt_exits_130_and_writes_nothing() {
    for stop_at in [
        "Host name clients dial",
        "Key type",
        "Passphrase for the CA key",
    ] {
        let work = tempfile::tempdir().unwrap();
        let pki = work.path().join("pki");
        let mut s = in_shell(&pki, &["--client", "alice"]);
        // Flags given are the suggestions: Enter accepts them. Prompts come in a fixed order
        // (a prompt may be drawn again as it is answered, so each is awaited once, in turn).
        let steps = [
            "Host name clients dial",
            "Other addresses of this machine",
            "More addresses",
            "Client names",
            "Key type",
            "Validity of the server",
            "Validity of the CA",
            "Protect the CA key",
            "Passphrase for the CA key",
        ];
        let mut menu_shown = true;
        for step in steps {
            match step {
                "Other addresses of this machine" => {
                    // Only on a machine with addresses besides loopback.
                    let (_, found) = s
                        .exp_regex("(Other addresses of this machine|More addresses)")
                        .unwrap();
                    menu_shown = found.starts_with("Other");
                    if !menu_shown {
                        s.send_line("").unwrap();
                        continue;
                    }
                    s.exp_string("[ ]").unwrap();
                }
                "More addresses" if !menu_shown => continue,
                _ => drop(s.exp_string(step).unwrap()),
            }
            // Menus and yes/no questions read keys once drawn.
            match step {
                "Key type" => drop(s.exp_string("rsa-4096").unwrap()),
                "Protect the CA key" => drop(s.exp_string("[Y/n]").unwrap()),
                _ => {}
            }
            if step == stop_at {
                break;
            }
            match step {
                "Protect the CA key" => press(&mut s, "y"),
                "Other addresses of this machine" | "Key type" => press(&mut s, "\r"),
                _ => drop(s.send_line("").unwrap()),
            }
        }
        s.send_control('c').unwrap();
        let rest = s.exp_eof().unwrap_or_default();
        assert!(rest.contains("EXIT=130"), "Ctrl-C at {stop_at:?}: {rest:?}");
        // The terminal echoes again (a passphrase prompt had turned echo off).
        assert!(
            rest.contains("TERMINAL=echo") && !rest.contains("TERMINAL=-echo"),
            "Ctrl-C at {stop_at:?}: {rest:?}"
        );
        if stop_at == "Key type" {
            assert!(
                rest.contains("\x1b[?25h"),
                "the cursor is shown again after a menu: {rest:?}"
            );
        }
        assert!(!pki.exists(), "Ctrl-C at {stop_at:?} left {:?}", tree(&pki));
    }
}

#[test]
fn ctrl_c_at_the_passphrase_prompt_of_init_restores_the_terminal() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    let mut s = in_shell(&pki, &["--host", "docker.example.com", "--encrypt-ca-key"]);
    s.exp_string("Passphrase for the CA key").unwrap();
    s.send_control('c').unwrap();
    let rest = s.exp_eof().unwrap_or_default();
    assert!(rest.contains("EXIT=130"), "{rest:?}");
    assert!(
        rest.contains("TERMINAL=echo") && !rest.contains("TERMINAL=-echo"),
        "{rest:?}"
    );
    assert!(!pki.exists());
}

#[test]
fn without_a_terminal_or_with_yes_it_never_prompts() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    // No terminal: exit 2 at once, naming the flag.
    let output = dockertls()
        .arg("--dir")
        .arg(&pki)
        .arg("init")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing --host"));
    // A terminal, but --yes: the same.
    let mut s = wizard(&pki, &["--yes"]);
    let rest = s.exp_eof().unwrap();
    assert!(rest.contains("missing --host"), "{rest}");
    assert!(exit_code(&mut s).contains(", 2)"));
    assert!(!pki.exists());
}
