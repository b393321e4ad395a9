//! DeleteAcls: removes every ACL matching each filter and reports what each removed (what
//! `kafka-acls.sh --remove` sends). Needs ALTER on the cluster. The removal takes effect on
//! the next request of every connection: authorization reads the current image each time.

use krait_acl::AclBinding;
use krait_image::MetadataRecord;
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use krait_protocol::kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use crate::context::RequestContext;
use crate::handlers::acls::{self, WireFilter};

/// The versions served; ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=3;

pub async fn handle(ctx: &RequestContext<'_>, request: DeleteAclsRequest) -> DeleteAclsResponse {
    let refusal = acls::refusal(ctx, "delete");
    let image = ctx.broker.cluster.image();
    let mut outcomes: Vec<Result<Vec<AclBinding>, (ResponseError, String)>> = Vec::new();
    for f in &request.filters {
        if let Some(r) = &refusal {
            outcomes.push(Err(r.clone()));
            continue;
        }
        let filter = acls::filter(WireFilter {
            resource_type: f.resource_type_filter,
            resource_name: f.resource_name_filter.as_ref(),
            pattern_type: f.pattern_type_filter,
            principal: f.principal_filter.as_ref(),
            host: f.host_filter.as_ref(),
            operation: f.operation,
            permission: f.permission_type,
        });
        outcomes.push(match filter.validate() {
            Ok(()) => Ok(image.acls.matching(&filter).cloned().collect()),
            Err(e) => Err((ResponseError::InvalidRequest, e.to_string())),
        });
    }
    let mut doomed: Vec<AclBinding> = outcomes.iter().flatten().flatten().cloned().collect();
    doomed.sort();
    doomed.dedup();
    if !doomed.is_empty()
        && let Err(e) = ctx
            .broker
            .cluster
            .propose(vec![MetadataRecord::DeleteAcls { bindings: doomed }])
            .await
    {
        for o in outcomes.iter_mut().filter(|o| o.is_ok()) {
            *o = Err((ResponseError::RequestTimedOut, e.to_string()));
        }
    }
    let mut response = DeleteAclsResponse::default();
    response.filter_results = outcomes.into_iter().map(filter_result).collect();
    response
}

fn filter_result(
    outcome: Result<Vec<AclBinding>, (ResponseError, String)>,
) -> DeleteAclsFilterResult {
    let mut result = DeleteAclsFilterResult::default();
    match outcome {
        Ok(removed) => {
            result.matching_acls = removed
                .into_iter()
                .map(|b| {
                    let mut m = DeleteAclsMatchingAcl::default();
                    m.resource_type = b.resource_type.code();
                    m.resource_name = StrBytes::from_string(b.resource_name);
                    m.pattern_type = b.pattern_type.code();
                    m.principal = StrBytes::from_string(b.principal);
                    m.host = StrBytes::from_string(b.host);
                    m.operation = b.operation.code();
                    m.permission_type = b.permission.code();
                    m
                })
                .collect();
        }
        Err((code, message)) => {
            result.error_code = code.code();
            result.error_message = Some(StrBytes::from_string(message));
        }
    }
    result
}
