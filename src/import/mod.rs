//! `import` (issue 14): adopting a PKI made elsewhere (Docker's openssl recipe,
//! docker-machine, dind). `source` reads it without changing it, `keys` brings its keys into
//! dockertls's one form, `defects` says what does not meet dockertls's standard and the
//! command that fixes each.

pub mod defects;
pub mod docker_context;
pub mod keys;
pub mod legacy_pem;
pub mod records;
pub mod source;
