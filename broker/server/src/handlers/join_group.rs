//! JoinGroup: join (or rejoin) a consumer group; parked until the rebalance completes.

use krait_acl::Operation;
use krait_coordinator::{JoinRequest, Protocol};
use krait_protocol::kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use krait_protocol::kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use crate::context::RequestContext;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=9;

pub async fn handle(ctx: &RequestContext<'_>, request: JoinGroupRequest) -> JoinGroupResponse {
    let broker = ctx.broker;
    let version = ctx.api_version;
    if let Some(error) = ctx.group_refusal(&request.group_id.0, Operation::Read) {
        let mut response = JoinGroupResponse::default();
        response.error_code = error.code();
        response.generation_id = -1;
        return response;
    }
    // The client id and the connection's address are what DescribeGroups reports and member
    // ids are built from.
    let client_id = ctx.client_id.to_string();
    let join = JoinRequest {
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: client_id.clone(),
        client_host: ctx.client_host(),
        session_timeout_ms: request.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|p| Protocol {
                name: p.name.to_string(),
                metadata: p.metadata.clone(),
            })
            .collect(),
        require_known_member_id: version >= 4,
        fresh_member_id: format!("{client_id}-{}", uuid::Uuid::new_v4()),
    };
    let r = broker.coordinator.join(&request.group_id.0, join).await;
    let mut response = JoinGroupResponse::default();
    response.error_code = r.error.map_or(0, |e| e.code());
    response.generation_id = r.generation_id;
    response.member_id = StrBytes::from_string(r.member_id);
    response.leader = StrBytes::from_string(r.leader);
    response.protocol_name = Some(StrBytes::from_string(r.protocol_name.unwrap_or_default()));
    if version >= 7 {
        response.protocol_type = r.protocol_type.map(StrBytes::from_string);
    }
    response.members = r
        .members
        .into_iter()
        .map(|m| {
            let mut out = JoinGroupResponseMember::default();
            out.member_id = StrBytes::from_string(m.member_id);
            if version >= 5 {
                out.group_instance_id = m.group_instance_id.map(StrBytes::from_string);
            }
            out.metadata = m.metadata;
            out
        })
        .collect();
    response
}
