//! The plugin's files in DIR (ca.pem, crl.pem, authz.json): read at start, then watched
//! (inode, size, mtime and ctime, polled) and re-read when they change. A changed file that is
//! unusable is not used: the last good version stays in force and the log says why.

use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{Mode, OFlags};

use super::certs::{Crl, MAX_CRL_BYTES, Trust};
use super::decide::{Loaded, Snapshot};
use super::policy::{Policy, UnixRequests, parse_policy};
use crate::error::Error;

/// The CA bundle's name (the install folder's and a server folder's `ca.pem`).
pub const CA_FILE: &str = crate::store::layout::CA_CERT;
/// The CRL's name beside ca.pem.
pub const CRL_FILE: &str = crate::store::layout::CRL;
/// The policy's name beside ca.pem.
pub const POLICY_FILE: &str = crate::store::layout::AUTHZ_POLICY;

/// The largest ca.pem and authz.json read.
const MAX_SMALL_FILE: u64 = 1 << 20;

/// What identifies one version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

/// One watched file: the stamp last read (None: absent).
#[derive(Debug)]
struct Watch {
    name: &'static str,
    stamp: Option<Stamp>,
}

impl Watch {
    /// The stamp now, or None when absent; `Err` for what is there but not a plain file.
    fn stamp_now(&self, dir: &Path) -> Result<Option<Stamp>, String> {
        match std::fs::symlink_metadata(dir.join(self.name)) {
            Ok(meta) if meta.file_type().is_symlink() => {
                Err("is a symbolic link (not followed)".into())
            }
            Ok(meta) if !meta.is_file() => Err("is not a regular file".into()),
            Ok(meta) => Ok(Some(Stamp {
                dev: meta.dev(),
                ino: meta.ino(),
                size: meta.size(),
                mtime: (meta.mtime(), meta.mtime_nsec()),
                ctime: (meta.ctime(), meta.ctime_nsec()),
            })),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(format!("cannot be read ({err})")),
        }
    }
}

/// Reads DIR/name without following a link, at most `max` bytes (more is an error).
fn read_bounded(dir: &Path, name: &str, max: u64) -> Result<Vec<u8>, String> {
    let fd = rustix::fs::open(
        dir.join(name),
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )
    .map_err(|err| format!("cannot be opened ({err})"))?;
    let file = std::fs::File::from(fd);
    if !file.metadata().map_err(|e| e.to_string())?.is_file() {
        return Err("is not a regular file".into());
    }
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| format!("cannot be read ({err})"))?;
    if bytes.len() as u64 > max {
        return Err(format!("is larger than {max} bytes"));
    }
    Ok(bytes)
}

/// The plugin's files, the versions in force, and what changed.
#[derive(Debug)]
pub struct Files {
    dir: PathBuf,
    ca: Watch,
    crl: Watch,
    policy: Watch,
    snapshot: Snapshot,
}

impl Files {
    /// Reads the files at start: ca.pem must be usable (refused otherwise: without it no
    /// certificate can be checked); crl.pem and authz.json are optional.
    pub fn open(
        dir: &Path,
        unix_flag: Option<UnixRequests>,
        log: &dyn Fn(&str),
    ) -> Result<Files, Error> {
        let mut ca = Watch {
            name: CA_FILE,
            stamp: None,
        };
        let path = crate::escape::path(&dir.join(CA_FILE));
        let trust = ca
            .stamp_now(dir)
            .and_then(|stamp| {
                ca.stamp = Some(stamp.ok_or("does not exist")?);
                let bytes = read_bounded(dir, CA_FILE, MAX_SMALL_FILE)?;
                Trust::parse(&bytes)
            })
            .map_err(|why| {
                Error::refused(format!("{path} {why}")).hint(
                    "give --tls-dir the folder that holds the daemon's ca.pem (/etc/docker/tls after install, or a server folder of the PKI)",
                )
            })?;
        let mut files = Files {
            dir: dir.to_path_buf(),
            ca,
            crl: Watch {
                name: CRL_FILE,
                stamp: None,
            },
            policy: Watch {
                name: POLICY_FILE,
                stamp: None,
            },
            snapshot: Snapshot {
                trust: Arc::new(trust),
                crl: Loaded::Absent,
                policy: Loaded::Absent,
                unix_flag,
            },
        };
        files.reload_crl(log, true);
        files.reload_policy(log, true);
        Ok(files)
    }

    /// The versions in force.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Looks at every file and re-reads what changed; true when the snapshot changed.
    pub fn poll(&mut self, log: &dyn Fn(&str)) -> bool {
        let mut changed = false;
        if self.changed(Which::Ca) {
            changed |= self.reload_ca(log);
        }
        if self.changed(Which::Crl) {
            changed |= self.reload_crl(log, false);
        }
        if self.changed(Which::Policy) {
            changed |= self.reload_policy(log, false);
        }
        changed
    }

    fn watch(&mut self, which: Which) -> &mut Watch {
        match which {
            Which::Ca => &mut self.ca,
            Which::Crl => &mut self.crl,
            Which::Policy => &mut self.policy,
        }
    }

    /// Whether the file's stamp differs from the one last read (an unreadable stamp counts
    /// as a change once: it is logged by the reload).
    fn changed(&mut self, which: Which) -> bool {
        let dir = self.dir.clone();
        let watch = self.watch(which);
        match watch.stamp_now(&dir) {
            Ok(stamp) => stamp != watch.stamp,
            Err(_) => watch.stamp.is_some(),
        }
    }

    fn reload_ca(&mut self, log: &dyn Fn(&str)) -> bool {
        let dir = self.dir.clone();
        let (stamp, result) = read_watched(&dir, &mut self.ca, MAX_SMALL_FILE);
        self.ca.stamp = stamp;
        let parsed = match result {
            Ok(Some(bytes)) => Trust::parse(&bytes),
            Ok(None) => Err("was removed".to_string()),
            Err(why) => Err(why),
        };
        match parsed {
            Ok(trust) => {
                self.snapshot.trust = Arc::new(trust);
                log(&format!("{CA_FILE}: reloaded"));
                true
            }
            Err(why) => {
                log(&format!(
                    "{CA_FILE}: {why}; NOT used, the last good one stays in force"
                ));
                false
            }
        }
    }

    fn reload_crl(&mut self, log: &dyn Fn(&str), start: bool) -> bool {
        let dir = self.dir.clone();
        let (stamp, result) = read_watched(&dir, &mut self.crl, MAX_CRL_BYTES);
        self.crl.stamp = stamp;
        let parsed = match result {
            Ok(None) => return self.absent(Which::Crl, log, start),
            Ok(Some(bytes)) => {
                Crl::parse(&bytes, &self.snapshot.trust).and_then(|crl| match &self.snapshot.crl {
                    Loaded::Good(in_force) => crl.older_than(in_force).map_or(Ok(crl), Err),
                    _ => Ok(crl),
                })
            }
            Err(why) => Err(why),
        };
        match parsed {
            Ok(crl) => {
                log(&crl_summary(&crl));
                self.snapshot.crl = Loaded::Good(Arc::new(crl));
                true
            }
            Err(why) => self.unusable(Which::Crl, why, log),
        }
    }

    fn reload_policy(&mut self, log: &dyn Fn(&str), start: bool) -> bool {
        let dir = self.dir.clone();
        let (stamp, result) = read_watched(&dir, &mut self.policy, MAX_SMALL_FILE);
        self.policy.stamp = stamp;
        let parsed: Result<Policy, String> = match result {
            Ok(None) => return self.absent(Which::Policy, log, start),
            Ok(Some(bytes)) => parse_policy(&bytes).and_then(|policy| match &self.snapshot.policy {
                // Review item 2: an older policy put back would undo the role changes since.
                Loaded::Good(in_force) if policy.revision < in_force.revision => Err(format!(
                    "is revision #{}, older than revision #{} in force (a policy put back would undo the role changes since)",
                    policy.revision, in_force.revision
                )),
                _ => Ok(policy),
            }),
            Err(why) => Err(why),
        };
        match parsed {
            Ok(policy) => {
                log(&format!("{POLICY_FILE}: in force"));
                self.snapshot.policy = Loaded::Good(Arc::new(policy));
                true
            }
            Err(why) => self.unusable(Which::Policy, why, log),
        }
    }

    /// The file is gone: at start that means "none"; later the last good version stays.
    fn absent(&mut self, which: Which, log: &dyn Fn(&str), start: bool) -> bool {
        let name = self.watch(which).name;
        let never_good = match which {
            Which::Crl => !matches!(self.snapshot.crl, Loaded::Good(_)),
            _ => !matches!(self.snapshot.policy, Loaded::Good(_)),
        };
        if start || never_good {
            let meaning = match which {
                Which::Crl => "no certificate is revoked",
                _ => "every client with a valid certificate is admin",
            };
            log(&format!("{name}: absent, so {meaning}"));
            match which {
                Which::Crl => self.snapshot.crl = Loaded::Absent,
                _ => self.snapshot.policy = Loaded::Absent,
            }
            return true;
        }
        log(&format!(
            "{name}: removed; the last good one stays in force until a restart"
        ));
        false
    }

    /// The file is there but unusable: the last good version stays; with none, every TLS
    /// request is denied (fail closed).
    fn unusable(&mut self, which: Which, why: String, log: &dyn Fn(&str)) -> bool {
        let name = self.watch(which).name;
        let slot_good = match which {
            Which::Crl => matches!(self.snapshot.crl, Loaded::Good(_)),
            _ => matches!(self.snapshot.policy, Loaded::Good(_)),
        };
        if slot_good {
            log(&format!(
                "{name}: {why}; NOT used, the last good one stays in force"
            ));
            return false;
        }
        log(&format!(
            "{name}: {why}; NOT used, and no good one was read: every TLS request is denied until it is fixed"
        ));
        let reason = format!("{name} {why}");
        match which {
            Which::Crl => self.snapshot.crl = Loaded::Unusable(reason),
            _ => self.snapshot.policy = Loaded::Unusable(reason),
        }
        true
    }
}

#[derive(Debug, Clone, Copy)]
enum Which {
    Ca,
    Crl,
    Policy,
}

type Watched = (Option<Stamp>, Result<Option<Vec<u8>>, String>);

/// Reads a watched file: its stamp (None when absent) and its bytes. The stamp is taken
/// before the read, so a change during the read is seen again at the next poll.
fn read_watched(dir: &Path, watch: &mut Watch, max: u64) -> Watched {
    match watch.stamp_now(dir) {
        Ok(None) => (None, Ok(None)),
        Ok(Some(stamp)) => (Some(stamp), read_bounded(dir, watch.name, max).map(Some)),
        Err(why) => (None, Err(why)),
    }
}

fn crl_summary(crl: &Crl) -> String {
    let now = x509_parser::prelude::ASN1Time::now();
    let mut line = format!(
        "{CRL_FILE}: CRL {} in force, {} certificate(s) revoked",
        crl.number_text(),
        crl.len()
    );
    match crl.next_update {
        Some(next) if next < now => line.push_str(&format!(
            "; warning: it is past its nextUpdate ({next}): it still revokes what it lists, \
             re-sign it with `dockertls crl refresh`"
        )),
        Some(next) => line.push_str(&format!(", next update {next}")),
        None => line.push_str("; warning: it has no nextUpdate"),
    }
    if crl.this_update > now {
        line.push_str("; warning: its thisUpdate is in the future (clock skew?)");
    }
    line
}
