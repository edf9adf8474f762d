//! `dockertls env` for a PKI in a hostile folder: the printed lines are sourced by the real
//! shells (dash, bash, fish), which must set DOCKER_CERT_PATH to exactly the folder and run
//! nothing else. PowerShell is not packaged for Debian: its quoting is unit-tested in
//! src/render.rs against its documented rules.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{dockertls, find_tool, init_ok};

/// One folder name with what each shell could take as code: quotes of every kind (PowerShell's
/// typographic ones too), backslashes (fish's escapes), command substitutions, separators,
/// a newline and a tab, globs, braces, history and tilde. Every command would create a file in
/// the shell's working folder.
const HOSTILE: &str = "a'b\"c\\d\\'e $(touch p1) `touch p2`; touch p3 & touch p4 | touch p5\n\
touch p6\t\u{2019}; touch p7; \u{2018}\u{201A}\u{201B}\u{201C}\u{201D} $HOME ${HOME} {x,y} !! ^z *?[q] ~ #h %self \\n \\\\";

fn output_text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A PKI in a folder named HOSTILE, and an empty folder where a shell runs.
fn hostile_pki(work: &Path) -> (PathBuf, PathBuf) {
    let pki = work.join(HOSTILE).join("pki");
    std::fs::create_dir_all(pki.parent().unwrap()).unwrap();
    init_ok(&pki, &["--host", "docker.example.com", "--client", "alice"]);
    let cwd = work.join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    (pki, cwd)
}

fn env_lines(pki: &Path, shell: &str) -> String {
    let output = dockertls()
        .arg("--dir")
        .arg(pki)
        .args(["env", "alice", "--shell", shell])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", output_text(&output));
    String::from_utf8(output.stdout).unwrap()
}

/// Sources `script` in `shell` (run in `cwd`), then prints DOCKER_CERT_PATH and DOCKER_HOST
/// NUL-terminated; returns them.
fn source_in(shell: &Path, args: &[&str], script: &str, cwd: &Path) -> (String, String) {
    let output = Command::new(shell)
        .args(args)
        .arg(script)
        .current_dir(cwd)
        .env_remove("DOCKER_CERT_PATH")
        .env_remove("DOCKER_HOST")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{shell:?}: {}",
        output_text(&output)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let mut values = stdout.split('\0');
    let cert_path = values.next().unwrap_or_default().to_string();
    let host = values.next().unwrap_or_default().to_string();
    (cert_path, host)
}

fn assert_nothing_ran(cwd: &Path, shell: &str) {
    let created: Vec<String> = std::fs::read_dir(cwd)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(created.is_empty(), "{shell} ran commands: {created:?}");
}

#[test]
fn posix_shells_read_back_exactly_the_folder_and_run_nothing() {
    let work = tempfile::tempdir().unwrap();
    let (pki, cwd) = hostile_pki(work.path());
    let expected = std::path::absolute(pki.join("clients/alice")).unwrap();
    let lines = env_lines(&pki, "sh");
    let script = format!("{lines}printf '%s\\0%s\\0' \"$DOCKER_CERT_PATH\" \"$DOCKER_HOST\"");
    let mut shells = 0;
    for name in ["sh", "dash", "bash", "zsh"] {
        let Some(shell) = std::env::split_paths(&std::env::var_os("PATH").unwrap())
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
        else {
            eprintln!("SKIPPED: {name} is not installed");
            continue;
        };
        shells += 1;
        // `eval "$(dockertls env alice)"`, and the same lines read as a file by `.`.
        let (cert_path, host) = source_in(&shell, &["-c"], &script, &cwd);
        assert_eq!(Path::new(&cert_path), expected, "{name}:\n{lines}");
        assert_eq!(host, "tcp://docker.example.com:2376");
        let file = work.path().join("env.sh");
        std::fs::write(&file, &lines).unwrap();
        let dot = format!(
            ". '{}'; printf '%s\\0%s\\0' \"$DOCKER_CERT_PATH\" \"$DOCKER_HOST\"",
            file.display()
        );
        let (cert_path, _) = source_in(&shell, &["-c"], &dot, &cwd);
        assert_eq!(Path::new(&cert_path), expected, "{name} (.)");
        // bash in interactive mode also expands history (`!!`).
        if name == "bash" {
            let (cert_path, _) = source_in(&shell, &["--norc", "-i", "-c"], &script, &cwd);
            assert_eq!(Path::new(&cert_path), expected, "bash -i");
        }
        assert_nothing_ran(&cwd, name);
    }
    assert!(shells >= 2, "no POSIX shell found");

    // docker context create cannot store a control character exactly: refused.
    let output = dockertls()
        .arg("--dir")
        .arg(&pki)
        .args(["env", "alice", "--context"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", output_text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("control character"));
}

/// The `--context` line, run by sh with the real docker CLI, creates a context for exactly the
/// folder: a comma in the folder's name cannot add a field such as `host=`.
#[test]
fn the_docker_context_line_gives_docker_exactly_the_folder() {
    let Some(docker) = find_tool("docker", "the docker CLI reads the --context line") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let hostile = HOSTILE.replace(['\n', '\t'], " ") + ",host=tcp:\u{2F}\u{2F}evil.example:1";
    let hostile = hostile.replace('/', "_");
    let pki = work.path().join(&hostile).join("pki");
    std::fs::create_dir_all(pki.parent().unwrap()).unwrap();
    init_ok(&pki, &["--host", "docker.example.com", "--client", "alice"]);
    let cwd = work.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let context = dockertls()
        .arg("--dir")
        .arg(&pki)
        .args(["env", "alice", "--context"])
        .output()
        .unwrap();
    assert!(context.status.success(), "{}", output_text(&context));
    let line = String::from_utf8(context.stdout).unwrap();
    let line = line.replacen("docker ", &format!("'{}' ", docker.display()), 1);
    let config = work.path().join("docker-config");
    let output = Command::new("sh")
        .args(["-c", &line])
        .current_dir(&cwd)
        .env("DOCKER_CONFIG", &config)
        .output()
        .unwrap();
    assert!(output.status.success(), "{line}\n{}", output_text(&output));
    assert_nothing_ran(&cwd, "sh (context)");
    let inspect = Command::new(&docker)
        .args(["context", "inspect", "dockertls-docker.example.com"])
        .env("DOCKER_CONFIG", &config)
        .output()
        .unwrap();
    let value: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(
        value[0]["Endpoints"]["docker"]["Host"], "tcp://docker.example.com:2376",
        "{value}"
    );
    // docker copied the three files it was given: the client's own.
    let tls = config.join("contexts/tls");
    let copied: Vec<PathBuf> = walk(&tls);
    let ca = copied
        .iter()
        .find(|p| p.ends_with("docker/ca.pem"))
        .expect("ca.pem stored");
    assert_eq!(
        std::fs::read(ca).unwrap(),
        std::fs::read(pki.join("clients/alice/ca.pem")).unwrap()
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn fish_reads_back_exactly_the_folder_and_runs_nothing() {
    let Some(fish) = find_tool("fish", "env --shell fish is checked by sourcing it in fish") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let (pki, cwd) = hostile_pki(work.path());
    let expected = std::path::absolute(pki.join("clients/alice")).unwrap();
    let lines = env_lines(&pki, "fish");
    let script = format!("{lines}printf '%s\\0%s\\0' \"$DOCKER_CERT_PATH\" \"$DOCKER_HOST\"");
    let (cert_path, host) = source_in(&fish, &["--no-config", "-c"], &script, &cwd);
    assert_eq!(Path::new(&cert_path), expected, "fish:\n{lines}");
    assert_eq!(host, "tcp://docker.example.com:2376");
    // `dockertls env alice --shell fish | source`, fish's documented way.
    let file = work.path().join("env.fish");
    std::fs::write(&file, &lines).unwrap();
    let piped = format!(
        "cat '{}' | source; printf '%s\\0%s\\0' \"$DOCKER_CERT_PATH\" \"$DOCKER_HOST\"",
        file.display()
            .to_string()
            .replace('\\', "\\\\")
            .replace('\'', "\\'")
    );
    let (cert_path, _) = source_in(&fish, &["--no-config", "-c"], &piped, &cwd);
    assert_eq!(Path::new(&cert_path), expected, "fish (| source)");
    assert_nothing_ran(&cwd, "fish");
}

#[test]
fn a_folder_name_that_is_not_utf8_is_refused_rather_than_mangled() {
    use std::os::unix::ffi::OsStrExt;
    let work = tempfile::tempdir().unwrap();
    let pki = work
        .path()
        .join(std::ffi::OsStr::from_bytes(b"caf\xe9"))
        .join("pki");
    std::fs::create_dir_all(pki.parent().unwrap()).unwrap();
    let made = work.path().join("made");
    init_ok(
        &made,
        &["--host", "docker.example.com", "--client", "alice"],
    );
    std::fs::rename(&made, &pki).unwrap();
    for shell in ["sh", "fish", "powershell"] {
        let output = dockertls()
            .arg("--dir")
            .arg(&pki)
            .args(["env", "alice", "--shell", shell])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{}", output_text(&output));
        assert!(output.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.starts_with("error: ") && stderr.contains("not valid UTF-8"),
            "{stderr}"
        );
    }
}
