//! Produce: validate each partition's record batches and append them to its log.
//!
//! Batches are checked as Kafka's log validator does and stored as sent (bar a wrong max
//! timestamp); see `krait_protocol::batch`. Only the partition's leader appends. acks=1 answers
//! once the leader has the batch; acks=all once the high watermark passes it (every in-sync
//! replica has it), refusing up front with NOT_ENOUGH_REPLICAS when the ISR is already smaller
//! than min.insync.replicas.

use krait_protocol::batch::{
    MAX_UNCOMPRESSED_BATCH_BYTES, keyless_record_indexes, recompress,
    validate_producer_batches_within,
};
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::produce_request::PartitionProduceData;
use krait_protocol::kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use krait_protocol::kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};
use krait_protocol::kafka_protocol::protocol::StrBytes;
use std::sync::Arc;
use std::time::Duration;

use krait_acl::{Operation, ResourceType};
use krait_image::isr::AcksAll;
use krait_protocol::kafka_protocol::messages::TopicName;
use krait_replication::{PartitionReplica, ReplicaError};
use krait_storage::StorageError;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::broker::Broker;
use crate::context::RequestContext;
use crate::dispatch::MaybeResponse;
use crate::handlers::changes::Refusal;
use crate::handlers::create_topics::auto_create;
use crate::metrics::Purgatory;
use crate::topics::Topic;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 3..=12;

/// One partition's outcome: its index and where the append landed, or why it did not.
type Outcome = (i32, Result<Appended, Rejection>);

/// Why a partition's records were not appended: the error and its message, and for a refusal
/// of particular records (Kafka's `RecordValidationException`) each one's position and reason,
/// which Produce v8+ reports as `record_errors`.
#[derive(Debug)]
struct Rejection {
    error: ResponseError,
    message: String,
    record_errors: Vec<(i32, String)>,
}

impl From<Refusal> for Rejection {
    fn from((error, message): Refusal) -> Self {
        Self {
            error,
            message,
            record_errors: Vec::new(),
        }
    }
}

/// Answers nothing for acks=0, as Kafka does.
pub async fn handle(
    ctx: &RequestContext<'_>,
    request: ProduceRequest,
) -> MaybeResponse<ProduceResponse> {
    let broker = ctx.broker;
    let version = ctx.api_version;
    let acks = request.acks;
    let valid_acks = matches!(acks, -1..=1);
    let deadline = Instant::now() + Duration::from_millis(request.timeout_ms.max(0) as u64);
    // A transactional producer needs WRITE on its transactional id too (Kafka's check).
    let transactional_id_refused = request
        .transactional_id
        .as_ref()
        .filter(|t| !t.is_empty())
        .is_some_and(|t| !ctx.authorized(Operation::Write, ResourceType::TransactionalId, &t.0));
    // Every partition is appended first; acks=all then waits for all of them together.
    let mut topics: Vec<(TopicName, Vec<Outcome>)> = Vec::new();
    let mut waits: Vec<(usize, usize, Arc<PartitionReplica>, i64, usize)> = Vec::new();
    for topic_data in request.topic_data {
        let name = topic_data.name.0.as_str();
        let topic = match broker.topics.get(name) {
            _ if transactional_id_refused => Err(ResponseError::TransactionalIdAuthorizationFailed),
            _ if !ctx.authorized(Operation::Write, ResourceType::Topic, name) => {
                Err(ResponseError::TopicAuthorizationFailed)
            }
            Some(t) => Ok(t),
            None if broker.config.auto_create_topics && ctx.may_create_topic(name) => {
                auto_create(broker, name).await.map_err(|(e, _)| e)
            }
            None => Err(ResponseError::UnknownTopicOrPartition),
        };
        let mut outcomes = Vec::new();
        for p in topic_data.partition_data {
            let index = p.index;
            let result = match (&topic, valid_acks) {
                (_, false) => Err(Rejection::from((
                    ResponseError::InvalidRequiredAcks,
                    format!("acks={acks} is not -1, 0 or 1"),
                ))),
                (Err(e), _) => Err((*e, format!("topic {name} is not available")).into()),
                (Ok(topic), true) => krait_sync::blocking(|| append(broker, topic, p, acks == -1)),
            };
            if acks == -1
                && let (Ok(appended), Ok(topic)) = (&result, &topic)
                && let Some(partition) = topic.partition(index)
            {
                waits.push((
                    topics.len(),
                    outcomes.len(),
                    partition.replica.clone(),
                    appended.end_offset,
                    broker.defaults.min_insync_replicas(&topic.configs),
                ));
            }
            outcomes.push((index, result));
        }
        topics.push((topic_data.name, outcomes));
    }
    let waiting = (!waits.is_empty()).then(|| {
        (
            Instant::now(),
            broker.metrics.in_purgatory(Purgatory::Produce),
        )
    });
    for (t, p, replica, end_offset, min_isr) in waits {
        let timeout = deadline.saturating_duration_since(Instant::now());
        let error = match replica.wait_acks_all(end_offset, min_isr, timeout).await {
            Ok(AcksAll::Complete) => continue,
            Ok(AcksAll::Pending) => (
                ResponseError::RequestTimedOut,
                format!("not replicated to the in-sync replicas within {timeout:?}"),
            ),
            Ok(AcksAll::NotEnoughReplicasAfterAppend) => (
                ResponseError::NotEnoughReplicasAfterAppend,
                format!(
                    "written, but fewer than min.insync.replicas={min_isr} replicas are in sync"
                ),
            ),
            Err(e) => (ResponseError::NotLeaderOrFollower, e.to_string()),
        };
        topics[t].1[p].1 = Err(error.into());
    }
    if let Some((since, _counted)) = waiting {
        broker.metrics.waited(ApiKey::Produce, since.elapsed());
    }
    let mut response = ProduceResponse::default();
    for (name, outcomes) in topics {
        let mut t = TopicProduceResponse::default();
        t.name = name;
        t.partition_responses = outcomes
            .into_iter()
            .map(|(index, result)| partition_response(version, index, result))
            .collect();
        response.responses.push(t);
    }
    MaybeResponse((acks != 0).then_some(response))
}

/// Where a successful append landed.
struct Appended {
    base_offset: i64,
    /// The offset after the batch's last record: acks=all waits for the high watermark there.
    end_offset: i64,
    log_start_offset: i64,
    log_append_time: Option<i64>,
}

fn append(
    broker: &Broker,
    topic: &Topic,
    p: PartitionProduceData,
    acks_all: bool,
) -> Result<Appended, Rejection> {
    let Some(partition) = topic.partition(p.index) else {
        return Err((
            ResponseError::UnknownTopicOrPartition,
            format!("{} has no partition {}", topic.name, p.index),
        )
            .into());
    };
    let records = p.records.unwrap_or_default();
    let window = broker.defaults.timestamp_window(&topic.configs, now_ms());
    let batches = validate_producer_batches_within(&records, MAX_UNCOMPRESSED_BATCH_BYTES, window)
        .map_err(|e| {
            warn!(topic = %topic.name, partition = p.index, error = %e, "rejected batch");
            (e.response_error(), e.to_string())
        })?;
    if broker
        .defaults
        .has_cleanup_policy(&topic.configs, "compact")
    {
        refuse_keyless(&batches, &topic.name, p.index).inspect_err(|r| {
            warn!(topic = %topic.name, partition = p.index, reason = %r.message, "rejected batch");
        })?;
    }
    // A topic whose compression.type names a codec stores every batch with it, as Kafka's
    // log validator does; the size limit then applies to what is stored.
    let batches = match broker.defaults.compression_codec(&topic.configs) {
        None => batches,
        Some(codec) => batches
            .iter()
            .map(|b| recompress(b, codec, MAX_UNCOMPRESSED_BATCH_BYTES))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                warn!(topic = %topic.name, partition = p.index, error = %e, "batch not recompressed");
                (e.response_error(), e.to_string())
            })?,
    };
    let limit = broker.defaults.max_message_bytes(&topic.configs);
    if let Some(big) = batches.iter().find(|b| b.bytes.len() > limit) {
        return Err((
            ResponseError::MessageTooLarge,
            format!(
                "batch of {} bytes exceeds max.message.bytes {limit}",
                big.bytes.len()
            ),
        )
            .into());
    }
    let log_append_time = broker
        .defaults
        .uses_log_append_time(&topic.configs)
        .then(now_ms);
    let min_isr = acks_all.then(|| broker.defaults.min_insync_replicas(&topic.configs));
    let info = partition
        .replica
        .append_as_leader(&batches, log_append_time, min_isr)
        .map_err(|e| {
            let error = match &e {
                ReplicaError::NotLeader | ReplicaError::StaleAnswer => {
                    ResponseError::NotLeaderOrFollower
                }
                ReplicaError::NotEnoughReplicas { .. } => ResponseError::NotEnoughReplicas,
                ReplicaError::Storage(StorageError::OutOfOrderSequence { .. }) => {
                    ResponseError::OutOfOrderSequenceNumber
                }
                ReplicaError::Storage(StorageError::InvalidProducerEpoch { .. }) => {
                    ResponseError::InvalidProducerEpoch
                }
                ReplicaError::Storage(_) => ResponseError::KafkaStorageError,
            };
            debug!(topic = %topic.name, partition = p.index, error = %e, "append refused");
            (error, e.to_string())
        })?;
    if info.duplicate {
        debug!(topic = %topic.name, partition = p.index, base_offset = info.base_offset, "duplicate batch acknowledged");
    } else {
        broker.cluster.replicas.notify_appended();
        broker.metrics.produced(
            &topic.name,
            batches.iter().map(|b| b.bytes.len()).sum(),
            batches
                .iter()
                .map(|b| u64::try_from(b.header.records_count).unwrap_or(0))
                .sum(),
        );
        debug!(topic = %topic.name, partition = p.index, base_offset = info.base_offset, last_offset = info.last_offset, "appended");
    }
    Ok(Appended {
        base_offset: info.base_offset,
        end_offset: info.last_offset + 1,
        log_start_offset: info.offsets.log_start_offset,
        log_append_time,
    })
}

/// Kafka's rule for compacted topics: every record needs a key, or compaction could never
/// replace it. As Kafka's log validator, each keyless record is reported with its position and
/// the whole partition's records are refused with INVALID_RECORD. (The batches were validated
/// just before, so decoding them again is bounded.)
fn refuse_keyless(
    batches: &[krait_protocol::batch::ValidBatch],
    topic: &str,
    partition: i32,
) -> Result<(), Rejection> {
    let keyless = keyless_record_indexes(batches, MAX_UNCOMPRESSED_BATCH_BYTES)
        .map_err(|e| Rejection::from((ResponseError::InvalidRecord, e.to_string())))?;
    if keyless.is_empty() {
        return Ok(());
    }
    let reason = format!(
        "Compacted topic cannot accept message without key in topic partition {topic}-{partition}."
    );
    let record_errors: Vec<(i32, String)> =
        keyless.into_iter().map(|i| (i, reason.clone())).collect();
    // Kafka's InvalidRecordException message, with its first three record errors.
    let shown: Vec<String> = record_errors
        .iter()
        .take(3)
        .map(|(i, m)| format!("RecordError(batchIndex={i}, message='{m}')"))
        .collect();
    Err(Rejection {
        error: ResponseError::InvalidRecord,
        message: format!(
            "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
            record_errors.len(),
            shown.join(", ")
        ),
        record_errors,
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn partition_response(
    version: i16,
    index: i32,
    result: Result<Appended, Rejection>,
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
        Err(rejection) => {
            r.error_code = rejection.error.code();
            r.base_offset = -1;
            r.log_start_offset = -1;
            if version >= 8 {
                r.error_message = Some(StrBytes::from_string(rejection.message));
                r.record_errors = rejection
                    .record_errors
                    .into_iter()
                    .map(|(batch_index, message)| {
                        let mut e = BatchIndexAndErrorMessage::default();
                        e.batch_index = batch_index;
                        e.batch_index_error_message = Some(StrBytes::from_string(message));
                        e
                    })
                    .collect();
            }
        }
    }
    r
}
