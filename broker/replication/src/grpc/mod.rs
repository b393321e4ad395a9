//! Replica fetches over gRPC: the `Replication` service a leader hosts
//! ([`ReplicationService`]) and the follower's [`GrpcTransport`].
//!
//! On the wire a fetch is protobuf (`proto/replication.proto`), its records raw bytes exactly
//! as the leader stored them, so nothing is re-encoded on either side. A follower keeps one
//! lazily connected HTTP/2 channel per leader address; its one fetcher loop per leader sends
//! every call there.
//!
//! This module owns encoding and connections. It must not interpret a fetch: serving it is
//! [`ReplicaManager::serve`](crate::ReplicaManager::serve), retrying is the fetch loop's.

mod client;
mod convert;
mod faults;
mod service;

pub use client::GrpcTransport;
pub use convert::DecodeError;
#[doc(hidden)]
pub use faults::FaultSwitch;
pub use service::ReplicationService;

/// The generated gRPC code of `proto/replication.proto`.
pub mod proto {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("krait.replication.v1");
}

/// Largest gRPC message either side accepts. A fetch answer holds up to `max_bytes` of records
/// (16 MiB by default), and a single batch larger than a partition's share still goes whole.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

#[cfg(test)]
mod tests;
