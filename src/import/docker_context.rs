//! Docker contexts through the real docker CLI (`docker context create/update/inspect/rm`):
//! the CLI copies ca.pem, cert.pem and key.pem into its own store, so dockertls hands it all
//! three together, and again after each rotation.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::Error;

/// The longest context name accepted (docker has no limit; a name is a line in messages).
const CONTEXT_NAME_MAX: usize = 128;

/// What a context connects to and with.
pub struct Endpoint {
    /// `tcp://HOST:PORT`.
    pub host: String,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Checks a context name as the docker CLI does (`^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$`), and
/// refuses `default`, which names the CLI's own environment-based context.
pub fn parse_context_name(flag: &str, input: &str) -> Result<String, Error> {
    let shown = crate::escape::value(input);
    let refuse = |why: &str| Error::refused(format!("{flag} '{shown}': {why}"));
    if input == "default" {
        return Err(refuse("names the docker CLI's own context").hint("choose another name"));
    }
    if input.len() < 2 || input.len() > CONTEXT_NAME_MAX {
        return Err(refuse("must be 2 to 128 characters long"));
    }
    let mut chars = input.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-'))
    {
        return Err(refuse(
            "a docker context name is letters, digits, '_', '.', '+' and '-', starting with a letter or digit",
        ));
    }
    Ok(input.to_string())
}

/// The docker CLI on PATH.
pub fn docker_cli() -> Result<PathBuf, Error> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("docker"))
        .find(|path| path.is_file())
        .ok_or_else(|| {
            Error::refused("the docker CLI is not on PATH: a docker context is made with it")
                .hint("install the docker CLI (Debian: apt-get install docker.io or docker-ce-cli)")
        })
}

fn run(docker: &Path, args: &[&str]) -> Result<std::process::Output, Error> {
    Command::new(docker)
        .args(args)
        .stdin(Stdio::null())
        // The CLI's context store is the user's: never let a context variable choose another.
        .env_remove("DOCKER_CONTEXT")
        .output()
        .map_err(|e| Error::failed(format!("cannot run {}: {e}", docker.display())))
}

/// The CLI's complaint, first line only (it may echo a path; the caller's message is escaped).
fn complaint(output: &std::process::Output) -> String {
    crate::escape::excerpt(
        String::from_utf8_lossy(&output.stderr)
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message"),
    )
}

/// Whether the docker CLI (this user's) has a context `name`. Asked with `docker context ls
/// --quiet` (one name a line, the same in every CLI version) rather than read from
/// `context inspect`'s complaint, whose wording changed: 20.10 (Debian's docker.io) says
/// `context "x" does not exist`, later CLIs `context "x": context not found`.
pub fn exists(docker: &Path, name: &str) -> Result<bool, Error> {
    let output = run(docker, &["context", "ls", "--quiet"])?;
    if !output.status.success() {
        return Err(Error::failed(format!(
            "docker context ls failed: {}",
            complaint(&output)
        )));
    }
    Ok(listed(&output.stdout, name))
}

/// Whether `name` is one of the lines of `docker context ls --quiet`.
fn listed(stdout: &[u8], name: &str) -> bool {
    String::from_utf8_lossy(stdout)
        .lines()
        .any(|line| line.trim_end() == name)
}

/// The `--docker` value: host, ca, cert and key in one CSV field list.
fn docker_value(endpoint: &Endpoint) -> Result<String, Error> {
    let text = |path: &Path| {
        path.to_str()
            .filter(|p| !p.chars().any(char::is_control))
            .map(str::to_string)
            .ok_or_else(|| {
                Error::refused(format!(
                    "{}: the path is not UTF-8 or holds a control character, which a docker context cannot store exactly; move the PKI",
                    path.display()
                ))
            })
    };
    let (ca, cert, key) = (
        text(&endpoint.ca)?,
        text(&endpoint.cert)?,
        text(&endpoint.key)?,
    );
    Ok(crate::render::docker_context_value(&[
        ("host", &endpoint.host),
        ("ca", &ca),
        ("cert", &cert),
        ("key", &key),
    ]))
}

/// Creates context `name` (or updates it when `exists`) with all three files.
pub fn create_or_update(
    docker: &Path,
    name: &str,
    description: &str,
    endpoint: &Endpoint,
    exists: bool,
) -> Result<(), Error> {
    let value = docker_value(endpoint)?;
    let verb = if exists { "update" } else { "create" };
    let output = run(
        docker,
        &[
            "context",
            verb,
            "--description",
            description,
            "--docker",
            &value,
            "--",
            name,
        ],
    )?;
    if output.status.success() {
        Ok(())
    } else {
        Err(Error::failed(format!(
            "docker context {verb} {name} failed: {}",
            complaint(&output)
        )))
    }
}

/// Removes context `name`; false when the CLI has none of that name.
pub fn remove(docker: &Path, name: &str) -> Result<bool, Error> {
    if !exists(docker, name)? {
        return Ok(false);
    }
    let output = run(docker, &["context", "rm", "--force", "--", name])?;
    if output.status.success() {
        Ok(true)
    } else {
        Err(Error::failed(format!(
            "docker context rm {name} failed: {}",
            complaint(&output)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_names_follow_the_docker_cli() {
        for good in ["dockertls-127.0.0.1", "prod_1", "a+b", "Z9"] {
            assert_eq!(parse_context_name("--name", good).unwrap(), good);
        }
        for bad in [
            "",
            "a",
            "default",
            "-x",
            ".x",
            "a b",
            "a/b",
            "a\u{1b}b",
            &"x".repeat(129),
        ] {
            assert!(parse_context_name("--name", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_context_is_found_by_its_whole_line_only() {
        let stdout = b"default\ndockertls-127.0.0.1\nlab\n";
        assert!(listed(stdout, "lab"));
        assert!(listed(stdout, "dockertls-127.0.0.1"));
        assert!(!listed(stdout, "la"));
        assert!(!listed(stdout, "dockertls-127.0.0"));
        assert!(!listed(b"", "lab"));
    }
}
