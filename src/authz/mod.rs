//! `dockertls authz serve`: Docker's authorization plugin. It decides every API call dockerd
//! passes from the client certificate (chained to ca.pem, not on the CRL) and the role its CN
//! has in authz.json, and writes one audit line per decision.

pub mod audit;
pub mod certs;
pub mod decide;
pub mod files;
pub mod policy;
pub mod request;
pub mod route;
pub mod server;
