//! The follower side of replica fetches over gRPC: [`GrpcTransport`], the address of every
//! broker as cluster metadata last gave it and one lazily connected channel per address.
//!
//! This module owns turning a fetch into a call and every way that call can fail into a
//! [`TransportError`]. It must not retry: the fetch loop backs off and tries again.

use krait_sync::MutexExt;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use krait_image::BrokerId;
use krait_peer::ClusterTransport;
use tonic::transport::Channel;

use crate::grpc::convert::{DecodeError, decode_answers};
use crate::grpc::proto::replication_client::ReplicationClient;
use crate::grpc::{FaultSwitch, MAX_MESSAGE_BYTES, proto};
use crate::manager::{FetchRequest, ReplicaTransport, TransportError};
use crate::wire::FetchedPartition;

/// A leader that does not accept a connection within this is unreachable for this try.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// What a fetch may take beyond the leader's long poll: the round trip and the records.
const REQUEST_SLACK: Duration = Duration::from_secs(3);

/// Carries follower fetches to leaders over gRPC.
#[derive(Debug, Default)]
pub struct GrpcTransport {
    book: Mutex<AddressBook>,
    faults: FaultSwitch,
    peer: ClusterTransport,
}

#[derive(Debug, Default)]
struct AddressBook {
    addresses: BTreeMap<BrokerId, String>,
    /// By address, so a broker that moves gets a new channel and one that stays keeps its own.
    channels: BTreeMap<String, Channel>,
}

/// Why a fetch did not reach the leader or its answer could not be read.
#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("cut off by fault injection")]
    Cut,
    #[error("no address known for the broker")]
    UnknownBroker,
    #[error(transparent)]
    Address(#[from] krait_peer::TransportError),
    #[error("leader answered {:?}: {}", .0.code(), .0.message())]
    Status(#[from] tonic::Status),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("undecodable answer: {0}")]
    Decode(#[from] DecodeError),
}

impl GrpcTransport {
    pub fn new() -> Self {
        Self::default()
    }

    /// Fetches over the cluster port's `peer` transport (plaintext or mTLS).
    pub fn over(peer: ClusterTransport) -> Self {
        Self {
            peer,
            ..Self::default()
        }
    }

    /// Replaces every broker's address ("host:port" of its replication gRPC server), as cluster
    /// metadata gives them. Channels to addresses no longer listed are dropped.
    pub fn set_addresses(&self, addresses: BTreeMap<BrokerId, String>) {
        let mut book = self.book();
        book.channels
            .retain(|address, _| addresses.values().any(|a| a == address));
        book.addresses = addresses;
    }

    /// Test-only: the switch this transport checks, to share with this broker's
    /// [`ReplicationService`](crate::grpc::ReplicationService).
    #[doc(hidden)]
    pub fn fault_switch(&self) -> FaultSwitch {
        self.faults.clone()
    }

    /// Test-only: cuts this broker off from exactly `brokers`, both ways when the switch is
    /// shared with the service.
    #[doc(hidden)]
    pub fn cut(&self, brokers: BTreeSet<BrokerId>) {
        self.faults.cut(brokers);
    }

    /// Test-only: reconnects every broker.
    #[doc(hidden)]
    pub fn heal(&self) {
        self.faults.heal();
    }

    fn book(&self) -> MutexGuard<'_, AddressBook> {
        self.book.lock_unpoisoned()
    }

    /// A client on `leader`'s channel, made on first use. Connecting happens on the first call
    /// (and again after a failure), so a leader that is not up yet costs nothing here.
    fn client(&self, leader: BrokerId) -> Result<ReplicationClient<Channel>, CallError> {
        let mut book = self.book();
        let address = book
            .addresses
            .get(&leader)
            .cloned()
            .ok_or(CallError::UnknownBroker)?;
        let channel = match book.channels.get(&address) {
            Some(channel) => channel.clone(),
            None => {
                let channel = self.peer.channel(&address, CONNECT_TIMEOUT, None)?;
                book.channels.insert(address, channel.clone());
                channel
            }
        };
        Ok(ReplicationClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES))
    }

    async fn call(
        &self,
        leader: BrokerId,
        request: FetchRequest,
    ) -> Result<Vec<FetchedPartition>, CallError> {
        if self.faults.is_cut(leader) {
            return Err(CallError::Cut);
        }
        let mut client = self.client(leader)?;
        let timeout = Duration::from_millis(request.max_wait_ms) + REQUEST_SLACK;
        let mut call = tonic::Request::new(proto::FetchRequest::from(request));
        // Sent as grpc-timeout too, so the leader gives up a parked fetch nobody waits for.
        call.set_timeout(timeout);
        let reply = tokio::time::timeout(timeout, client.fetch(call))
            .await
            .map_err(|_| CallError::Timeout(timeout))??;
        Ok(decode_answers(reply.into_inner())?)
    }
}

impl ReplicaTransport for GrpcTransport {
    async fn fetch(
        &self,
        leader: BrokerId,
        request: FetchRequest,
    ) -> Result<Vec<FetchedPartition>, TransportError> {
        self.call(leader, request)
            .await
            .map_err(|error| TransportError {
                leader,
                connection_lost: matches!(
                    &error,
                    CallError::Status(status) if krait_peer::connection_lost(status)
                ),
                reason: error.to_string(),
            })
    }
}
