//! Messages are contract: `--help` of every command and the main refusals, as snapshot files
//! in tests/cli_snapshots/ (trycmd, as cargo and clap test theirs).
//!
//! After a deliberate change of wording, rewrite the snapshots and review the diff:
//!     TRYCMD=overwrite cargo test --test cli_snapshots

use clap::CommandFactory;

#[test]
fn cli_snapshots() {
    trycmd::TestCases::new()
        .env("NO_COLOR", "1")
        .env("DOCKERTLS_PASSPHRASE", "")
        .case("tests/cli_snapshots/*.toml")
        .case("tests/cli_snapshots/*.md");
}
