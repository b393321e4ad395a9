//! DeleteGroups: remove empty groups and their committed offsets.

use krait_protocol::kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use krait_protocol::kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use crate::broker::Broker;

pub async fn handle(
    broker: &Broker,
    _version: i16,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut response = DeleteGroupsResponse::default();
    for group in request.groups_names {
        let mut r = DeletableGroupResult::default();
        r.error_code = match broker.coordinator.delete(&group.0) {
            Ok(()) => 0,
            // A group that only ever had simple commits may be unknown to the coordinator after
            // a restart; its offsets are still deletable.
            Err(code)
                if code == krait_coordinator::runtime::GROUP_ID_NOT_FOUND
                    && has_offsets(broker, &group.0) =>
            {
                let _ = broker.store.delete_group(&group.0);
                0
            }
            Err(code) => code,
        };
        r.group_id = group;
        response.results.push(r);
    }
    response
}

fn has_offsets(broker: &Broker, group: &str) -> bool {
    broker
        .store
        .fetch_offsets(group)
        .is_ok_and(|o| !o.is_empty())
}
