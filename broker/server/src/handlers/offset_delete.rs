//! OffsetDelete: removes a group's committed offsets for some partitions, through the quorum
//! like every commit. Refused for a group with members (GROUP_SUBSCRIBED_TO_TOPIC): Kafka
//! refuses only the topics the group subscribes to; Krait's coordinator does not track
//! subscriptions per topic, so it refuses while the group has any member.

use krait_acl::{Operation, ResourceType};
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use krait_protocol::kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use crate::context::RequestContext;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=0;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let broker = ctx.broker;
    let group = request.group_id.0.to_string();
    let mut response = OffsetDeleteResponse::default();
    if let Some(error) = ctx.group_refusal(&group, Operation::Delete) {
        response.error_code = error.code();
        return response;
    }
    let subscribed = !broker.coordinator.is_inactive(&group);
    let mut delete = Vec::new();
    for t in request.topics {
        let allowed = ctx.authorized(Operation::Read, ResourceType::Topic, &t.name.0);
        let mut out = OffsetDeleteResponseTopic::default();
        for p in &t.partitions {
            let mut r = OffsetDeleteResponsePartition::default();
            r.partition_index = p.partition_index;
            r.error_code = if !allowed {
                ResponseError::TopicAuthorizationFailed.code()
            } else if subscribed {
                ResponseError::GroupSubscribedToTopic.code()
            } else {
                delete.push((t.name.0.to_string(), p.partition_index));
                0
            };
            out.partitions.push(r);
        }
        out.name = t.name;
        response.topics.push(out);
    }
    if !delete.is_empty()
        && let Err(e) = broker.delete_offsets(&group, Some(delete)).await
    {
        tracing::warn!(group = %group, error = %e, "cannot delete offsets");
        response.error_code = ResponseError::CoordinatorNotAvailable.code();
        response.topics.clear();
    }
    response
}
