//! What runs on the daemon host: two POSIX sh scripts (a look at the host that changes
//! nothing, then the deploy itself), both run as root directly or through `sudo -n`, and the
//! tar stream the second one reads on its stdin. Every value reaches the scripts as a
//! positional argument, never spliced into their text.

use zeroize::Zeroizing;

use crate::error::Error;

/// Runs the script in $1 as root: directly when logged in as root, else through `sudo -n`
/// (which fails at once, never prompts, when sudo wants a password).
pub const AS_ROOT: &str = r#"s=$1; shift
if [ "$(id -u)" = 0 ]; then exec sh -c "$s" sh "$@"; fi
exec sudo -n -- sh -c "$s" sh "$@""#;

/// Looks at the host and changes nothing. $1: the --root prefix; $2...: installed files
/// whose SHA-256 is wanted. Prints `key value` lines, the host's daemon.json last.
pub const LOOK: &str = r#"prefix=$1; shift
echo "uid $(id -u)"
echo "os $(uname -s) $(uname -m)"
echo "libc $(getconf GNU_LIBC_VERSION 2>/dev/null || echo unknown)"
if b=$(command -v dockertls 2>/dev/null); then
  echo "binary $(sha256sum < "$b" | cut -d ' ' -f 1) $("$b" --version 2>/dev/null | head -n 1)"
fi
if d=$(command -v dockerd 2>/dev/null); then echo "dockerd $d"; fi
i=0
for f in "$@"; do
  p=$prefix$f
  if [ -f "$p" ] && [ ! -L "$p" ]; then echo "sha256 $i $(sha256sum < "$p" | cut -d ' ' -f 1)"; fi
  i=$((i + 1))
done
p=$prefix/etc/docker/daemon.json
if [ -f "$p" ] && [ ! -L "$p" ]; then echo "daemon.json"; head -c 65536 "$p"; fi
"#;

/// Restarts dockerd: the words given ($@, install's --restart-command), else systemd.
pub const RESTART: &str = r#"if [ $# -gt 0 ]; then exec "$@"; fi
systemctl daemon-reload && exec systemctl restart docker"#;

/// Exit statuses of the deploy script itself (install's own are 0, 1, 2).
pub const NO_EXEC_DIR: i32 = 90;
pub const UNPACK_FAILED: i32 = 91;
pub const COPY_FAILED: i32 = 92;
pub const NO_BINARY: i32 = 93;

/// Unpacks the stream on stdin into a private (0700) folder where programs may run ($TMPDIR,
/// /var/tmp, /root, /run, /tmp, /dev/shm: /tmp is often noexec, so each candidate is tried by
/// running a file), copies the files already current
/// on the host from their installed place (so they are not sent again), runs install, and
/// removes the folder whatever happens. $1: prefix, $2: the server folder inside the stream,
/// $3: N; then N pairs (file name, installed path); the rest goes to install.
pub const DEPLOY: &str = r#"prefix=$1 sub=$2 n=$3; shift 3
umask 077
d=
for base in "${TMPDIR:-}" /var/tmp /root /run /tmp /dev/shm; do
  [ -n "$base" ] && [ -d "$base" ] || continue
  d=$(mktemp -d "$base/dockertls-deploy.XXXXXXXX" 2>/dev/null) || { d=; continue; }
  if printf '#!/bin/sh\nexit 0\n' > "$d/.x" && chmod 700 "$d/.x" && "$d/.x" 2>/dev/null; then
    rm -f "$d/.x"; break
  fi
  rm -rf "$d"; d=
done
if [ -z "$d" ]; then
  echo "dockertls-deploy: no temporary folder here lets a program run (all noexec or full)" >&2; exit 90
fi
trap 'rm -rf "$d"' EXIT
trap 'exit 129' HUP INT TERM PIPE
tar -x -o -f - -C "$d" || { echo "dockertls-deploy: cannot unpack the files into $d (disk full?)" >&2; exit 91; }
mkdir -p "$d/$sub" || { echo "dockertls-deploy: cannot create $d/$sub" >&2; exit 92; }
while [ "$n" -gt 0 ]; do
  cp "$prefix$2" "$d/$sub/$1" || { echo "dockertls-deploy: cannot copy $prefix$2" >&2; exit 92; }
  shift 2; n=$((n - 1))
done
if [ -x "$d/dockertls" ]; then bin=$d/dockertls
  for a in "$@"; do
    [ "$a" = --authz ] || continue
    # The plugin's unit runs the binary install --authz runs from: one that outlives $d.
    l=$prefix/usr/local/lib/dockertls
    { mkdir -p "$l" && chmod 755 "$l" && cp "$bin" "$l/.dockertls.new" &&
      chmod 755 "$l/.dockertls.new" && mv -f "$l/.dockertls.new" "$l/dockertls"; } ||
      { echo "dockertls-deploy: cannot keep the plugin's binary at $l/dockertls" >&2; exit 92; }
    bin=$l/dockertls
  done
elif ! bin=$(command -v dockertls); then echo "dockertls-deploy: no dockertls binary" >&2; exit 93
fi
"$bin" install --from "$d/$sub" --root "$prefix" "$@"
"#;

/// What the look at the host found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Host {
    pub uid: Option<u32>,
    /// `uname -s -m`, e.g. "Linux x86_64".
    pub os: String,
    /// `getconf GNU_LIBC_VERSION`, e.g. "glibc 2.36", or "unknown".
    pub libc: String,
    /// The SHA-256 and `--version` of the dockertls on the host's PATH.
    pub binary: Option<(String, String)>,
    pub dockerd: Option<String>,
    /// The SHA-256 of each installed file asked about, by index; None when absent.
    pub installed: Vec<Option<String>>,
    /// The host's /etc/docker/daemon.json (at most 64 KiB), if it has one.
    pub daemon_json: Option<String>,
}

impl Host {
    /// Reads what [`LOOK`] printed, for `asked` installed files.
    pub fn parse(text: &str, asked: usize) -> Host {
        let mut host = Host {
            installed: vec![None; asked],
            ..Host::default()
        };
        let (lines, daemon_json) = match text.split_once("\ndaemon.json\n") {
            Some((lines, json)) => (lines, Some(json.to_string())),
            None => match text.strip_prefix("daemon.json\n") {
                Some(json) => ("", Some(json.to_string())),
                None => (text, None),
            },
        };
        host.daemon_json = daemon_json;
        for line in lines.lines() {
            let Some((key, value)) = line.split_once(' ') else {
                continue;
            };
            match key {
                "uid" => host.uid = value.trim().parse().ok(),
                "os" => host.os = value.trim().to_string(),
                "libc" => host.libc = value.trim().to_string(),
                "dockerd" => host.dockerd = Some(value.trim().to_string()),
                "binary" => {
                    let (sum, version) = value.split_once(' ').unwrap_or((value, ""));
                    host.binary = Some((sum.to_string(), version.trim().to_string()));
                }
                "sha256" => {
                    if let Some((i, sum)) = value.split_once(' ')
                        && let Ok(i) = i.parse::<usize>()
                        && i < asked
                    {
                        host.installed[i] = Some(sum.trim().to_string());
                    }
                }
                _ => {}
            }
        }
        host
    }

    /// Whether the host's daemon.json turns live-restore on (containers survive a restart).
    pub fn live_restore(&self) -> bool {
        self.daemon_json
            .as_deref()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
            .is_some_and(|json| json["live-restore"] == serde_json::Value::Bool(true))
    }
}

/// Whether our binary can run on that host: same OS and architecture, and a C library at
/// least as new as the one we were linked against (a static musl binary runs anywhere).
pub fn binary_runs_there(
    ours_os: &str,
    ours_libc: Option<&str>,
    host: &Host,
) -> Result<(), String> {
    if host.os != ours_os {
        return Err(format!(
            "the host runs {}, this dockertls is built for {ours_os}",
            if host.os.is_empty() {
                "an unknown system"
            } else {
                &host.os
            }
        ));
    }
    let Some(ours) = ours_libc else {
        return Ok(());
    };
    let version = |text: &str| -> Option<(u32, u32)> {
        let number = text.strip_prefix("glibc ")?;
        let (major, minor) = number.trim().split_once('.')?;
        let minor: String = minor.chars().take_while(char::is_ascii_digit).collect();
        Some((major.parse().ok()?, minor.parse().ok()?))
    };
    match (version(ours), version(&host.libc)) {
        (Some(need), Some(have)) if have >= need => Ok(()),
        (Some(_), Some(_)) => Err(format!(
            "the host's C library is {}, this dockertls needs {ours} or newer",
            host.libc
        )),
        _ => Err(format!(
            "the host's C library is {} (not glibc), this dockertls is linked against {ours}",
            host.libc
        )),
    }
}

/// One file of the stream: its path in the stream, contents and mode.
pub struct Entry<'a> {
    pub path: String,
    pub contents: &'a [u8],
    pub mode: u32,
}

/// The tar stream (ustar, owner root, no timestamps) of `entries`, in one allocation made
/// up front so no copy of a key is left behind by a reallocation; wiped when dropped.
pub fn bundle(entries: &[Entry<'_>]) -> Result<Zeroizing<Vec<u8>>, Error> {
    let size: usize = entries
        .iter()
        .map(|e| 512 + e.contents.len().div_ceil(512) * 512)
        .sum::<usize>()
        + 1024;
    let mut stream = Zeroizing::new(Vec::with_capacity(size));
    let mut builder = tar::Builder::new(&mut *stream);
    let mut dirs = std::collections::BTreeSet::new();
    for entry in entries {
        let mut parent = std::path::Path::new(&entry.path).parent();
        let mut missing = Vec::new();
        while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
            if dirs.insert(dir.to_path_buf()) {
                missing.push(dir.to_path_buf());
            }
            parent = dir.parent();
        }
        for dir in missing.into_iter().rev() {
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o700);
            header.set_size(0);
            header.set_cksum();
            append(&mut builder, &mut header, &dir.to_string_lossy(), &[][..])?;
        }
        let mut header = tar::Header::new_ustar();
        header.set_mode(entry.mode);
        header.set_size(entry.contents.len() as u64);
        header.set_cksum();
        append(&mut builder, &mut header, &entry.path, entry.contents)?;
    }
    builder
        .finish()
        .map_err(|e| Error::failed(format!("cannot pack the files to send: {e}")))?;
    drop(builder);
    Ok(stream)
}

fn append(
    builder: &mut tar::Builder<&mut Vec<u8>>,
    header: &mut tar::Header,
    path: &str,
    data: &[u8],
) -> Result<(), Error> {
    builder
        .append_data(header, path, data)
        .map_err(|e| Error::failed(format!("cannot pack {path}: {e}")))
}

/// Parses a remote sudo failure: a password wanted, or no sudo at all.
pub fn sudo_problem(stderr: &str) -> Option<&'static str> {
    if stderr.contains("a password is required") || stderr.contains("a terminal is required") {
        Some("sudo there wants a password, and deploy never prompts")
    } else if stderr.contains("sudo: not found") || stderr.contains("sudo: command not found") {
        Some("the login is not root and the host has no sudo")
    } else if stderr.contains("is not in the sudoers file")
        || stderr.contains("not allowed to execute")
    {
        Some("sudo there does not allow this user to run commands as root")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_look_at_the_host_parses_with_and_without_a_daemon_json() {
        let text = "uid 0\nos Linux x86_64\nlibc glibc 2.36\nbinary abc dockertls 0.1.0\ndockerd /usr/sbin/dockerd\nsha256 1 ff\nsha256 7 ee\ndaemon.json\n{\"live-restore\": true}\n";
        let host = Host::parse(text, 3);
        assert_eq!(host.uid, Some(0));
        assert_eq!(host.os, "Linux x86_64");
        assert_eq!(host.binary, Some(("abc".into(), "dockertls 0.1.0".into())));
        assert_eq!(host.installed, vec![None, Some("ff".into()), None]);
        assert!(host.live_restore());
        let bare = Host::parse("uid 1000\nos Linux aarch64\nlibc unknown\n", 1);
        assert_eq!((&bare.dockerd, bare.daemon_json.is_none()), (&None, true));
        assert!(!bare.live_restore());
        let string_true = Host::parse("daemon.json\n{\"live-restore\": \"true\"}", 0);
        assert!(
            !string_true.live_restore(),
            "dockerd refuses a string boolean"
        );
    }

    #[test]
    fn our_binary_goes_only_where_it_runs() {
        let host = |os: &str, libc: &str| Host {
            os: os.into(),
            libc: libc.into(),
            ..Host::default()
        };
        let ours = Some("glibc 2.36");
        assert!(
            binary_runs_there("Linux x86_64", ours, &host("Linux x86_64", "glibc 2.36")).is_ok()
        );
        assert!(
            binary_runs_there("Linux x86_64", ours, &host("Linux x86_64", "glibc 2.40")).is_ok()
        );
        let old = binary_runs_there("Linux x86_64", ours, &host("Linux x86_64", "glibc 2.31"));
        assert!(old.unwrap_err().contains("2.31"));
        assert!(
            binary_runs_there("Linux x86_64", ours, &host("Linux aarch64", "glibc 2.36")).is_err()
        );
        assert!(binary_runs_there("Linux x86_64", ours, &host("Linux x86_64", "unknown")).is_err());
        assert!(binary_runs_there("Linux x86_64", None, &host("Linux x86_64", "unknown")).is_ok());
    }

    #[test]
    fn the_bundle_is_a_tar_with_private_folders_and_the_given_modes() {
        let key = b"-----BEGIN PRIVATE KEY-----\n".to_vec();
        let entries = [
            Entry {
                path: "server/server-key.pem".into(),
                contents: &key,
                mode: 0o400,
            },
            Entry {
                path: "dockertls".into(),
                contents: b"\x7fELF",
                mode: 0o700,
            },
        ];
        let bytes = bundle(&entries).unwrap();
        let mut archive = tar::Archive::new(&bytes[..]);
        let found: Vec<(String, u32, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.mode().unwrap(),
                    h.size().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                ("server".to_string(), 0o700, 0),
                ("server/server-key.pem".to_string(), 0o400, key.len() as u64),
                ("dockertls".to_string(), 0o700, 4),
            ]
        );
    }
}
