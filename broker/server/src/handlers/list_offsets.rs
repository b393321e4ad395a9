//! ListOffsets: earliest (log start), latest (high watermark; the last stable offset for
//! isolation_level=1, read_committed), the first offset whose record timestamp is at or after
//! a given time, the record with the largest timestamp (v7, KIP-734), and the tiered-storage
//! specs (v8 earliest-local, v9 latest-tiered) as Kafka answers them without a remote tier.

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
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=9;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
/// v7+ (KIP-734): the record with the largest timestamp.
const MAX_TIMESTAMP: i64 = -3;
/// v8+ (KIP-405): the earliest offset on local storage; Krait has no remote tier, so the log start.
const EARLIEST_LOCAL: i64 = -4;
/// v9+ (KIP-1005): the latest offset in remote storage; with no remote tier, none (-1), as
/// Kafka answers when tiered storage is off.
const LATEST_TIERED: i64 = -5;
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
    // Kafka answers a lookup by time only below what the isolation level may read.
    let readable = if read_committed {
        partition.log().last_stable_offset()
    } else {
        offsets.high_watermark
    };
    let by_time = |ts: i64| {
        if ts == MAX_TIMESTAMP {
            partition.log().offset_of_max_timestamp()
        } else {
            partition.log().offset_for_timestamp(ts)
        }
    };
    match p.timestamp {
        LATEST => r.offset = readable,
        EARLIEST => r.offset = offsets.log_start_offset,
        EARLIEST_LOCAL if version >= 8 => r.offset = offsets.log_start_offset,
        LATEST_TIERED if version >= 9 => {}
        ts if ts < 0 && !(ts == MAX_TIMESTAMP && version >= 7) => {
            r.error_code = ResponseError::UnsupportedVersion.code()
        }
        ts => match krait_sync::blocking(|| by_time(ts)) {
            Ok(Some((offset, _))) if offset >= readable => {}
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
