//! `dockertls import PATH`: adopt a PKI made elsewhere (Docker's openssl recipe,
//! docker-machine, dind), keeping its CA and certificates so every client out there keeps
//! working, and say what does not meet dockertls's standard with the command that fixes each.

use std::path::Path;

use ::time::OffsetDateTime;

use crate::cli::ImportArgs;
use crate::error::Error;
use crate::findings::Outcome;
use crate::import::defects::{self, Defect};
use crate::import::source::{self, Role, Source};

/// What an import would do: the source, the name each leaf is imported as, the defects.
pub struct ImportPlan {
    pub source: Source,
    /// `names[i]` is the name of `source.leaves[i]`.
    pub names: Vec<String>,
    /// The name clients dial each server at, by server name.
    pub hosts: std::collections::BTreeMap<String, String>,
    pub defects: Vec<Defect>,
}

/// Reads the source and decides names and defects; writes nothing.
pub fn plan(dir: &Path, args: &ImportArgs, now: OffsetDateTime) -> Result<ImportPlan, Error> {
    let mut hosts = Vec::new();
    for host in &args.hosts {
        let parsed = crate::names::parse_address("--host", host).map_err(Error::Refused)?;
        hosts.push(parsed.address.to_string());
    }
    let source = source::read(&args.path)?;
    let names = leaf_names(&source, hosts.first().map(String::as_str))?;
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let defects = defects::find(&source, &names, &dir, &hosts, now);
    let mut dialled = std::collections::BTreeMap::new();
    for (leaf, name) in source.leaves.iter().zip(&names) {
        if leaf.role == Role::Server {
            let host = match hosts.first() {
                Some(host) => host.clone(),
                None => dialled_host(&leaf.cert)?,
            };
            dialled.insert(name.clone(), host);
        }
    }
    Ok(ImportPlan {
        source,
        names,
        hosts: dialled,
        defects,
    })
}

/// The name clients dial a server at: its CN when that is one of its SANs, else its first
/// SAN, else its CN.
fn dialled_host(cert: &source::Material) -> Result<String, Error> {
    let der = source::first_der(cert)?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&der).map_err(|e| {
        Error::refused(format!(
            "{} is not a valid certificate ({e})",
            cert.path.display()
        ))
    })?;
    let cn = source::common_name(&parsed);
    let sans: Vec<String> = crate::names::certificate_sans(&parsed)
        .iter()
        .map(ToString::to_string)
        .collect();
    Ok(if sans.contains(&cn) || sans.is_empty() {
        cn
    } else {
        sans[0].clone()
    })
}

/// The name each leaf is imported as: a server by docker-machine's machine name, else the
/// first `--host`, else its CN; a client by its CN. Names are made safe as folder names and
/// unique (`client`, `client-2`).
fn leaf_names(source: &Source, host: Option<&str>) -> Result<Vec<String>, Error> {
    let mut names: Vec<String> = Vec::new();
    let servers = source
        .leaves
        .iter()
        .filter(|l| l.role == Role::Server)
        .count();
    for leaf in &source.leaves {
        let wanted = match (leaf.role, host) {
            (Role::Server, Some(host)) if servers == 1 => host.to_string(),
            _ => leaf.name.clone(),
        };
        let fallback = match leaf.role {
            Role::Server => "server",
            Role::Client => "client",
        };
        let base = safe_name(&wanted, leaf.role).unwrap_or_else(|| fallback.to_string());
        let mut name = base.clone();
        let mut n = 1;
        while names.contains(&name) {
            n += 1;
            name = format!("{base}-{n}");
        }
        names.push(name);
    }
    Ok(names)
}

/// `wanted` as a folder name: letters, digits, '.', '_', '-' (and '@' for a client) kept,
/// any other character turned into '-', at most 64 characters, not starting with '.' or '-'.
fn safe_name(wanted: &str, role: Role) -> Option<String> {
    let name: String = wanted
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric()
                || matches!(c, '.' | '_' | '-')
                || (c == '@' && role == Role::Client)
            {
                c
            } else {
                '-'
            }
        })
        .take(crate::names::CLIENT_NAME_MAX)
        .collect();
    let name = name.trim_start_matches(['.', '-']).to_string();
    crate::names::parse_client_name(&name).ok()
}

/// The report: what was found, under which names, and the defects with their fixes.
pub fn report(plan: &ImportPlan, dir: &Path, done: bool) -> String {
    let source = &plan.source;
    let mut out = format!(
        "{} {} ({})\n",
        if done { "imported" } else { "would import" },
        source.root.display(),
        source.layout.describe()
    );
    let key_note = match &source.ca_key {
        Some(key) => match crate::import::keys::protection(&key.bytes) {
            crate::import::keys::Protection::Plain => "its key",
            _ => "its key (encrypted)",
        },
        None => "without its key: signing commands cannot run",
    };
    out.push_str(&format!(
        "  CA {} with {key_note}\n",
        source.ca_cert.path.display()
    ));
    for (leaf, name) in source.leaves.iter().zip(&plan.names) {
        let role = match leaf.role {
            Role::Server => "server",
            Role::Client => "client",
        };
        let key = if leaf.key.is_some() {
            ""
        } else {
            " (no matching key in the source: it stays where it is)"
        };
        out.push_str(&format!(
            "  {role} {name} from {}{key}\n",
            leaf.cert.path.display()
        ));
    }
    if plan.defects.is_empty() {
        out.push_str("meets dockertls's standard: nothing to fix\n");
    } else {
        out.push_str(&format!(
            "{} thing{} to fix (the certificates were kept as they are, so clients keep working):\n",
            plan.defects.len(),
            if plan.defects.len() == 1 { "" } else { "s" }
        ));
        out.push_str(&defects::text(&plan.defects));
    }
    if done {
        out.push_str(&format!(
            "next: dockertls --dir {} verify\n",
            crate::render::shell_quote(&dir.to_string_lossy())
        ));
    }
    out
}

/// Runs `import`.
pub fn run(
    dir: &Path,
    args: &ImportArgs,
    _passphrase_file: Option<&Path>,
    now: OffsetDateTime,
) -> Result<Outcome, Error> {
    let plan = plan(dir, args, now)?;
    if args.dry_run {
        return Ok(Outcome::report(&report(&plan, dir, false)));
    }
    Err(Error::refused(
        "import without --dry-run is not built yet (it waits for the format-2 layout)",
    ))
}
