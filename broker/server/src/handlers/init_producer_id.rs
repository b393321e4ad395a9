//! InitProducerId: a fresh producer id for an idempotent producer.
//!
//! Every call gets a new id with epoch 0, as Kafka does for producers without a transactional
//! id; the partitions then deduplicate that producer's retries by sequence number. Transactions
//! are not implemented, so a transactional id is refused.

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
        tracing::info!(transactional_id = %transactional_id.0, "transactions are not supported");
        response.error_code = ResponseError::UnsupportedVersion.code();
        return response;
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
    match broker.topics.store().allocate_producer_id() {
        Ok(id) => {
            response.producer_id = ProducerId(id);
            response.producer_epoch = 0;
            tracing::debug!(producer_id = id, "allocated producer id");
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot allocate a producer id");
            response.error_code = ResponseError::KafkaStorageError.code();
        }
    }
    response
}
