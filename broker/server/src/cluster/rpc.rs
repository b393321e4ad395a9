//! The controller's gRPC service (forwarded proposals, broker heartbeats) and its client, plus
//! the replication transport the broker's fetchers use.
//!
//! Payloads are serde-encoded, like the Raft messages they share a server with: the types are
//! the broker's own and change together on both sides.

use std::sync::Arc;
use std::time::Duration;

use krait_image::{ApplyError, BrokerId, BrokerRegistration, MetadataRecord};
use krait_metadata::proto::RaftMessage;
use krait_metadata::proto::controller_server::{Controller, ControllerServer};
use krait_metadata::{MembershipError, ProposeError, QuorumState};
use krait_peer::{Caller, ClusterTransport};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

pub use krait_metadata::proto::controller_client::ControllerClient;
pub use krait_replication::grpc::GrpcTransport;
use krait_replication::grpc::proto::replication_server::ReplicationServer;

use super::Cluster;
use super::markers::{MarkerOutcome, WriteMarkers};

/// What a broker tells the controller every heartbeat interval.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BrokerHeartbeat {
    pub registration: BrokerRegistration,
}

/// The controller's answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HeartbeatReply {
    Ok,
    NotController {
        leader: Option<BrokerId>,
    },
    /// The broker's data directory belongs to another cluster.
    WrongCluster {
        cluster_id: String,
    },
}

type ProposeOutcome = Result<Vec<Result<(), ApplyError>>, ProposeError>;

/// A question or change for the metadata quorum's leader (DescribeQuorum, AddRaftVoter,
/// RemoveRaftVoter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QuorumCall {
    Describe,
    AddVoter {
        id: BrokerId,
        directory: Option<uuid::Uuid>,
    },
    RemoveVoter {
        id: BrokerId,
        directory: Option<uuid::Uuid>,
    },
}

/// The leader's answer to a [`QuorumCall`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QuorumAnswer {
    Described(QuorumState),
    Changed,
}

pub type QuorumOutcome = Result<QuorumAnswer, MembershipError>;

/// The `Controller` service of one broker; only the quorum's leader accepts calls.
pub struct ControllerService {
    cluster: Arc<Cluster>,
}

impl ControllerService {
    pub fn server(cluster: Arc<Cluster>) -> ControllerServer<Self> {
        ControllerServer::new(Self { cluster })
    }
}

fn decode<T: DeserializeOwned>(request: Request<RaftMessage>) -> Result<T, Status> {
    serde_json::from_slice(&request.into_inner().payload)
        .map_err(|e| Status::invalid_argument(format!("undecodable controller message: {e}")))
}

fn encode<T: Serialize>(reply: &T) -> Result<Response<RaftMessage>, Status> {
    let payload = serde_json::to_vec(reply)
        .map_err(|e| Status::internal(format!("unencodable controller reply: {e}")))?;
    Ok(Response::new(RaftMessage { payload }))
}

#[tonic::async_trait]
impl Controller for ControllerService {
    async fn propose(
        &self,
        request: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let records: Vec<MetadataRecord> = decode(request)?;
        // Never forwarded again: a follower that thinks it leads answers NotLeader and the
        // proposer looks for the leader itself.
        let outcome: ProposeOutcome = self.cluster.quorum.propose(records).await;
        encode(&outcome)
    }

    async fn heartbeat(
        &self,
        request: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let caller = Caller::of(&request);
        let heartbeat: BrokerHeartbeat = decode(request)?;
        // A broker heartbeats, and so registers, only as itself.
        caller.speaks_for(heartbeat.registration.id, "a heartbeat")?;
        let reply = super::controller::on_heartbeat(&self.cluster, heartbeat.registration).await;
        encode(&reply)
    }

    async fn write_txn_markers(
        &self,
        request: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let caller = Caller::of(&request);
        let markers: WriteMarkers = decode(request)?;
        // Only a broker may end transactions, and only as itself.
        caller.speaks_for(markers.coordinator, "transaction markers")?;
        let outcomes = super::markers::append_local(&self.cluster.replicas, &markers).await;
        encode(&outcomes)
    }

    async fn quorum(&self, request: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let call: QuorumCall = decode(request)?;
        // Never forwarded again, as proposals are not.
        let outcome: QuorumOutcome = self.cluster.quorum_call_here(call).await;
        encode(&outcome)
    }
}

/// Sends a quorum call to the leader; `Err` when the call itself failed.
pub async fn forward_quorum_call(
    mut client: ControllerClient<Channel>,
    call: &QuorumCall,
) -> Result<QuorumOutcome, Status> {
    let payload = serde_json::to_vec(call).map_err(|e| Status::internal(e.to_string()))?;
    let reply = client.quorum(Request::new(RaftMessage { payload })).await?;
    serde_json::from_slice(&reply.into_inner().payload)
        .map_err(|e| Status::internal(format!("undecodable quorum answer: {e}")))
}

/// Asks a partition leader to append transaction markers; `Err` when the call itself failed.
pub async fn write_txn_markers(
    mut client: ControllerClient<Channel>,
    request: &WriteMarkers,
) -> Result<Vec<((String, i32), MarkerOutcome)>, Status> {
    let payload = serde_json::to_vec(request).map_err(|e| Status::internal(e.to_string()))?;
    let reply = client
        .write_txn_markers(Request::new(RaftMessage { payload }))
        .await?;
    serde_json::from_slice(&reply.into_inner().payload)
        .map_err(|e| Status::internal(format!("undecodable marker outcome: {e}")))
}

/// A lazily connected client of the controller service at `address`.
pub fn controller_client(peer: &ClusterTransport, address: &str) -> ControllerClient<Channel> {
    let channel = peer
        .channel(
            address,
            Duration::from_secs(1),
            Some(Duration::from_secs(15)),
        )
        .unwrap_or_else(|error| {
            tracing::warn!(address, %error, "invalid controller address");
            Endpoint::from_static("http://invalid-address:1").connect_lazy()
        });
    ControllerClient::new(channel)
}

/// Sends a proposal to the controller; `Err` when the call itself failed.
pub async fn forward_proposal(
    mut client: ControllerClient<Channel>,
    records: &[MetadataRecord],
) -> Result<ProposeOutcome, Status> {
    let payload = serde_json::to_vec(records).map_err(|e| Status::internal(e.to_string()))?;
    let reply = client.propose(RaftMessage { payload }).await?;
    serde_json::from_slice(&reply.into_inner().payload)
        .map_err(|e| Status::internal(format!("undecodable proposal outcome: {e}")))
}

/// Sends a heartbeat to the controller; `Err` when the call itself failed.
pub async fn send_heartbeat(
    mut client: ControllerClient<Channel>,
    heartbeat: &BrokerHeartbeat,
) -> Result<HeartbeatReply, Status> {
    let payload = serde_json::to_vec(heartbeat).map_err(|e| Status::internal(e.to_string()))?;
    let reply = client
        .heartbeat(Request::new(RaftMessage { payload }))
        .await?;
    serde_json::from_slice(&reply.into_inner().payload)
        .map_err(|e| Status::internal(format!("undecodable heartbeat reply: {e}")))
}

/// The replication service serving followers' fetches from this broker's leaders.
pub fn replication_service(
    cluster: &Arc<Cluster>,
) -> ReplicationServer<krait_replication::grpc::ReplicationService> {
    krait_replication::grpc::ReplicationService::server(cluster.replicas.clone())
}
