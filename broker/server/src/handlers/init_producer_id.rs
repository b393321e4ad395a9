//! InitProducerId: a fresh producer id for an idempotent producer, or the id and next epoch of a
//! transactional one.
//!
//! Without a transactional id every call gets a new id with epoch 0, as Kafka does, from this
//! broker's block of cluster-unique ids (`crate::producer_ids`); the partitions then
//! deduplicate that producer's retries by sequence number. With one, the
//! transaction coordinator (the controller, `crate::transactions`) keeps one producer id per
//! transactional id and bumps its epoch on each call, aborting an open transaction first, which
//! fences the previous producer with the same transactional id.

use krait_acl::{Operation, ResourceType};
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProducerId,
};

use crate::context::RequestContext;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=5;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let broker = ctx.broker;
    let mut response = InitProducerIdResponse::default();
    response.producer_id = ProducerId(-1);
    response.producer_epoch = -1;
    if let Some(transactional_id) = request.transactional_id.as_ref().filter(|t| !t.is_empty()) {
        let id = transactional_id.0.as_str();
        return transactional(ctx, id, &request, response).await;
    }
    // Kafka's rule for an idempotent producer: IDEMPOTENT_WRITE on the cluster, or WRITE on
    // some topic (KIP-679). Krait checks WRITE against the topics that exist.
    let may_write = ctx.authorized_on_cluster(Operation::IdempotentWrite)
        || broker
            .topics
            .all()
            .iter()
            .any(|t| ctx.authorized(Operation::Write, ResourceType::Topic, &t.name));
    if !may_write {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return response;
    }
    match broker.producer_ids.next(&broker.cluster).await {
        Ok(id) => {
            response.producer_id = ProducerId(id);
            response.producer_epoch = 0;
            tracing::debug!(producer_id = id, "allocated producer id");
        }
        Err(e) => response.error_code = e.code(),
    }
    response
}

/// InitProducerId with a transactional id, on the transaction coordinator.
async fn transactional(
    ctx: &RequestContext<'_>,
    id: &str,
    request: &InitProducerIdRequest,
    mut response: InitProducerIdResponse,
) -> InitProducerIdResponse {
    let broker = ctx.broker;
    if !ctx.authorized(Operation::Write, ResourceType::TransactionalId, id) {
        response.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
        return response;
    }
    if let Some(e) = broker.not_coordinator() {
        response.error_code = e.code();
        return response;
    }
    // KIP-360: a producer that already has an id names it (-1 / -1 when it has none).
    let expected = (request.producer_id.0 >= 0 && request.producer_epoch >= 0)
        .then_some((request.producer_id.0, request.producer_epoch));
    match crate::transactions::init(broker, id, request.transaction_timeout_ms, expected).await {
        Ok(t) => {
            response.producer_id = ProducerId(t.producer_id);
            response.producer_epoch = t.producer_epoch;
        }
        Err(e) => {
            let e = crate::transactions::fenced_for_version(e, ctx.api_version, 4);
            tracing::debug!(transactional_id = id, error = ?e, "transactional InitProducerId refused");
            response.error_code = e.code();
        }
    }
    response
}
