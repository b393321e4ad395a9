//! Krait's cluster metadata and the decisions the controller takes on it, as pure code.
//!
//! This crate owns the *what* of a cluster and none of the *how*: no clock, no network, no
//! storage, no async runtime. The metadata quorum (Raft) replicates [`MetadataRecord`]s and every
//! broker applies them, in log order, to its [`ClusterImage`]; the controller (the Raft leader)
//! decides which records to propose with the functions here, and the partition leader decides
//! its high watermark and ISR changes with [`isr`]. Because every decision is a function of
//! state and events, each rule is tested directly, exhaustively and with property tests.
//!
//! - [`image`]: the cluster image (brokers, topics, partitions) and how a record changes it.
//! - [`placement`]: where the replicas of new partitions go (rack-aware, even, deterministic).
//! - [`election`]: partition leader election from the ISR, and what fencing a broker changes.
//! - [`isr`]: the partition leader's high watermark, ISR shrink/expand and `acks=all` rules.
//! - [`reassignment`]: the steps that move a partition's replicas from one set to another.
//! - [`transaction`]: the transaction coordinator's state machine per transactional id.

pub mod election;
pub mod image;
pub mod isr;
pub mod placement;
pub mod reassignment;
pub mod transaction;

pub use image::{
    ApplyError, BrokerRegistration, ClusterImage, GroupOffsets, ListenerAddress, MetadataRecord,
    OffsetCommit, PartitionChange, PartitionState, TopicImage,
};
pub use transaction::{TransactionMetadata, TxnState};

/// A broker's id (Kafka's `node.id`), the same number clients see in Metadata.
pub type BrokerId = i32;
