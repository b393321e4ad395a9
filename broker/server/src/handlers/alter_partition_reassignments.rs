//! AlterPartitionReassignments: start or cancel moving partitions to new replica sets. Each
//! change is computed from this broker's image by `krait-image`'s pure functions and
//! committed through the controller; a change made from a stale image is refused by the
//! partition epoch and reported as a retriable error. The moves are throttled by the
//! `*.replication.throttled.rate` broker configs.

use krait_acl::Operation;
use krait_image::PartitionChange;
use krait_image::reassignment::{self, ReassignError};
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use krait_protocol::kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use crate::context::RequestContext;
use crate::handlers::changes::{Refusal, commit_partition_changes};

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=1;

fn reassign_refusal(e: ReassignError) -> Refusal {
    let code = match e {
        ReassignError::UnknownPartition => ResponseError::UnknownTopicOrPartition,
        ReassignError::EmptyTarget | ReassignError::DuplicateBroker(_) => {
            ResponseError::InvalidReplicaAssignment
        }
        ReassignError::UnknownBroker(_) => ResponseError::InvalidReplicaAssignment,
        ReassignError::NoReassignmentInProgress => ResponseError::NoReassignmentInProgress,
    };
    (code, e.to_string())
}

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let broker = ctx.broker;
    if !ctx.authorized_on_cluster(Operation::Alter) {
        let mut response = AlterPartitionReassignmentsResponse::default();
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return response;
    }
    let image = broker.cluster.image();
    // Every requested partition: where it is in the response, and the change to commit.
    let mut slots: Vec<(usize, usize, Result<Option<PartitionChange>, Refusal>)> = Vec::new();
    let mut response = AlterPartitionReassignmentsResponse::default();
    response.error_message = None;
    for (t, topic) in request.topics.iter().enumerate() {
        let mut out = ReassignableTopicResponse::default();
        out.name = topic.name.clone();
        for (p, partition) in topic.partitions.iter().enumerate() {
            let mut r = ReassignablePartitionResponse::default();
            r.partition_index = partition.partition_index;
            r.error_message = None;
            out.partitions.push(r);
            let change = match &partition.replicas {
                Some(target) => {
                    let target: Vec<i32> = target.iter().map(|b| b.0).collect();
                    reassignment::start(&image, &topic.name.0, partition.partition_index, &target)
                        .map_err(reassign_refusal)
                }
                None => reassignment::cancel(&image, &topic.name.0, partition.partition_index)
                    .map(Some)
                    .map_err(reassign_refusal),
            };
            slots.push((t, p, change));
        }
        response.responses.push(out);
    }
    let changes: Vec<PartitionChange> = slots
        .iter()
        .filter_map(|(_, _, c)| c.as_ref().ok().cloned().flatten())
        .collect();
    for c in &changes {
        tracing::info!(topic = %c.topic, partition = c.partition, replicas = ?c.replicas, adding = ?c.adding, removing = ?c.removing, "reassignment requested");
    }
    let mut committed = commit_partition_changes(broker, changes).await.into_iter();
    for (t, p, change) in slots {
        let outcome = match change {
            Err(e) => Err(e),
            Ok(None) => Ok(()),
            Ok(Some(_)) => committed.next().unwrap_or(Ok(())),
        };
        if let Err((code, message)) = outcome {
            let r = &mut response.responses[t].partitions[p];
            r.error_code = code.code();
            r.error_message = Some(StrBytes::from_string(message));
        }
    }
    response
}
