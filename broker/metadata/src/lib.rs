//! Krait's cluster metadata quorum: the metadata log replicated by Raft (openraft) among the
//! voters, its entries applied in order to a [`ClusterImage`] on every broker. The Raft leader
//! is the controller.
//!
//! This crate owns consensus plumbing only: the log and snapshot on `krait-storage`'s
//! [`RaftKv`] seam (the broker's store, or memory), the gRPC transport, and the node's
//! lifecycle.
//! It must not decide what to propose or how a record changes the image: both are
//! `krait-image`'s pure code.
//!
//! - [`quorum`]: [`MetadataQuorum`] (start, propose, image, leader) and its config and errors.
//! - [`kv`]: the key-value seam the log and snapshot live on (`krait_storage::raft`).
//! - `formation`: a voter with an empty log forms the quorum, joins it, or refuses (a wiped
//!   voter).
//! - `log_store`: openraft's log storage (vote, entries, committed, purge).
//! - `state_machine`: the image and its snapshots.
//! - `network` / [`service`]: the gRPC client and the `Raft` service.

pub use krait_image::{ApplyError, ClusterImage, MetadataRecord};

pub use krait_storage::raft as kv;
mod formation;
mod log_store;
mod network;
pub mod quorum;
pub mod service;
mod state_machine;
mod types;

/// The generated gRPC code of `proto/raft.proto`.
pub mod proto {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("krait.raft.v1");
}

pub use krait_storage::raft::{KvError, RaftKv};
pub use quorum::{
    Membership, MembershipError, MetadataQuorum, ProposeError, QuorumConfig, QuorumError,
    QuorumState, RaftMetrics, ReplicaState,
};
pub use service::{RaftService, ServerHandle};
/// The openraft type configuration, so the Raft messages' payload types can be named outside
/// (the fuzz targets decode them as the service does).
pub use types::TypeConfig;
