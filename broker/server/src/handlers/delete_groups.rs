//! DeleteGroups: remove empty groups and their committed offsets.

use krait_acl::Operation;
use krait_protocol::kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use krait_protocol::kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use krait_protocol::kafka_protocol::error::ResponseError;

use crate::broker::Broker;
use crate::context::RequestContext;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=2;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let broker = ctx.broker;
    let mut response = DeleteGroupsResponse::default();
    for group in request.groups_names {
        let mut r = DeletableGroupResult::default();
        r.error_code = if let Some(error) = ctx.group_refusal(&group.0, Operation::Delete) {
            error.code()
        } else {
            match broker.coordinator.delete(&group.0) {
                Ok(()) => forget_offsets(broker, &group.0).await,
                // A group that only ever had simple commits is unknown to the coordinator; its
                // offsets are still deletable.
                Err(code)
                    if code == krait_coordinator::runtime::GROUP_ID_NOT_FOUND
                        && !broker.committed_offsets(&group.0).is_empty() =>
                {
                    forget_offsets(broker, &group.0).await
                }
                Err(code) => code,
            }
        };
        r.group_id = group;
        response.results.push(r);
    }
    response
}

/// Deletes the group's committed offsets through the quorum; the error code if that failed.
async fn forget_offsets(broker: &Broker, group: &str) -> i16 {
    match broker.delete_offsets(group, None).await {
        Ok(()) => 0,
        Err(e) => {
            tracing::warn!(group, error = %e, "group offsets not deleted");
            ResponseError::CoordinatorNotAvailable.code()
        }
    }
}
