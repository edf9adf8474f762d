//! dockertls: make the Docker daemon's remote API safe to expose. The binary (`main.rs`) is a
//! thin shell over these modules.

#![forbid(unsafe_code)]

pub mod audit;
pub mod cli;
pub mod commands;
pub mod error;
pub mod install;
pub mod names;
pub mod pki;
pub mod plan;
pub mod probe;
pub mod render;
pub mod secret;
pub mod store;
pub mod terminal;
pub mod wizard;
pub mod workspace;
