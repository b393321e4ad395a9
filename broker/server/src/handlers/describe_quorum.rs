//! DescribeQuorum (what `kafka-metadata-quorum.sh describe --status/--replication` sends): the
//! metadata quorum's leader, term (epoch), high watermark, and each voter's and observer's log
//! end offset and last contact, as the leader sees them. Any broker answers; it asks the leader.
//!
//! The one partition is `__cluster_metadata`-0, as in KRaft. The high watermark is one past the
//! last entry applied on the leader, and offsets are Raft log indexes plus one.

use krait_acl::Operation;
use krait_metadata::{MembershipError, ProposeError, QuorumState, ReplicaState};
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState as WireReplica, TopicData,
};
use krait_protocol::kafka_protocol::messages::{
    BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName,
};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use crate::cluster::rpc::{QuorumAnswer, QuorumCall};
use crate::context::RequestContext;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=2;

/// The metadata log's name in KRaft, which tools ask for.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: DescribeQuorumRequest,
) -> DescribeQuorumResponse {
    let mut response = DescribeQuorumResponse::default();
    if !ctx.authorized_on_cluster(Operation::Describe) {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        response.error_message = Some(StrBytes::from_static_str(
            "Not authorized to describe the metadata quorum",
        ));
        return response;
    }
    let asked_for_the_log = request.topics.iter().any(|t| {
        t.topic_name.0.as_str() == METADATA_TOPIC
            && t.partitions.iter().any(|p| p.partition_index == 0)
    });
    if !asked_for_the_log {
        response.error_code = ResponseError::UnknownTopicOrPartition.code();
        response.error_message = Some(StrBytes::from_string(format!(
            "the metadata quorum is partition 0 of {METADATA_TOPIC}"
        )));
        return response;
    }
    let (error, state) = match ctx.broker.cluster.quorum_call(QuorumCall::Describe).await {
        Ok(QuorumAnswer::Described(state)) => (None, Some(state)),
        Ok(QuorumAnswer::Changed) => (Some(ResponseError::UnknownServerError), None),
        Err(MembershipError::Propose(ProposeError::NotLeader { .. })) => {
            (Some(ResponseError::NotLeaderOrFollower), None)
        }
        Err(_) => (Some(ResponseError::RequestTimedOut), None),
    };
    let mut partition = PartitionData::default();
    partition.partition_index = 0;
    partition.leader_id = BrokerId(-1);
    partition.leader_epoch = -1;
    partition.high_watermark = -1;
    if let Some(code) = error {
        partition.error_code = code.code();
        partition.error_message = Some(StrBytes::from_static_str(
            "the metadata quorum has no leader to answer",
        ));
    }
    if let Some(state) = &state {
        fill(&mut partition, state);
        if ctx.api_version >= 2 {
            response.nodes = nodes(ctx, state);
        }
    }
    let mut topic = TopicData::default();
    topic.topic_name = TopicName(StrBytes::from_static_str(METADATA_TOPIC));
    topic.partitions = vec![partition];
    response.topics = vec![topic];
    response
}

fn offset(value: Option<u64>) -> i64 {
    value.and_then(|v| i64::try_from(v).ok()).unwrap_or(-1)
}

fn replica(state: &ReplicaState) -> WireReplica {
    let mut r = WireReplica::default();
    r.replica_id = BrokerId(state.id);
    r.replica_directory_id = state.directory.unwrap_or_default();
    r.log_end_offset = offset(state.log_end_offset);
    r.last_fetch_timestamp = state.last_fetch_ms.unwrap_or(-1);
    r.last_caught_up_timestamp = state.last_caught_up_ms.unwrap_or(-1);
    r
}

fn fill(partition: &mut PartitionData, state: &QuorumState) {
    partition.leader_id = BrokerId(state.leader);
    partition.leader_epoch = i32::try_from(state.term).unwrap_or(i32::MAX);
    partition.high_watermark = offset(Some(state.high_watermark));
    partition.current_voters = state.voters.iter().map(replica).collect();
    partition.observers = state.observers.iter().map(replica).collect();
}

/// The voters' cluster addresses (v2), as the listener `CLUSTER`: where their quorum listens.
fn nodes(ctx: &RequestContext<'_>, state: &QuorumState) -> Vec<Node> {
    state
        .voters
        .iter()
        .map(|v| {
            let mut node = Node::default();
            node.node_id = BrokerId(v.id);
            let address = ctx.broker.cluster.cluster_address(v.id).unwrap_or_default();
            if let Some((host, port)) = address.rsplit_once(':')
                && let Ok(port) = port.parse::<u16>()
            {
                let mut listener = Listener::default();
                listener.name = StrBytes::from_static_str("CLUSTER");
                listener.host = StrBytes::from_string(host.trim_matches(['[', ']']).to_string());
                listener.port = port;
                node.listeners = vec![listener];
            }
            node
        })
        .collect()
}
