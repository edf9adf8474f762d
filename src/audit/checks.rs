//! The checks on one target. Each check id appears at most once per target: findings of one
//! id are merged, keeping the worst status.

use std::fs;
use std::io::Read;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::pki;
use ::time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

use super::material::{self, KeyError, KeyFile, PublicOfPrivate};
use super::{Check, Kind, Options, Status, Target, TargetReport};

/// The check ids, in report order.
pub const IDS: [&str; 18] = [
    "files",
    "parse",
    "ca",
    "chain",
    "validity",
    "revoked",
    "key-match",
    "key-usage",
    "ext-key-usage",
    "san",
    "host",
    "key-strength",
    "signature-algorithm",
    "permissions",
    "ownership",
    "lint",
    "daemon-config",
    "tlsverify",
];

/// Accumulates findings per check id.
#[derive(Default)]
pub struct Findings {
    checks: Vec<Check>,
}

impl Findings {
    /// Records a finding; a worse one replaces a better one, equal non-ok ones are joined.
    pub fn record(&mut self, id: &'static str, status: Status, message: impl Into<String>) {
        let message = message.into();
        match self.checks.iter_mut().find(|c| c.id == id) {
            Some(check) if status > check.status => {
                check.status = status;
                check.message = message;
            }
            Some(check) if status == check.status && status != Status::Ok => {
                check.message.push_str("; ");
                check.message.push_str(&message);
            }
            Some(_) => {}
            None => self.checks.push(Check::new(id, status, message)),
        }
    }

    fn ok(&mut self, id: &'static str, message: impl Into<String>) {
        self.record(id, Status::Ok, message);
    }
    fn warn(&mut self, id: &'static str, message: impl Into<String>) {
        self.record(id, Status::Warn, message);
    }
    fn fail(&mut self, id: &'static str, message: impl Into<String>) {
        self.record(id, Status::Fail, message);
    }

    /// The checks in the documented order.
    pub fn into_checks(mut self) -> Vec<Check> {
        self.checks
            .sort_by_key(|c| IDS.iter().position(|id| *id == c.id).unwrap_or(IDS.len()));
        self.checks
    }
}

/// A file read for checking: its bytes and metadata.
struct Loaded {
    /// Wiped on drop: it may be a private key.
    bytes: zeroize::Zeroizing<Vec<u8>>,
    meta: fs::Metadata,
}

/// How often a target is read again when a folder it was read from was replaced meanwhile
/// (a `rotate` swapping it): then the files may come from two sides of the swap.
const READ_ATTEMPTS: usize = 5;

/// Reads a target's certificate, key and CA bundle. Each folder is opened once and its files
/// are opened relative to that descriptor, so a certificate and a key of one folder come from
/// the same folder even while another process swaps it. If a folder was replaced during the
/// read (the path now names another folder), everything is read again.
fn load_target(target: &Target) -> (Findings, [Option<Loaded>; 3]) {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut findings = Findings::default();
        let mut folders: Vec<(std::path::PathBuf, Option<fs::File>)> = Vec::new();
        let mut load_one = |path: &Path, what: &str, findings: &mut Findings| {
            let parent = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf();
            let folder = match folders.iter().position(|(p, _)| *p == parent) {
                Some(index) => index,
                None => {
                    folders.push((parent.clone(), open_folder(&parent)));
                    folders.len() - 1
                }
            };
            load(folders[folder].1.as_ref(), path, what, findings)
        };
        let cert = load_one(&target.cert, "certificate", &mut findings);
        // Issue 12: an entry signed from a CSR has no key here, by design.
        let key = if key_lives_elsewhere(target) {
            None
        } else {
            load_one(&target.key, "key", &mut findings)
        };
        let ca = target
            .ca
            .as_ref()
            .and_then(|ca| load_one(ca, "CA bundle", &mut findings));
        let replaced = folders.iter().any(|(path, opened)| {
            opened.as_ref().is_some_and(|file| {
                let now = fs::metadata(path).ok();
                let then = file.metadata().ok();
                match (now, then) {
                    (Some(now), Some(then)) => now.ino() != then.ino() || now.dev() != then.dev(),
                    _ => true,
                }
            })
        });
        if !replaced || attempt >= READ_ATTEMPTS {
            for (path, _) in &folders {
                record_folder_trust(path, &mut findings);
            }
            return (findings, [cert, key, ca]);
        }
    }
}

/// Whether `target` is a server or client folder of a dockertls PKI whose state file records
/// its key as living elsewhere (issue 12: signed from a CSR), and no key file is there.
fn key_lives_elsewhere(target: &Target) -> bool {
    use crate::store::registry::{KeyPlace, State};
    if target.kind == Kind::Ca || fs::symlink_metadata(&target.key).is_ok() {
        return false;
    }
    // DIR/servers/NAME/server-key.pem or DIR/clients/NAME/key.pem.
    let folder = target.key.parent().unwrap_or(Path::new(""));
    let (Some(name), Some(holders)) =
        (folder.file_name().and_then(|n| n.to_str()), folder.parent())
    else {
        return false;
    };
    let Some(dir) = holders.parent() else {
        return false;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(Some(state)) = State::load(dir) else {
        return false;
    };
    let pki = crate::store::Pki::new(dir);
    let place = if target.kind == Kind::Server && holders == pki.servers_dir() {
        state.servers().get(name).map(|e| e.key)
    } else if target.kind == Kind::Client && holders == pki.clients_dir() {
        state.clients().get(name).map(|e| e.key)
    } else {
        None
    };
    place == Some(KeyPlace::Elsewhere)
}

/// Opens a folder for reading its files relative to it (links followed, as dockerd does).
fn open_folder(path: &Path) -> Option<fs::File> {
    let fd = rustix::fs::open(
        path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ok()?;
    Some(fs::File::from(fd))
}

/// Reports a folder that others can change: they could swap the files just checked.
fn record_folder_trust(folder: &Path, findings: &mut Findings) {
    if let Some(problem) = crate::store::folder_trust_problem(folder) {
        let message = format!("{}; fix: {}", problem.message, problem.fix);
        if problem.writable {
            findings.fail("permissions", message);
        } else {
            findings.warn("permissions", message);
        }
    }
}

/// Reads one file, relative to its opened folder when there is one. It is opened without
/// blocking (a FIFO does not hang the audit) and checked on the opened descriptor, so the
/// metadata and the bytes are of the same file.
fn load(
    folder: Option<&fs::File>,
    path: &Path,
    what: &str,
    findings: &mut Findings,
) -> Option<Loaded> {
    // A path read from daemon.json may be anything: cut beyond PATH_MAX (escape::path).
    let name = crate::escape::path(path);
    let flags =
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::CLOEXEC;
    let opened = match (folder, path.file_name()) {
        (Some(folder), Some(file_name)) => {
            rustix::fs::openat(folder, file_name, flags, rustix::fs::Mode::empty())
        }
        _ => rustix::fs::open(path, flags, rustix::fs::Mode::empty()),
    };
    let file = match opened {
        Ok(fd) => fs::File::from(fd),
        Err(rustix::io::Errno::NOENT) => {
            findings.fail("files", format!("{what} {name} is missing"));
            return None;
        }
        Err(err) => {
            let err = std::io::Error::from(err);
            findings.fail("files", format!("{what} {name} cannot be read: {err}"));
            return None;
        }
    };
    let meta = match file.metadata() {
        Ok(meta) => meta,
        Err(err) => {
            findings.fail("files", format!("{what} {name} cannot be read: {err}"));
            return None;
        }
    };
    if !meta.is_file() {
        findings.fail("files", format!("{what} {name} is not a regular file"));
        return None;
    }
    if meta.len() > material::MAX_FILE_SIZE {
        findings.fail(
            "files",
            format!(
                "{what} {name} is {} bytes: over 1 MiB, not certificate material",
                meta.len()
            ),
        );
        return None;
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    if let Err(err) = file
        .take(material::MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
    {
        findings.fail("files", format!("{what} {name} cannot be read: {err}"));
        return None;
    }
    Some(Loaded {
        bytes: zeroize::Zeroizing::new(bytes),
        meta,
    })
}

/// Runs every check that applies to `target`.
pub fn audit(target: &Target, options: &Options) -> TargetReport {
    let (mut findings, [cert_file, key_file, ca_file]) = load_target(target);
    let elsewhere = key_lives_elsewhere(target);
    if !findings.checks.iter().any(|c| c.id == "files") {
        if elsewhere {
            findings.ok(
                "files",
                "certificate and CA present and readable; the key lives elsewhere (signed from a CSR: dockertls.json says \"key\": \"elsewhere\"), so its match is not checked here",
            );
        } else {
            findings.ok("files", "all files present and readable");
        }
    }

    let files = [
        (&cert_file, &target.cert, FileRole::Cert),
        (&key_file, &target.key, FileRole::Key),
    ];
    let ca = target
        .ca
        .as_ref()
        .map(|ca| (&ca_file, ca, FileRole::CaCert));
    for (loaded, path, role) in files.into_iter().chain(ca) {
        if let Some(loaded) = loaded {
            check_permissions(&loaded.meta, path, role, target.cis, &mut findings);
        }
    }

    let mut report = TargetReport {
        path: target.path.clone(),
        kind: target.kind,
        subject: None,
        not_after: None,
        days_left: None,
        serial: None,
        revocation: None,
        checks: Vec::new(),
    };

    let leaf_der = first_certificate(target, cert_file.as_ref(), &mut findings);
    let leaf = leaf_der
        .as_deref()
        .and_then(|der| match X509Certificate::from_der(der) {
            Ok((_, cert)) => Some(cert),
            Err(err) => {
                findings.fail(
                    "parse",
                    format!(
                        "{} is not a valid X.509 certificate ({})",
                        target.cert.display(),
                        material::x509_error_text(&err)
                    ),
                );
                None
            }
        });
    let key = private_key(target, key_file.as_ref(), &mut findings);
    let ca_ders = ca_bundle(target, ca_file.as_ref(), &mut findings);
    let cas = parse_bundle(&ca_ders, &mut findings);
    if !findings
        .checks
        .iter()
        .any(|c| c.id == "parse" && c.status != Status::Ok)
        && leaf.is_some()
    {
        if elsewhere {
            findings.ok("parse", "certificate parses (its key lives elsewhere)");
        } else {
            let format = key.as_ref().map(|k| k.format.name()).unwrap_or("-");
            findings.ok("parse", format!("certificate and {format} key parse"));
        }
    }

    if let Some(leaf) = &leaf {
        report.subject = Some(leaf.subject().to_string());
        let not_after = leaf.validity().not_after.to_datetime();
        report.not_after = Some(not_after);
        report.days_left = Some(days_between(options.now, not_after));
        report.serial = Some(
            leaf.raw_serial()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        );
        check_cert(target, leaf, &cas, key.as_ref(), options, &mut findings);
        note_two_roles(target, leaf, &mut findings);
    }
    report.checks = findings.into_checks();
    report
}

/// The CA bundle's certificates that parse; one that does not is a finding.
fn parse_bundle<'a>(ders: &'a [Vec<u8>], findings: &mut Findings) -> Vec<X509Certificate<'a>> {
    let mut cas = Vec::new();
    for (index, der) in ders.iter().enumerate() {
        match X509Certificate::from_der(der) {
            Ok((_, cert)) => cas.push(cert),
            Err(err) => findings.fail(
                "parse",
                format!(
                    "certificate {} of the CA bundle is not valid X.509 ({})",
                    index + 1,
                    material::x509_error_text(&err)
                ),
            ),
        }
    }
    cas
}

/// The first certificate of the certificate file (a private key in it is a finding).
fn first_certificate(
    target: &Target,
    loaded: Option<&Loaded>,
    findings: &mut Findings,
) -> Option<Vec<u8>> {
    loaded.and_then(|loaded| {
        match material::parse_certificates(&loaded.bytes) {
            Ok(bundle) => {
                if bundle.holds_private_key {
                    findings.fail("parse", format!("{} also holds a private key: anyone who can read the certificate has the key; keep the key in its own 0400 file", target.cert.display()));
                }
                bundle.ders.into_iter().next()
            }
            Err(why) => {
                findings.fail("parse", format!("{} {why}", target.cert.display()));
                None
            }
        }
    })
}

/// The key file, read (an encrypted key is good for a CA only).
fn private_key(
    target: &Target,
    loaded: Option<&Loaded>,
    findings: &mut Findings,
) -> Option<KeyFile> {
    loaded.and_then(|loaded| match material::parse_private_key(&loaded.bytes) {
        Ok(key) => Some(key),
        Err(KeyError::Encrypted) if target.kind == Kind::Ca => {
            // Only the CA key may be encrypted, and it should be.
            findings.ok("parse", format!("{} is encrypted (good: keep it that way); its match with the certificate was not checked", target.key.display()));
            None
        }
        Err(KeyError::Encrypted) => {
            findings.fail("parse", format!("{0} is encrypted: dockerd and the docker CLI cannot load an encrypted key; decrypt it: openssl pkey -in {0} -out {0}.plain", target.key.display()));
            None
        }
        Err(KeyError::Invalid(why)) => {
            findings.fail("parse", format!("{} {why}", target.key.display()));
            None
        }
    })
}

/// The certificates of the CA bundle, as DER.
fn ca_bundle(target: &Target, loaded: Option<&Loaded>, findings: &mut Findings) -> Vec<Vec<u8>> {
    let ca_ders: Vec<Vec<u8>> = loaded.map_or_else(Vec::new, |loaded| {
        match material::parse_certificates(&loaded.bytes) {
            Ok(bundle) => {
                if bundle.holds_private_key {
                    findings.fail("parse", format!("{} also holds a private key: the CA key is exposed to every reader of ca.pem", target.ca.as_ref().map(|p| p.display().to_string()).unwrap_or_default()));
                }
                bundle.ders
            }
            Err(why) => {
                findings.fail("parse", format!("{} {why}", target.ca.as_ref().map(|p| p.display().to_string()).unwrap_or_default()));
                Vec::new()
            }
        }
    });
    ca_ders
}

/// A folder with the names of both roles (see `two_role_note`): its note joins ext-key-usage.
fn note_two_roles(target: &Target, leaf: &X509Certificate<'_>, findings: &mut Findings) {
    if let Some((status, note)) = two_role_note(target, leaf) {
        // A warning when a check of the chosen role fails, so that its fix is not taken for
        // the fix of a folder meant for the other role.
        let role_checks = ["ca", "ext-key-usage", "san", "host"];
        let troubled = findings
            .checks
            .iter()
            .any(|c| c.status != Status::Ok && role_checks.contains(&c.id));
        if status == Status::Ok && !troubled {
            if let Some(check) = findings.checks.iter_mut().find(|c| c.id == "ext-key-usage") {
                check.message = format!("{}; {note}", check.message);
            }
        } else {
            findings.record("ext-key-usage", status.max(Status::Warn), note);
        }
    }
}

fn days_between(now: OffsetDateTime, later: OffsetDateTime) -> i64 {
    (later - now).whole_seconds().div_euclid(86_400)
}

fn date(t: OffsetDateTime) -> String {
    let d = t.date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// A moment as an operator reads it: `2030-01-01 00:00 UTC`.
pub fn date_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(::time::UtcOffset::UTC);
    format!("{} {:02}:{:02} UTC", date(t), t.hour(), t.minute())
}

/// Which file of a target is checked: it decides the CIS Docker Benchmark items that apply.
#[derive(Clone, Copy)]
enum FileRole {
    CaCert,
    Cert,
    Key,
}

impl FileRole {
    /// The CIS Docker Benchmark (v1.6) items for this file: (ownership, permissions).
    fn cis_items(self) -> (&'static str, &'static str) {
        match self {
            FileRole::CaCert => ("3.9", "3.10"),
            FileRole::Cert => ("3.11", "3.12"),
            FileRole::Key => ("3.13", "3.14"),
        }
    }
}

fn check_permissions(
    meta: &fs::Metadata,
    path: &Path,
    role: FileRole,
    cis: bool,
    findings: &mut Findings,
) {
    let mode = meta.mode() & 0o7777;
    let name = path.display();
    let (owner_item, mode_item) = role.cis_items();
    if matches!(role, FileRole::Key) {
        if mode & 0o077 != 0 {
            findings.fail("permissions", format!("{name} is mode {mode:04o}, open to group or others: anyone who reads it can act as this certificate; run chmod 0400 {name}"));
        } else if cis && mode != 0o400 {
            findings.fail("permissions", format!("{name} is mode {mode:04o}; CIS Docker Benchmark {mode_item} wants exactly 0400: chmod 0400 {name}"));
        }
    } else if mode & 0o022 != 0 {
        findings.warn("permissions", format!("{name} is mode {mode:04o}, writable by group or others: they can swap the certificate; run chmod 0444 {name}"));
    } else if cis && mode & !0o444 != 0 {
        findings.fail("permissions", format!("{name} is mode {mode:04o}; CIS Docker Benchmark {mode_item} wants 0444 or stricter: chmod 0444 {name}"));
    }
    if cis && (meta.uid() != 0 || meta.gid() != 0) {
        findings.fail("ownership", format!("{name} is owned by {}:{}; CIS Docker Benchmark {owner_item} wants root:root: chown root:root {name}", meta.uid(), meta.gid()));
    } else if cis {
        findings.ok("ownership", "owned by root:root");
    }
    findings.ok("permissions", "modes are safe");
}

/// A folder of cert.pem, key.pem and ca.pem is a client folder (DOCKER_CERT_PATH) or
/// docker:dind's /certs/server: when its certificate fits only one of them, or neither, says
/// what the other reading would meet.
fn two_role_note(target: &Target, leaf: &X509Certificate<'_>) -> Option<(Status, String)> {
    let named = |path: &Path, name: &str| path.file_name().is_some_and(|n| n == name);
    if target.cis
        || target.kind == Kind::Ca
        || !named(&target.cert, crate::store::layout::CLIENT_CERT)
        || !named(&target.key, crate::store::layout::CLIENT_KEY)
    {
        return None;
    }
    let eku = leaf.extended_key_usage().ok().flatten()?.value;
    let server = eku.any || eku.server_auth;
    let client = eku.any || eku.client_auth;
    let dir = target.path.display();
    Some(match (server, client) {
        (true, true) => return None,
        (false, false) => (
            Status::Fail,
            format!(
                "{dir} has the names of a client folder and of docker:dind's server folder, and its certificate is refused in both roles: no clientAuth, no serverAuth"
            ),
        ),
        (true, false) => (
            Status::Ok,
            format!(
                "{dir} has the names of a client folder (DOCKER_CERT_PATH) too, and was checked as docker:dind's server folder because its certificate is for servers only: as a client folder it would be refused: no clientAuth"
            ),
        ),
        (false, true) => (
            Status::Ok,
            format!(
                "{dir} has the names of docker:dind's server folder too, and was checked as a client folder: as a server folder it would be refused: no serverAuth"
            ),
        ),
    })
}

/// Which role the certificate plays (for EKU and key usage).
fn role_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Server => "server",
        Kind::Client => "client",
        Kind::Ca => "CA",
    }
}

fn check_cert(
    target: &Target,
    leaf: &X509Certificate<'_>,
    cas: &[X509Certificate<'_>],
    key: Option<&KeyFile>,
    options: &Options,
    findings: &mut Findings,
) {
    let is_ca_target = target.kind == Kind::Ca;
    let now = options.now;

    // ca: the CA bundle (or, for a CA target, the certificate itself).
    let ca_list: Vec<&X509Certificate<'_>> = if is_ca_target {
        vec![leaf]
    } else {
        cas.iter().collect()
    };
    for ca in &ca_list {
        check_is_ca(ca, target.kind, findings);
    }

    let issuer = check_chain(target, leaf, cas, now, findings);
    check_validity(target, leaf, issuer, options, findings);

    // key-match
    if let Some(key) = key {
        match key_matches(leaf, &key.public) {
            Ok(true) => findings.ok("key-match", "the key belongs to the certificate"),
            Ok(false) => findings.fail("key-match", format!("{} does not belong to {}: dockerd refuses to start with this pair; put back the key it was issued for, or re-issue", target.key.display(), target.cert.display())),
            Err(why) => findings.warn("key-match", why),
        }
    }

    if !is_ca_target {
        check_leaf_usage(target, leaf, findings);
    }
    if target.kind == Kind::Server {
        check_sans(leaf, options, target, findings);
    }
    check_key_strength(leaf, "certificate", findings);
    if let Some(ca) = issuer {
        check_key_strength(ca, "CA", findings);
    }
    check_signature_algorithm(leaf, is_ca_target, findings);
    check_lint(leaf, is_ca_target, findings);
}

/// chain: the certificate is signed by a CA of the bundle, valid now (a CA target: its
/// self-signature). Returns the CA that signed it.
fn check_chain<'a, 'b>(
    target: &Target,
    leaf: &X509Certificate<'_>,
    cas: &'a [X509Certificate<'b>],
    now: OffsetDateTime,
    findings: &mut Findings,
) -> Option<&'a X509Certificate<'b>> {
    let is_ca_target = target.kind == Kind::Ca;
    let issuer = if is_ca_target || cas.is_empty() {
        None
    } else {
        let candidates: Vec<&X509Certificate<'_>> = cas
            .iter()
            .filter(|ca| ca.subject().as_raw() == leaf.issuer().as_raw())
            .collect();
        let verified = candidates
            .iter()
            .copied()
            .find(|ca| leaf.verify_signature(Some(ca.public_key())).is_ok());
        match verified {
            Some(ca) => {
                let validity = ca.validity();
                if now > validity.not_after.to_datetime() {
                    findings.fail("chain", format!("signed by {}, which expired on {}: every certificate it signed is refused; create a new CA and re-issue", dn(ca.subject()), date(validity.not_after.to_datetime())));
                } else if now < validity.not_before.to_datetime() {
                    findings.fail(
                        "chain",
                        format!(
                            "signed by {}, which is not valid before {} (clock skew?)",
                            dn(ca.subject()),
                            date(validity.not_before.to_datetime())
                        ),
                    );
                } else {
                    findings.ok("chain", format!("signed by {}", dn(ca.subject())));
                }
                Some(ca)
            }
            None if !candidates.is_empty() && weak_hash(leaf).is_some() => {
                findings.fail("chain", format!("signed with {} by {}: Go refuses to verify such signatures; re-issue the certificate with SHA-256", weak_hash(leaf).unwrap_or_default(), dn(leaf.issuer())));
                None
            }
            None => {
                let held: Vec<String> = cas.iter().map(|ca| dn(ca.subject())).collect();
                let why = if candidates.is_empty() {
                    "no CA there has that name"
                } else {
                    "the signature does not verify with the CA of that name (another CA with the same name?)"
                };
                findings.fail("chain", format!("issued by {} but {} holds [{}]: {why}; use the ca.pem of the CA that signed it, or re-issue the certificate", dn(leaf.issuer()), target.ca.as_ref().map(|p| p.display().to_string()).unwrap_or_default(), held.join("; ")));
                None
            }
        }
    };
    if is_ca_target {
        match leaf.verify_signature(None) {
            Ok(()) => {}
            Err(_) if leaf.subject().as_raw() != leaf.issuer().as_raw() => {}
            Err(_) => findings.fail(
                "chain",
                "the CA's self-signature does not verify: the file is damaged",
            ),
        }
    }

    issuer
}

/// validity: the certificate's dates and its CA's, against `now` and `--warn-days`.
fn check_validity(
    target: &Target,
    leaf: &X509Certificate<'_>,
    issuer: Option<&X509Certificate<'_>>,
    options: &Options,
    findings: &mut Findings,
) {
    let now = options.now;
    let validity = leaf.validity();
    let (not_before, not_after) = (
        validity.not_before.to_datetime(),
        validity.not_after.to_datetime(),
    );
    let what = role_name(target.kind);
    if now < not_before {
        findings.fail("validity", format!("the {what} certificate is not valid before {} (is this machine's clock, or the issuer's, wrong?)", date_time(not_before)));
    } else if now > not_after {
        findings.fail(
            "validity",
            format!(
                "the {what} certificate expired on {}: re-issue it",
                date(not_after)
            ),
        );
    } else {
        let days = days_between(now, not_after);
        if pki::is_due(now, not_before, not_after, options.warn_days) {
            let due = pki::renewal_due(not_before, not_after, options.warn_days);
            findings.warn("validity", format!("the {what} certificate expires on {} ({days} days left; due for renewal since {}): re-issue it before then", date(not_after), date(due)));
        } else {
            findings.ok(
                "validity",
                format!("valid until {} ({days} days)", date(not_after)),
            );
        }
    }
    if let Some(ca) = issuer {
        let ca_not_after = ca.validity().not_after.to_datetime();
        let days = days_between(now, ca_not_after);
        let ca_not_before = ca.validity().not_before.to_datetime();
        let ca_due = pki::is_due(now, ca_not_before, ca_not_after, options.warn_days);
        if now <= ca_not_after && ca_due {
            findings.warn("validity", format!("the CA {} expires on {} ({days} days left): create a new CA and re-issue every certificate before then", dn(ca.subject()), date(ca_not_after)));
        } else if now > ca_not_after {
            findings.fail(
                "validity",
                format!(
                    "the CA {} expired on {}",
                    dn(ca.subject()),
                    date(ca_not_after)
                ),
            );
        }
    }
}

/// A certificate's subject or issuer in a message: a file may hold a 20 KB name, cut as
/// another program's text is (escape::excerpt; real names are far shorter).
fn dn(name: &x509_parser::x509::X509Name<'_>) -> String {
    crate::escape::excerpt(&name.to_string())
}

fn check_is_ca(ca: &X509Certificate<'_>, kind: Kind, findings: &mut Findings) {
    let name = dn(ca.subject());
    match ca.basic_constraints() {
        Err(_) => findings.fail("ca", format!("{name} has a duplicated basicConstraints extension")),
        Ok(None) => findings.fail("ca", format!("{name} has no basicConstraints: it is not a CA and cannot verify certificates")),
        Ok(Some(bc)) if !bc.value.ca => findings.fail("ca", format!("{name} is not a CA (basicConstraints CA:FALSE)")),
        Ok(Some(bc)) if !bc.critical => findings.warn("ca", format!("{name}: basicConstraints is not critical, which Python's strict mode (docker-py) refuses; re-create the CA with dockertls")),
        Ok(Some(_)) => {}
    }
    match ca.key_usage() {
        Err(_) => findings.fail("ca", format!("{name} has a duplicated keyUsage extension")),
        Ok(None) => findings.warn("ca", format!("{name} has no keyUsage, which Python 3.13's strict mode (docker-py) refuses (Docker's documented openssl recipe makes such CAs); re-create the CA with dockertls init")),
        Ok(Some(ku)) if !ku.value.key_cert_sign() => findings.fail("ca", format!("{name}: keyUsage lacks keyCertSign, so Go refuses every certificate it signed")),
        Ok(Some(_)) => {}
    }
    if kind != Kind::Ca
        && let Ok(Some(eku)) = ca.extended_key_usage()
    {
        let eku = eku.value;
        let allows = eku.any
            || if kind == Kind::Server {
                eku.server_auth
            } else {
                eku.client_auth
            };
        if !allows {
            findings.fail("ca", format!("{name} carries an extendedKeyUsage without {}, so Go refuses the {} certificates it signs", if kind == Kind::Server { "serverAuth" } else { "clientAuth" }, role_name(kind)));
        }
    }
    findings.ok("ca", format!("{name} is a CA"));
}

fn check_leaf_usage(target: &Target, leaf: &X509Certificate<'_>, findings: &mut Findings) {
    let is_rsa = leaf.public_key().algorithm.algorithm.to_id_string() == "1.2.840.113549.1.1.1";
    match leaf.key_usage() {
        Err(_) => findings.fail("key-usage", "keyUsage is duplicated"),
        Ok(None) => findings.ok("key-usage", "no keyUsage (any use allowed)"),
        Ok(Some(ku)) => {
            let ku = ku.value;
            let usable = ku.digital_signature() || (is_rsa && ku.key_encipherment());
            if !usable {
                findings.fail("key-usage", format!("keyUsage ({ku}) lacks digitalSignature{}: TLS peers refuse the certificate; re-issue it", if is_rsa { " and keyEncipherment" } else { "" }));
            } else if ku.key_cert_sign() {
                findings.warn("key-usage", "a leaf certificate with keyCertSign can sign certificates; re-issue it without");
            } else {
                findings.ok("key-usage", format!("{ku}"));
            }
        }
    }
    let (wanted, other) = if target.kind == Kind::Server {
        ("serverAuth", "clientAuth")
    } else {
        ("clientAuth", "serverAuth")
    };
    match leaf.extended_key_usage() {
        Err(_) => findings.fail("ext-key-usage", "extendedKeyUsage is duplicated"),
        Ok(None) => findings.warn(
            "ext-key-usage",
            format!(
                "no extendedKeyUsage: Go accepts it, but a {} certificate should say {wanted}",
                role_name(target.kind)
            ),
        ),
        Ok(Some(eku)) => {
            let eku = eku.value;
            let has = eku.any
                || if target.kind == Kind::Server {
                    eku.server_auth
                } else {
                    eku.client_auth
                };
            if has {
                findings.ok("ext-key-usage", wanted);
            } else {
                let holds = if (target.kind == Kind::Server && eku.client_auth)
                    || (target.kind == Kind::Client && eku.server_auth)
                {
                    other
                } else {
                    "neither"
                };
                findings.fail("ext-key-usage", format!("a {} certificate needs extendedKeyUsage {wanted}, this one has {holds}: Go refuses it (\"certificate specifies an incompatible key usage\"); re-issue it", role_name(target.kind)));
            }
        }
    }
}

/// The SANs of a certificate, as text, and whether any is malformed for Go/OpenSSL.
fn check_sans(
    leaf: &X509Certificate<'_>,
    options: &Options,
    target: &Target,
    findings: &mut Findings,
) {
    let sans = match leaf.subject_alternative_name() {
        Err(_) => {
            findings.fail("san", "subjectAltName is duplicated");
            return;
        }
        Ok(None) => Vec::new(),
        Ok(Some(san)) => san.value.general_names.clone(),
    };
    let (dns, ips) = san_names(&sans, findings);
    let listed: Vec<String> = dns
        .iter()
        .map(|d| format!("DNS:{d}"))
        .chain(ips.iter().map(|ip| format!("IP:{ip}")))
        .collect();
    if dns.is_empty() && ips.is_empty() {
        let cn = leaf
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or("")
            .to_string();
        findings.fail("san", format!("no subjectAltName, only CN={cn}: Go (dockerd's clients, the docker CLI) refuses it; re-issue with SANs, e.g. {}", crate::render::reissue_hint(Some(&target.path), std::slice::from_ref(&cn), std::slice::from_ref(&cn))));
    } else {
        findings.ok("san", listed.join(", "));
    }
    check_hosts(&dns, &ips, &listed, options, target, findings);
}

/// The DNS names (lower-cased) and IP addresses among the SANs; a malformed one is a finding.
fn san_names(sans: &[GeneralName<'_>], findings: &mut Findings) -> (Vec<String>, Vec<IpAddr>) {
    let mut dns = Vec::new();
    let mut ips: Vec<IpAddr> = Vec::new();
    for name in sans {
        match name {
            GeneralName::DNSName(name) => {
                if name.ends_with('.') {
                    findings.fail(
                        "san",
                        format!(
                            "DNS SAN {name} ends with a dot, which Go refuses; re-issue with {}",
                            name.trim_end_matches('.')
                        ),
                    );
                }
                dns.push(name.to_ascii_lowercase());
            }
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => ips.push(IpAddr::from(
                    <[u8; 4]>::try_from(*bytes).unwrap_or_default(),
                )),
                16 => {
                    let ip =
                        std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*bytes).unwrap_or_default());
                    if let Some(v4) = ip.to_ipv4_mapped() {
                        findings.fail("san", format!("IP SAN {ip} is IPv4-mapped IPv6, which OpenSSL and Python refuse; re-issue with the IPv4 address {v4}"));
                        ips.push(IpAddr::V4(v4));
                    } else {
                        ips.push(IpAddr::V6(ip));
                    }
                }
                n => findings.fail("san", format!("an IP SAN of {n} bytes is malformed")),
            },
            _ => {}
        }
    }
    (dns, ips)
}

/// `--host`: every name or IP given must be covered by the SANs.
fn check_hosts(
    dns: &[String],
    ips: &[IpAddr],
    listed: &[String],
    options: &Options,
    target: &Target,
    findings: &mut Findings,
) {
    for host in &options.hosts {
        let wanted = host.trim_start_matches('[').trim_end_matches(']');
        let covered = match wanted.parse::<IpAddr>() {
            Ok(ip) => {
                let ip = match ip {
                    IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
                    v4 => v4,
                };
                ips.contains(&ip)
            }
            Err(_) => {
                let wanted = wanted.trim_end_matches('.').to_ascii_lowercase();
                dns.iter().any(|name| dns_matches(name, &wanted))
            }
        };
        if covered {
            findings.ok("host", format!("covers {}", options.hosts.join(", ")));
        } else {
            let mut names: Vec<String> = dns
                .iter()
                .cloned()
                .chain(ips.iter().map(ToString::to_string))
                .collect();
            names.push(wanted.to_string());
            findings.fail("host", format!("{wanted} is not among the SANs ({}): clients dialling it get \"certificate is valid for ..., not {wanted}\"; re-issue with it, e.g. {}", if listed.is_empty() { "none".to_string() } else { listed.join(", ") }, crate::render::reissue_hint(Some(&target.path), &[wanted.to_string()], &names)));
        }
    }
}

/// RFC 6125 matching: exact, or a wildcard in the leftmost label covering exactly one label.
fn dns_matches(pattern: &str, name: &str) -> bool {
    if pattern == name {
        return true;
    }
    match (pattern.strip_prefix("*."), name.split_once('.')) {
        (Some(suffix), Some((_, rest))) => suffix == rest,
        _ => false,
    }
}

/// Compares the certificate's public key with the key file's.
pub fn key_matches(cert: &X509Certificate<'_>, key: &PublicOfPrivate) -> Result<bool, String> {
    let spki = cert.public_key();
    let parsed = spki
        .parsed()
        .map_err(|e| format!("cannot read the certificate's public key ({e})"))?;
    Ok(match (parsed, key) {
        (PublicKey::RSA(rsa), PublicOfPrivate::Rsa { modulus, exponent }) => {
            material::trim_zeros(rsa.modulus) == modulus.as_slice()
                && material::trim_zeros(rsa.exponent) == exponent.as_slice()
        }
        (
            PublicKey::EC(point),
            PublicOfPrivate::Ec {
                point: key_point, ..
            },
        ) => point.data() == key_point.as_slice(),
        (_, PublicOfPrivate::Ed25519(public)) => {
            spki.algorithm.algorithm.to_id_string() == "1.3.101.112"
                && spki.subject_public_key.data.as_ref() == public.as_slice()
        }
        (_, PublicOfPrivate::Other(oid)) => {
            return Err(format!(
                "the key's algorithm ({oid}) is not one dockertls can match"
            ));
        }
        _ => false,
    })
}

fn check_key_strength(cert: &X509Certificate<'_>, what: &str, findings: &mut Findings) {
    let spki = cert.public_key();
    let oid = spki.algorithm.algorithm.to_id_string();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => {
            let modulus = material::trim_zeros(rsa.modulus);
            let bits = (modulus.len() * 8).saturating_sub(modulus.first().map_or(0, |b| b.leading_zeros() as usize));
            if bits < 2048 {
                findings.fail("key-strength", format!("the {what} key is RSA-{bits}: too weak, and refused by Go's default policy; re-issue with at least RSA-2048 or ECDSA P-256"));
            } else if bits > 8192 {
                findings.fail("key-strength", format!("the {what} key is RSA-{bits}: Go refuses RSA keys over 8192 bits"));
            } else {
                findings.ok("key-strength", format!("RSA-{bits}"));
            }
        }
        Ok(PublicKey::EC(_)) => {
            let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|o| o.to_id_string()).unwrap_or_default();
            match curve.as_str() {
                "1.2.840.10045.3.1.7" => findings.ok("key-strength", "ECDSA P-256"),
                "1.3.132.0.34" => findings.ok("key-strength", "ECDSA P-384"),
                "1.3.132.0.35" => findings.warn("key-strength", format!("the {what} key is ECDSA P-521: Go accepts it, but not every client does; prefer P-256 or P-384")),
                other => findings.fail("key-strength", format!("the {what} key is on curve {other}, which Go does not support; re-issue with P-256")),
            }
        }
        _ if oid == "1.3.101.112" => findings.ok("key-strength", "Ed25519"),
        _ => findings.fail("key-strength", format!("the {what} key's algorithm {oid} is not RSA, ECDSA or Ed25519: Docker cannot use it")),
    }
}

/// The broken hash a certificate is signed with, if any.
fn weak_hash(cert: &X509Certificate<'_>) -> Option<&'static str> {
    match cert.signature_algorithm.algorithm.to_id_string().as_str() {
        "1.2.840.113549.1.1.2" => Some("MD2"),
        "1.2.840.113549.1.1.4" => Some("MD5"),
        "1.2.840.113549.1.1.5" | "1.2.840.10045.4.1" | "1.2.840.10040.4.3" | "1.3.14.3.2.29" => {
            Some("SHA-1")
        }
        _ => None,
    }
}

fn check_signature_algorithm(
    cert: &X509Certificate<'_>,
    is_ca_target: bool,
    findings: &mut Findings,
) {
    let oid = cert.signature_algorithm.algorithm.to_id_string();
    match weak_hash(cert) {
        // A root's self-signature is never checked by Go; still worth knowing.
        Some(hash) if is_ca_target => findings.warn("signature-algorithm", format!("the CA signs itself with {hash}; re-create it with SHA-256")),
        Some(hash) => findings.fail("signature-algorithm", format!("signed with {hash}, which Go refuses (\"insecure algorithm\"); re-issue with SHA-256")),
        None => findings.ok("signature-algorithm", oid_name(&oid)),
    }
}

fn oid_name(oid: &str) -> String {
    match oid {
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption".into(),
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption".into(),
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption".into(),
        "1.2.840.113549.1.1.10" => "RSASSA-PSS".into(),
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256".into(),
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384".into(),
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512".into(),
        "1.3.101.112" => "Ed25519".into(),
        other => other.into(),
    }
}

fn check_lint(cert: &X509Certificate<'_>, is_ca_target: bool, findings: &mut Findings) {
    let serial = cert.raw_serial();
    if serial.first().is_some_and(|b| b & 0x80 != 0) {
        findings.fail(
            "lint",
            "the serial number is negative: Go 1.23+ programs refuse it; re-issue the certificate",
        );
    } else if material::trim_zeros(serial).is_empty() {
        findings.warn("lint", "the serial number is 0");
    } else if material::trim_zeros(serial).len() > 20 {
        findings.warn(
            "lint",
            format!(
                "the serial number is {} bytes long; RFC 5280 allows 20",
                material::trim_zeros(serial).len()
            ),
        );
    }
    let mut seen = std::collections::HashSet::new();
    for ext in cert.extensions() {
        if !seen.insert(ext.oid.to_id_string()) {
            findings.fail("lint", format!("extension {} appears twice: Go refuses the certificate (dockerd will not start with it)", ext.oid.to_id_string()));
        }
    }
    let has = |oid: &str| {
        cert.extensions()
            .iter()
            .any(|e| e.oid.to_id_string() == oid)
    };
    if !has("2.5.29.14") {
        findings.warn("lint", "no subject key identifier (RFC 5280 wants one)");
    }
    let self_signed = cert.subject().as_raw() == cert.issuer().as_raw();
    if !(has("2.5.29.35") || (is_ca_target && self_signed)) {
        findings.warn(
            "lint",
            "no authority key identifier, which Python 3.13's strict mode (docker-py) refuses",
        );
    }
    findings.ok("lint", "serial, extensions and key identifiers are sound");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A real PKI to mutate, made once.
    fn sample() -> &'static (Vec<u8>, String, String) {
        static SAMPLE: std::sync::OnceLock<(Vec<u8>, String, String)> = std::sync::OnceLock::new();
        SAMPLE.get_or_init(|| {
            let sans = [crate::names::Address::Dns("docker.example.com".into())];
            let pki = crate::pki::issue_pki(&crate::pki::PkiRequest {
                key_type: crate::pki::KeyType::EcdsaP256,
                now: OffsetDateTime::now_utc(),
                leaf_days: 30,
                ca_days: 60,
                server_cn: "docker.example.com",
                server_sans: &sans,
                clients: &[],
            })
            .unwrap();
            let der = material::parse_certificates(pki.server.cert_pem.as_bytes())
                .unwrap()
                .ders
                .remove(0);
            (der, pki.server.key_pem.to_string(), pki.ca.cert_pem.clone())
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Damaged certificates (any byte changed, or cut short) never panic the checks.
        #[test]
        fn damaged_certificates_never_panic(position in any::<prop::sample::Index>(), value in any::<u8>(), cut in any::<prop::sample::Index>()) {
            let (der, key, ca) = sample();
            let mut damaged = der.clone();
            let at = position.index(damaged.len());
            damaged[at] = value;
            damaged.truncate(cut.index(damaged.len() * 2).max(at + 1).min(damaged.len()));
            let dir = tempfile::tempdir().unwrap();
            let pem = pkcs8::der::pem::encode_string("CERTIFICATE", pkcs8::der::pem::LineEnding::LF, &damaged).unwrap();
            std::fs::write(dir.path().join("server-cert.pem"), pem).unwrap();
            std::fs::write(dir.path().join("server-key.pem"), key).unwrap();
            std::fs::write(dir.path().join("ca.pem"), ca).unwrap();
            let target = Target {
                path: dir.path().to_path_buf(),
                kind: Kind::Server,
                cert: dir.path().join("server-cert.pem"),
                key: dir.path().join("server-key.pem"),
                ca: Some(dir.path().join("ca.pem")),
                cis: false,
            };
            let options = Options { now: OffsetDateTime::now_utc(), warn_days: crate::pki::Window::Days(30), hosts: vec!["docker.example.com".into()] };
            let report = audit(&target, &options);
            prop_assert!(!report.checks.is_empty());
        }
    }

    #[test]
    fn wildcards_cover_one_label() {
        assert!(dns_matches("*.example.com", "a.example.com"));
        assert!(!dns_matches("*.example.com", "a.b.example.com"));
        assert!(!dns_matches("*.example.com", "example.com"));
        assert!(dns_matches("example.com", "example.com"));
    }

    #[test]
    fn findings_keep_the_worst_and_join_equals() {
        let mut findings = Findings::default();
        findings.ok("san", "fine");
        findings.warn("san", "a");
        findings.warn("san", "b");
        findings.ok("san", "fine again");
        findings.fail("files", "x");
        let checks = findings.into_checks();
        assert_eq!(checks[0].id, "files");
        assert_eq!(checks[1].status, Status::Warn);
        assert_eq!(checks[1].message, "a; b");
    }
}
