//! dockerd's option names, each written once: which are daemon.json keys and which flags take a
//! value. The daemon.json audit refuses unknown keys with them; install reads dockerd's command
//! line with them, as dockerd's flag parser (spf13/pflag) does.
//!
//! A daemon.json key is one dockerd 20.10 accepts on Linux: its flag names (`dockerd --help` and
//! the hidden ones) and the named options (`hosts`, `labels`, ...); dockerd compares them
//! case-sensitively and refuses to start on any other key. A flag that takes a value is one of
//! dockerd 20.10–28 (all others are booleans): needed to know which word of a command line is a
//! flag's value.

/// Daemon.json keys whose flag takes a value.
const KEYS_WITH_VALUE: &[&str] = &[
    "add-runtime",
    "allow-nondistributable-artifacts",
    "api-cors-header",
    "authorization-plugin",
    "bip",
    "bridge",
    "cgroup-parent",
    "config-file",
    "containerd",
    "containerd-namespace",
    "containerd-plugins-namespace",
    "cpu-rt-period",
    "cpu-rt-runtime",
    "data-root",
    "default-address-pool",
    "default-cgroupns-mode",
    "default-gateway",
    "default-gateway-v6",
    "default-ipc-mode",
    "default-runtime",
    "default-shm-size",
    "default-ulimit",
    "dns",
    "dns-opt",
    "dns-search",
    "exec-opt",
    "exec-root",
    "fixed-cidr",
    "fixed-cidr-v6",
    "graph",
    "group",
    "host",
    "host-gateway-ip",
    "init-path",
    "insecure-registry",
    "ip",
    "label",
    "log-driver",
    "log-level",
    "log-opt",
    "max-concurrent-downloads",
    "max-concurrent-uploads",
    "max-download-attempts",
    "metrics-addr",
    "mtu",
    "network-control-plane-mtu",
    "node-generic-resource",
    "oom-score-adjust",
    "pidfile",
    "registry-mirror",
    "seccomp-profile",
    "shutdown-timeout",
    "storage-driver",
    "storage-opt",
    "swarm-default-advertise-addr",
    "tlscacert",
    "tlscert",
    "tlskey",
    "userland-proxy-path",
    "userns-remap",
];

/// Daemon.json keys that are boolean flags or named options (no flag of that name takes a
/// value).
const OTHER_KEYS: &[&str] = &[
    "authorization-plugins",
    "builder",
    "cluster-advertise",
    "cluster-store",
    "cluster-store-opt",
    "cluster-store-opts",
    "cri-containerd",
    "debug",
    "default-address-pools",
    "default-ulimits",
    "deprecated-key-path",
    "dns-opts",
    "exec-opts",
    "experimental",
    "features",
    "hosts",
    "icc",
    "init",
    "insecure-registries",
    "ip-forward",
    "ip-masq",
    "ip6tables",
    "iptables",
    "ipv6",
    "labels",
    "live-restore",
    "log-opts",
    "network-diagnostic-port",
    "no-new-privileges",
    "node-generic-resources",
    "raw-logs",
    "registry-mirrors",
    "rootless",
    "runtimes",
    "selinux-enabled",
    "storage-opts",
    "tls",
    "tlsverify",
    "userland-proxy",
];

/// Flags that take a value and are no daemon.json key of dockerd 20.10 (newer options).
const OTHER_VALUE_FLAGS: &[&str] = &[
    "bip6",
    "cdi-spec-dir",
    "default-network-opt",
    "feature",
    "http-proxy",
    "https-proxy",
    "log-format",
    "no-proxy",
];

/// Whether dockerd 20.10 accepts `key` in daemon.json (case-sensitive, as dockerd compares).
pub fn is_daemon_json_key(key: &str) -> bool {
    KEYS_WITH_VALUE.contains(&key) || OTHER_KEYS.contains(&key)
}

/// The keys dockerd 20.10 accepts in daemon.json.
pub fn daemon_json_keys() -> impl Iterator<Item = &'static str> {
    KEYS_WITH_VALUE.iter().chain(OTHER_KEYS).copied()
}

/// Whether dockerd's flag `--name` takes a value.
pub fn flag_takes_value(name: &str) -> bool {
    KEYS_WITH_VALUE.contains(&name) || OTHER_VALUE_FLAGS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_name_is_written_once_and_says_what_it_is() {
        let mut all: Vec<&str> = KEYS_WITH_VALUE
            .iter()
            .chain(OTHER_KEYS)
            .chain(OTHER_VALUE_FLAGS)
            .copied()
            .collect();
        let count = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), count, "a name is in two lists");
        assert!(is_daemon_json_key("hosts") && !flag_takes_value("hosts"));
        assert!(flag_takes_value("host") && flag_takes_value("log-level"));
        assert!(is_daemon_json_key("tlsverify") && !flag_takes_value("tlsverify"));
        assert!(is_daemon_json_key("tlskey") && flag_takes_value("tlskey"));
        assert!(flag_takes_value("cdi-spec-dir") && !is_daemon_json_key("cdi-spec-dir"));
        assert!(!is_daemon_json_key("Hosts") && !flag_takes_value("debug"));
    }
}
