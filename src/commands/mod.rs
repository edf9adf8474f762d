//! One module per subcommand: the only layer that prints.

// issue 13: `authz serve` (authz-serve).
pub mod authz;
pub mod backup;
pub mod client;
// issue 14 (import)
pub mod context;
pub mod crl;
pub mod deploy;
pub mod env;
// issue 14 (import)
pub mod import;
pub mod init;
pub mod install;
pub mod probe;
// Issue 12 (csr).
pub mod request;
pub mod role;
pub mod rotate;
pub mod server;
pub mod sign;
pub mod verify;
// eco (issue 14)
pub mod completions;
pub mod man;
