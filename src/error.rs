//! The one error type the commands return, and the exit codes; `main` turns an error into an
//! `error:` line, an optional `hint:` line and an exit code.

use std::fmt;

/// The process exit status. The changing commands (init, client, env, rotate, install) use 0,
/// 1, 2 and 130; `verify` and `probe` follow the monitoring-plugin convention (Nagios, Icinga):
/// 0 ok, 1 warning, 2 failure, 3 could not check. The values are a contract (see README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done; for verify and probe, every check is ok.
    Success,
    /// 1: failed while working (what was written was rolled back); for verify and probe, the
    /// worst check is a warning.
    FailedOrWarning,
    /// 2: refused before anything was generated or written (bad input, an unsafe state, a
    /// usage error); for verify and probe, a check failed.
    RefusedOrFailure,
    /// 3: verify or probe could not check (bad arguments, nothing to check, no endpoint).
    CouldNotCheck,
    /// 130: interrupted (Ctrl-C in the wizard): nothing written.
    Interrupted,
}

impl Exit {
    /// The number the process exits with.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::FailedOrWarning => 1,
            Exit::RefusedOrFailure => 2,
            Exit::CouldNotCheck => 3,
            Exit::Interrupted => 130,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.code())
    }
}

/// Why a command stopped.
#[derive(Debug)]
pub enum Error {
    /// Bad input or an unsafe state, found before anything was generated or written (exit 2).
    Refused(String),
    /// Something failed while working (exit 1). What was written has been rolled back.
    Failed(String),
    /// An error and what to do about it, printed as a `hint:` line of its own.
    Hinted(Box<Error>, String),
}

impl Error {
    /// A refusal (exit 2).
    pub fn refused(message: impl Into<String>) -> Error {
        Error::Refused(message.into())
    }

    /// A failure while working (exit 1).
    pub fn failed(message: impl Into<String>) -> Error {
        Error::Failed(message.into())
    }

    /// The same error with what to do about it (replacing any hint it had).
    pub fn hint(self, hint: impl Into<String>) -> Error {
        let error = match self {
            Error::Hinted(error, _) => *error,
            error => error,
        };
        Error::Hinted(Box::new(error), hint.into())
    }

    /// What happened, without the hint.
    pub fn message(&self) -> &str {
        match self {
            Error::Refused(message) | Error::Failed(message) => {
                message.split_once(LEGACY_HINT).map_or(message, |(m, _)| m)
            }
            Error::Hinted(error, _) => error.message(),
        }
    }

    /// What to do, if there is something to do. A message written as "...\nhint: ..." (the
    /// form used before `hint` existed) gives its hint too.
    pub fn hint_text(&self) -> Option<&str> {
        match self {
            Error::Refused(message) | Error::Failed(message) => {
                message.split_once(LEGACY_HINT).map(|(_, h)| h)
            }
            Error::Hinted(_, hint) => Some(hint),
        }
    }

    /// The process exit code for this error.
    pub fn exit(&self) -> Exit {
        match self {
            Error::Refused(_) => Exit::RefusedOrFailure,
            Error::Failed(_) => Exit::FailedOrWarning,
            Error::Hinted(error, _) => error.exit(),
        }
    }

    /// The process exit code for this error, as a number.
    pub fn exit_code(&self) -> u8 {
        self.exit().code()
    }
}

/// How a hint was once appended to a message.
const LEGACY_HINT: &str = "\nhint: ";

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.hint_text() {
            Some(hint) => write!(f, "{}\nhint: {hint}", self.message()),
            None => f.write_str(self.message()),
        }
    }
}

impl std::error::Error for Error {}

/// Shorthand for the error of a failed file operation, naming the path.
pub fn io_failed(what: &str, path: &std::path::Path, err: &std::io::Error) -> Error {
    Error::Failed(format!("{what} {}: {err}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_is_its_own_line_and_keeps_the_exit_code() {
        let refused = Error::refused("--days 0: give 1 or more").hint("--days 365");
        assert_eq!(refused.message(), "--days 0: give 1 or more");
        assert_eq!(refused.hint_text(), Some("--days 365"));
        assert_eq!(refused.exit_code(), 2);
        assert_eq!(
            refused.to_string(),
            "--days 0: give 1 or more\nhint: --days 365"
        );
        let failed = Error::failed("disk full")
            .hint("free some space")
            .hint("again");
        assert_eq!((failed.exit_code(), failed.hint_text()), (1, Some("again")));
        let legacy = Error::Refused("mode 0644\nhint: chmod 600 f".into());
        assert_eq!(
            (legacy.message(), legacy.hint_text()),
            ("mode 0644", Some("chmod 600 f"))
        );
        assert_eq!(Error::Failed("x".into()).to_string(), "x");
        assert_eq!(Exit::Interrupted.code(), 130);
        assert_eq!(Exit::CouldNotCheck.code(), 3);
    }
}
