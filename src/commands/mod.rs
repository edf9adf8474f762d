//! One module per subcommand: the only layer that prints.

pub mod init;
pub mod probe;
pub mod verify;
