//! `dockertls sign CSR (--server NAME | --client NAME)`: run where the CA is. Signs a
//! checked CSR for a key that lives elsewhere; the CA decides every extension (see `csr`).
//! The PKI records the entry with `"key": "elsewhere"` and holds no key for it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use ::time::OffsetDateTime;

use crate::cli::SignArgs;
use crate::csr::{self, Csr, Decision};
use crate::error::Error;
use crate::findings::Outcome;
use crate::names::{self, Address};
use crate::pki::{Ca, LeafRequest, Role, Signed};
use crate::plan;
use crate::render;
use crate::store::layout::{CA_CERT, DAEMON_JSON, OVERRIDE_CONF};
use crate::store::registry::{self, ClientEntry, KeyPlace, ServerEntry, State};
use crate::store::state::{self, date};
use crate::store::workspace::{self, Workspace};
use crate::store::{CERT_FILE, CONFIG_FILE, Holder, Pki, Stage};
use crate::userfile;

/// Runs `sign`.
pub fn run(
    dir: &Path,
    args: &SignArgs,
    passphrase_file: Option<&Path>,
    now: OffsetDateTime,
) -> Result<Outcome, Error> {
    let plan = SignPlan::from_args(args)?;
    let csr = read_csr(&args.csr)?;
    workspace::require_pki(dir)?;
    // Before the passphrase is asked, and again under the lock.
    check_entry(dir, &plan)?;
    workspace::finish_interrupted(dir, now)?;
    let (ca, _) = state::load_ca(dir, passphrase_file)?;
    super::client::check_ca_can_sign(&ca, plan.days, now)?;
    let mut ws = Workspace::open(dir, now)?;
    state::require_current_ca(&ws, &ca)?;
    let existing = check_entry(dir, &plan)?;
    let signed = match &plan.holder {
        Holder::Server(name) => sign_server(&mut ws, &plan, name, existing, &csr, &ca, now)?,
        Holder::Client(name) => sign_client(&mut ws, &plan, name, existing, &csr, &ca, now)?,
        Holder::Ca => return Err(Error::failed("sign: no CA entry is signed")),
    };
    Ok(Outcome::report(&report(dir, &plan, &csr, &signed)))
}

/// `sign`'s arguments, checked before anything is read.
struct SignPlan {
    holder: Holder,
    /// --host, checked (a server's; None for a client or to take the recorded host).
    host: Option<Address>,
    /// --allow, checked, without duplicates.
    allow: Vec<Address>,
    loopback: bool,
    accept_csr_sans: bool,
    days: i64,
    listen: Option<SocketAddr>,
    install_dir: Option<PathBuf>,
    dockerd: Option<PathBuf>,
    csr_path: PathBuf,
}

impl SignPlan {
    fn from_args(args: &SignArgs) -> Result<SignPlan, Error> {
        let holder = match (&args.server, &args.client) {
            (Some(server), None) => {
                Holder::server(&registry::parse_server_name("--server", server)?)
            }
            (None, Some(client)) => {
                Holder::client(&names::parse_client_name(client).map_err(Error::Refused)?)
            }
            _ => return Err(Error::refused("sign needs --server NAME or --client NAME")),
        };
        let host = match &args.host {
            Some(host) => Some(
                names::parse_address("--host", host)
                    .map_err(Error::Refused)?
                    .address,
            ),
            None => None,
        };
        let mut allow: Vec<Address> = Vec::new();
        for input in &args.allow {
            let address = names::parse_address("--allow", input)
                .map_err(Error::Refused)?
                .address;
            if !allow.contains(&address) {
                allow.push(address);
            }
        }
        Ok(SignPlan {
            holder,
            host,
            allow,
            loopback: !args.no_loopback,
            accept_csr_sans: args.accept_csr_sans,
            days: plan::check_days("--days", args.days, 1)?,
            listen: args.listen.as_deref().map(plan::parse_listen).transpose()?,
            install_dir: args
                .install_dir
                .as_deref()
                .map(|p| plan::check_absolute_path("--install-dir", p).map_err(Error::Refused))
                .transpose()?,
            dockerd: args
                .dockerd
                .as_deref()
                .map(plan::check_dockerd)
                .transpose()?,
            csr_path: args.csr.clone(),
        })
    }

    /// Whether --listen, --install-dir or --dockerd was given (they make a new server's
    /// daemon.json and override; an existing server keeps its own).
    fn has_server_config(&self) -> bool {
        self.listen.is_some() || self.install_dir.is_some() || self.dockerd.is_some()
    }
}

/// Reads the CSR file (a regular file of at most 64 KiB) and checks it.
fn read_csr(path: &Path) -> Result<Csr, Error> {
    let bytes = userfile::read_regular(path, csr::MAX_CSR_FILE)
        .map_err(|e| Error::refused(e.to_string()))?;
    csr::parse(&path.display().to_string(), &bytes).map_err(|message| {
        Error::refused(message).hint(
            "make the request on the host with: dockertls request server|client ... --out DIR",
        )
    })
}

/// What the PKI already has under the entry's name: None (new), or the recorded server
/// entry / client entry. An entry whose key is here is refused: a certificate for another key
/// would leave that key beside a certificate it does not match.
fn check_entry(dir: &Path, plan: &SignPlan) -> Result<Option<Existing>, Error> {
    let state = State::load(dir)?.unwrap_or_default();
    let pki = Pki::new(dir);
    let (folder_exists, key_place, host) = match &plan.holder {
        Holder::Server(name) => {
            let entry = state.servers().get(name);
            // The state file is the commit point: a folder it does not name was left by a
            // killed run (moved to the backup when this one writes).
            (
                entry.is_some(),
                entry.map(|e| e.key),
                entry.map(|e| e.host.clone()),
            )
        }
        Holder::Client(name) => (
            pki.folder(&plan.holder).symlink_metadata().is_ok(),
            Some(
                state
                    .clients()
                    .get(name)
                    .map_or_else(|| client_key_place(dir, name), |e| e.key),
            ),
            None,
        ),
        Holder::Ca => return Ok(None),
    };
    if !folder_exists {
        refuse_same_name_in_other_case(dir, &state, &plan.holder)?;
        if matches!(plan.holder, Holder::Server(_)) && plan.host.is_none() {
            return Err(Error::refused(format!(
                "{} is new: sign needs --host NAME, the name or IP address clients dial",
                plan.holder.label()
            )));
        }
        return Ok(None);
    }
    let label = plan.holder.label();
    if key_place != Some(KeyPlace::Elsewhere) {
        let remove = match &plan.holder {
            Holder::Server(name) => format!("dockertls server remove {name}"),
            Holder::Client(name) => format!("dockertls client remove {name}"),
            Holder::Ca => String::new(),
        };
        return Err(Error::refused(format!(
            "{label} exists and its key is in this PKI: a certificate for another key would not match it"
        ))
        .hint(format!(
            "renew it with dockertls rotate, or remove it first ({remove}) to sign a request for it"
        )));
    }
    if plan.has_server_config() {
        return Err(Error::refused(format!(
            "{label} exists: it keeps its daemon.json and override.conf; --listen, --install-dir and --dockerd are for a new server"
        ))
        .hint("sign again without them, or remove the server first"));
    }
    let sans = state::read_cert(dir, &plan.holder)
        .map(|leaf| leaf.sans)
        .unwrap_or_default();
    Ok(Some(Existing { host, sans }))
}

/// A new name that differs from an existing one only in case is refused (a copy of the
/// folder on macOS or Windows would overwrite the other), as `client add` and `server add` do.
fn refuse_same_name_in_other_case(dir: &Path, state: &State, holder: &Holder) -> Result<(), Error> {
    let (name, existing) = match holder {
        Holder::Server(name) => (name, state.server_names()),
        Holder::Client(name) => (name, state::client_names(dir)),
        Holder::Ca => return Ok(()),
    };
    match plan::same_name(&existing, name) {
        Some(other) if other != name => Err(Error::refused(format!(
            "{}: {} has '{other}' already, which differs only in case",
            holder.label(),
            dir.display()
        ))
        .hint("choose another NAME")),
        _ => Ok(()),
    }
}

fn client_key_place(dir: &Path, name: &str) -> KeyPlace {
    let key = Pki::new(dir).key(&Holder::client(name));
    if key.symlink_metadata().is_ok() {
        KeyPlace::Here
    } else {
        KeyPlace::Elsewhere
    }
}

/// An entry being signed again (its key lives elsewhere: a renewal with a new CSR).
struct Existing {
    host: Option<String>,
    /// The SANs of its current certificate (kept when neither --host nor --allow is given,
    /// as `rotate` keeps them).
    sans: Vec<Address>,
}

/// What was signed, for the report.
struct Done {
    signed: Signed,
    decision: Decision,
    cn: String,
    /// The backup of the entry's previous certificate, when it was signed again.
    backup: Option<PathBuf>,
}

/// The certificate `csr` gets as the CA decides, signed: `wanted` names the CN, the
/// operator's SANs, the role and the validity.
fn issue(
    ca: &Ca,
    csr: &Csr,
    wanted: &LeafRequest<'_>,
    accept: bool,
) -> Result<(Signed, Decision), Error> {
    let decision = csr::decide(csr, wanted.cn, wanted.sans, accept);
    let leaf = LeafRequest {
        sans: &decision.sans,
        ..*wanted
    };
    let signed = ca
        .issue_for_public_key(&leaf, &csr.key, csr.key.rsa)
        .map_err(|e| {
            Error::failed(format!(
                "cannot sign the certificate: {e}; nothing was changed"
            ))
        })?;
    Ok((signed, decision))
}

fn sign_server(
    ws: &mut Workspace,
    plan: &SignPlan,
    name: &str,
    existing: Option<Existing>,
    csr: &Csr,
    ca: &Ca,
    now: OffsetDateTime,
) -> Result<Done, Error> {
    let recorded = existing.as_ref().and_then(|e| e.host.as_deref());
    let host = match (&plan.host, recorded) {
        (Some(host), _) => host.clone(),
        (None, Some(recorded)) => {
            names::parse_address("the recorded host", recorded)
                .map_err(Error::Refused)?
                .address
        }
        (None, None) => {
            return Err(Error::refused(format!(
                "server {name}: sign needs --host NAME, the name or IP address clients dial"
            )));
        }
    };
    let mut sans = vec![host.clone()];
    let (listed, keeping): (&[Address], bool) = match &existing {
        Some(existing) if plan.host.is_none() && plan.allow.is_empty() => (&existing.sans, true),
        _ => (&plan.allow, false),
    };
    sans.extend(listed.iter().filter(|a| **a != host).cloned());
    let loopback = Address::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
    if plan.loopback && !keeping && !sans.contains(&loopback) {
        sans.push(loopback);
    }
    let cn = server_cn(&host);
    let wanted = LeafRequest {
        cn: &cn,
        sans: &sans,
        role: Role::Server,
        now,
        days: plan.days,
    };
    let (signed, decision) = issue(ca, csr, &wanted, plan.accept_csr_sans)?;
    let holder = Holder::server(name);
    let backup = if existing.is_some() {
        replace_pair(ws, &holder, &ca.cert_pem, &signed)?
    } else {
        write_server_folder(ws, plan, &holder, &ca.cert_pem, &signed)?;
        None
    };
    let mut state = State::load_in(ws.dir())?.unwrap_or_default();
    let entry = state
        .servers
        .entry(name.to_string())
        .or_insert_with(|| ServerEntry {
            host: host.to_string(),
            key: KeyPlace::Elsewhere,
            deploy: None,
            extra: Default::default(),
        });
    entry.host = host.to_string();
    entry.key = KeyPlace::Elsewhere;
    state.save(ws)?;
    Ok(Done {
        signed,
        decision,
        cn,
        backup,
    })
}

/// init's defaults for a new server's daemon.json and override (see `cli::InitArgs`).
const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 2376);
const DEFAULT_INSTALL_DIR: &str = "/etc/docker/tls";
const DEFAULT_DOCKERD: &str = "/usr/bin/dockerd";

/// Stages and adds the folder of a new server: ca.pem, server-cert.pem, daemon.json and
/// override.conf, no key.
fn write_server_folder(
    ws: &mut Workspace,
    plan: &SignPlan,
    holder: &Holder,
    ca_pem: &str,
    signed: &Signed,
) -> Result<(), Error> {
    let folder = holder.folder();
    // Not in the state file (checked under the lock): left by a killed run; kept in the backup.
    if ws.dir().entry_stat(&folder)?.is_some() {
        ws.move_to_backup(&folder)?;
    }
    let install_dir = plan
        .install_dir
        .as_deref()
        .unwrap_or(Path::new(DEFAULT_INSTALL_DIR));
    let dockerd = plan
        .dockerd
        .as_deref()
        .unwrap_or(Path::new(DEFAULT_DOCKERD));
    let daemon_json = render::daemon_json(plan.listen.unwrap_or(DEFAULT_LISTEN), install_dir);
    let override_conf = render::override_conf(dockerd);
    ws.mkdir(&folder)?;
    let files = [
        (CA_CERT, ca_pem, CERT_FILE),
        (holder.cert_name(), signed.cert_pem.as_str(), CERT_FILE),
        (DAEMON_JSON, daemon_json.as_str(), CONFIG_FILE),
        (OVERRIDE_CONF, override_conf.as_str(), CONFIG_FILE),
    ];
    for (file, contents, mode) in files {
        ws.write(&format!("{folder}/{file}"), contents.as_bytes(), mode)?;
    }
    ws.flush()?;
    ws.add(&folder)
}

fn sign_client(
    ws: &mut Workspace,
    plan: &SignPlan,
    name: &str,
    existing: Option<Existing>,
    csr: &Csr,
    ca: &Ca,
    now: OffsetDateTime,
) -> Result<Done, Error> {
    let wanted = LeafRequest {
        cn: name,
        sans: &[],
        role: Role::Client,
        now,
        days: plan.days,
    };
    let (signed, decision) = issue(ca, csr, &wanted, false)?;
    let holder = Holder::client(name);
    let backup = if existing.is_some() {
        replace_pair(ws, &holder, &ca.cert_pem, &signed)?
    } else {
        let folder = holder.folder();
        ws.mkdir(&folder)?;
        ws.write(
            &format!("{folder}/{CA_CERT}"),
            ca.cert_pem.as_bytes(),
            CERT_FILE,
        )?;
        ws.write(&holder.cert(), signed.cert_pem.as_bytes(), CERT_FILE)?;
        ws.flush()?;
        ws.add(&folder)?;
        None
    };
    let mut state = State::load_in(ws.dir())?.unwrap_or_default();
    state
        .clients
        .entry(name.to_string())
        .or_insert_with(ClientEntry::default)
        .key = KeyPlace::Elsewhere;
    state.save(ws)?;
    Ok(Done {
        signed,
        decision,
        cn: name.to_string(),
        backup,
    })
}

/// Replaces the certificate and ca.pem of an entry whose key lives elsewhere, keeping
/// everything else its folder holds: the old folder goes to the backup, the new one is
/// swapped in whole.
fn replace_pair(
    ws: &mut Workspace,
    holder: &Holder,
    ca_pem: &str,
    signed: &Signed,
) -> Result<Option<PathBuf>, Error> {
    let folder = holder.folder();
    let live = ws.dir().subfolder(&folder)?;
    ws.copy_in(&live, &folder)?;
    let staged = ws.staged(&folder)?;
    for (file, contents) in [
        (CA_CERT, ca_pem),
        (holder.cert_name(), signed.cert_pem.as_str()),
    ] {
        if staged.entry_stat(file)?.is_some() {
            staged.remove_tree(file)?;
        }
        staged.write_new_file(file, contents.as_bytes(), CERT_FILE)?;
    }
    if staged.entry_stat(holder.key_name())?.is_some() {
        return Err(Error::refused(format!(
            "{} holds a key: a certificate for another key would not match it; nothing was changed",
            Pki::new(ws.dir().path()).folder(holder).display()
        )));
    }
    ws.replace(&folder)?;
    Ok(Some(ws.backup_dir()?))
}

/// The server certificate's CN: the dialled name, if it fits in a CN (as `init`).
fn server_cn(host: &Address) -> String {
    let host = host.to_string();
    if host.len() <= names::CLIENT_NAME_MAX {
        host
    } else {
        "docker daemon".to_string()
    }
}

/// What was signed, what the CSR asked for and did not get, and what to do next.
fn report(dir: &Path, plan: &SignPlan, csr: &Csr, done: &Done) -> String {
    let pki = Pki::new(dir);
    let folder = pki.folder(&plan.holder);
    let mut out = format!(
        "signed {} from {} ({} key, which stays where it was made): {} (expires {})\n",
        plan.holder.label(),
        plan.csr_path.display(),
        csr.key.description,
        folder.display(),
        date(done.signed.not_after)
    );
    if done.signed.cut_to_ca {
        out.push_str("  its validity was cut to end with the CA\n");
    }
    let sans: Vec<String> = done.decision.sans.iter().map(ToString::to_string).collect();
    out.push_str(&format!("  CN={}", done.cn));
    if !sans.is_empty() {
        out.push_str(&format!(", SANs: {}", sans.join(", ")));
    }
    out.push('\n');
    if !csr.sans.is_empty() {
        let asked: Vec<String> = csr.sans.iter().map(ToString::to_string).collect();
        out.push_str(&format!(
            "  the CSR asked for the SANs: {}\n",
            asked.join(", ")
        ));
    }
    for taken in &done.decision.taken_from_csr {
        out.push_str(&format!(
            "  taken from the CSR (--accept-csr-sans): {taken}\n"
        ));
    }
    for dropped in &done.decision.dropped {
        out.push_str(&format!("  not taken from the CSR: {dropped}\n"));
    }
    if let Some(backup) = &done.backup {
        out.push_str(&format!(
            "  the previous certificate is in {}\n",
            backup.display()
        ));
    }
    out.push_str(&match &plan.holder {
        Holder::Server(_) => format!(
            "Copy {}/ to the daemon host, beside server-key.pem, then as root there: dockertls install --from FOLDER\n",
            folder.display()
        ),
        _ => format!(
            "Give the user {}/{} and {}/{}: beside their key.pem, that folder is DOCKER_CERT_PATH.\n",
            folder.display(),
            plan.holder.cert_name(),
            folder.display(),
            CA_CERT
        ),
    });
    out
}
