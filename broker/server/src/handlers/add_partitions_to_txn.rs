//! AddPartitionsToTxn (v0–v3, the client's form): the partitions a transactional producer is
//! about to write to join its transaction, so the coordinator writes their markers at the end.
//!
//! Decided by `krait_image::transaction::add_partitions` on the coordinator (the controller).
//! The batched broker-to-broker form (v4+, KIP-890's verification) is not served.

use krait_acl::{Operation, ResourceType};
use krait_image::transaction;
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use krait_protocol::kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse,
};

use crate::context::RequestContext;
use crate::transactions::{current, error_code, fenced_for_version, put};

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=3;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let id = request.v3_and_below_transactional_id.0.as_str();
    let partitions: Vec<(String, i32)> = request
        .v3_and_below_topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), *p)))
        .collect();
    // Per-partition refusals (authorization, unknown partitions) refuse the whole request: the
    // others get OPERATION_NOT_ATTEMPTED, as in Kafka.
    let refusals: Vec<Option<ResponseError>> = partitions
        .iter()
        .map(|(topic, partition)| {
            if !ctx.authorized(Operation::Write, ResourceType::Topic, topic) {
                Some(ResponseError::TopicAuthorizationFailed)
            } else if ctx
                .broker
                .cluster
                .image()
                .partition(topic, *partition)
                .is_none()
            {
                Some(ResponseError::UnknownTopicOrPartition)
            } else {
                None
            }
        })
        .collect();
    let outcome = if !ctx.authorized(Operation::Write, ResourceType::TransactionalId, id) {
        Err(ResponseError::TransactionalIdAuthorizationFailed)
    } else if let Some(e) = ctx.broker.not_coordinator() {
        Err(e)
    } else if refusals.iter().any(Option::is_some) {
        Ok(refusals)
    } else {
        add(ctx, &request, id, &partitions)
            .await
            .map(|()| vec![None; partitions.len()])
    };
    let codes: Vec<i16> = match outcome {
        Ok(per_partition) => per_partition
            .iter()
            .map(|r| match r {
                Some(e) => e.code(),
                None if per_partition.iter().any(Option::is_some) => {
                    ResponseError::OperationNotAttempted.code()
                }
                None => 0,
            })
            .collect(),
        Err(e) => vec![e.code(); partitions.len()],
    };
    respond(&request, &codes)
}

async fn add(
    ctx: &RequestContext<'_>,
    request: &AddPartitionsToTxnRequest,
    id: &str,
    partitions: &[(String, i32)],
) -> Result<(), ResponseError> {
    let broker = ctx.broker;
    let _guard = broker.transactions.lock(id).await;
    let now = crate::cluster::now_ms();
    let before = current(broker, id);
    let next = transaction::add_partitions(
        before.as_ref(),
        request.v3_and_below_producer_id.0,
        request.v3_and_below_producer_epoch,
        partitions,
        now,
    )
    .map_err(|e| fenced_for_version(error_code(e), ctx.api_version, 2))?;
    // A retry that adds nothing new writes nothing.
    let unchanged = before
        .as_ref()
        .is_some_and(|b| b.state == next.state && b.partitions == next.partitions);
    if !unchanged {
        put(broker, id, next).await?;
    }
    Ok(())
}

fn respond(request: &AddPartitionsToTxnRequest, codes: &[i16]) -> AddPartitionsToTxnResponse {
    let mut response = AddPartitionsToTxnResponse::default();
    let mut codes = codes.iter();
    for t in &request.v3_and_below_topics {
        let mut topic = AddPartitionsToTxnTopicResult::default();
        topic.name = t.name.clone();
        for p in &t.partitions {
            let mut r = AddPartitionsToTxnPartitionResult::default();
            r.partition_index = *p;
            r.partition_error_code = codes.next().copied().unwrap_or(0);
            topic.results_by_partition.push(r);
        }
        response.results_by_topic_v3_and_below.push(topic);
    }
    response
}
