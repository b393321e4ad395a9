//! `KafkaTopic` reconciliation: the pure plan (what to change on the Kafka side), its execution
//! through the admin protocol, and the Kubernetes side (finalizer, conflicts, status).

pub mod plan;
pub mod reconcile;

pub use plan::{DesiredTopic, Plan, Refusal, TopicChange, plan, sync};
pub use reconcile::{Error, reconcile};
