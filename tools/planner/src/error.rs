//! Why a request cannot be planned. Every refusal happens before anything is planned.

use serde::{Deserialize, Serialize};

/// A topic whose replication factor the target brokers cannot hold.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockingTopic {
    pub topic: String,
    /// The largest replication factor among the topic's partitions.
    pub replication_factor: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum PlanError {
    /// Some topics have more replicas per partition than there are target brokers; the plan
    /// would have to lower their replication factor, which the planner never does.
    #[error(
        "{target_brokers} target broker(s) cannot hold the replicas of {}",
        blocking_list(.blocking)
    )]
    NotEnoughBrokers {
        /// Every blocking topic once, sorted by name.
        blocking: Vec<BlockingTopic>,
        target_brokers: usize,
    },
    /// The target names a broker that is not among the request's brokers.
    #[error("target broker {0} is not a known broker")]
    UnknownBroker(i32),
    /// The request lists the same broker id twice with different racks.
    #[error("broker {0} is listed twice with different racks")]
    DuplicateBroker(i32),
    /// The request lists the same partition twice.
    #[error("partition {topic}-{partition} is listed twice")]
    DuplicatePartition { topic: String, partition: i32 },
}

fn blocking_list(blocking: &[BlockingTopic]) -> String {
    blocking
        .iter()
        .map(|b| format!("{} (replication factor {})", b.topic, b.replication_factor))
        .collect::<Vec<_>>()
        .join(", ")
}
