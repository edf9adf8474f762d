//! Control characters in file names, file contents and arguments never reach the terminal raw:
//! verify's text and JSON, client list, env, and the error lines that echo a path.

mod common;
#[path = "support/refusal.rs"]
mod refusal;

use std::path::Path;
use std::process::Output;

use common::{dockertls, init_ok};

/// ESC with a screen clear and a forged verdict, CSI in its 8-bit form, a bidi override.
const HOSTILE: &str = "\x1b[2J\x1b[H\u{9b}32mALL OK\u{202e}";

fn assert_no_raw_controls(output: &Output, what: &str) {
    for (stream, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        assert!(
            !bytes.contains(&0x1b) && !text.contains('\u{9b}') && !text.contains('\u{202e}'),
            "{what}: {stream} carries raw control characters: {text:?}"
        );
    }
}

fn run(dir: &Path, args: &[&str]) -> Output {
    dockertls()
        .arg("--dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap()
}

/// A client folder whose certificate's subject (and the folder's own name) are hostile.
fn hostile_client_folder(root: &Path) -> std::path::PathBuf {
    let folder = root.join(format!("{HOSTILE}client"));
    std::fs::create_dir_all(&folder).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, HOSTILE);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(folder.join("ca.pem"), cert.pem()).unwrap();
    std::fs::write(folder.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(folder.join("key.pem"), key.serialize_pem()).unwrap();
    folder
}

#[test]
fn verify_escapes_file_names_and_certificate_contents() {
    let work = tempfile::tempdir().unwrap();
    let folder = hostile_client_folder(work.path());
    let output = dockertls().arg("verify").arg(work.path()).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("\\u001b[2J\\u001b[H\\u009b32mALL OK\\u202eclient"),
        "{text}"
    );
    assert!(text.contains("CN=\\u001b[2J"), "{text}");
    assert_no_raw_controls(&output, "verify");

    // JSON: C1 and bidi are JSON escapes too, and the values parse back unchanged.
    let output = dockertls()
        .arg("verify")
        .arg(work.path())
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_no_raw_controls(&output, "verify --format json");
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let target = &document["targets"][0];
    assert_eq!(target["path"], folder.display().to_string());
    assert!(
        target["subject"].as_str().unwrap().contains(HOSTILE),
        "{document:#}"
    );

    // An error line that echoes a path.
    let output = dockertls()
        .arg("verify")
        .arg(work.path().join(format!("{HOSTILE}missing")))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("\\u001b[2J"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_no_raw_controls(&output, "verify's error");
}

#[test]
fn client_list_env_and_errors_escape_names_and_paths() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join(format!("{HOSTILE}pki"));
    init_ok(&pki, &["--host", "localhost"]);
    // A folder dropped into clients/ by someone else: its name is listed, escaped.
    std::fs::create_dir(pki.join("clients").join(HOSTILE)).unwrap();
    let output = run(&pki, &["client", "list"]);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("\\u001b[2J"),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_no_raw_controls(&output, "client list");
    let output = run(&pki, &["client", "list", "--format", "json"]);
    assert_no_raw_controls(&output, "client list --format json");
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        document["clients"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == HOSTILE),
        "{document:#}"
    );

    let output = run(&pki, &["env", "client"]);
    assert!(output.status.success());
    assert_no_raw_controls(&output, "env");

    // Error lines that echo a name or a path (main's error printing).
    let output = run(&pki, &["client", "remove", HOSTILE]);
    assert_eq!(output.status.code(), Some(2));
    assert_no_raw_controls(&output, "client remove's error");
    refusal::assert_refusal(&output.stderr);
    let output = run(
        &work.path().join(format!("{HOSTILE}none")),
        &["client", "list"],
    );
    assert_ne!(output.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&output.stderr).starts_with("error: "),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_no_raw_controls(&output, "a missing --dir");
    // A usage error quoting the argument.
    let output = run(&pki, &[HOSTILE]);
    assert_eq!(output.status.code(), Some(2));
    assert_no_raw_controls(&output, "a usage error");
}
