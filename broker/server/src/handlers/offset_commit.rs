//! OffsetCommit: record a group's consumed positions, after checking the committer's identity.
//! Commits are replicated through the metadata quorum, so they survive the coordinator. A
//! commit's metadata string is bounded (`offset.metadata.max.bytes`): every later OffsetFetch
//! returns it, and old OffsetFetch versions cannot encode a string over 32 KiB.

use krait_acl::{Operation, ResourceType};
use krait_image::OffsetCommit as CommittedOffset;
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use krait_protocol::kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use crate::context::RequestContext;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=8;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let broker = ctx.broker;
    let group = request.group_id.0.as_str();
    if let Some(error) = ctx.group_refusal(group, Operation::Read) {
        return every_partition(&request, error.code());
    }
    if ctx.api_version == 0 {
        // v0 stored offsets in ZooKeeper, apart from the coordinator's (v1 and later). Kafka 3.9
        // without ZooKeeper (KRaft) refuses it partition by partition; so does Krait, rather
        // than mix the two stores.
        return every_partition(&request, ResponseError::UnsupportedVersion.code());
    }
    let instance = request.group_instance_id.as_ref().map(|s| s.to_string());
    let identity = broker.coordinator.validate_commit(
        group,
        &request.member_id,
        request.generation_id_or_member_epoch,
        instance.as_deref(),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut accepted = Vec::new();
    let mut response = OffsetCommitResponse::default();
    for t in &request.topics {
        let readable = ctx.authorized(Operation::Read, ResourceType::Topic, &t.name.0);
        let topic = broker.topics.get(&t.name.0);
        let mut out = OffsetCommitResponseTopic::default();
        out.name = t.name.clone();
        for p in &t.partitions {
            let error = match (&identity, &topic) {
                _ if !readable => Some(ResponseError::TopicAuthorizationFailed.code()),
                (Err(e), _) => Some(e.code()),
                (Ok(()), None) => Some(ResponseError::UnknownTopicOrPartition.code()),
                (Ok(()), Some(topic)) if topic.partition(p.partition_index).is_none() => {
                    Some(ResponseError::UnknownTopicOrPartition.code())
                }
                (Ok(()), Some(_))
                    if p.committed_metadata.as_ref().map_or(0, |m| m.len())
                        > broker.config.offset_metadata_max_bytes =>
                {
                    Some(ResponseError::OffsetMetadataTooLarge.code())
                }
                (Ok(()), Some(_)) => {
                    let committed = CommittedOffset {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                        commit_timestamp: now,
                    };
                    accepted.push((t.name.0.to_string(), p.partition_index, committed));
                    None
                }
            };
            let mut r = OffsetCommitResponsePartition::default();
            r.partition_index = p.partition_index;
            r.error_code = error.unwrap_or(0);
            out.partitions.push(r);
        }
        response.topics.push(out);
    }
    let stored = if accepted.is_empty() {
        Ok(())
    } else {
        broker.commit_offsets(group, accepted).await
    };
    if let Err(e) = stored {
        tracing::warn!(group, error = %e, "committed offsets not replicated");
        let code = ResponseError::CoordinatorNotAvailable.code();
        response
            .topics
            .iter_mut()
            .flat_map(|t| t.partitions.iter_mut())
            .filter(|p| p.error_code == 0)
            .for_each(|p| p.error_code = code);
    }
    response
}

/// The same error for every requested partition.
fn every_partition(request: &OffsetCommitRequest, code: i16) -> OffsetCommitResponse {
    let mut response = OffsetCommitResponse::default();
    for t in &request.topics {
        let mut out = OffsetCommitResponseTopic::default();
        out.name = t.name.clone();
        for p in &t.partitions {
            let mut r = OffsetCommitResponsePartition::default();
            r.partition_index = p.partition_index;
            r.error_code = code;
            out.partitions.push(r);
        }
        response.topics.push(out);
    }
    response
}
