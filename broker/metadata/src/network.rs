//! The Raft transport's client side: openraft's requests to other voters, as serde-encoded
//! bytes in gRPC calls to their `Raft` service.
//!
//! This module owns turning transport failures into the errors openraft acts on (unreachable:
//! back off; a remote Raft error: handle it). It must not retry or reorder: openraft's
//! replication loop owns that.

// openraft's `RaftNetwork` methods return its `RPCError` (over 200 bytes) by value; the
// helpers here return the same type so `?` needs no conversion.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use krait_peer::ClusterTransport;
use openraft::error::{
    Infallible, InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::transport::Channel;

use crate::proto::RaftMessage;
use crate::proto::raft_client::RaftClient;
use crate::types::{Member, NodeId, TypeConfig};

/// Largest gRPC message either side accepts: a snapshot chunk plus its JSON envelope.
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 << 20;
/// How long to wait before retrying a voter that did not answer. Shorter than openraft's
/// default (500 ms) so a restarted voter catches up well within an election timeout.
const UNREACHABLE_BACKOFF: Duration = Duration::from_millis(100);

/// A switch that cuts this node off from every other voter, both ways, as a network partition
/// would. Shared by the client side (outgoing calls fail) and the service (incoming calls are
/// refused). Off unless a test turns it on.
#[derive(Debug, Clone, Default)]
pub(crate) struct Partition(Arc<AtomicBool>);

impl Partition {
    pub(crate) fn set(&self, cut: bool) {
        self.0.store(cut, Ordering::SeqCst);
    }

    pub(crate) fn is_cut(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// When each other member last answered this node's appends (while it leads): Kafka's "last
/// fetch" of a replica, for DescribeQuorum. And when an append to a member last failed in the
/// transport (its connection closed or refused), which the controller takes as a hint to look
/// at that broker at once rather than at its next missed heartbeat.
#[derive(Debug, Clone, Default)]
pub(crate) struct Contacts(Arc<ContactLog>);

#[derive(Debug, Default)]
pub(crate) struct ContactLog {
    answered: std::sync::Mutex<BTreeMap<NodeId, SystemTime>>,
    lost: std::sync::Mutex<BTreeMap<NodeId, tokio::time::Instant>>,
    /// Woken when a contact is lost.
    lost_notify: tokio::sync::Notify,
}

impl Contacts {
    fn record(&self, node: NodeId) {
        let mut last = self
            .0
            .answered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        last.insert(node, SystemTime::now());
    }

    /// An append to `node` failed before its Raft answered: the connection was closed or could
    /// not be made.
    fn lose(&self, node: NodeId) {
        let mut lost = self
            .0
            .lost
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        lost.insert(node, tokio::time::Instant::now());
        drop(lost);
        self.0.lost_notify.notify_waiters();
    }

    pub(crate) fn last(&self, node: NodeId) -> Option<SystemTime> {
        let last = self
            .0
            .answered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        last.get(&node).copied()
    }

    pub(crate) fn last_lost(&self, node: NodeId) -> Option<tokio::time::Instant> {
        let lost = self
            .0
            .lost
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        lost.get(&node).copied()
    }

    pub(crate) fn lost_notify(&self) -> &tokio::sync::Notify {
        &self.0.lost_notify
    }
}

/// Makes one client per target voter, over the cluster port's transport (plaintext or mTLS).
#[derive(Debug, Clone)]
pub(crate) struct Network {
    pub(crate) partition: Partition,
    pub(crate) transport: ClusterTransport,
    pub(crate) contacts: Contacts,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> PeerClient {
        // Lazy: the target may not be up yet; the channel connects (and reconnects) on use.
        let client = self
            .transport
            .channel(&node.addr, Duration::from_secs(1), None)
            .map(|channel| {
                RaftClient::new(channel)
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES)
            })
            .map_err(|e| e.to_string());
        if let Err(error) = &client {
            tracing::error!(target, addr = %node.addr, %error, "invalid voter address");
        }
        PeerClient {
            target,
            client,
            partition: self.partition.clone(),
            contacts: self.contacts.clone(),
        }
    }
}

/// The client for one target voter.
pub(crate) struct PeerClient {
    target: NodeId,
    client: Result<RaftClient<Channel>, String>,
    partition: Partition,
    contacts: Contacts,
}

/// The transport failed before the target's Raft answered.
#[derive(Debug, thiserror::Error)]
enum TransportError {
    #[error("cut off from the other voters")]
    Partitioned,
    #[error("invalid voter address: {0}")]
    Address(String),
    #[error("encoding the request: {0}")]
    Encode(serde_json::Error),
    #[error("decoding the response: {0}")]
    Decode(serde_json::Error),
    #[error("gRPC call failed: {0}")]
    Status(#[from] tonic::Status),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

impl TransportError {
    /// The connection to the target closed under the call or was refused, as when its process
    /// is gone; not a slow answer, which proves nothing.
    fn lost_connection(&self) -> bool {
        matches!(self, TransportError::Status(status) if krait_peer::connection_lost(status))
    }
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, Member, RaftError<NodeId, E>>>;

impl PeerClient {
    /// Checks the partition switch and the address, and encodes the request.
    fn prepare<Req: Serialize>(
        &self,
        request: &Req,
    ) -> Result<(RaftClient<Channel>, tonic::Request<RaftMessage>), TransportError> {
        if self.partition.is_cut() {
            return Err(TransportError::Partitioned);
        }
        let client = self.client.clone().map_err(TransportError::Address)?;
        let payload = serde_json::to_vec(request).map_err(TransportError::Encode)?;
        Ok((client, tonic::Request::new(RaftMessage { payload })))
    }

    /// Decodes the remote `Result`: an error from the target's Raft is a `RemoteError`.
    fn decode<Resp: DeserializeOwned, E: std::error::Error + DeserializeOwned>(
        &self,
        reply: RaftMessage,
    ) -> RpcResult<Resp, E> {
        let remote: Result<Resp, RaftError<NodeId, E>> = serde_json::from_slice(&reply.payload)
            .map_err(|e| transport_error(TransportError::Decode(e)))?;
        remote.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

/// Unreachable makes openraft back off before the next try; other failures retry at once.
fn transport_error<E: std::error::Error>(
    error: TransportError,
) -> RPCError<NodeId, Member, RaftError<NodeId, E>> {
    match &error {
        TransportError::Partitioned | TransportError::Address(_) => {
            RPCError::Unreachable(Unreachable::new(&error))
        }
        // Unavailable: the target is down or not placed yet. PermissionDenied: it no longer
        // takes entries from this node (a leader that removed its own voter, until it steps
        // down when another voter's election reaches it).
        TransportError::Status(status)
            if matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::PermissionDenied
            ) =>
        {
            RPCError::Unreachable(Unreachable::new(&error))
        }
        _ => RPCError::Network(NetworkError::new(&error)),
    }
}

/// Runs one call with openraft's deadline for it.
async fn with_deadline<F>(option: &RPCOption, call: F) -> Result<RaftMessage, TransportError>
where
    F: Future<Output = Result<tonic::Response<RaftMessage>, tonic::Status>>,
{
    let ttl = option.hard_ttl();
    match tokio::time::timeout(ttl, call).await {
        Ok(reply) => Ok(reply?.into_inner()),
        Err(_) => Err(TransportError::Timeout(ttl)),
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, Infallible> {
        let (mut client, request) = self.prepare(&rpc).map_err(transport_error)?;
        let reply = match with_deadline(&option, client.append_entries(request)).await {
            Ok(reply) => reply,
            Err(error) => {
                if error.lost_connection() {
                    self.contacts.lose(self.target);
                }
                return Err(transport_error(error));
            }
        };
        let answer = self.decode(reply);
        if answer.is_ok() {
            self.contacts.record(self.target);
        }
        answer
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        let (mut client, request) = self.prepare(&rpc).map_err(transport_error)?;
        let reply = with_deadline(&option, client.install_snapshot(request))
            .await
            .map_err(transport_error)?;
        self.decode(reply)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, Infallible> {
        let (mut client, request) = self.prepare(&rpc).map_err(transport_error)?;
        let reply = with_deadline(&option, client.vote(request))
            .await
            .map_err(transport_error)?;
        self.decode(reply)
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(UNREACHABLE_BACKOFF))
    }
}
