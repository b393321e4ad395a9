//! OffsetForLeaderEpoch: where a leader epoch ends in a partition's log. A follower asks its new
//! leader this after a leader change and truncates to the answer; consumers ask it to detect a
//! log truncated under their position (KIP-320) before fetching on.

use krait_acl::{Operation, ResourceType};
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderPartition;
use krait_protocol::kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use krait_protocol::kafka_protocol::messages::{
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
};

use crate::context::RequestContext;
use crate::topics::Topic;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=4;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let broker = ctx.broker;
    let mut response = OffsetForLeaderEpochResponse::default();
    for t in request.topics {
        let allowed = ctx.authorized(Operation::Describe, ResourceType::Topic, &t.topic.0);
        let topic = broker.topics.get(&t.topic.0);
        let mut out = OffsetForLeaderTopicResult::default();
        out.topic = t.topic.clone();
        out.partitions = t
            .partitions
            .iter()
            .map(|p| match allowed {
                true => end_offset(topic.as_deref(), p),
                false => refused(p),
            })
            .collect();
        response.topics.push(out);
    }
    response
}

fn refused(p: &OffsetForLeaderPartition) -> EpochEndOffset {
    let mut r = EpochEndOffset::default();
    r.partition = p.partition;
    r.leader_epoch = -1;
    r.end_offset = -1;
    r.error_code = ResponseError::TopicAuthorizationFailed.code();
    r
}

fn end_offset(topic: Option<&Topic>, p: &OffsetForLeaderPartition) -> EpochEndOffset {
    let mut r = EpochEndOffset::default();
    r.partition = p.partition;
    r.leader_epoch = -1;
    r.end_offset = -1;
    let Some(partition) = topic.and_then(|t| t.partition(p.partition)) else {
        r.error_code = ResponseError::UnknownTopicOrPartition.code();
        return r;
    };
    if let Err(error) = partition.lead_epoch(p.current_leader_epoch) {
        r.error_code = error.code();
        return r;
    }
    (r.leader_epoch, r.end_offset) = partition.log().end_offset_for_epoch(p.leader_epoch);
    r
}

#[cfg(test)]
mod tests {
    use krait_protocol::kafka_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderTopic;
    use krait_protocol::kafka_protocol::messages::{ApiKey, OffsetForLeaderEpochRequest};

    use crate::handlers::tests::{batch, broker, create, ctx, name, produce_request, range};

    fn request(topic: &str, partitions: &[(i32, i32, i32)]) -> OffsetForLeaderEpochRequest {
        let mut t = OffsetForLeaderTopic::default();
        t.topic = name(topic);
        t.partitions = partitions
            .iter()
            .map(|(partition, current, epoch)| {
                let mut p = super::OffsetForLeaderPartition::default();
                p.partition = *partition;
                p.current_leader_epoch = *current;
                p.leader_epoch = *epoch;
                p
            })
            .collect();
        let mut r = OffsetForLeaderEpochRequest::default();
        r.topics = vec![t];
        r
    }

    #[tokio::test]
    async fn the_current_epoch_ends_at_the_log_end_and_bad_partitions_get_kafka_codes() {
        let dir = tempfile::tempdir().unwrap();
        let b = broker(&dir).await;
        create(&b, "t", 2).await;
        for _ in 0..3 {
            crate::handlers::produce::handle(
                &ctx(&b, 9),
                produce_request("t", 0, batch(&["a", "b"], 0), 1),
            )
            .await
            .0
            .unwrap();
        }
        let req = request(
            "t",
            &[(0, -1, 0), (0, 0, 0), (0, 1, 0), (1, -1, 0), (7, -1, 0)],
        );
        for version in range(ApiKey::OffsetForLeaderEpoch) {
            let r = super::handle(&ctx(&b, version), req.clone()).await;
            let got: Vec<(i16, i32, i64)> = r.topics[0]
                .partitions
                .iter()
                .map(|p| (p.error_code, p.leader_epoch, p.end_offset))
                .collect();
            assert_eq!(
                got,
                vec![
                    (0, 0, 6),
                    (0, 0, 6),
                    (super::ResponseError::UnknownLeaderEpoch.code(), -1, -1),
                    (0, 0, 0), // an empty log led at epoch 0
                    (super::ResponseError::UnknownTopicOrPartition.code(), -1, -1),
                ]
            );
            krait_protocol::frame::encode_response(1, version, &r).unwrap();
        }
    }
}
