//! Data replication: one partition's replica on this broker, as leader or follower.
//!
//! Followers pull: each follower repeatedly asks the partition leader for the records after its
//! log end, with the epoch of its last batch. The leader answers with records, or — when the
//! follower's log has diverged after a leader change — with the epoch and offset where their
//! logs part, and the follower truncates there (the OffsetForLeaderEpoch rule, carried in the
//! fetch itself as Kafka's Fetch v12+ does). Pulling keeps the leader's work per follower to one
//! read per request and lets a slow follower fall behind without back-pressuring the leader.
//!
//! [`PartitionReplica`] owns the rules at the I/O boundary: the log, the role, the high
//! watermark channel. The arithmetic (high watermark, ISR shrink and expand, `acks=all`) is
//! `krait_image::isr`. Fetches travel over a [`ReplicaTransport`]: [`grpc`] between
//! brokers, in memory in tests.

pub mod grpc;
mod manager;
mod replica;
pub mod wire;

pub use manager::{
    Clock, FetchRequest, FetchSettings, ReplicaManager, ReplicaTransport, Throttle, TransportError,
};
pub use replica::{PartitionReplica, ReplicaError, Role};
pub use wire::{Diverging, FetchPartition, FetchedPartition, ReplicaFetchError};

#[cfg(test)]
mod manager_tests;
#[cfg(test)]
mod replica_tests;
#[cfg(test)]
mod test_support;
