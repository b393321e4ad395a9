//! OffsetFetch: a group's committed offsets, for the requested partitions or all of them;
//! one group per request before v8, several from v8.

use std::collections::BTreeMap;

use krait_acl::{Operation, ResourceType};
use krait_image::OffsetCommit as CommittedOffset;
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use krait_protocol::kafka_protocol::messages::{
    OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use crate::context::RequestContext;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=8;

/// (topic, partition) -> committed offset.
type Offsets = BTreeMap<(String, i32), CommittedOffset>;
/// Per topic, each requested partition and its commit, if any.
type TopicOffsets = Vec<(String, Vec<(i32, Option<CommittedOffset>)>)>;

/// The offsets of `group` for `wanted` topics and partitions (all committed ones when `None`).
/// A requested partition without a commit is answered with offset -1, as in Kafka.
fn lookup(
    ctx: &RequestContext<'_>,
    group: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
) -> Result<TopicOffsets, i16> {
    let broker = ctx.broker;
    if let Some(error) = ctx.group_refusal(group, Operation::Describe) {
        return Err(error.code());
    }
    let stored: Offsets = broker
        .committed_offsets(group)
        .into_iter()
        .flat_map(|(t, partitions)| {
            partitions
                .into_iter()
                .map(move |(p, o)| ((t.clone(), p), o))
        })
        .collect();
    Ok(match wanted {
        Some(topics) => topics
            .into_iter()
            .map(|(t, parts)| {
                let found = parts
                    .into_iter()
                    .map(|p| (p, stored.get(&(t.clone(), p)).cloned()))
                    .collect();
                (t, found)
            })
            .collect(),
        None => {
            let mut by_topic: BTreeMap<String, Vec<(i32, Option<CommittedOffset>)>> =
                BTreeMap::new();
            // All of the group's commits: those on topics the principal may describe.
            for ((t, p), o) in stored.into_iter().filter(|((t, _), _)| describable(ctx, t)) {
                by_topic.entry(t).or_default().push((p, Some(o)));
            }
            by_topic.into_iter().collect()
        }
    })
}

fn describable(ctx: &RequestContext<'_>, topic: &str) -> bool {
    ctx.authorized(Operation::Describe, ResourceType::Topic, topic)
}

/// TOPIC_AUTHORIZATION_FAILED for a named topic the principal may not describe.
fn topic_error(ctx: &RequestContext<'_>, topic: &str) -> i16 {
    if describable(ctx, topic) {
        0
    } else {
        ResponseError::TopicAuthorizationFailed.code()
    }
}

fn name(t: &str) -> TopicName {
    TopicName(StrBytes::from_string(t.to_string()))
}

pub async fn handle(ctx: &RequestContext<'_>, request: OffsetFetchRequest) -> OffsetFetchResponse {
    let version = ctx.api_version;
    if version == 0 {
        return zookeeper_offsets(ctx, &request);
    }
    let mut response = OffsetFetchResponse::default();
    if version >= 8 {
        response.groups = request.groups.iter().map(|g| group_v8(ctx, g)).collect();
        return response;
    }
    let wanted = request.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    match lookup(ctx, &request.group_id.0, wanted) {
        Ok(topics) => {
            response.topics = topics
                .into_iter()
                .map(|(t, parts)| {
                    let mut out = OffsetFetchResponseTopic::default();
                    out.name = name(&t);
                    let error = topic_error(ctx, &t);
                    out.partitions = parts
                        .into_iter()
                        .map(|(p, o)| {
                            let mut r = OffsetFetchResponsePartition::default();
                            r.partition_index = p;
                            r.error_code = error;
                            fill(
                                o.filter(|_| error == 0),
                                &mut r.committed_offset,
                                &mut r.committed_leader_epoch,
                                &mut r.metadata,
                                version >= 5,
                            );
                            r
                        })
                        .collect();
                    out
                })
                .collect();
        }
        Err(code) if version >= 2 => response.error_code = code,
        Err(_) => {}
    }
    response
}

/// OffsetFetch v0 read the offsets ZooKeeper held, a store apart from the group coordinator's
/// (v1 and later). Kafka 3.9 without ZooKeeper (KRaft), the Kafka that Krait compares with,
/// answers every requested partition UNSUPPORTED_VERSION, after the group authorization check:
/// so does Krait, rather than pass off the coordinator's offsets as ZooKeeper's.
fn zookeeper_offsets(
    ctx: &RequestContext<'_>,
    request: &OffsetFetchRequest,
) -> OffsetFetchResponse {
    let error = ctx
        .group_refusal(&request.group_id.0, Operation::Describe)
        .unwrap_or(ResponseError::UnsupportedVersion)
        .code();
    let mut response = OffsetFetchResponse::default();
    for t in request.topics.iter().flatten() {
        let mut out = OffsetFetchResponseTopic::default();
        out.name = t.name.clone();
        out.partitions = t
            .partition_indexes
            .iter()
            .map(|p| {
                let mut r = OffsetFetchResponsePartition::default();
                r.partition_index = *p;
                r.committed_offset = -1;
                r.metadata = Some(StrBytes::default());
                r.error_code = error;
                r
            })
            .collect();
        response.topics.push(out);
    }
    response
}

fn fill(
    o: Option<CommittedOffset>,
    offset: &mut i64,
    epoch: &mut i32,
    metadata: &mut Option<StrBytes>,
    with_epoch: bool,
) {
    match o {
        Some(o) => {
            *offset = o.offset;
            if with_epoch {
                *epoch = o.leader_epoch;
            }
            *metadata = Some(StrBytes::from_string(o.metadata.unwrap_or_default()));
        }
        None => {
            *offset = -1;
            *metadata = Some(StrBytes::default());
        }
    }
}

fn group_v8(
    ctx: &RequestContext<'_>,
    g: &krait_protocol::kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup,
) -> OffsetFetchResponseGroup {
    let mut out = OffsetFetchResponseGroup::default();
    out.group_id = g.group_id.clone();
    let wanted = g.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    match lookup(ctx, &g.group_id.0, wanted) {
        Ok(topics) => {
            out.topics = topics
                .into_iter()
                .map(|(t, parts)| {
                    let mut topic = OffsetFetchResponseTopics::default();
                    topic.name = name(&t);
                    let error = topic_error(ctx, &t);
                    topic.partitions = parts
                        .into_iter()
                        .map(|(p, o)| {
                            let mut r = OffsetFetchResponsePartitions::default();
                            r.partition_index = p;
                            r.error_code = error;
                            fill(
                                o.filter(|_| error == 0),
                                &mut r.committed_offset,
                                &mut r.committed_leader_epoch,
                                &mut r.metadata,
                                true,
                            );
                            r
                        })
                        .collect();
                    topic
                })
                .collect();
        }
        Err(code) => out.error_code = code,
    }
    out
}
