//! `dockertls import`: a PKI made with Docker's openssl recipe (verbatim), docker-machine's and
//! dind's layouts, adopted into a dockertls folder.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::*;

/// The passphrase the recipe's `genrsa -aes256` is given (it would ask on the terminal).
const PASSPHRASE: &str = "recipe passphrase 1";
/// The recipe's $HOST.
const HOST: &str = "docker.example.test";

/// Runs one recipe command in `dir` (through sh, as the docs show them), panicking on failure.
fn sh(dir: &Path, line: &str) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(line)
        .current_dir(dir)
        .env("HOST", HOST)
        .output()
        .expect("run sh");
    assert!(out.status.success(), "{line}\n{}", streams(&out));
}

/// A PKI made with the commands of docs.docker.com "Protect the Docker daemon socket with
/// HTTPS", verbatim; where the recipe asks on the terminal (the CA passphrase, the CA's
/// subject) the answers are given as -passout/-passin/-subj. RSA-4096 keys are slow: made once
/// per test binary; tests copy it. None (skipped visibly) without openssl.
fn recipe() -> Option<&'static Path> {
    find_tool("openssl", "install openssl to build the recipe fixture")?;
    static RECIPE: OnceLock<PathBuf> = OnceLock::new();
    Some(RECIPE.get_or_init(|| {
        // Below target/ (not /tmp): kept for the binary's other tests, never shared.
        let dir = tempfile::Builder::new()
            .prefix("recipe-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap()
            .keep();
        std::fs::write(dir.join(".pass"), format!("{PASSPHRASE}\n")).unwrap();
        for line in [
            "openssl genrsa -aes256 -passout file:.pass -out ca-key.pem 4096",
            "openssl req -new -x509 -days 365 -key ca-key.pem -passin file:.pass -sha256 -out ca.pem -subj '/C=DE/ST=Berlin/O=Example/CN=example CA'",
            "openssl genrsa -out server-key.pem 4096",
            "openssl req -subj \"/CN=$HOST\" -sha256 -new -key server-key.pem -out server.csr",
            "echo subjectAltName = DNS:$HOST,IP:10.10.10.20,IP:127.0.0.1 >> extfile.cnf",
            "echo extendedKeyUsage = serverAuth >> extfile.cnf",
            "openssl x509 -req -days 365 -sha256 -in server.csr -CA ca.pem -CAkey ca-key.pem -passin file:.pass -CAcreateserial -out server-cert.pem -extfile extfile.cnf",
            "openssl genrsa -out key.pem 4096",
            "openssl req -subj '/CN=client' -new -key key.pem -out client.csr",
            "echo extendedKeyUsage = clientAuth > extfile-client.cnf",
            "openssl x509 -req -days 365 -sha256 -in client.csr -CA ca.pem -CAkey ca-key.pem -passin file:.pass -CAcreateserial -out cert.pem -extfile extfile-client.cnf",
            "rm -v client.csr server.csr extfile.cnf extfile-client.cnf",
            "chmod -v 0400 ca-key.pem key.pem server-key.pem",
            "chmod -v 0444 ca.pem server-cert.pem cert.pem",
            "rm .pass",
        ] {
            sh(&dir, line);
        }
        dir
    }))
}

/// A copy of the recipe folder in a private temp folder (modes kept), and a passphrase file.
fn recipe_copy(work: &Path) -> Option<(PathBuf, PathBuf)> {
    let recipe = recipe()?;
    let copy = work.join("recipe");
    std::fs::create_dir(&copy).unwrap();
    for entry in std::fs::read_dir(recipe).unwrap().flatten() {
        let to = copy.join(entry.file_name());
        std::fs::copy(entry.path(), &to).unwrap();
    }
    let pass = work.join("ca-pass");
    std::fs::write(&pass, format!("{PASSPHRASE}\n")).unwrap();
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
    Some((copy, pass))
}

fn dockertls_in(dir: &Path, args: &[&str]) -> std::process::Output {
    dockertls()
        .arg("--dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run dockertls")
}

#[test]
fn dry_run_names_the_recipe_cas_missing_key_usage_with_the_command_that_replaces_it() {
    let work = private_tempdir();
    let Some((recipe, _)) = recipe_copy(work.path()) else {
        return;
    };
    let dir = work.path().join("pki");
    let before = tree(work.path());
    let out = dockertls_in(&dir, &["import", recipe.to_str().unwrap(), "--dry-run"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", streams(&out));
    assert!(
        stdout.contains("Docker's openssl recipe folder"),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("server {HOST} from")), "{stdout}");
    assert!(stdout.contains("client client from"), "{stdout}");
    // The CA's own defect, with the command that replaces the CA.
    let line = stdout
        .lines()
        .position(|l| l.contains("the CA [ca]") && l.contains("no keyUsage"))
        .unwrap_or_else(|| panic!("no keyUsage defect:\n{stdout}"));
    let fix = stdout.lines().nth(line + 1).unwrap();
    assert!(
        fix.contains("fix: dockertls --dir") && fix.ends_with("rotate --ca"),
        "{fix}"
    );
    assert_same_tree(&before, &tree(work.path()), "a dry run changes nothing");
}
