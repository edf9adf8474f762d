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
// issue 13: the authorization plugin server (authz-serve).
pub mod authz;
pub mod cli;
pub mod commands;
pub mod dockerd_hosts;
pub mod dockerd_options;
pub mod error;
pub mod escape;
pub mod findings;
pub mod install;
pub mod names;
pub mod pki;
pub mod plan;
pub mod probe;
pub mod render;
pub mod secret;
pub mod store;
pub mod terminal;
pub mod userfile;
pub mod wizard;
