//! Issue 14 item 5: `verify --format prometheus` (node_exporter textfile metrics that pass
//! `promtool check metrics`), and the systemd units of contrib/systemd, checked as shipped:
//! `systemd-analyze verify --root` on those exact files, and the metrics script run for real.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{dockertls, find_tool, init_ok, run_in, streams};

const CONTRIB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/systemd");
const UNITS: [&str; 4] = [
    "dockertls-metrics.service",
    "dockertls-metrics.timer",
    "dockertls-rotate.service",
    "dockertls-rotate.timer",
];

fn promtool_accepts(metrics: &[u8]) {
    let Some(promtool) = find_tool(
        "promtool",
        "metrics are checked with promtool check metrics",
    ) else {
        return;
    };
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(metrics).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
        "promtool check metrics: {}\n{}",
        streams(&output),
        String::from_utf8_lossy(metrics)
    );
}

/// The sample of `name` with exactly these labels (`path="..",kind=".."[,..]`).
fn sample(metrics: &str, name: &str, labels: &str) -> Option<String> {
    let prefix = if labels.is_empty() {
        format!("{name} ")
    } else {
        format!("{name}{{{labels}}} ")
    };
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
}

#[test]
fn metrics_pass_promtool_and_name_each_target_and_failing_check() {
    let work = common::private_tempdir();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "localhost", "--client", "alice"]);
    let metrics = dockertls_verify(&pki);
    assert_eq!(metrics.status.code(), Some(0), "{}", streams(&metrics));
    promtool_accepts(&metrics.stdout);
    let text = String::from_utf8(metrics.stdout).unwrap();
    assert_eq!(
        sample(&text, "dockertls_verify_status", "").as_deref(),
        Some("0")
    );

    // The expiry is the one verify's JSON reports, for every target.
    let json = run_in(&pki, &["verify", "--format", "json"]);
    let document: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    for target in document["targets"].as_array().unwrap() {
        let labels = format!(
            "path=\"{}\",kind=\"{}\"",
            target["path"].as_str().unwrap(),
            target["kind"].as_str().unwrap()
        );
        let not_after = ::time::OffsetDateTime::parse(
            target["not_after"].as_str().unwrap(),
            &::time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let expiry = sample(
            &text,
            "dockertls_certificate_expiry_timestamp_seconds",
            &labels,
        );
        assert_eq!(
            expiry,
            Some(not_after.unix_timestamp().to_string()),
            "{labels}\n{text}"
        );
        let left: i64 = sample(&text, "dockertls_certificate_remaining_seconds", &labels)
            .unwrap()
            .parse()
            .unwrap();
        let days = target["days_left"].as_i64().unwrap();
        assert!(
            (left / 86400 - days).abs() <= 1,
            "{labels}: {left} s, {days} days"
        );
        assert_eq!(
            sample(&text, "dockertls_target_status", &labels).as_deref(),
            Some("0")
        );
    }

    // A key others can read: the failing check is its own series, the run says failure.
    let key = pki.join("clients/alice/key.pem");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let failing = dockertls_verify(&pki);
    assert_eq!(failing.status.code(), Some(2), "{}", streams(&failing));
    promtool_accepts(&failing.stdout);
    let text = String::from_utf8(failing.stdout).unwrap();
    let alice = format!(
        "path=\"{}\",kind=\"client\"",
        pki.join("clients/alice").display()
    );
    assert_eq!(
        sample(&text, "dockertls_verify_status", "").as_deref(),
        Some("2")
    );
    assert_eq!(
        sample(&text, "dockertls_target_status", &alice).as_deref(),
        Some("2")
    );
    assert_eq!(
        sample(
            &text,
            "dockertls_check_status",
            &format!("{alice},check=\"permissions\"")
        )
        .as_deref(),
        Some("2"),
        "{text}"
    );
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.starts_with("dockertls_"), "{line}");
    }

    // Nothing to check: still a document, with status 3 (verify's exit code).
    let missing = dockertls_verify(&work.path().join("missing"));
    assert_eq!(missing.status.code(), Some(3), "{}", streams(&missing));
    promtool_accepts(&missing.stdout);
    let text = String::from_utf8(missing.stdout).unwrap();
    assert_eq!(
        sample(&text, "dockertls_verify_status", "").as_deref(),
        Some("3")
    );
}

fn dockertls_verify(path: &Path) -> Output {
    dockertls()
        .args(["verify", "--format", "prometheus"])
        .arg(path)
        .output()
        .unwrap()
}

#[test]
fn the_contrib_units_verify_with_systemd_analyze() {
    let Some(analyze) = find_tool("systemd-analyze", "the contrib units are checked with it")
    else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    let place = |from: &Path, to: &str, mode: u32| {
        let target = root.join(to);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(from, &target).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    for unit in UNITS {
        place(
            &Path::new(CONTRIB).join(unit),
            &format!("etc/systemd/system/{unit}"),
            0o644,
        );
    }
    place(
        &Path::new(CONTRIB).join("dockertls-write-metrics"),
        "usr/libexec/dockertls/dockertls-write-metrics",
        0o755,
    );
    place(
        Path::new(env!("CARGO_BIN_EXE_dockertls")),
        "usr/bin/dockertls",
        0o755,
    );
    if let Ok(entries) = std::fs::read_dir("/lib/systemd/system") {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".target") {
                place(&entry.path(), &format!("lib/systemd/system/{name}"), 0o644);
            }
        }
    }
    // Documentation= names man pages: the ones `dockertls man` writes must be there.
    let man = work.path().join("man");
    std::fs::create_dir(&man).unwrap();
    let pages = dockertls()
        .arg("man")
        .arg("--out")
        .arg(man.join("man1"))
        .output()
        .unwrap();
    assert!(pages.status.success(), "{}", streams(&pages));
    let output = Command::new(analyze)
        .arg("verify")
        .arg(format!("--root={}", root.display()))
        .args(UNITS)
        .env("MANPATH", &man)
        .output()
        .unwrap();
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "systemd-analyze verify: {}",
        streams(&output)
    );
    // The metrics service takes verify's warning and failure as results; the rotate service
    // takes no failure as a result.
    let service = std::fs::read_to_string(Path::new(CONTRIB).join(UNITS[0])).unwrap();
    assert!(
        service.lines().any(|l| l == "SuccessExitStatus=1 2"),
        "{service}"
    );
    let rotate = std::fs::read_to_string(Path::new(CONTRIB).join(UNITS[2])).unwrap();
    assert!(!rotate.contains("SuccessExitStatus"), "{rotate}");
}

/// Runs the contrib metrics script against `pki`, writing into `collector`, under strace
/// (when present) to see how the file is written.
fn write_metrics(pki: &Path, collector: &Path, trace: Option<&PathBuf>) -> Output {
    let script = Path::new(CONTRIB).join("dockertls-write-metrics");
    let mut command = match trace {
        Some(strace) => {
            let mut c = Command::new(strace);
            c.args(["-f", "-qq", "-e", "trace=openat,rename,renameat,renameat2"]);
            c.arg(&script);
            c
        }
        None => Command::new(&script),
    };
    command
        .env("DOCKERTLS", env!("CARGO_BIN_EXE_dockertls"))
        .env("DOCKERTLS_DIR", pki)
        .env("DOCKERTLS_METRICS_DIR", collector)
        .output()
        .unwrap()
}

#[test]
fn the_metrics_script_replaces_the_file_by_a_rename_and_passes_verify_exit_codes() {
    let work = common::private_tempdir();
    let pki = work.path().join("pki");
    init_ok(&pki, &["--host", "localhost", "--client", "alice"]);
    let collector = work.path().join("collector");
    std::fs::create_dir(&collector).unwrap();
    let prom = collector.join("dockertls.prom");
    let strace = find_tool(
        "strace",
        "shows that the metrics file is renamed into place",
    );

    let first = write_metrics(&pki, &collector, None);
    assert_eq!(first.status.code(), Some(0), "{}", streams(&first));
    assert_eq!(
        std::fs::metadata(&prom).unwrap().permissions().mode() & 0o777,
        0o644
    );
    promtool_accepts(&std::fs::read(&prom).unwrap());

    // A warning-or-failure run replaces the file whole: never opened for writing in place.
    std::fs::set_permissions(
        pki.join("clients/alice/key.pem"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let second = write_metrics(&pki, &collector, strace.as_ref());
    assert_eq!(second.status.code(), Some(2), "{}", streams(&second));
    let metrics = std::fs::read_to_string(&prom).unwrap();
    assert!(metrics.contains("dockertls_verify_status 2\n"), "{metrics}");
    if strace.is_some() {
        let trace = String::from_utf8_lossy(&second.stderr);
        let target = prom.display().to_string();
        assert!(
            trace
                .lines()
                .any(|l| l.contains("rename") && l.contains(&format!("\"{target}\""))),
            "no rename onto {target}:\n{trace}"
        );
        assert!(
            !trace
                .lines()
                .filter(|l| l.contains("openat(") && l.contains(&format!("\"{target}\"")))
                .any(|l| ["O_WRONLY", "O_RDWR", "O_TRUNC", "O_CREAT"]
                    .iter()
                    .any(|flag| l.contains(flag))),
            "{target} opened in place:\n{trace}"
        );
    }
    // Could not check (no PKI): exit 3, and the file says so.
    let third = write_metrics(&work.path().join("missing"), &collector, None);
    assert_eq!(third.status.code(), Some(3), "{}", streams(&third));
    let metrics = std::fs::read_to_string(&prom).unwrap();
    assert!(metrics.contains("dockertls_verify_status 3\n"), "{metrics}");
    let names: Vec<String> = std::fs::read_dir(&collector)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["dockertls.prom"], "temporary files left");
}
