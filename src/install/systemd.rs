//! docker.service as systemd assembles it (the unit, then every drop-in in file-name order,
//! then the environment its ExecStart expands), and the drop-in dockertls needs once
//! daemon.json sets `hosts` and TLS: ExecStart reset, then the same command without the flags
//! daemon.json now owns. Never writes.
//!
//! `read_units` reads every file through `confined::Root` (openat2 with RESOLVE_IN_ROOT: links
//! resolved by the kernel as the booted image would, never out of `--root`, with no window
//! between resolving and opening; bounded; a FIFO or device refused); `decide` is pure.

mod syntax;

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use super::confined::{Resolved, Root};
use crate::error::Error;
use syntax::Word;

/// The unit dockertls changes.
const UNIT: &str = "docker.service";
/// The system manager's unit search path, highest priority first (systemd.unit(5),
/// `lookup_paths_init()`); Debian's systemd also reads /lib/systemd/system.
const SEARCH_PATH: [&str; 13] = [
    "/etc/systemd/system.control",
    "/run/systemd/system.control",
    "/run/systemd/transient",
    "/run/systemd/generator.early",
    "/etc/systemd/system",
    "/etc/systemd/system.attached",
    "/run/systemd/system",
    "/run/systemd/system.attached",
    "/run/systemd/generator",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
    "/run/systemd/generator.late",
];
/// Far more drop-ins than any host has: a bound on what a folder may make us read.
const MAX_DROPINS: usize = 1000;
/// Where dockerd reads its configuration unless told otherwise (install writes it there).
const DAEMON_JSON: &str = "/etc/docker/daemon.json";

/// The drop-in to write, and what it is made from.
#[derive(Debug)]
pub struct DropinPlan {
    /// The unit file docker.service comes from (host path).
    pub unit_path: String,
    /// The drop-in's text.
    pub contents: String,
    /// The flags left out of ExecStart, as written in the unit (e.g. `-H fd://`).
    pub removed_flags: Vec<String>,
}

/// A file and line, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    file: String,
    line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} line {}", printable(&self.file), self.line)
    }
}

/// A unit file or drop-in as read from the host.
struct Source {
    path: String,
    text: String,
}

/// One command of `ExecStart=`, and the line that set it.
#[derive(Clone)]
struct ExecCommand {
    words: Vec<Word>,
    origin: Origin,
}

/// The `[Service]` settings that decide dockerd's command line.
#[derive(Default, Clone)]
struct Service {
    exec_start: Vec<ExecCommand>,
    environment: Vec<(String, String, Origin)>,
    environment_files: Vec<(String, bool, Origin)>,
    /// UnsetEnvironment=: names, or NAME=VALUE assignments, removed last.
    unset_environment: Vec<String>,
    /// The last empty `ExecStart=`.
    exec_start_reset: Option<Origin>,
}

impl Service {
    fn apply(&mut self, source: &Source) -> Result<(), Error> {
        let assignments = syntax::assignments(&source.text).map_err(|why| {
            refused(
                format!("{} cannot be read as systemd reads it: {why}", printable(&source.path)),
                "fix that file (systemd would not load it either), then run dockertls install again",
            )
        })?;
        for assignment in assignments {
            if assignment.section != "Service" {
                continue;
            }
            let origin = Origin {
                file: source.path.clone(),
                line: assignment.line,
            };
            let value = assignment.value.as_str();
            match assignment.key.as_str() {
                "ExecStart" if value.is_empty() => {
                    self.exec_start.clear();
                    self.exec_start_reset = Some(origin);
                }
                "ExecStart" => {
                    let commands = syntax::command_lines(value).map_err(|why| {
                        refused(
                            format!(
                                "{origin}: systemd cannot parse this ExecStart ({})",
                                printable(&why)
                            ),
                            "fix that line, then run dockertls install again",
                        )
                    })?;
                    for words in commands {
                        self.exec_start.push(ExecCommand {
                            words,
                            origin: origin.clone(),
                        });
                    }
                }
                "Environment" if value.is_empty() => self.environment.clear(),
                "Environment" => self.environment.extend(assignments_of(value, &origin)),
                "UnsetEnvironment" if value.is_empty() => self.unset_environment.clear(),
                "UnsetEnvironment" => {
                    let words = syntax::words(&value.replace("%%", "%"), true).unwrap_or_default();
                    self.unset_environment.extend(words);
                }
                "EnvironmentFile" if value.is_empty() => self.environment_files.clear(),
                "EnvironmentFile" => {
                    let (path, optional) = environment_file(value);
                    self.environment_files.push((path, optional, origin));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The `NAME=value` words of an `Environment=` (or `DefaultEnvironment=`) value; systemd
/// ignores a value it cannot split, and words that are not assignments (and logs them).
fn assignments_of(value: &str, origin: &Origin) -> Vec<(String, String, Origin)> {
    syntax::words(&value.replace("%%", "%"), true)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|word| {
            let (name, value) = word.split_once('=')?;
            syntax::is_env_name(name).then(|| (name.to_string(), value.to_string(), origin.clone()))
        })
        .collect()
}

/// The path of an `EnvironmentFile=` value, and whether it is optional (`-`).
fn environment_file(value: &str) -> (String, bool) {
    let value = value.replace("%%", "%");
    match value.strip_prefix('-') {
        Some(path) => (path.to_string(), true),
        None => (value, false),
    }
}

/// The service manager's configuration (systemd-system.conf(5)): /etc/systemd/system.conf,
/// then its drop-ins in file-name order, as read.
fn manager_sources(root: &Root) -> Result<Vec<Source>, Error> {
    let mut files = vec!["/etc/systemd/system.conf".to_string()];
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    for dir in [
        "/etc/systemd/system.conf.d",
        "/run/systemd/system.conf.d",
        "/usr/local/lib/systemd/system.conf.d",
        "/usr/lib/systemd/system.conf.d",
        "/lib/systemd/system.conf.d",
    ] {
        for name in conf_names(root, dir)? {
            by_name
                .entry(name.clone())
                .or_insert_with(|| format!("{dir}/{name}"));
        }
    }
    files.extend(by_name.into_values());
    let mut sources = Vec::new();
    for path in files {
        if let (Found::File(text), _) = read_host_file(root, &path)? {
            sources.push(Source { path, text });
        }
    }
    Ok(sources)
}

/// The manager's `DefaultEnvironment=`, which every service starts from.
fn manager_environment(sources: &[Source]) -> Vec<(String, String, Origin)> {
    let mut out = Vec::new();
    for source in sources {
        // A file systemd cannot parse is skipped by it too (with a warning).
        for assignment in syntax::assignments(&source.text).unwrap_or_default() {
            if assignment.section != "Manager" || assignment.key != "DefaultEnvironment" {
                continue;
            }
            let origin = Origin {
                file: source.path.clone(),
                line: assignment.line,
            };
            if assignment.value.is_empty() {
                out.clear();
            } else {
                out.extend(assignments_of(&assignment.value, &origin));
            }
        }
    }
    out
}

/// An error with what went wrong, then what to do.
fn refused(what: String, hint: &str) -> Error {
    Error::Refused(format!("{what}\nhint: {hint}"))
}

/// Text from a file or a file name, safe to print on one line and to put in a comment.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// What a host path holds.
enum Found {
    Missing,
    /// A link to /dev/null or an empty file: systemd treats it as masked.
    Masked,
    File(String),
}

/// What systemd tells a refused read to do.
const READ_HINT: &str = "systemd reads units, drop-ins and environment files as regular files of a few kilobytes: fix that file, then run dockertls install again";

/// Reads a host file as systemd does, through the kernel-confined `root` (links resolved
/// inside it; bounded; a FIFO or device refused, never read). Also gives the name the path
/// resolved to (a unit alias's target).
fn read_host_file(root: &Root, host: &str) -> Result<(Found, String), Error> {
    let name = host.rsplit('/').next().unwrap_or(host).to_string();
    let resolved = root.read_resolved(host).map_err(|err| match err {
        Error::Refused(what) if !what.contains("\nhint: ") => refused(what, READ_HINT),
        other => other,
    })?;
    Ok(match resolved {
        Resolved::Missing => (Found::Missing, name),
        Resolved::Null => (Found::Masked, name),
        Resolved::File { read, name } => {
            if read.contents.iter().all(|b| b.is_ascii_whitespace()) {
                (Found::Masked, name)
            } else {
                let text = String::from_utf8_lossy(&read.contents).into_owned();
                (Found::File(text), name)
            }
        }
    })
}

/// The `*.conf` names in a host folder (hidden files skipped, as systemd does), the folder
/// resolved by the kernel inside `root`.
fn conf_names(root: &Root, host_dir: &str) -> Result<Vec<String>, Error> {
    let names = root.list(host_dir, MAX_DROPINS).map_err(|err| match err {
        Error::Refused(what) => refused(
            what,
            "remove the drop-ins not needed, then run dockertls install again",
        ),
        other => other,
    })?;
    Ok(names
        .into_iter()
        .filter(|name| name.ends_with(".conf") && !name.starts_with('.'))
        .collect())
}

/// The unit file and the drop-ins, each drop-in name once (the folder of highest priority
/// wins), sorted by file name as systemd applies them.
fn unit_sources(root: &Root) -> Result<(Source, BTreeMap<String, String>), Error> {
    let mut unit = None;
    for dir in SEARCH_PATH {
        let path = format!("{dir}/{UNIT}");
        let (found, name) = read_host_file(root, &path)?;
        match found {
            Found::Missing => continue,
            Found::Masked => {
                return Err(refused(
                    format!("{path} masks docker.service (a link to /dev/null or an empty file)"),
                    "unmask it (systemctl unmask docker), then run dockertls install again",
                ));
            }
            Found::File(text) => {
                unit = Some((Source { path, text }, name));
                break;
            }
        }
    }
    let (unit, alias) = unit.ok_or_else(|| {
        refused(
            format!(
                "no docker.service under {} (looked in {})",
                root.path().display(),
                SEARCH_PATH.join(", ")
            ),
            "install Docker first",
        )
    })?;
    // docker.service may be a link to a unit of another name (systemctl link, an alias):
    // systemd then reads that name's drop-ins too (measured with systemd-analyze verify 252).
    let mut names = vec![UNIT.to_string()];
    if alias.ends_with(".service") && alias != UNIT {
        names.push(alias);
    }
    // Drop-in folders: NAME.d, then the top-level service.d, in each search path.
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    for dir in SEARCH_PATH {
        let folders = names
            .iter()
            .map(|name| format!("{dir}/{name}.d"))
            .chain([format!("{dir}/service.d")]);
        for folder in folders {
            for name in conf_names(root, &folder)? {
                by_name
                    .entry(name.clone())
                    .or_insert_with(|| format!("{folder}/{name}"));
            }
        }
    }
    Ok((unit, by_name))
}

/// dockerd's shorthands and their long names.
const SHORTHANDS: [(char, &str); 10] = [
    ('b', "bridge"),
    ('D', "debug"),
    ('g', "graph"),
    ('G', "group"),
    ('H', "host"),
    ('h', "help"),
    ('l', "log-level"),
    ('p', "pidfile"),
    ('s', "storage-driver"),
    ('v', "version"),
];
/// The flags whose daemon.json keys install writes: given both ways, dockerd will not start.
const TAKEN: [&str; 6] = ["host", "tls", "tlsverify", "tlscacert", "tlscert", "tlskey"];

fn takes_value(name: &str) -> bool {
    crate::dockerd_options::flag_takes_value(name)
}

/// One flag found on dockerd's command line.
#[derive(Debug, PartialEq, Eq)]
struct Flag {
    /// Long name (`host` for `-H`).
    name: String,
    /// The word holding the flag.
    index: usize,
    /// The next word, when it is the flag's value.
    value_index: Option<usize>,
    /// The value, wherever it was written.
    value: Option<String>,
    /// For shorthands grouped in one word (`-DH`): the word without this flag (`-D`).
    rest_of_word: Option<String>,
}

/// The flags in dockerd's arguments, read as pflag reads them: `--name=value`, `--name value`,
/// `-H value`, `-Hvalue`, `-H=value`, grouped shorthands (`-DH value`), `--` ends the flags.
fn flags(args: &[&str]) -> Vec<Flag> {
    let mut found = Vec::new();
    let mut index = 0;
    while index < args.len() {
        let word = args[index];
        if word == "--" {
            break;
        }
        if let Some(long) = word.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (long, None),
            };
            let mut flag = Flag {
                name: name.to_string(),
                index,
                value_index: None,
                value: inline.clone(),
                rest_of_word: None,
            };
            if inline.is_none() && takes_value(name) && index + 1 < args.len() {
                flag.value_index = Some(index + 1);
                flag.value = Some(args[index + 1].to_string());
                index += 1;
            }
            found.push(flag);
        } else if let Some(short) = word.strip_prefix('-')
            && !short.is_empty()
            && shorthands(args, index, short, &mut found)
        {
            // The next word was the value of the last shorthand.
            index += 1;
        }
        index += 1;
    }
    found
}

/// The shorthands grouped in `args[index]` (`short`: the word without its '-'), as pflag reads
/// them: booleans until one that takes a value, which takes the rest of the word or the next
/// word. Returns whether it took the next word.
fn shorthands(args: &[&str], index: usize, short: &str, found: &mut Vec<Flag>) -> bool {
    let mut kept = String::from("-");
    let chars: Vec<(usize, char)> = short.char_indices().collect();
    for (position, &(offset, c)) in chars.iter().enumerate() {
        let name = SHORTHANDS
            .iter()
            .find(|(s, _)| *s == c)
            .map(|(_, n)| *n)
            .unwrap_or("");
        let after = &short[offset + c.len_utf8()..];
        let mut flag = Flag {
            name: name.to_string(),
            index,
            value_index: None,
            value: None,
            rest_of_word: None,
        };
        if takes_value(name) {
            flag.value = Some(after.strip_prefix('=').unwrap_or(after).to_string());
            if after.is_empty() {
                flag.value = args.get(index + 1).map(|v| v.to_string());
                if index + 1 < args.len() {
                    flag.value_index = Some(index + 1);
                }
            }
            if kept.len() > 1 {
                flag.rest_of_word = Some(kept.clone());
            }
            let took_next = flag.value_index.is_some();
            found.push(flag);
            return took_next;
        }
        let last = after.starts_with('=') || position + 1 == chars.len();
        if last {
            // A boolean shorthand, maybe with "=value": the rest of the word.
            flag.value = after.strip_prefix('=').map(str::to_string);
        }
        found.push(flag);
        kept.push(c);
        if last {
            break;
        }
    }
    false
}

/// The command words without the flags daemon.json owns: kept words as written, and the
/// removed ones as written.
fn without_taken(words: &[Word]) -> (Vec<String>, Vec<String>) {
    let texts: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
    let mut drop = vec![false; words.len()];
    let mut replace: HashMap<usize, String> = HashMap::new();
    let mut removed = Vec::new();
    for flag in flags(&texts) {
        if !TAKEN.contains(&flag.name.as_str()) {
            continue;
        }
        let mut shown = words[flag.index].raw.clone();
        match &flag.rest_of_word {
            Some(rest) => {
                replace.insert(flag.index, rest.clone());
            }
            None => drop[flag.index] = true,
        }
        if let Some(value_index) = flag.value_index {
            drop[value_index] = true;
            shown.push(' ');
            shown.push_str(&words[value_index].raw);
        }
        removed.push(shown);
    }
    let kept = words
        .iter()
        .enumerate()
        .filter(|(i, _)| !drop[*i])
        .map(|(i, w)| replace.get(&i).cloned().unwrap_or_else(|| w.raw.clone()))
        .collect();
    (kept, removed)
}

/// The program part of a command: prefixes, path and (with `@`) argv[0]; then the arguments.
fn split_program(words: &[Word]) -> (usize, bool) {
    let first = words.first().map(|w| w.text.as_str()).unwrap_or("");
    let prefixes: String = first.chars().take_while(|c| "-@:+!".contains(*c)).collect();
    let args_from = if prefixes.contains('@') { 2 } else { 1 };
    (args_from.min(words.len()), prefixes.contains(':'))
}

/// Where a variable's value comes from.
type Env = HashMap<String, (String, Origin)>;

/// The environment ExecStart sees (systemd.exec(5)): the manager's DefaultEnvironment=, then
/// Environment= in order, then the environment files, which override both; UnsetEnvironment=
/// last.
fn environment(
    files: &UnitFiles,
    service: &Service,
    comment_continues: bool,
) -> Result<Env, Error> {
    let mut env: Env = HashMap::new();
    for (name, value, origin) in manager_environment(raise(&files.manager)?)
        .iter()
        .chain(&service.environment)
    {
        env.insert(name.clone(), (value.clone(), origin.clone()));
    }
    for (path, optional, origin) in &service.environment_files {
        if path.contains(['*', '?', '[']) {
            return Err(refused(
                format!(
                    "EnvironmentFile={} ({origin}) is a wildcard: dockertls cannot check which variables it sets for dockerd's command line",
                    crate::escape::path(std::path::Path::new(path))
                ),
                "name the file itself in EnvironmentFile=, then run dockertls install again",
            ));
        }
        let found = match files.env_files.get(path) {
            Some(read) => raise(read)?,
            None => &Found::Missing,
        };
        match found {
            Found::Missing if *optional => {}
            Found::Missing => {
                return Err(refused(
                    format!(
                        "EnvironmentFile={} ({origin}) does not exist: systemd would not start docker.service",
                        crate::escape::path(std::path::Path::new(path))
                    ),
                    "create that file, or write EnvironmentFile=- to make it optional, then run dockertls install again",
                ));
            }
            Found::Masked => {}
            Found::File(text) => {
                for assignment in syntax::env_file(text, comment_continues) {
                    env.insert(
                        assignment.name,
                        (
                            assignment.value,
                            Origin {
                                file: path.clone(),
                                line: assignment.line,
                            },
                        ),
                    );
                }
            }
        }
    }
    for unset in &service.unset_environment {
        match unset.split_once('=') {
            Some((name, value)) => {
                if env.get(name).is_some_and(|(v, _)| v == value) {
                    env.remove(name);
                }
            }
            None => {
                env.remove(unset);
            }
        }
    }
    Ok(env)
}

/// One argument dockerd receives, and the variable it came from (if any).
struct Arg {
    text: String,
    variable: Option<(String, Origin)>,
}

/// The arguments after systemd's variable expansion (`replace_env_argv()`): a word `$NAME` is
/// split into words, `${NAME}` inside a word is replaced by the value as one word, `$$` is `$`.
fn expand(words: &[Word], env: &Env) -> Vec<Arg> {
    let mut out = Vec::new();
    for word in words {
        let text = &word.text;
        if let Some(name) = text.strip_prefix('$')
            && !name.starts_with(['{', '$'])
        {
            if let Some((value, origin)) = env.get(name) {
                let parts = syntax::words(value, false)
                    .unwrap_or_else(|_| value.split_whitespace().map(str::to_string).collect());
                for part in parts {
                    out.push(Arg {
                        text: part,
                        variable: Some((name.to_string(), origin.clone())),
                    });
                }
            }
            continue;
        }
        let mut result = String::new();
        let mut variable = None;
        let mut rest = text.as_str();
        while let Some(at) = rest.find('$') {
            result.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(after) = after.strip_prefix('$') {
                result.push('$');
                rest = after;
            } else if let Some(inner) = after.strip_prefix('{')
                && let Some(end) = inner.find('}')
            {
                let expression = &inner[..end];
                let (name, default) = match expression.split_once(":-") {
                    Some((name, default)) => (name, Some(default)),
                    None => (expression.split(":+").next().unwrap_or(expression), None),
                };
                match env.get(name) {
                    Some((value, origin)) => {
                        result.push_str(value);
                        variable.get_or_insert((name.to_string(), origin.clone()));
                    }
                    None => result.push_str(default.unwrap_or("")),
                }
                rest = &inner[end + 1..];
            } else {
                result.push('$');
                rest = after;
            }
        }
        result.push_str(rest);
        out.push(Arg {
            text: result,
            variable,
        });
    }
    out
}

/// A read kept for when it matters: a refusal (its message) is raised only when the decision
/// needs that file, as systemd reads the environment only when ExecStart uses it.
type Deferred<T> = Result<T, String>;

/// The value of a deferred read, or its refusal.
fn raise<T>(read: &Deferred<T>) -> Result<&T, Error> {
    read.as_ref().map_err(|why| Error::Refused(why.clone()))
}

/// docker.service's files as read from the host through the confined root: the plain input
/// of `decide`, which reads nothing.
pub struct UnitFiles {
    unit: Source,
    /// The drop-ins in file-name order (each name once: the folder of highest priority
    /// wins): name, path, and the text unless it is masked (dockertls's own is not read).
    dropins: Vec<(String, String, Option<String>)>,
    /// The service manager's configuration files.
    manager: Deferred<Vec<Source>>,
    /// Every `EnvironmentFile=` the unit and its drop-ins name, as read.
    env_files: BTreeMap<String, Deferred<Found>>,
}

impl UnitFiles {
    /// Files given as text (for tests of the decision): the unit, then drop-ins as
    /// (host path, text) in any order, and environment files.
    #[cfg(test)]
    pub fn from_texts(
        unit: (&str, &str),
        dropins: &[(&str, &str)],
        env_files: &[(&str, &str)],
    ) -> UnitFiles {
        let mut sorted: Vec<(String, String, Option<String>)> = dropins
            .iter()
            .map(|(path, text)| {
                let name = path.rsplit('/').next().unwrap_or(path).to_string();
                (name, path.to_string(), Some(text.to_string()))
            })
            .collect();
        sorted.sort();
        UnitFiles {
            unit: Source {
                path: unit.0.into(),
                text: unit.1.into(),
            },
            dropins: sorted,
            manager: Ok(Vec::new()),
            env_files: env_files
                .iter()
                .map(|(path, text)| (path.to_string(), Ok(Found::File(text.to_string()))))
                .collect(),
        }
    }
}

/// Reads docker.service as systemd assembles it under `root`: the unit, its drop-ins (all but
/// dockertls's own at `dropin_path`), the manager's configuration and every environment file
/// named, each through the kernel-confined root.
pub fn read_units(root: &Root, dropin_path: &str) -> Result<UnitFiles, Error> {
    let (unit, by_name) = unit_sources(root)?;
    let mut dropins = Vec::new();
    for (name, path) in by_name {
        let text = match path == dropin_path {
            true => None,
            false => match read_host_file(root, &path)?.0 {
                Found::File(text) => Some(text),
                Found::Missing | Found::Masked => None,
            },
        };
        dropins.push((name, path, text));
    }
    let texts = std::iter::once(&unit.text).chain(dropins.iter().filter_map(|d| d.2.as_ref()));
    let mut env_files = BTreeMap::new();
    for text in texts {
        for assignment in syntax::assignments(text).unwrap_or_default() {
            if assignment.section != "Service"
                || assignment.key != "EnvironmentFile"
                || assignment.value.is_empty()
            {
                continue;
            }
            let (path, _) = environment_file(&assignment.value);
            if path.contains(['*', '?', '[']) || env_files.contains_key(&path) {
                continue;
            }
            let read = read_host_file(root, &path).map(|(found, _)| found);
            env_files.insert(path, read.map_err(|e| e.to_string()));
        }
    }
    Ok(UnitFiles {
        unit,
        dropins,
        manager: manager_sources(root).map_err(|e| e.to_string()),
        env_files,
    })
}

/// Builds the drop-in for docker.service under `root`, to be written at `dropin_path` (a host
/// path under /etc/systemd/system/docker.service.d): `read_units`, then `decide`.
pub fn plan_dropin(root: &Root, dropin_path: &str) -> Result<DropinPlan, Error> {
    decide(&read_units(root, dropin_path)?, dropin_path)
}

/// The drop-in from the files as read (pure). Refuses, naming the file and line, when the
/// unit as systemd would assemble it afterwards would keep a flag daemon.json owns.
pub fn decide(files: &UnitFiles, dropin_path: &str) -> Result<DropinPlan, Error> {
    let ours = dropin_path
        .rsplit('/')
        .next()
        .unwrap_or(dropin_path)
        .to_string();
    if let Some((_, winner, _)) = files.dropins.iter().find(|(name, _, _)| *name == ours)
        && winner != dropin_path
    {
        return Err(refused(
            format!(
                "{} has the name of dockertls's drop-in and takes precedence over {dropin_path}",
                printable(winner)
            ),
            "rename or remove that file, then run dockertls install again",
        ));
    }
    let mut before = Service::default();
    before.apply(&files.unit)?;
    let mut later = Vec::new();
    for (name, path, text) in &files.dropins {
        let Some(text) = text else {
            continue;
        };
        let source = Source {
            path: path.clone(),
            text: text.clone(),
        };
        if *name < ours {
            before.apply(&source)?;
        } else {
            later.push(source);
        }
    }
    let command = single_command(&before, &files.unit.path)?;
    let (args_from, _) = split_program(&command.words);
    let (mut kept, removed) = without_taken(&command.words[args_from..]);
    let mut line: Vec<String> = command.words[..args_from]
        .iter()
        .map(|w| w.raw.clone())
        .collect();
    line.append(&mut kept);
    let exec_start = line.join(" ");
    if exec_start.chars().any(char::is_control) {
        return Err(refused(
            format!("{}: ExecStart holds a control character", command.origin),
            "remove it, then run dockertls install again",
        ));
    }
    let contents = render(&exec_start, &command.origin, &removed);

    // The unit as systemd will assemble it with our drop-in: it must start dockerd.
    let mut after = before.clone();
    after.apply(&Source {
        path: dropin_path.to_string(),
        text: contents.clone(),
    })?;
    for source in &later {
        after.apply(source)?;
    }
    check_final(files, &after, &ours, dropin_path, &command.origin)?;
    Ok(DropinPlan {
        unit_path: files.unit.path.clone(),
        contents,
        removed_flags: removed,
    })
}

/// The one ExecStart= of the unit before dockertls's drop-in.
fn single_command(before: &Service, unit_path: &str) -> Result<ExecCommand, Error> {
    match before.exec_start.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(refused(
            format!("{unit_path} and its drop-ins set no ExecStart"),
            "reinstall Docker's package to restore docker.service, then run dockertls install again",
        )),
        many => {
            let list: Vec<String> = many.iter().map(|c| c.origin.to_string()).collect();
            Err(refused(
                format!(
                    "docker.service has {} ExecStart= commands ({}): systemd refuses that for dockerd's service type",
                    many.len(),
                    list.join(", ")
                ),
                "keep one (a drop-in must reset it with an empty ExecStart= first), then run dockertls install again",
            ))
        }
    }
}

/// Refuses when the assembled unit would not start dockerd with daemon.json's hosts and TLS.
/// `derived_from`: where the command in our drop-in was taken from (named instead of it).
fn check_final(
    files: &UnitFiles,
    service: &Service,
    ours: &str,
    dropin_path: &str,
    derived_from: &Origin,
) -> Result<(), Error> {
    let command = final_command(service, ours)?;
    let origin = if command.origin.file == dropin_path {
        derived_from
    } else {
        &command.origin
    };
    let (args_from, no_expansion) = split_program(&command.words);
    let words = &command.words[args_from..];
    let needs_env = !no_expansion && words.iter().any(|w| w.text.contains('$'));
    // Environment files read both as systemd < 254 and >= 254 do (comments ending in '\').
    for comment_continues in [false, true] {
        let env = if needs_env {
            environment(files, service, comment_continues)?
        } else {
            Env::new()
        };
        let args = if no_expansion {
            words
                .iter()
                .map(|w| Arg {
                    text: w.text.clone(),
                    variable: None,
                })
                .collect()
        } else {
            expand(words, &env)
        };
        refuse_taken_flags(&args, origin, ours)?;
        if !needs_env {
            break;
        }
    }
    Ok(())
}

/// The one command of the unit as assembled with dockertls's drop-in `ours`.
fn final_command<'a>(service: &'a Service, ours: &str) -> Result<&'a ExecCommand, Error> {
    match service.exec_start.as_slice() {
        [one] => Ok(one),
        [] => {
            let place = service
                .exec_start_reset
                .as_ref()
                .map(Origin::to_string)
                .unwrap_or_default();
            Err(refused(
                format!(
                    "{place} resets ExecStart after dockertls's drop-in {ours} and sets no command: docker.service would not start"
                ),
                &format!(
                    "remove that empty ExecStart= (or rename the file to sort before {ours}), then run dockertls install again"
                ),
            ))
        }
        many => {
            let list: Vec<String> = many.iter().map(|c| c.origin.to_string()).collect();
            Err(refused(
                format!(
                    "with dockertls's drop-in, docker.service would have {} ExecStart= commands ({}): a drop-in that sorts after {ours} adds one without resetting",
                    many.len(),
                    list.join(", ")
                ),
                &format!(
                    "start that drop-in's ExecStart lines with an empty ExecStart=, or rename it to sort before {ours}, then run dockertls install again"
                ),
            ))
        }
    }
}

/// Refuses the arguments dockerd would receive when they name another configuration file or
/// give a flag daemon.json now owns. `origin`: where the command was written.
fn refuse_taken_flags(args: &[Arg], origin: &Origin, ours: &str) -> Result<(), Error> {
    let texts: Vec<&str> = args.iter().map(|a| a.text.as_str()).collect();
    for flag in flags(&texts) {
        let shown = match (&flag.value, flag.value_index) {
            (Some(value), Some(_)) => format!("{} {}", texts[flag.index], value),
            _ => texts[flag.index].to_string(),
        };
        // A flag's value from a unit file: cut in messages (escape::value).
        let shown = crate::escape::value(&shown);
        let variable = args[flag.index]
            .variable
            .as_ref()
            .or(flag.value_index.and_then(|i| args[i].variable.as_ref()));
        if flag.name == "config-file"
            && let Some(value) = &flag.value
            && value != DAEMON_JSON
        {
            let place = match variable {
                Some((name, origin)) => format!("{name} ({origin})"),
                None => origin.to_string(),
            };
            return Err(refused(
                format!(
                    "{place} starts dockerd with {shown}: dockerd would never read {DAEMON_JSON}, where install puts \"hosts\" and TLS"
                ),
                &format!(
                    "remove --config-file from that line (or merge that file into {DAEMON_JSON}), then run dockertls install again"
                ),
            ));
        }
        if !TAKEN.contains(&flag.name.as_str()) {
            continue;
        }
        return Err(match variable {
            Some((name, origin)) => refused(
                format!(
                    "{name}, set at {origin}, gives dockerd {shown}, and docker.service passes ${name} to dockerd: with \"{}\" in {DAEMON_JSON}, dockerd would refuse to start (a setting given both as a flag and in daemon.json)",
                    json_key(&flag.name)
                ),
                &format!(
                    "remove {shown} from {name} in {} (daemon.json sets it now), then run dockertls install again",
                    printable(&origin.file)
                ),
            ),
            None => refused(
                format!(
                    "{} sets ExecStart with {shown} and applies after dockertls's drop-in {ours} (drop-ins apply in file-name order): with \"{}\" in {DAEMON_JSON}, dockerd would refuse to start",
                    origin,
                    json_key(&flag.name)
                ),
                &format!(
                    "remove {shown} from that line (daemon.json sets it now), or rename that file to sort before {ours}, then run dockertls install again"
                ),
            ),
        });
    }
    Ok(())
}

/// The daemon.json key of a flag.
fn json_key(flag: &str) -> &str {
    if flag == "host" { "hosts" } else { flag }
}

/// The drop-in's text.
fn render(exec_start: &str, from: &Origin, removed: &[String]) -> String {
    let mut text = String::from(
        "# Written by dockertls install. /etc/docker/daemon.json sets \"hosts\" and TLS, and dockerd\n\
         # refuses to start when a setting is given both as a flag and in daemon.json: so ExecStart\n\
         # is reset and dockerd started with the rest of the effective ExecStart, from\n",
    );
    text.push_str(&format!("# {from}.\n"));
    if !removed.is_empty() {
        text.push_str(&format!("# Left out: {}\n", printable(&removed.join(" "))));
    }
    text.push_str(
        "# Named zz- to apply after the other drop-ins (dockertls install refuses when a later one\n\
         # would undo it).\n[Service]\nExecStart=\nExecStart=",
    );
    text.push_str(exec_start);
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<Word> {
        syntax::command_lines(line).unwrap().remove(0)
    }

    fn strip(line: &str) -> (String, Vec<String>) {
        let words = words(line);
        let (from, _) = split_program(&words);
        let (kept, removed) = without_taken(&words[from..]);
        let mut all: Vec<String> = words[..from].iter().map(|w| w.raw.clone()).collect();
        all.extend(kept);
        (all.join(" "), removed)
    }

    #[test]
    fn drops_every_spelling_of_the_taken_flags_and_keeps_the_rest_as_written() {
        let (line, removed) = strip(
            "/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock $DOCKER_OPTS",
        );
        assert_eq!(
            line,
            "/usr/sbin/dockerd --containerd=/run/containerd/containerd.sock $DOCKER_OPTS"
        );
        assert_eq!(removed, ["-H fd://"]);
        let (line, removed) = strip(
            r#"-/usr/bin/dockerd --host=tcp://0.0.0.0:2375 -Hunix:///x -H=unix:///y --tlsverify --tls=false --tlscacert /a --tlscert=/b --tlskey "/c d" --log-level warn --label "a b" -DH fd:// -lH --data-root='/srv/x y' %%"#,
        );
        assert_eq!(
            line,
            r#"-/usr/bin/dockerd --log-level warn --label "a b" -D -lH --data-root='/srv/x y' %%"#
        );
        assert_eq!(removed.len(), 9, "{removed:?}");
        assert!(removed.contains(&"--tlskey \"/c d\"".to_string()));
        // With "@", the second word is argv[0]; "--" ends the flags.
        let (line, _) = strip("@/usr/bin/dockerd dockerd -H fd:// -- -H");
        assert_eq!(line, "@/usr/bin/dockerd dockerd -- -H");
        // A value flag swallows the next word, as pflag does.
        let (line, removed) = strip("/usr/bin/dockerd --label -H -H x");
        assert_eq!(line, "/usr/bin/dockerd --label -H");
        assert_eq!(removed, ["-H x"]);
    }

    #[test]
    fn variables_expand_as_systemd_does() {
        let mut env = Env::new();
        let origin = Origin {
            file: "/etc/default/docker".into(),
            line: 3,
        };
        env.insert(
            "OPTS".into(),
            ("-H 'tcp://a b' --debug".into(), origin.clone()),
        );
        let args = expand(&words("$OPTS ${OPTS} x$${OPTS} ${NONE:-d} $NONE"), &env);
        let texts: Vec<&str> = args.iter().map(|a| a.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "-H",
                "tcp://a b",
                "--debug",
                "-H 'tcp://a b' --debug",
                "x${OPTS}",
                "d"
            ]
        );
        assert_eq!(args[0].variable, Some(("OPTS".into(), origin)));
        assert!(args[4].variable.is_none());
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Whatever the command line, the words kept parse (as systemd and then dockerd's
        /// flag parser read them) to a command without any flag daemon.json owns.
        #[test]
        fn kept_words_hold_no_taken_flag(
            args in proptest::collection::vec(
                prop_oneof![
                    Just("-H".to_string()), Just("--host".to_string()), Just("-DH".to_string()),
                    Just("-Hfd://".to_string()), Just("--tls".to_string()),
                    Just("--tlsverify=false".to_string()), Just("--tlskey".to_string()),
                    Just("--label".to_string()), Just("-l".to_string()), Just("-D".to_string()),
                    Just("--".to_string()), Just("\"-H x\"".to_string()),
                    Just("'--tls'".to_string()), Just("fd://".to_string()),
                    Just("$DOCKER_OPTS".to_string()), Just("-lH".to_string()),
                    "[-a-zA-Z=:/]{1,8}",
                ],
                0..12,
            )
        ) {
            let line = format!("/usr/bin/dockerd {}", args.join(" "));
            let words = words(&line);
            let (kept, _) = without_taken(&words[1..]);
            let again = syntax::command_lines(&format!("/usr/bin/dockerd {}", kept.join(" "))).unwrap();
            let texts: Vec<&str> = again.first().map(|c| c[1..].iter().map(|w| w.text.as_str()).collect()).unwrap_or_default();
            let taken: Vec<String> = flags(&texts).into_iter().filter(|f| TAKEN.contains(&f.name.as_str())).map(|f| f.name).collect();
            prop_assert!(taken.is_empty(), "{line} -> {kept:?} still has {taken:?}");
        }
    }
}
