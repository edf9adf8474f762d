//! The one error type the commands return; `main` turns it into a message and an exit code.

use std::fmt;

/// Why a command stopped.
#[derive(Debug)]
pub enum Error {
    /// Bad input or an unsafe state, found before anything was generated or written (exit 2).
    Refused(String),
    /// Something failed while working (exit 1). What was written has been rolled back.
    Failed(String),
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Refused(_) => 2,
            Error::Failed(_) => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Refused(message) | Error::Failed(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {}

/// Shorthand for the error of a failed file operation, naming the path.
pub fn io_failed(what: &str, path: &std::path::Path, err: &std::io::Error) -> Error {
    Error::Failed(format!("{what} {}: {err}", path.display()))
}
