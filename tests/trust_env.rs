//! Issue 14 item 6: with REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE set, docker-py ignores ca.pem.
//! `env` says so on stderr (its stdout is sourced, and stays exactly the same); `probe` reports
//! it as a finding, against a real dockerd that is otherwise healthy.

mod common;

use common::{Dockerd, check_map, dockertls, init_ok, streams};

#[test]
fn env_warns_on_stderr_and_keeps_its_stdout() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "docker.example.com", "--client", "alice"]);
    let env = |vars: &[(&str, &std::path::Path)]| {
        let mut command = dockertls();
        command.arg("--dir").arg(&pki).args(["env", "alice"]);
        for (k, v) in vars {
            command.env(k, v);
        }
        command.output().unwrap()
    };
    let clean = env(&[]);
    assert!(
        clean.status.success() && clean.stderr.is_empty(),
        "{}",
        streams(&clean)
    );

    let bundle = work.path().join("corp.pem");
    std::fs::write(&bundle, "").unwrap();
    for variable in ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"] {
        let warned = env(&[(variable, &bundle)]);
        assert!(warned.status.success(), "{}", streams(&warned));
        assert_eq!(warned.stdout, clean.stdout, "stdout is sourced: unchanged");
        let stderr = String::from_utf8_lossy(&warned.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 2, "{stderr}");
        assert!(
            lines[0].starts_with(&format!("warning: {variable} is set ("))
                && lines[0].contains("docker-py")
                && lines[0].contains(&bundle.display().to_string()),
            "{stderr}"
        );
        let ca = pki.join("clients/alice/ca.pem");
        assert!(
            lines[1].starts_with("hint: ")
                && lines[1].contains(&format!("env -u {variable}"))
                && lines[1].contains(&format!("cat {} >> {}", ca.display(), bundle.display())),
            "{stderr}"
        );
    }

    // The fix it names works: once the bundle holds the CA, docker-py trusts the daemon.
    std::fs::copy(pki.join("clients/alice/ca.pem"), &bundle).unwrap();
    let fixed = env(&[("REQUESTS_CA_BUNDLE", &bundle)]);
    assert!(
        fixed.status.success() && fixed.stderr.is_empty(),
        "{}",
        streams(&fixed)
    );
}

#[test]
fn probe_reports_the_variable_as_a_finding() {
    let work = tempfile::tempdir().unwrap();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "localhost", "--client", "alice"]);
    let Some(daemon) = Dockerd::start(&pki) else {
        return;
    };
    let endpoint = format!("tcp://127.0.0.1:{}", daemon.port);
    let probe = |bundle: Option<&std::path::Path>| {
        let mut command = dockertls();
        command
            .arg("--dir")
            .arg(&pki)
            .args(["probe", &endpoint, "--client", "alice", "--format", "json"]);
        if let Some(bundle) = bundle {
            command.env("REQUESTS_CA_BUNDLE", bundle);
        }
        command.output().unwrap()
    };
    let healthy = probe(None);
    assert_eq!(healthy.status.code(), Some(0), "{}", streams(&healthy));

    let bundle = work.path().join("system.pem");
    std::fs::write(&bundle, "").unwrap();
    let output = probe(Some(&bundle));
    assert_eq!(
        output.status.code(),
        Some(1),
        "a warning: {}",
        streams(&output)
    );
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let checks = check_map(&document["checks"]);
    let (status, message) = &checks["client-ca-bundle-env"];
    assert_eq!(status, "warn");
    assert!(message.contains("REQUESTS_CA_BUNDLE is set"), "{message}");
    let hint = document["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "client-ca-bundle-env")
        .and_then(|c| c["hint"].as_str())
        .unwrap();
    assert!(hint.contains("env -u REQUESTS_CA_BUNDLE"), "{hint}");
    drop(daemon);
}
