//! One module per subcommand: the only layer that prints.

// issue 13: `authz serve` (authz-serve).
pub mod authz;
pub mod backup;
pub mod client;
pub mod env;
pub mod init;
pub mod install;
pub mod probe;
pub mod rotate;
pub mod server;
pub mod verify;
