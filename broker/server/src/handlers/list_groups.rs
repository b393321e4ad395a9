//! ListGroups: every group, optionally filtered by state (v4+) and type (v5+).

use krait_acl::{Operation, ResourceType};
use krait_protocol::kafka_protocol::messages::list_groups_response::ListedGroup;
use krait_protocol::kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use crate::context::RequestContext;

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=5;

pub async fn handle(ctx: &RequestContext<'_>, request: ListGroupsRequest) -> ListGroupsResponse {
    let broker = ctx.broker;
    let version = ctx.api_version;
    let mut response = ListGroupsResponse::default();
    let wants = |filter: &[StrBytes], value: &str| {
        filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(value))
    };
    // Every group here speaks the classic protocol.
    let classic = wants(&request.types_filter, "classic");
    let all = ctx.authorized_on_cluster(Operation::Describe);
    response.groups = broker
        .coordinator
        .list()
        .into_iter()
        .filter(|g| wants(&request.states_filter, g.state))
        .filter(|_| classic)
        // Every group with DESCRIBE on the cluster, else those the principal may describe.
        .filter(|g| all || ctx.authorized(Operation::Describe, ResourceType::Group, &g.group_id))
        .map(|g| {
            let mut l = ListedGroup::default();
            l.group_id = GroupId(StrBytes::from_string(g.group_id));
            l.protocol_type = StrBytes::from_string(g.protocol_type);
            if version >= 4 {
                l.group_state = StrBytes::from_static_str(g.state);
            }
            if version >= 5 {
                l.group_type = StrBytes::from_static_str("classic");
            }
            l
        })
        .collect();
    response
}
