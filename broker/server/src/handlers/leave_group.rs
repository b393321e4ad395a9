//! LeaveGroup: one member (v0-v2) or a batch of members by id or instance id (v3+).

use krait_acl::Operation;
use krait_protocol::kafka_protocol::messages::leave_group_response::MemberResponse;
use krait_protocol::kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use crate::context::RequestContext;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=5;

pub async fn handle(ctx: &RequestContext<'_>, request: LeaveGroupRequest) -> LeaveGroupResponse {
    let broker = ctx.broker;
    let version = ctx.api_version;
    if let Some(error) = ctx.group_refusal(&request.group_id.0, Operation::Read) {
        let mut response = LeaveGroupResponse::default();
        response.error_code = error.code();
        return response;
    }
    let leaving: Vec<(String, Option<String>)> = if version >= 3 {
        request
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let results = broker.coordinator.leave(&request.group_id.0, &leaving);
    let mut response = LeaveGroupResponse::default();
    if version >= 3 {
        response.members = request
            .members
            .iter()
            .zip(&results)
            .map(|(m, e)| {
                let mut r = MemberResponse::default();
                r.member_id = m.member_id.clone();
                r.group_instance_id = m.group_instance_id.clone();
                r.error_code = e.map_or(0, |e| e.code());
                r
            })
            .collect();
    } else {
        response.error_code = results.first().copied().flatten().map_or(0, |e| e.code());
    }
    response
}
