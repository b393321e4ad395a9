//! `KafkaCluster` reconciliation: read (the only step with a client) -> validate (pure) ->
//! build (pure) -> apply (server-side apply in a fixed order, delete leftovers, status).

pub mod build;
pub mod drift;
pub mod reconcile;
pub mod roll;
pub mod scale;
pub mod status;
pub mod validate;

pub use reconcile::{Error, reconcile};
