//! The hoop control plane: the store, the REST API, and the agent link
//! server, as a library that `hoop-gateway` and `hoop up` run.

pub mod crypto;
pub mod store;

#[cfg(test)]
pub(crate) mod testing;
