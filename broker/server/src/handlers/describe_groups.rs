//! DescribeGroups: state, protocol and members (with metadata and assignment) of groups.

use krait_acl::{Operation, ResourceType};
use krait_protocol::kafka_protocol::messages::describe_groups_response::{
    DescribedGroup, DescribedGroupMember,
};
use krait_protocol::kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use crate::context::RequestContext;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=5;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let broker = ctx.broker;
    let version = ctx.api_version;
    let mut response = DescribeGroupsResponse::default();
    for id in request.groups {
        let mut d = DescribedGroup::default();
        d.error_message = None;
        if let Some(error) = ctx.group_refusal(&id.0, Operation::Describe) {
            d.error_code = error.code();
            d.group_id = id;
            response.groups.push(d);
            continue;
        }
        match broker.coordinator.describe(&id.0) {
            Some(g) => {
                d.group_state = StrBytes::from_static_str(g.state);
                d.protocol_type = StrBytes::from_string(g.protocol_type);
                d.protocol_data = StrBytes::from_string(g.protocol_name);
                d.members = g
                    .members
                    .into_iter()
                    .map(|m| {
                        let mut out = DescribedGroupMember::default();
                        out.member_id = StrBytes::from_string(m.member_id);
                        if version >= 4 {
                            out.group_instance_id = m.group_instance_id.map(StrBytes::from_string);
                        }
                        out.client_id = StrBytes::from_string(m.client_id);
                        out.client_host = StrBytes::from_string(m.client_host);
                        out.member_metadata = m.metadata;
                        out.member_assignment = m.assignment;
                        out
                    })
                    .collect();
            }
            // Kafka describes an unknown group as Dead with no members.
            None => d.group_state = StrBytes::from_static_str("Dead"),
        }
        if version >= 3 && request.include_authorized_operations {
            d.authorized_operations = ctx.authorized_operations(ResourceType::Group, &id.0);
        }
        d.group_id = id;
        response.groups.push(d);
    }
    response
}
