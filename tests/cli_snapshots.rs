//! Messages are contract (issue 11, item 5): the `--help` of every command and the main
//! refusals are snapshot files in tests/cli_snapshots/ (trycmd, as cargo and clap test theirs),
//! so a change of wording is a reviewed diff. Each `NAME.trycmd` runs in a fresh copy of
//! `NAME.in/`, with relative paths, so no temporary path shows in a snapshot.
//!
//! After a deliberate change of wording, rewrite the snapshots and review the diff:
//!     TRYCMD=overwrite cargo test --test cli_snapshots

use clap::CommandFactory;

#[test]
fn help_and_refusals_match_the_snapshots() {
    trycmd::TestCases::new()
        .default_bin_name("dockertls")
        // Output as a user sees it in a pipe: no colour, clap's fixed width.
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .env("LC_ALL", "C")
        // probe's default client folder; DOCKERTLS_DIR must not choose the PKI.
        .env("DOCKER_CERT_PATH", "no-such-folder")
        .env("DOCKERTLS_DIR", "docker-tls")
        // eco (issue 14): env and probe warn when these are set (empty is unset for requests).
        .env("REQUESTS_CA_BUNDLE", "")
        .env("CURL_CA_BUNDLE", "")
        .case("tests/cli_snapshots/*.trycmd");
}

/// clap's own consistency checks of the declarations (conflicts, defaults, value names).
#[test]
fn cli_declarations_are_consistent() {
    dockertls::cli::Cli::command().debug_assert();
}
