//! dockertls: make the Docker daemon's remote API safe to expose. The binary (`main.rs`) is a
//! thin shell over these modules.

#![forbid(unsafe_code)]

// Every `eprintln!` in the library escapes control characters (see `escape`): a message that
// echoes a path, a name or a server's answer cannot drive the terminal. This shadows std's macro
// for every module declared below, so no message can forget it.
macro_rules! eprintln {
    () => {
        $crate::escape::print_stderr_line("")
    };
    ($($arg:tt)*) => {
        $crate::escape::print_stderr_line(&format!($($arg)*))
    };
}

pub mod audit;
pub mod authz_policy;
// issue 13: the authorization plugin server (authz-serve).
pub mod authz;
pub mod cli;
pub mod commands;
// Issue 12 (csr): certificate signing requests, `request` and `sign`.
pub mod crl;
pub mod csr;
pub mod deploy;
pub mod dockerd_hosts;
pub mod dockerd_options;
pub mod error;
pub mod escape;
pub mod findings;
// issue 14: adopting an existing PKI (import) and docker contexts.
pub mod import;
pub mod install;
pub mod names;
pub mod pki;
pub mod plan;
pub mod probe;
pub mod render;
pub mod secret;
pub mod store;
pub mod terminal;
// eco (issue 14): REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override ca.pem for docker-py.
pub mod trust_env;
pub mod userfile;
pub mod wizard;
