//! `dockertls context CLIENT`: a docker context for a client, kept in step by rotate.

use std::path::Path;

use crate::cli::ContextArgs;
use crate::error::Error;
use crate::findings::Outcome;

/// Runs `context`.
pub fn run(_dir: &Path, _args: &ContextArgs) -> Result<Outcome, Error> {
    Err(Error::refused("context is not built yet"))
}
