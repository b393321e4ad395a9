//! The cluster port's messages as the broker decodes them: the protobuf bodies of the gRPC
//! services (prost, generated from `raft.proto` and `replication.proto`), the serde (JSON)
//! payloads the Raft and Controller services carry (openraft's requests and responses,
//! metadata records, heartbeats, a snapshot's image), and the follower's path from a replica
//! fetch answer to the batches it appends. Metadata records that decode are applied to an
//! empty image, as every node applies a committed proposal.
//!
//! The first input byte picks the message; the rest is its body.
#![no_main]

use bytes::Bytes;
use krait_image::{ApplyError, ClusterImage, MetadataRecord};
use krait_metadata::proto::RaftMessage;
use krait_metadata::{ProposeError, TypeConfig};
use krait_protocol::batch::validate_batches;
use krait_replication::grpc::proto;
use krait_replication::{FetchRequest, FetchedPartition};
use krait_server::cluster::rpc::{BrokerHeartbeat, HeartbeatReply};
use libfuzzer_sys::fuzz_target;
// The broker's allocator (see krait_fuzz).
use krait_fuzz as _;
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use prost::Message;
use serde::de::DeserializeOwned;

type NodeId = u64;

fn json<T: DeserializeOwned>(body: &[u8]) -> Option<T> {
    serde_json::from_slice(body).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 8 {
        0 => {
            // Raft service: the envelope, then each request the service decodes.
            let _ = RaftMessage::decode(body);
            let _ = json::<AppendEntriesRequest<TypeConfig>>(body);
            let _ = json::<VoteRequest<NodeId>>(body);
            let _ = json::<InstallSnapshotRequest<TypeConfig>>(body);
        }
        1 => {
            // What a Raft peer answers (the client side of the same service).
            let _ = json::<Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>>(body);
            let _ = json::<Result<VoteResponse<NodeId>, RaftError<NodeId>>>(body);
            let _ = json::<
                Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
            >(body);
        }
        2 => {
            // Controller service: proposals, applied in order to an image.
            if let Some(records) = json::<Vec<MetadataRecord>>(body) {
                let mut image = ClusterImage::default();
                for record in &records {
                    let _ = image.apply(record);
                }
            }
            let _ = json::<Result<Vec<Result<(), ApplyError>>, ProposeError>>(body);
        }
        3 => {
            let _ = json::<BrokerHeartbeat>(body);
            let _ = json::<HeartbeatReply>(body);
        }
        4 => {
            // A snapshot's image, as InstallSnapshot's last chunk is read.
            let _ = json::<ClusterImage>(body);
        }
        5 => {
            if let Ok(request) = proto::FetchRequest::decode(body) {
                let _ = FetchRequest::from(request);
            }
        }
        _ => {
            // A follower reads the leader's answer and validates the batches it will append.
            let Ok(response) = proto::FetchResponse::decode(Bytes::copy_from_slice(body)) else {
                return;
            };
            for partition in response.partitions {
                if let Ok(fetched) = FetchedPartition::try_from(partition)
                    && !fetched.records.is_empty()
                {
                    let _ = validate_batches(&fetched.records);
                }
            }
        }
    }
});
