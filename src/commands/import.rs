//! `dockertls import PATH`: adopt a PKI made elsewhere (Docker's openssl recipe,
//! docker-machine, dind), keeping its CA and certificates so every client out there keeps
//! working, and say what does not meet dockertls's standard with the command that fixes each.

use std::path::Path;

use ::time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::cli::ImportArgs;
use crate::error::Error;
use crate::findings::Outcome;
use crate::import::defects::{self, Defect};
use crate::import::source::{self, Role, Source};
use crate::import::{keys, records};
use crate::render;
use crate::secret::{self, Passphrase};
use crate::store::layout::{
    CA_CERT, CLIENTS_DIR, DAEMON_JSON, INIT_ENTRIES, OVERRIDE_CONF, SERVERS_DIR, STATE_FILE,
};
use crate::store::registry::{ClientEntry, KeyPlace, ServerEntry, State};
use crate::store::{self, CERT_FILE, CONFIG_FILE, Holder, Stage, Staging};

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
            crate::import::keys::Protection::Plain => "with its key",
            _ => "with its key (encrypted)",
        },
        None => {
            "without its key: signing commands cannot run until the CA is replaced (rotate --ca)"
        }
    };
    out.push_str(&format!(
        "  CA {}, {key_note}\n",
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
        if source.leaves.iter().any(|l| l.role == Role::Server) {
            out.push_str(&format!(
                "each server got dockertls's daemon.json and systemd drop-in (listening on {LISTEN}, files in {INSTALL_DIR}, {DOCKERD})\n"
            ));
        }
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
    passphrase_file: Option<&Path>,
    now: OffsetDateTime,
) -> Result<Outcome, Error> {
    let plan = plan(dir, args, now)?;
    if args.dry_run {
        return Ok(Outcome::report(&report(&plan, dir, false)));
    }
    // An import makes a new PKI: it replaces one only with --force (after a backup).
    store::check_output_dir(dir, args.force)?;
    // Every key is read, unlocked and checked before anything is created.
    let prepared = prepare(&plan, passphrase_file)?;
    let staging = Staging::create(dir)?;
    write(&staging, &plan, &prepared, now)?;
    // The state file is written last, and the whole PKI moves into DIR in one commit.
    staging.commit(&INIT_ENTRIES, now)?;
    let mut text = report(&plan, dir, true);
    if prepared.passphrase.is_some() {
        text.push_str(&format!(
            "{} is encrypted (PKCS#8, scrypt): dockertls client add and rotate ask for its passphrase (or read --ca-passphrase-file)\n",
            Holder::Ca.key()
        ));
    }
    Ok(Outcome::report(&text))
}

/// The imported material in dockertls's form.
struct Prepared {
    ca_pem: String,
    ca_not_after: OffsetDateTime,
    /// Unencrypted PKCS#8.
    ca_key: Option<Zeroizing<String>>,
    /// Protects the CA key in the new PKI: the source's own passphrase when its key was
    /// encrypted, or --ca-passphrase-file's.
    passphrase: Option<Passphrase>,
    /// Per leaf: its certificates as PEM and its key (unencrypted PKCS#8).
    leaves: Vec<(String, OffsetDateTime, Option<Zeroizing<String>>)>,
}

fn prepare(plan: &ImportPlan, passphrase_file: Option<&Path>) -> Result<Prepared, Error> {
    let source = &plan.source;
    let (ca_pem, ca_not_after) = certificates_pem(&source.ca_cert)?;
    let mut passphrase = None;
    let ca_key = match &source.ca_key {
        None => None,
        Some(key) => {
            let encrypted = keys::protection(&key.bytes) != keys::Protection::Plain;
            if encrypted || passphrase_file.is_some() {
                let why = format!("the CA key {} is encrypted", key.path.display());
                let pass = secret::obtain(
                    passphrase_file,
                    "Passphrase of the CA key to import",
                    false,
                    &why,
                )?;
                // The source's passphrase is kept as it is; a new one must be good.
                if !encrypted {
                    pass.check_new()?;
                }
                passphrase = Some(pass);
            }
            let pem = keys::to_pkcs8_pem(&key.bytes, &key.path, passphrase.as_ref())?;
            crate::pki::Ca::load(&ca_pem, &pem).map_err(|why| {
                Error::refused(format!("{}: {why}", key.path.display()))
                    .hint("import without it (move ca-key.pem out of a copy of the folder), then replace the CA with dockertls rotate --ca")
            })?;
            Some(pem)
        }
    };
    let mut leaves = Vec::new();
    for leaf in &source.leaves {
        let (pem, not_after) = certificates_pem(&leaf.cert)?;
        let key = match &leaf.key {
            Some(key) => Some(keys::to_pkcs8_pem(&key.bytes, &key.path, None)?),
            None => None,
        };
        leaves.push((pem, not_after, key));
    }
    Ok(Prepared {
        ca_pem,
        ca_not_after,
        ca_key,
        passphrase,
        leaves,
    })
}

/// Every certificate of a file, as PEM written anew (nothing else of the file is carried
/// over: no comments, no stray key), and the first one's end of validity.
fn certificates_pem(file: &source::Material) -> Result<(String, OffsetDateTime), Error> {
    let bundle = crate::audit::material::parse_certificates(&file.bytes)
        .map_err(|why| Error::refused(format!("{} {why}", file.path.display())))?;
    let mut pem = String::new();
    let mut not_after = None;
    for der in &bundle.ders {
        if not_after.is_none() {
            let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| {
                Error::refused(format!(
                    "{} is not a valid certificate ({e})",
                    file.path.display()
                ))
            })?;
            not_after = Some(cert.validity().not_after.to_datetime());
        }
        pem.push_str(
            &pkcs8::der::pem::encode_string("CERTIFICATE", pkcs8::der::pem::LineEnding::LF, der)
                .map_err(|e| Error::failed(format!("cannot write a certificate as PEM: {e}")))?,
        );
    }
    let not_after = not_after
        .ok_or_else(|| Error::refused(format!("{} holds no certificate", file.path.display())))?;
    Ok((pem, not_after))
}

/// What an imported server's daemon.json and drop-in say: dockertls's defaults (the recipe's
/// port 2376; the files under /etc/docker/tls; Docker's packages' dockerd).
const LISTEN: &str = "0.0.0.0:2376";
const INSTALL_DIR: &str = "/etc/docker/tls";
const DOCKERD: &str = "/usr/bin/dockerd";

fn issued(
    cert_pem: &str,
    not_after: OffsetDateTime,
    key_pem: &Zeroizing<String>,
) -> crate::pki::Issued {
    crate::pki::Issued {
        cert_pem: cert_pem.to_string(),
        key_pem: key_pem.clone(),
        not_after,
        cut_to_ca: false,
    }
}

/// Stages the whole PKI: ca/, servers/NAME/, clients/NAME/, and the state file last.
fn write(
    staging: &Staging,
    plan: &ImportPlan,
    prepared: &Prepared,
    now: OffsetDateTime,
) -> Result<(), Error> {
    match &prepared.ca_key {
        Some(key) => staging.write_ca(
            &issued(&prepared.ca_pem, prepared.ca_not_after, key),
            prepared.passphrase.as_ref(),
        )?,
        None => {
            staging.mkdir(&Holder::Ca.folder())?;
            staging.write(&Holder::Ca.cert(), prepared.ca_pem.as_bytes(), CERT_FILE)?;
        }
    }
    staging.mkdir(SERVERS_DIR)?;
    staging.mkdir(CLIENTS_DIR)?;
    let mut state = State::default();
    for ((leaf, name), (cert_pem, not_after, key)) in plan
        .source
        .leaves
        .iter()
        .zip(&plan.names)
        .zip(&prepared.leaves)
    {
        let holder = match leaf.role {
            Role::Server => Holder::server(name),
            Role::Client => Holder::client(name),
        };
        write_leaf(
            staging,
            &holder,
            &prepared.ca_pem,
            cert_pem,
            *not_after,
            key.as_ref(),
        )?;
        let place = if key.is_some() {
            KeyPlace::Here
        } else {
            KeyPlace::Elsewhere
        };
        match leaf.role {
            Role::Server => {
                write_server_config(staging, &holder.folder())?;
                state.servers.insert(
                    name.clone(),
                    ServerEntry {
                        host: plan.hosts.get(name).cloned().unwrap_or_default(),
                        key: place,
                        deploy: None,
                        extra: Default::default(),
                    },
                );
            }
            Role::Client => {
                state.clients.insert(
                    name.clone(),
                    ClientEntry {
                        key: place,
                        extra: Default::default(),
                    },
                );
            }
        }
    }
    records::set_imported(&mut state, &facts(plan, prepared, now));
    staging.write(STATE_FILE, state.to_text()?.as_bytes(), CONFIG_FILE)
}

/// A leaf's folder: ca.pem, the certificate and, when the source had it, the key.
fn write_leaf(
    staging: &Staging,
    holder: &Holder,
    ca_pem: &str,
    cert_pem: &str,
    not_after: OffsetDateTime,
    key: Option<&Zeroizing<String>>,
) -> Result<(), Error> {
    if let Some(key) = key {
        return staging.write_pair(holder, ca_pem, &issued(cert_pem, not_after, key));
    }
    staging.mkdir(&holder.folder())?;
    staging.write(
        &format!("{}/{CA_CERT}", holder.folder()),
        ca_pem.as_bytes(),
        CERT_FILE,
    )?;
    staging.write(&holder.cert(), cert_pem.as_bytes(), CERT_FILE)
}

/// A server folder's daemon.json and systemd drop-in, with dockertls's defaults.
fn write_server_config(staging: &Staging, folder: &str) -> Result<(), Error> {
    let listen: std::net::SocketAddr = LISTEN
        .parse()
        .map_err(|_| Error::failed("the default listen address does not parse"))?;
    staging.write(
        &format!("{folder}/{DAEMON_JSON}"),
        render::daemon_json(listen, Path::new(INSTALL_DIR)).as_bytes(),
        CONFIG_FILE,
    )?;
    staging.write(
        &format!("{folder}/{OVERRIDE_CONF}"),
        render::override_conf(Path::new(DOCKERD)).as_bytes(),
        CONFIG_FILE,
    )
}

/// The state file's "imported" facts.
fn facts(plan: &ImportPlan, prepared: &Prepared, now: OffsetDateTime) -> records::Imported {
    records::Imported {
        from: std::path::absolute(&plan.source.root)
            .unwrap_or_else(|_| plan.source.root.clone())
            .to_string_lossy()
            .into_owned(),
        layout: plan.source.layout.id().to_string(),
        at: now
            .format(&::time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        ca_key: if prepared.ca_key.is_some() {
            "here"
        } else {
            "absent"
        }
        .to_string(),
    }
}
