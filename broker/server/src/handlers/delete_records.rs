//! DeleteRecords: moves a partition's log start offset forward on its leader; followers take the
//! leader's log start with their next fetch. The answer's low watermark is the leader's new log
//! start (Kafka waits for every replica's; Krait's followers follow within a fetch).

use krait_acl::{Operation, ResourceType};
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::delete_records_request::DeleteRecordsPartition;
use krait_protocol::kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use krait_protocol::kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use crate::context::RequestContext;
use crate::topics::Topic;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=2;

/// An offset of -1 means the high watermark: delete everything consumers can see.
const HIGH_WATERMARK: i64 = -1;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let mut response = DeleteRecordsResponse::default();
    for t in request.topics {
        let allowed = ctx.authorized(Operation::Delete, ResourceType::Topic, &t.name.0);
        let topic = ctx.broker.topics.get(&t.name.0);
        let mut out = DeleteRecordsTopicResult::default();
        out.partitions = t
            .partitions
            .iter()
            .map(|p| match allowed {
                true => delete(topic.as_deref(), p),
                false => result(p, -1, ResponseError::TopicAuthorizationFailed.code()),
            })
            .collect();
        out.name = t.name;
        response.topics.push(out);
    }
    response
}

fn result(
    p: &DeleteRecordsPartition,
    low_watermark: i64,
    error_code: i16,
) -> DeleteRecordsPartitionResult {
    let mut r = DeleteRecordsPartitionResult::default();
    r.partition_index = p.partition_index;
    r.low_watermark = low_watermark;
    r.error_code = error_code;
    r
}

fn delete(topic: Option<&Topic>, p: &DeleteRecordsPartition) -> DeleteRecordsPartitionResult {
    let Some(partition) = topic.and_then(|t| t.partition(p.partition_index)) else {
        return result(p, -1, ResponseError::UnknownTopicOrPartition.code());
    };
    if let Err(error) = partition.lead_epoch(-1) {
        return result(p, -1, error.code());
    }
    let offsets = partition.log().offsets();
    let offset = match p.offset {
        HIGH_WATERMARK => offsets.high_watermark,
        o if o < 0 || o > offsets.high_watermark => {
            return result(p, -1, ResponseError::OffsetOutOfRange.code());
        }
        o => o,
    };
    match krait_sync::blocking(|| partition.log().delete_records_before(offset)) {
        Ok(after) => {
            tracing::info!(
                partition = p.partition_index,
                log_start_offset = after.log_start_offset,
                "deleted records"
            );
            result(p, after.log_start_offset, 0)
        }
        Err(e) => {
            tracing::warn!(partition = p.partition_index, error = %e, "delete records failed");
            result(p, -1, ResponseError::KafkaStorageError.code())
        }
    }
}
