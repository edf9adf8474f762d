//! `dockertls env NAME`: the environment (or docker context) for one client.

use std::path::Path;

use crate::cli::{EnvArgs, Shell};
use crate::error::Error;
use crate::findings::Outcome;
use crate::names;
use crate::render::{docker_context_value, fish_quote, powershell_quote, shell_quote};
use crate::store::layout::{CA_CERT, CLIENT_CERT, CLIENT_KEY};
use crate::store::{Holder, Pki, registry, state, workspace};

/// Prints the lines for `args.name`.
pub fn run(dir: &Path, args: &EnvArgs, now: ::time::OffsetDateTime) -> Result<Outcome, Error> {
    let name = names::parse_client_name(&args.name).map_err(Error::Refused)?;
    if let Some(server) = &args.server {
        registry::parse_server_name("--server", server)?;
    }
    workspace::require_pki(dir)?;
    let client = Pki::new(dir).client_dir(&name);
    let folder = std::path::absolute(&client).unwrap_or(client);
    state::require_clients(dir, "", std::slice::from_ref(&name))?;
    // Its certificate must be there and readable (never through a link, never a FIFO).
    state::read_cert(dir, &Holder::client(&name))?;
    // The path is printed for a shell to read back: it must be exactly the folder's name.
    let path = folder.to_str().ok_or_else(|| {
        Error::Refused(format!(
            "{}: the path is not valid UTF-8, which a shell line cannot carry exactly; move the PKI to a folder with a UTF-8 name",
            folder.display()
        ))
    })?;
    let server_name = registry::resolve_server(dir, args.server.as_deref(), now)?;
    let holder = Holder::server(&server_name);
    let server = state::read_cert(dir, &holder)?;
    // The name clients dial: the server certificate's CN when it is one of its SANs.
    let host = server
        .sans
        .iter()
        .find(|a| a.to_string() == server.cn)
        .or(server.sans.first())
        .cloned()
        .ok_or_else(|| Error::Refused(format!("{}: the server certificate has no SAN to dial; add one with dockertls rotate --server {server_name} --allow HOST", Pki::new(dir).cert(&holder).display())))?;
    let docker_host = names::docker_host(&host, state::listen_port(dir, &server_name));
    let text = if args.context {
        if path.chars().any(char::is_control) {
            return Err(Error::Refused(format!(
                "{}: the path holds a control character, which docker context create cannot store exactly; use dockertls env {name} (without --context), or move the PKI",
                path.escape_default()
            )));
        }
        let file = |name: &str| format!("{path}/{name}");
        let (ca, cert, key) = (file(CA_CERT), file(CLIENT_CERT), file(CLIENT_KEY));
        let docker = docker_context_value(&[
            ("host", &docker_host),
            ("ca", &ca),
            ("cert", &cert),
            ("key", &key),
        ]);
        format!(
            "docker context create {} --docker {}\n",
            shell_quote(&names::context_name(&host)),
            shell_quote(&docker)
        )
    } else {
        match args.shell {
            Shell::Fish => format!(
                "set -gx DOCKER_HOST {};\nset -gx DOCKER_TLS_VERIFY 1;\nset -gx DOCKER_CERT_PATH {};\n",
                fish_quote(&docker_host),
                fish_quote(path)
            ),
            Shell::Powershell => format!(
                "$Env:DOCKER_HOST = {}\n$Env:DOCKER_TLS_VERIFY = '1'\n$Env:DOCKER_CERT_PATH = {}\n",
                powershell_quote(&docker_host),
                powershell_quote(path)
            ),
            Shell::Sh => format!(
                "export DOCKER_HOST={}\nexport DOCKER_TLS_VERIFY=1\nexport DOCKER_CERT_PATH={}\n",
                shell_quote(&docker_host),
                shell_quote(path)
            ),
        }
    };
    Ok(Outcome::report(&text))
}
