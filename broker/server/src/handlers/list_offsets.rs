//! ListOffsets: earliest (log start), latest (high watermark; the last stable offset for
//! isolation_level=1, read_committed), or the first offset whose record timestamp is at or after
//! a given time.

use krait_acl::{Operation, ResourceType};
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::list_offsets_request::ListOffsetsPartition;
use krait_protocol::kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use krait_protocol::kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use crate::context::RequestContext;
use crate::topics::Topic;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=6;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const READ_COMMITTED: i8 = 1;

pub async fn handle(ctx: &RequestContext<'_>, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let broker = ctx.broker;
    let version = ctx.api_version;
    let read_committed = version >= 2 && request.isolation_level == READ_COMMITTED;
    let mut response = ListOffsetsResponse::default();
    for t in request.topics {
        let allowed = ctx.authorized(Operation::Describe, ResourceType::Topic, &t.name.0);
        let topic = broker.topics.get(&t.name.0);
        let mut out = ListOffsetsTopicResponse::default();
        out.name = t.name.clone();
        out.partitions = t
            .partitions
            .iter()
            .map(|p| match allowed {
                true => lookup(topic.as_deref(), p, version, read_committed),
                false => refused(p, ResponseError::TopicAuthorizationFailed),
            })
            .collect();
        response.topics.push(out);
    }
    response
}

fn refused(p: &ListOffsetsPartition, error: ResponseError) -> ListOffsetsPartitionResponse {
    let mut r = ListOffsetsPartitionResponse::default();
    r.partition_index = p.partition_index;
    r.timestamp = -1;
    r.offset = -1;
    r.error_code = error.code();
    r
}

fn lookup(
    topic: Option<&Topic>,
    p: &ListOffsetsPartition,
    version: i16,
    read_committed: bool,
) -> ListOffsetsPartitionResponse {
    let mut r = ListOffsetsPartitionResponse::default();
    r.partition_index = p.partition_index;
    r.timestamp = -1;
    r.offset = -1;
    let Some(partition) = topic.and_then(|t| t.partition(p.partition_index)) else {
        r.error_code = ResponseError::UnknownTopicOrPartition.code();
        return r;
    };
    let epoch = match partition.lead_epoch(p.current_leader_epoch) {
        Ok(epoch) => epoch,
        Err(error) => {
            r.error_code = error.code();
            return r;
        }
    };
    if version >= 4 {
        r.leader_epoch = epoch;
    }
    let offsets = partition.log().offsets();
    match p.timestamp {
        LATEST if read_committed => r.offset = partition.log().last_stable_offset(),
        LATEST => r.offset = offsets.high_watermark,
        EARLIEST => r.offset = offsets.log_start_offset,
        ts if ts < 0 => r.error_code = ResponseError::UnsupportedVersion.code(),
        ts => match krait_sync::blocking(|| partition.log().offset_for_timestamp(ts)) {
            Ok(Some((offset, timestamp))) => {
                r.offset = offset;
                r.timestamp = timestamp;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(partition = p.partition_index, error = %e, "timestamp lookup failed");
                r.error_code = ResponseError::KafkaStorageError.code();
            }
        },
    }
    r
}
