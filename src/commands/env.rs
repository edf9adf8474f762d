//! `dockertls env NAME`: the environment (or docker context) for one client.

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

use crate::cli::EnvArgs;
use crate::commands::pkistate;
use crate::error::Error;
use crate::names::{self, Address};
use crate::render::shell_quote;

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
    let path = folder.display().to_string();
    let text = if args.context {
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
        let docker =
            format!("host={docker_host},ca={path}/ca.pem,cert={path}/cert.pem,key={path}/key.pem");
        format!(
            "docker context create {} --docker {}\n",
            shell_quote(&format!("dockertls-{}", context.trim_matches('-'))),
            shell_quote(&docker)
        )
    } else {
        match args.shell.as_str() {
            "fish" => format!(
                "set -gx DOCKER_HOST {};\nset -gx DOCKER_TLS_VERIFY 1;\nset -gx DOCKER_CERT_PATH {};\n",
                shell_quote(&docker_host),
                shell_quote(&path)
            ),
            "powershell" => {
                let ps = |s: &str| {
                    format!(
                        "\"{}\"",
                        s.replace('`', "``").replace('"', "`\"").replace('$', "`$")
                    )
                };
                format!(
                    "$Env:DOCKER_HOST = {}\n$Env:DOCKER_TLS_VERIFY = \"1\"\n$Env:DOCKER_CERT_PATH = {}\n",
                    ps(&docker_host),
                    ps(&path)
                )
            }
            _ => format!(
                "export DOCKER_HOST={}\nexport DOCKER_TLS_VERIFY=1\nexport DOCKER_CERT_PATH={}\n",
                shell_quote(&docker_host),
                shell_quote(&path)
            ),
        }
    };
    let _ = std::io::stdout().write_all(crate::escape::text(&text).as_bytes());
    Ok(())
}
