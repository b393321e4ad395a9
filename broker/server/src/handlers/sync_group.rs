//! SyncGroup: the leader hands out assignments; every member waits for its own.

use krait_acl::Operation;
use krait_coordinator::SyncRequest;
use krait_protocol::kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use crate::context::RequestContext;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=5;

pub async fn handle(ctx: &RequestContext<'_>, request: SyncGroupRequest) -> SyncGroupResponse {
    let broker = ctx.broker;
    let version = ctx.api_version;
    if let Some(error) = ctx.group_refusal(&request.group_id.0, Operation::Read) {
        let mut response = SyncGroupResponse::default();
        response.error_code = error.code();
        return response;
    }
    let sync = SyncRequest {
        member_id: request.member_id.to_string(),
        generation_id: request.generation_id,
        group_instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
        protocol_type: request.protocol_type.as_ref().map(|s| s.to_string()),
        protocol_name: request.protocol_name.as_ref().map(|s| s.to_string()),
        assignments: request
            .assignments
            .iter()
            .map(|a| (a.member_id.to_string(), a.assignment.clone()))
            .collect(),
    };
    let r = broker.coordinator.sync(&request.group_id.0, sync).await;
    let mut response = SyncGroupResponse::default();
    response.error_code = r.error.map_or(0, |e| e.code());
    response.assignment = r.assignment;
    if version >= 5 {
        response.protocol_type = r.protocol_type.map(StrBytes::from_string);
        response.protocol_name = r.protocol_name.map(StrBytes::from_string);
    }
    response
}
