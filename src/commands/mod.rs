//! One module per subcommand: the only layer that prints.

pub mod backup;
pub mod client;
pub mod crl;
pub mod env;
pub mod init;
pub mod install;
pub mod probe;
pub mod role;
pub mod rotate;
pub mod server;
pub mod verify;
