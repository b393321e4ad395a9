//! The openraft type configuration of the metadata quorum: what one log entry carries, what
//! applying it answers, and how broker ids map to Raft node ids.
//!
//! This module owns type definitions only; it must not do I/O.

use std::io::Cursor;

use krait_image::{ApplyError, BrokerId, MetadataRecord};
use serde::{Deserialize, Serialize};

/// One Raft entry's payload: records applied in order, each on its own (a refused record does
/// not stop the ones after it, exactly as on every other node).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub records: Vec<MetadataRecord>,
}

/// What applying a [`Proposal`] answered, one result per record, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub results: Vec<Result<(), ApplyError>>,
}

/// A voter or observer as the membership records it: where its cluster gRPC service listens, and
/// the id of the data directory it joined with. A voter whose directory is lost comes back with
/// a new id, so the quorum can tell it from its old self (which remembered its votes and log).
/// Memberships formed before directory ids existed hold none; they deserialize as `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub addr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<uuid::Uuid>,
}

impl Member {
    pub fn new(addr: impl Into<String>, directory: Option<uuid::Uuid>) -> Self {
        Self {
            addr: addr.into(),
            directory,
        }
    }
}

openraft::declare_raft_types!(
    /// The metadata quorum's Raft types: node ids are broker ids, a node is its cluster gRPC
    /// address and data directory id, snapshots are an in-memory serialized image.
    pub TypeConfig:
        D = Proposal,
        R = Applied,
        NodeId = u64,
        Node = Member,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type NodeId = u64;
pub type Raft = openraft::Raft<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type StoredMembership = openraft::StoredMembership<NodeId, Member>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Member>;
pub type StorageError = openraft::StorageError<NodeId>;

/// Broker ids are non-negative (Kafka's `node.id`); Raft node ids are the same number.
pub fn node_id(broker: BrokerId) -> Option<NodeId> {
    u64::try_from(broker).ok()
}

/// The broker id of a Raft node id this quorum created (always in range, see [`node_id`]).
pub fn broker_id(node: NodeId) -> BrokerId {
    BrokerId::try_from(node).unwrap_or(BrokerId::MAX)
}
pub type StorageIOError = openraft::StorageIOError<NodeId>;

/// Wraps an I/O failure of the log or state machine as the error openraft's storage traits return.
pub fn io_error(error: StorageIOError) -> StorageError {
    error.into()
}
