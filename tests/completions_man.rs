//! Issue 14 item 3: `dockertls completions SHELL` and `dockertls man --out DIR`, checked with
//! the real consumers: a bash that loads the script and completes, groff that renders every
//! page, and zsh/fish that parse theirs.

mod common;

use std::process::Command;

use common::{assert_one_error, dockertls, find_tool, streams, tree, tree_diff};

fn completions(shell: &str) -> String {
    let output = dockertls().args(["completions", shell]).output().unwrap();
    assert!(output.status.success(), "{}", streams(&output));
    String::from_utf8(output.stdout).unwrap()
}

/// What bash's programmable completion offers for `words` (the last one being completed).
fn bash_complete(bash: &std::path::Path, script: &std::path::Path, words: &[&str]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cword = words.len() - 1;
    let line = format!(
        "source '{}' && complete -p dockertls >/dev/null && COMP_WORDS=({}) && COMP_CWORD={cword} && \
         _dockertls dockertls '{}' '{}' && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words[cword],
        words[cword - 1],
    );
    let output = Command::new(bash)
        .args(["--norc", "--noprofile", "-c", &line])
        .output()
        .unwrap();
    assert!(output.status.success(), "bash: {}", streams(&output));
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn bash_completes_subcommands_flags_and_values() {
    let Some(bash) = find_tool("bash", "the completion script is loaded in a real bash") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let script = work.path().join("dockertls.bash");
    std::fs::write(&script, completions("bash")).unwrap();
    let offered = |words: &[&str]| -> Vec<String> {
        bash_complete(&bash, &script, words)
            .lines()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(offered(&["dockertls", "cl"]), ["client"]);
    let mut co = offered(&["dockertls", "co"]);
    co.sort();
    assert_eq!(co, ["completions", "context"]);
    assert_eq!(offered(&["dockertls", "comp"]), ["completions"]);
    assert_eq!(
        offered(&["dockertls", "verify", "--format", ""]),
        ["text", "json", "prometheus"]
    );
    assert!(
        offered(&["dockertls", "client", ""]).contains(&"add".to_string()),
        "client's subcommands"
    );
    assert!(
        offered(&["dockertls", "rotate", "--"]).contains(&"--keep-backups".to_string()),
        "rotate's flags"
    );
}

#[test]
fn zsh_and_fish_load_their_scripts() {
    let work = tempfile::tempdir().unwrap();
    for (shell, check) in [("zsh", ["-n"]), ("fish", ["--no-execute"])] {
        let Some(program) = find_tool(shell, "its completion script is parsed by it") else {
            continue;
        };
        let script = work.path().join(format!("dockertls.{shell}"));
        let text = completions(shell);
        assert!(text.contains("dockertls"), "{shell}: {text}");
        std::fs::write(&script, text).unwrap();
        let output = Command::new(program)
            .args(check)
            .arg(&script)
            .output()
            .unwrap();
        assert!(output.status.success(), "{shell}: {}", streams(&output));
    }
    let powershell = completions("powershell");
    assert!(
        powershell.contains("Register-ArgumentCompleter"),
        "{powershell}"
    );
}

#[test]
fn one_man_page_per_command_each_renders_without_a_warning() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("man");
    let output = dockertls()
        .arg("man")
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", streams(&output));
    let mut pages: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for command in [
        "dockertls.1",
        "dockertls-init.1",
        "dockertls-verify.1",
        "dockertls-probe.1",
        "dockertls-client.1",
        "dockertls-client-add.1",
        "dockertls-client-list.1",
        "dockertls-client-remove.1",
        "dockertls-env.1",
        "dockertls-rotate.1",
        "dockertls-install.1",
        "dockertls-backup.1",
        "dockertls-backup-prune.1",
        "dockertls-completions.1",
        "dockertls-man.1",
    ] {
        assert!(
            pages.contains(&command.to_string()),
            "{command} in {pages:?}"
        );
    }
    assert!(
        !pages.iter().any(|p| p.starts_with('.')),
        "a temporary file left: {pages:?}"
    );
    // The global --dir is documented on every subcommand's page too.
    let init = std::fs::read_to_string(out.join("dockertls-init.1")).unwrap();
    assert!(
        init.contains("\\-\\-dir") && init.contains("\\-\\-key\\-type"),
        "{init}"
    );
    let Some(groff) = find_tool("groff", "every man page is rendered with groff -ww") else {
        return;
    };
    for page in &pages {
        let output = Command::new(&groff)
            .args(["-ww", "-z", "-man"])
            .arg(out.join(page))
            .output()
            .unwrap();
        assert!(
            output.status.success() && output.stderr.is_empty(),
            "groff warns about {page}: {}",
            streams(&output)
        );
    }
    // A second run replaces the pages with the same text.
    let before = tree(&out);
    let again = dockertls()
        .arg("man")
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", streams(&again));
    assert_eq!(tree_diff(&before, &tree(&out)), "");
}

#[test]
fn man_refuses_an_unusable_out_and_changes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let before = tree(work.path());
    for out in [file.clone(), work.path().join("missing/man")] {
        let output = dockertls()
            .arg("man")
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{}", streams(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_one_error(&stderr, "man --out");
        assert!(stderr.contains(&out.display().to_string()), "{stderr}");
        assert_eq!(tree_diff(&before, &tree(work.path())), "");
    }
    let output = dockertls().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", streams(&output));
    assert!(output.stdout.is_empty());
}
