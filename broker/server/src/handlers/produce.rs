//! Produce: validate each partition's record batches and append them to its log.
//!
//! Batches are checked (framing, magic, CRC-32C, size against max.message.bytes) and stored
//! as sent; see `krait_protocol::batch`. On one broker a write is committed as soon as RocksDB
//! has it, so acks=1 and acks=all both answer after the append.

use krait_protocol::batch::{BatchError, validate_batches};
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::produce_request::PartitionProduceData;
use krait_protocol::kafka_protocol::messages::produce_response::{
    PartitionProduceResponse, TopicProduceResponse,
};
use krait_protocol::kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use krait_protocol::kafka_protocol::protocol::StrBytes;
use krait_storage::{AppendOptions, StorageError};
use tracing::{debug, warn};

use crate::broker::{Broker, LEADER_EPOCH};
use crate::handlers::create_topics::auto_create;
use crate::topics::Topic;

/// Returns `None` for acks=0, which Kafka never answers.
pub async fn handle(
    broker: &Broker,
    version: i16,
    request: ProduceRequest,
) -> Option<ProduceResponse> {
    let acks = request.acks;
    let valid_acks = matches!(acks, -1..=1);
    let mut response = ProduceResponse::default();
    for topic_data in request.topic_data {
        let name = topic_data.name.0.as_str();
        let topic = match broker.topics.get(name) {
            Some(t) => Ok(t),
            None if broker.config.auto_create_topics => {
                auto_create(broker, name).map_err(|(e, _)| e)
            }
            None => Err(ResponseError::UnknownTopicOrPartition),
        };
        let mut t = TopicProduceResponse::default();
        t.name = topic_data.name.clone();
        for p in topic_data.partition_data {
            let index = p.index;
            let result = match (&topic, valid_acks) {
                (_, false) => Err((
                    ResponseError::InvalidRequiredAcks,
                    format!("acks={acks} is not -1, 0 or 1"),
                )),
                (Err(e), _) => Err((*e, format!("topic {name} is not available"))),
                (Ok(topic), true) => append(broker, topic, p),
            };
            t.partition_responses
                .push(partition_response(version, index, result));
        }
        response.responses.push(t);
    }
    (acks != 0).then_some(response)
}

/// Where a successful append landed.
struct Appended {
    base_offset: i64,
    log_start_offset: i64,
    log_append_time: Option<i64>,
}

fn append(
    broker: &Broker,
    topic: &Topic,
    p: PartitionProduceData,
) -> Result<Appended, (ResponseError, String)> {
    let Some(partition) = topic.partition(p.index) else {
        return Err((
            ResponseError::UnknownTopicOrPartition,
            format!("{} has no partition {}", topic.name, p.index),
        ));
    };
    let records = p.records.unwrap_or_default();
    let batches = validate_batches(&records).map_err(|e| {
        warn!(topic = %topic.name, partition = p.index, error = %e, "rejected batch");
        (corrupt_code(&e), e.to_string())
    })?;
    let limit = broker.defaults.max_message_bytes(&topic.configs);
    if let Some(big) = batches.iter().find(|b| b.bytes.len() > limit) {
        return Err((
            ResponseError::MessageTooLarge,
            format!(
                "batch of {} bytes exceeds max.message.bytes {limit}",
                big.bytes.len()
            ),
        ));
    }
    let log_append_time = broker
        .defaults
        .uses_log_append_time(&topic.configs)
        .then(now_ms);
    let options = AppendOptions {
        leader_epoch: LEADER_EPOCH,
        log_append_time,
        advance_high_watermark: true,
    };
    let info = partition.log.append_with(&batches, options).map_err(|e| {
        let error = match e {
            StorageError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
            StorageError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
            _ => ResponseError::KafkaStorageError,
        };
        warn!(topic = %topic.name, partition = p.index, error = %e, "append refused");
        (error, e.to_string())
    })?;
    if info.duplicate {
        debug!(topic = %topic.name, partition = p.index, base_offset = info.base_offset, "duplicate batch acknowledged");
    } else {
        partition.publish_high_watermark(info.offsets.high_watermark);
        broker
            .metrics
            .produced(batches.iter().map(|b| b.bytes.len()).sum());
        debug!(topic = %topic.name, partition = p.index, base_offset = info.base_offset, last_offset = info.last_offset, "appended");
    }
    Ok(Appended {
        base_offset: info.base_offset,
        log_start_offset: info.offsets.log_start_offset,
        log_append_time,
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn corrupt_code(e: &BatchError) -> ResponseError {
    match e {
        BatchError::BadMagic(_) => ResponseError::UnsupportedForMessageFormat,
        _ => ResponseError::CorruptMessage,
    }
}

fn partition_response(
    version: i16,
    index: i32,
    result: Result<Appended, (ResponseError, String)>,
) -> PartitionProduceResponse {
    let mut r = PartitionProduceResponse::default();
    r.index = index;
    r.log_append_time_ms = -1;
    match result {
        Ok(appended) => {
            r.base_offset = appended.base_offset;
            r.log_start_offset = appended.log_start_offset;
            r.log_append_time_ms = appended.log_append_time.unwrap_or(-1);
        }
        Err((error, message)) => {
            r.error_code = error.code();
            r.base_offset = -1;
            r.log_start_offset = -1;
            if version >= 8 {
                r.error_message = Some(StrBytes::from_string(message));
            }
        }
    }
    r
}
