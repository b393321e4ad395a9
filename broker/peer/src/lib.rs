//! krait-peer: the transport of the cluster port (the metadata quorum's Raft, the controller
//! and replication, all gRPC) and who is calling on it.
//!
//! With cluster TLS the port speaks mutual TLS: both sides present a certificate from the
//! cluster's CA, and a broker's certificate names its node id in a URI subject alternative name
//! `urn:krait:node:<id>` ([`identity`]). A call then carries the caller's node id
//! ([`Caller`]), and the services refuse a caller that claims to be another node. Without it the
//! port is plaintext and callers are anonymous: for loopback clusters (development, tests) or
//! when the operator of the cluster says so explicitly.

pub mod identity;
mod lost;
#[cfg(feature = "test-support")]
pub mod testing;
mod transport;

pub use identity::{NODE_URI_PREFIX, node_id_of};
pub use lost::connection_lost;
pub use transport::{Caller, ClusterTls, ClusterTransport, PeerInfo, PeerIo, TransportError};
