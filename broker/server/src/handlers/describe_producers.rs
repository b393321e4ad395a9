//! DescribeProducers: the producers a partition leader keeps state for — id, epoch, last
//! sequence, last batch timestamp and the first offset of the transaction each has open — which
//! is how an operator finds a hanging transaction (`krait transactions producers`,
//! `kafka-transactions.sh describe-producers`). Read from the partition log; answered by the
//! leader only, as in Kafka.

use krait_acl::{Operation, ResourceType};
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use krait_protocol::kafka_protocol::messages::{
    DescribeProducersRequest, DescribeProducersResponse, ProducerId,
};
use krait_storage::ActiveProducer;

use crate::context::RequestContext;
use crate::topics::Topic;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=0;

/// Partitions do not track the coordinator epoch of markers (they check the producer epoch).
const COORDINATOR_EPOCH_UNKNOWN: i32 = -1;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let mut response = DescribeProducersResponse::default();
    for t in request.topics {
        // Kafka checks READ before looking the topic up, so an unauthorized client learns
        // nothing about which topics exist.
        let allowed = ctx.authorized(Operation::Read, ResourceType::Topic, &t.name.0);
        let topic = ctx.broker.topics.get(&t.name.0);
        let mut out = TopicResponse::default();
        out.name = t.name.clone();
        out.partitions = t
            .partition_indexes
            .iter()
            .map(|&p| match allowed {
                true => describe(topic.as_deref(), p),
                false => refused(p, ResponseError::TopicAuthorizationFailed),
            })
            .collect();
        response.topics.push(out);
    }
    response
}

fn refused(partition: i32, error: ResponseError) -> PartitionResponse {
    let mut r = PartitionResponse::default();
    r.partition_index = partition;
    r.error_code = error.code();
    r
}

fn describe(topic: Option<&Topic>, index: i32) -> PartitionResponse {
    let Some(partition) = topic.and_then(|t| t.partition(index)) else {
        return refused(index, ResponseError::UnknownTopicOrPartition);
    };
    if let Err(e) = partition.lead_epoch(-1) {
        return refused(index, e);
    }
    match krait_sync::blocking(|| partition.log().active_producers()) {
        Ok(producers) => {
            let mut r = PartitionResponse::default();
            r.partition_index = index;
            r.active_producers = producers.iter().map(producer_state).collect();
            r
        }
        Err(e) => {
            tracing::warn!(partition = index, error = %e, "producer state unreadable");
            refused(index, ResponseError::KafkaStorageError)
        }
    }
}

/// One producer in Kafka's form: -1 for what is not known.
pub fn producer_state(p: &ActiveProducer) -> ProducerState {
    let mut s = ProducerState::default();
    s.producer_id = ProducerId(p.producer_id);
    s.producer_epoch = i32::from(p.entry.epoch);
    s.last_sequence = p.last_sequence();
    s.last_timestamp = p.last_timestamp;
    s.coordinator_epoch = COORDINATOR_EPOCH_UNKNOWN;
    s.current_txn_start_offset = p.entry.txn_first_offset.unwrap_or(-1);
    s
}
