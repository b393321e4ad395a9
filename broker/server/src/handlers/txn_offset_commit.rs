//! TxnOffsetCommit: a transactional producer commits a consumer group's offsets inside its
//! transaction. They wait in the transaction's state (the metadata log) and become the group's
//! committed offsets in the same record that completes a commit; an abort drops them. From v3
//! the request carries the committer's group generation and member id, checked as Kafka does.

use krait_acl::{Operation, ResourceType};
use krait_image::OffsetCommit;
use krait_image::transaction;
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use krait_protocol::kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use crate::context::RequestContext;
use crate::transactions::{current, error_code, fenced_for_version, put};

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=3;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let outcome = commit(ctx, &request).await;
    let mut response = TxnOffsetCommitResponse::default();
    for t in &request.topics {
        let mut topic = TxnOffsetCommitResponseTopic::default();
        topic.name = t.name.clone();
        for p in &t.partitions {
            let mut r = TxnOffsetCommitResponsePartition::default();
            r.partition_index = p.partition_index;
            r.error_code = match &outcome {
                Err(e) => e.code(),
                Ok(()) if !ctx.authorized(Operation::Read, ResourceType::Topic, &t.name.0) => {
                    ResponseError::TopicAuthorizationFailed.code()
                }
                Ok(()) => 0,
            };
            topic.partitions.push(r);
        }
        response.topics.push(topic);
    }
    response
}

/// Kafka's error for a refused group identity.
fn group_error(e: krait_coordinator::GroupError) -> ResponseError {
    use krait_coordinator::GroupError;
    match e {
        GroupError::IllegalGeneration => ResponseError::IllegalGeneration,
        GroupError::UnknownMemberId => ResponseError::UnknownMemberId,
        GroupError::FencedInstanceId => ResponseError::FencedInstanceId,
        GroupError::RebalanceInProgress => ResponseError::RebalanceInProgress,
        GroupError::InconsistentGroupProtocol => ResponseError::InconsistentGroupProtocol,
        GroupError::InvalidSessionTimeout => ResponseError::InvalidSessionTimeout,
        GroupError::MemberIdRequired => ResponseError::MemberIdRequired,
    }
}

async fn commit(
    ctx: &RequestContext<'_>,
    request: &TxnOffsetCommitRequest,
) -> Result<(), ResponseError> {
    let id = request.transactional_id.0.as_str();
    let group = request.group_id.0.as_str();
    if !ctx.authorized(Operation::Write, ResourceType::TransactionalId, id) {
        return Err(ResponseError::TransactionalIdAuthorizationFailed);
    }
    if !ctx.authorized(Operation::Read, ResourceType::Group, group) {
        return Err(ResponseError::GroupAuthorizationFailed);
    }
    let broker = ctx.broker;
    if let Some(e) = broker.not_coordinator() {
        return Err(e);
    }
    // v3+ carries the committer's group identity (KIP-447); earlier versions leave it at
    // -1 / "" / null, which the check lets through.
    let instance = request.group_instance_id.as_ref().map(|s| s.to_string());
    broker
        .coordinator
        .validate_txn_commit(
            group,
            &request.member_id,
            request.generation_id,
            instance.as_deref(),
        )
        .map_err(group_error)?;
    let offsets: Vec<(String, i32, OffsetCommit)> = request
        .topics
        .iter()
        .filter(|t| ctx.authorized(Operation::Read, ResourceType::Topic, &t.name.0))
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                let commit = OffsetCommit {
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                    commit_timestamp: crate::cluster::now_ms(),
                };
                (t.name.0.to_string(), p.partition_index, commit)
            })
        })
        .collect();
    let _guard = broker.transactions.lock(id).await;
    let next = transaction::commit_offsets(
        current(broker, id).as_ref(),
        request.producer_id.0,
        request.producer_epoch,
        group,
        offsets,
        crate::cluster::now_ms(),
    )
    .map_err(|e| fenced_for_version(error_code(e), ctx.api_version, 3))?;
    put(broker, id, next).await
}
