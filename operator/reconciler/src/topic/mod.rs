//! `KafkaTopic` reconciliation: the pure plans (what to change on the Kafka side, and how to
//! reach a new replication factor by reassignments), their execution through the admin
//! protocol, and the Kubernetes side (finalizer, conflicts, status).

pub mod plan;
pub mod reconcile;
pub mod replication;

pub use plan::{DesiredTopic, Plan, Refusal, TopicChange, plan, sync};
pub use reconcile::{Error, reconcile};
pub use replication::ReplicationStep;
