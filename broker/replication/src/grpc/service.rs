//! The leader side of replica fetches over gRPC: the `Replication` service, which decodes a
//! follower's fetch, has the local [`ReplicaManager`] serve it (long poll included) and encodes
//! the answers.
//!
//! A partition's error is an answer, not a failed call; a call fails only when the follower is
//! cut off by a test's [`FaultSwitch`].

use std::sync::Arc;

use krait_peer::Caller;
use tonic::{Request, Response, Status};

use crate::grpc::convert::encode_answers;
use crate::grpc::proto::replication_server::{Replication, ReplicationServer};
use crate::grpc::{FaultSwitch, MAX_MESSAGE_BYTES, proto};
use crate::manager::{FetchRequest, ReplicaManager};

/// The `Replication` gRPC service of one broker.
pub struct ReplicationService {
    manager: Arc<ReplicaManager>,
    faults: FaultSwitch,
}

impl std::fmt::Debug for ReplicationService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicationService")
            .field("broker_id", &self.manager.broker_id())
            .finish_non_exhaustive()
    }
}

impl ReplicationService {
    /// The service serving `manager`'s partitions to followers, ready to add to a tonic server.
    pub fn server(manager: Arc<ReplicaManager>) -> ReplicationServer<Self> {
        Self::server_with_faults(manager, FaultSwitch::default())
    }

    /// Test-only: [`Self::server`] refusing fetches from the brokers `faults` cuts off.
    #[doc(hidden)]
    pub fn server_with_faults(
        manager: Arc<ReplicaManager>,
        faults: FaultSwitch,
    ) -> ReplicationServer<Self> {
        ReplicationServer::new(Self { manager, faults })
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }
}

#[tonic::async_trait]
impl Replication for ReplicationService {
    async fn fetch(
        &self,
        request: Request<proto::FetchRequest>,
    ) -> Result<Response<proto::FetchResponse>, Status> {
        let caller = Caller::of(&request);
        let request = FetchRequest::from(request.into_inner());
        // With cluster TLS a broker fetches only as itself: a fetch moves the high watermark
        // and keeps a replica in the ISR, so it must not be made for another broker.
        caller.speaks_for(request.replica_id, "a replica fetch")?;
        for p in &request.partitions {
            caller.speaks_for(p.replica_id, "a replica fetch")?;
        }
        if self.faults.is_cut(request.replica_id) {
            return Err(Status::unavailable(format!(
                "broker {} is cut off from broker {}",
                request.replica_id,
                self.manager.broker_id()
            )));
        }
        let answers = self.manager.serve(&request).await;
        Ok(Response::new(encode_answers(answers)))
    }
}
