//! The planner's vocabulary: what it is asked ([`PlanRequest`]) and what it answers ([`Plan`]).
//! Plain data only; the decisions live in the sibling modules.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// A broker the cluster knows, with the rack (availability zone) it runs in, if any.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Broker {
    pub id: i32,
    #[serde(default)]
    pub rack: Option<String>,
}

/// Where one partition's replicas live now. `replicas[0]` is the preferred leader.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartitionAssignment {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<i32>,
    /// Size of one replica on disk: what moving one replica of this partition costs.
    #[serde(default)]
    pub size_bytes: u64,
}

/// Everything the planner decides from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanRequest {
    /// Every broker the cluster knows, including the ones about to leave.
    pub brokers: Vec<Broker>,
    /// The brokers that should hold replicas once the plan is applied.
    pub target: BTreeSet<i32>,
    /// The current assignment of every partition.
    pub partitions: Vec<PartitionAssignment>,
}

/// One partition reassignment: its replica list goes from `from` to `to` (order matters,
/// `to[0]` is the new preferred leader).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Move {
    pub topic: String,
    pub partition: i32,
    pub from: Vec<i32>,
    pub to: Vec<i32>,
    /// Size of one replica; the bytes this move copies are `size_bytes` times the number of
    /// brokers in `to` that are not in `from`.
    pub size_bytes: u64,
}

impl Move {
    /// Brokers that receive a new replica (and so copy `size_bytes` each).
    pub fn added_replicas(&self) -> impl Iterator<Item = i32> + '_ {
        self.to.iter().copied().filter(|b| !self.from.contains(b))
    }

    /// Whether the move copies data, as opposed to only reordering replicas.
    pub fn moves_data(&self) -> bool {
        self.added_replicas().next().is_some()
    }
}

/// A reassignment plan: the moves, sorted by (topic, partition), and what they add up to.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub moves: Vec<Move>,
    pub summary: Summary,
}

/// What a plan changes, for status reporting and dry runs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Partitions whose replica set changes (data is copied); pure reorders are not counted.
    pub partitions_moved: usize,
    /// Replicas created on a broker that did not hold the partition.
    pub replicas_moved: usize,
    /// Partitions whose preferred leader (first replica) changes.
    pub leaders_changed: usize,
    /// Bytes copied: each new replica costs its partition's `size_bytes`.
    pub bytes_moved: u64,
    /// Keys are every broker in the request (known, target, or named by a replica list).
    pub replicas_per_broker_before: BTreeMap<i32, usize>,
    pub replicas_per_broker_after: BTreeMap<i32, usize>,
    pub leaders_per_broker_before: BTreeMap<i32, usize>,
    pub leaders_per_broker_after: BTreeMap<i32, usize>,
}
