//! Heartbeat: keeps a member's session alive and tells it when to rejoin.

use krait_acl::Operation;
use krait_protocol::kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use crate::context::RequestContext;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=4;

pub async fn handle(ctx: &RequestContext<'_>, request: HeartbeatRequest) -> HeartbeatResponse {
    let broker = ctx.broker;
    if let Some(error) = ctx.group_refusal(&request.group_id.0, Operation::Read) {
        let mut response = HeartbeatResponse::default();
        response.error_code = error.code();
        return response;
    }
    let instance = request.group_instance_id.as_ref().map(|s| s.to_string());
    let error = broker.coordinator.heartbeat(
        &request.group_id.0,
        &request.member_id,
        request.generation_id,
        instance.as_deref(),
    );
    let mut response = HeartbeatResponse::default();
    response.error_code = error.map_or(0, |e| e.code());
    response
}
