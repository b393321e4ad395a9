//! The Raft transport's server side: the gRPC `Raft` service that hands other voters' requests
//! to the local openraft node, and a standalone server for it.
//!
//! This module owns decoding requests and encoding the local Raft's whole `Result` as the reply
//! (a Raft error is an answer, not a transport failure). It must not interpret the messages.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use crate::formation::{Admission, IdentifyRequest, Identity};
use crate::network::{MAX_MESSAGE_BYTES, Partition};
use crate::proto::RaftMessage;
use crate::proto::raft_server::{Raft as RaftRpc, RaftServer};
use crate::types::{Member, NodeId, Raft, broker_id};
use krait_peer::Caller;
use openraft::Vote;
use uuid::Uuid;

/// The `Raft` gRPC service of one node. Host it on the broker's cluster gRPC server with
/// [`crate::MetadataQuorum::raft_service`].
pub struct RaftService {
    raft: Raft,
    partition: Partition,
    local: Arc<LocalNode>,
}

/// What the service knows of its own node beyond the Raft: its data directory's id, and
/// whether it takes Raft messages yet (see `crate::formation`).
#[derive(Debug)]
pub(crate) struct LocalNode {
    pub node_id: NodeId,
    pub directory: Uuid,
    pub admission: Admission,
}

impl std::fmt::Debug for RaftService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftService").finish_non_exhaustive()
    }
}

impl RaftService {
    pub(crate) fn server(
        raft: Raft,
        partition: Partition,
        local: Arc<LocalNode>,
    ) -> RaftServer<Self> {
        RaftServer::new(Self {
            raft,
            partition,
            local,
        })
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    fn decode<T: DeserializeOwned>(&self, request: Request<RaftMessage>) -> Result<T, Status> {
        if self.partition.is_cut() {
            return Err(Status::unavailable("cut off from the other voters"));
        }
        serde_json::from_slice(&request.into_inner().payload)
            .map_err(|e| Status::invalid_argument(format!("undecodable Raft message: {e}")))
    }
}

fn encode<T: Serialize>(reply: &T) -> Result<Response<RaftMessage>, Status> {
    let payload = serde_json::to_vec(reply)
        .map_err(|e| Status::internal(format!("unencodable Raft reply: {e}")))?;
    Ok(Response::new(RaftMessage { payload }))
}

/// The part of every Raft message that says who sent it.
#[derive(serde::Deserialize)]
struct Sender {
    vote: Vote<NodeId>,
}

impl RaftService {
    /// Refuses a message from a caller who is not the voter it claims to be, before the rest of
    /// the message (a snapshot, say) is decoded: with cluster TLS a broker's certificate names
    /// its node id, and only voters campaign or lead. (On a plaintext cluster port callers are
    /// anonymous and only the voter check applies.)
    #[allow(clippy::result_large_err)]
    fn check_sender(&self, request: &Request<RaftMessage>, what: &str) -> Result<(), Status> {
        if !self.local.admission.is_open() {
            return Err(Status::unavailable(
                "this voter has an empty metadata log and has not yet placed itself in the quorum",
            ));
        }
        let sender: Sender = serde_json::from_slice(&request.get_ref().payload)
            .map_err(|e| Status::invalid_argument(format!("undecodable Raft message: {e}")))?;
        let claimed = broker_id(sender.vote.leader_id().voted_for().unwrap_or_default());
        Caller::of(request).speaks_for(claimed, what)?;
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let membership = metrics.membership_config.membership();
        let voter = membership.voter_ids().any(|id| broker_id(id) == claimed);
        if !voter && membership.voter_ids().next().is_some() {
            return Err(Status::permission_denied(format!(
                "node {claimed} is not a voter; it cannot send {what}"
            )));
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl RaftRpc for RaftService {
    async fn append_entries(
        &self,
        request: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        self.check_sender(&request, "log entries")?;
        let rpc = self.decode(request)?;
        encode(&self.raft.append_entries(rpc).await)
    }

    async fn vote(&self, request: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        self.check_sender(&request, "a vote request")?;
        let rpc = self.decode(request)?;
        encode(&self.raft.vote(rpc).await)
    }

    async fn install_snapshot(
        &self,
        request: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        self.check_sender(&request, "a snapshot")?;
        let rpc = self.decode(request)?;
        encode(&self.raft.install_snapshot(rpc).await)
    }

    async fn identify(
        &self,
        request: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let asked: IdentifyRequest = {
            let payload = &request.get_ref().payload;
            serde_json::from_slice(payload)
                .map_err(|e| Status::invalid_argument(format!("undecodable Identify: {e}")))?
        };
        Caller::of(&request).speaks_for(broker_id(asked.node_id), "an identity question")?;
        if self.partition.is_cut() {
            return Err(Status::unavailable("cut off from the other voters"));
        }
        let voters = {
            let metrics = self.raft.metrics();
            let metrics = metrics.borrow();
            let membership = metrics.membership_config.membership();
            let voters: BTreeMap<NodeId, Member> = membership
                .voter_ids()
                .filter_map(|id| membership.get_node(&id).map(|node| (id, node.clone())))
                .collect();
            (!voters.is_empty()).then_some(voters)
        };
        encode(&Identity {
            node_id: self.local.node_id,
            directory: self.local.directory,
            voters,
        })
    }
}

/// A running standalone gRPC server (see [`crate::MetadataQuorum::serve`]).
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl ServerHandle {
    pub(crate) fn spawn(listener: TcpListener, service: RaftServer<RaftService>) -> Self {
        let local_addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(
                    TcpIncoming::from(listener).with_nodelay(Some(true)),
                    async {
                        let _ = stopped.await;
                    },
                ),
        );
        Self {
            local_addr,
            stop,
            task,
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting calls and waits for the server task to end.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "Raft gRPC server failed"),
            Err(error) => tracing::warn!(%error, "Raft gRPC server task failed"),
        }
    }
}
