//! `dockertls env NAME`: the environment (or docker context) for one client.

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

use crate::cli::EnvArgs;
use crate::commands::pkistate;
use crate::error::Error;
use crate::names::{self, Address};
use crate::render::{docker_context_value, fish_quote, powershell_quote, shell_quote};

/// Prints the lines for `args.name`.
pub fn run(dir: &Path, args: &EnvArgs) -> Result<(), Error> {
    let name = names::parse_client_name(&args.name).map_err(Error::Refused)?;
    crate::workspace::require_pki(dir)?;
    let folder = std::path::absolute(dir.join("clients").join(&name))
        .unwrap_or_else(|_| dir.join("clients").join(&name));
    if !folder.join("cert.pem").is_file() {
        let known = pkistate::client_names(dir);
        return Err(Error::Refused(format!(
            "no client '{name}' in {} (clients: {})",
            dir.display(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    }
    // The path is printed for a shell to read back: it must be exactly the folder's name.
    let path = folder.to_str().ok_or_else(|| {
        Error::Refused(format!(
            "{}: the path is not valid UTF-8, which a shell line cannot carry exactly; move the PKI to a folder with a UTF-8 name",
            folder.display()
        ))
    })?;
    let server = pkistate::read_leaf(&dir.join("server/server-cert.pem"))?;
    // The name clients dial: the server certificate's CN when it is one of its SANs.
    let host = server
        .sans
        .iter()
        .find(|a| a.to_string() == server.cn)
        .or(server.sans.first())
        .cloned()
        .ok_or_else(|| Error::Refused("the server certificate has no SAN to dial".into()))?;
    let host = match host {
        Address::Ip(IpAddr::V6(v6)) => format!("[{v6}]"),
        other => other.to_string(),
    };
    let docker_host = format!("tcp://{host}:{}", pkistate::listen_port(dir));
    let text = if args.context {
        if path.chars().any(char::is_control) {
            return Err(Error::Refused(format!(
                "{}: the path holds a control character, which docker context create cannot store exactly; use dockertls env {name} (without --context), or move the PKI",
                path.escape_default()
            )));
        }
        let context: String = host
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let file = |name: &str| format!("{path}/{name}");
        let (ca, cert, key) = (file("ca.pem"), file("cert.pem"), file("key.pem"));
        let docker = docker_context_value(&[
            ("host", &docker_host),
            ("ca", &ca),
            ("cert", &cert),
            ("key", &key),
        ]);
        format!(
            "docker context create {} --docker {}\n",
            shell_quote(&format!("dockertls-{}", context.trim_matches('-'))),
            shell_quote(&docker)
        )
    } else {
        match args.shell.as_str() {
            "fish" => format!(
                "set -gx DOCKER_HOST {};\nset -gx DOCKER_TLS_VERIFY 1;\nset -gx DOCKER_CERT_PATH {};\n",
                fish_quote(&docker_host),
                fish_quote(path)
            ),
            "powershell" => format!(
                "$Env:DOCKER_HOST = {}\n$Env:DOCKER_TLS_VERIFY = '1'\n$Env:DOCKER_CERT_PATH = {}\n",
                powershell_quote(&docker_host),
                powershell_quote(path)
            ),
            _ => format!(
                "export DOCKER_HOST={}\nexport DOCKER_TLS_VERIFY=1\nexport DOCKER_CERT_PATH={}\n",
                shell_quote(&docker_host),
                shell_quote(path)
            ),
        }
    };
    let _ = std::io::stdout().write_all(crate::escape::text(&text).as_bytes());
    Ok(())
}
