//! WriteTxnMarkers from a client: appends COMMIT/ABORT markers to the partitions this broker
//! leads. Kafka's brokers send it to each other; an administrator sends it to abort a hanging
//! transaction (`krait transactions abort`, `kafka-transactions.sh abort`), which is what it is
//! here for — the coordinator's own markers travel over the cluster gRPC. Markers are appended
//! by the coordinator's code (`cluster::markers::append_local`), each waited for until
//! replicated. Requires CLUSTER_ACTION on the cluster, as Kafka does.

use std::collections::BTreeMap;

use krait_acl::Operation;
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::write_txn_markers_request::WritableTxnMarker;
use krait_protocol::kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use krait_protocol::kafka_protocol::messages::{
    TopicName, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use crate::cluster::markers::{self, MarkerOutcome, WriteMarkers};
use crate::context::RequestContext;

/// The versions served (v0 left Kafka in 4.0, and the codec with it); ApiVersions and the
/// dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 1..=1;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    let allowed = ctx.authorized_on_cluster(Operation::ClusterAction);
    let mut response = WriteTxnMarkersResponse::default();
    for marker in request.markers {
        let outcomes = match allowed {
            true => write(ctx, &marker).await,
            false => partitions(&marker)
                .map(|p| (p, Err(ResponseError::ClusterAuthorizationFailed)))
                .collect(),
        };
        response.markers.push(result(&marker, outcomes));
    }
    response
}

fn partitions(marker: &WritableTxnMarker) -> impl Iterator<Item = (String, i32)> + '_ {
    marker.topics.iter().flat_map(|t| {
        t.partition_indexes
            .iter()
            .map(|p| (t.name.0.to_string(), *p))
    })
}

type Outcomes = Vec<((String, i32), Result<(), ResponseError>)>;

async fn write(ctx: &RequestContext<'_>, marker: &WritableTxnMarker) -> Outcomes {
    let request = WriteMarkers {
        coordinator: ctx.broker.node_id(),
        producer_id: marker.producer_id.0,
        producer_epoch: marker.producer_epoch,
        commit: marker.transaction_result,
        coordinator_epoch: marker.coordinator_epoch,
        partitions: partitions(marker).collect(),
    };
    tracing::info!(
        producer_id = request.producer_id,
        producer_epoch = request.producer_epoch,
        commit = request.commit,
        partitions = request.partitions.len(),
        client = ctx.client_id,
        "transaction markers written on a client's request"
    );
    markers::append_local(&ctx.broker.cluster.replicas, &request)
        .await
        .into_iter()
        .map(|(p, outcome)| (p, outcome_error(outcome)))
        .collect()
}

/// Kafka's error for how one partition's marker went.
pub fn outcome_error(outcome: MarkerOutcome) -> Result<(), ResponseError> {
    match outcome {
        MarkerOutcome::Written => Ok(()),
        MarkerOutcome::UnknownPartition => Err(ResponseError::UnknownTopicOrPartition),
        MarkerOutcome::NotLeader => Err(ResponseError::NotLeaderOrFollower),
        MarkerOutcome::StaleEpoch => Err(ResponseError::InvalidProducerEpoch),
        MarkerOutcome::Failed(why) => {
            tracing::warn!(%why, "transaction marker not written");
            Err(ResponseError::UnknownServerError)
        }
    }
}

fn result(marker: &WritableTxnMarker, outcomes: Outcomes) -> WritableTxnMarkerResult {
    let mut by_topic: BTreeMap<String, Vec<WritableTxnMarkerPartitionResult>> = BTreeMap::new();
    for ((topic, partition), outcome) in outcomes {
        let mut p = WritableTxnMarkerPartitionResult::default();
        p.partition_index = partition;
        p.error_code = outcome.err().map_or(0, |e| e.code());
        by_topic.entry(topic).or_default().push(p);
    }
    let mut r = WritableTxnMarkerResult::default();
    r.producer_id = marker.producer_id;
    r.topics = by_topic
        .into_iter()
        .map(|(topic, partitions)| {
            let mut t = WritableTxnMarkerTopicResult::default();
            t.name = TopicName(StrBytes::from_string(topic));
            t.partitions = partitions;
            t
        })
        .collect();
    r
}
