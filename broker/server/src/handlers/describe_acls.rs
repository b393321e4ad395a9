//! DescribeAcls: the ACLs matching a filter, grouped by resource pattern (what
//! `kafka-acls.sh --list` shows). Needs DESCRIBE on the cluster.

use std::collections::BTreeMap;

use krait_acl::Operation;
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::describe_acls_response::{
    AclDescription, DescribeAclsResource,
};
use krait_protocol::kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use crate::context::RequestContext;
use crate::handlers::acls::{self, WireFilter};

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=3;

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: DescribeAclsRequest,
) -> DescribeAclsResponse {
    let mut response = DescribeAclsResponse::default();
    let refuse = |response: &mut DescribeAclsResponse, code: ResponseError, message: String| {
        response.error_code = code.code();
        response.error_message = Some(StrBytes::from_string(message));
    };
    if !acls::enabled(ctx) {
        refuse(
            &mut response,
            ResponseError::SecurityDisabled,
            acls::NO_AUTHORIZER.into(),
        );
        return response;
    }
    if !ctx.authorized_on_cluster(Operation::Describe) {
        refuse(
            &mut response,
            ResponseError::ClusterAuthorizationFailed,
            "Not authorized to describe ACLs".into(),
        );
        return response;
    }
    let filter = acls::filter(WireFilter {
        resource_type: request.resource_type_filter,
        resource_name: request.resource_name_filter.as_ref(),
        pattern_type: request.pattern_type_filter,
        principal: request.principal_filter.as_ref(),
        host: request.host_filter.as_ref(),
        operation: request.operation,
        permission: request.permission_type,
    });
    if let Err(e) = filter.validate() {
        refuse(&mut response, ResponseError::InvalidRequest, e.to_string());
        return response;
    }
    let image = ctx.broker.cluster.image();
    let mut resources: BTreeMap<(i8, String, i8), Vec<AclDescription>> = BTreeMap::new();
    for b in image.acls.matching(&filter) {
        let mut d = AclDescription::default();
        d.principal = StrBytes::from_string(b.principal.clone());
        d.host = StrBytes::from_string(b.host.clone());
        d.operation = b.operation.code();
        d.permission_type = b.permission.code();
        resources
            .entry((
                b.resource_type.code(),
                b.resource_name.clone(),
                b.pattern_type.code(),
            ))
            .or_default()
            .push(d);
    }
    response.resources = resources
        .into_iter()
        .map(|((resource_type, name, pattern_type), acls)| {
            let mut r = DescribeAclsResource::default();
            r.resource_type = resource_type;
            r.resource_name = StrBytes::from_string(name);
            r.pattern_type = pattern_type;
            r.acls = acls;
            r
        })
        .collect();
    response
}
