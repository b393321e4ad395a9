//! CreateAcls: adds ACLs to the replicated metadata (what `kafka-acls.sh --add` and
//! AdminClient's createAcls send). Needs ALTER on the cluster; each binding is validated as
//! Kafka validates it, and the valid ones are committed together.

use krait_image::MetadataRecord;
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::messages::create_acls_response::AclCreationResult;
use krait_protocol::kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};
use krait_protocol::kafka_protocol::protocol::StrBytes;

use crate::context::RequestContext;
use crate::handlers::acls::{self, WireAcl};

/// The versions served (Kafka 3.9's: v0, without pattern types, through
/// `krait_protocol::legacy`); ApiVersions and the dispatch are built from these.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 0..=3;

pub async fn handle(ctx: &RequestContext<'_>, request: CreateAclsRequest) -> CreateAclsResponse {
    let refusal = acls::refusal(ctx, "create");
    let mut outcomes: Vec<Result<_, (ResponseError, String)>> = request
        .creations
        .iter()
        .map(|c| {
            if let Some(r) = &refusal {
                return Err(r.clone());
            }
            let binding = acls::binding(WireAcl {
                resource_type: c.resource_type,
                resource_name: &c.resource_name,
                pattern_type: c.resource_pattern_type,
                principal: &c.principal,
                host: &c.host,
                operation: c.operation,
                permission: c.permission_type,
            });
            binding
                .validate()
                .map(|()| binding)
                .map_err(|e| (ResponseError::InvalidRequest, e.to_string()))
        })
        .collect();
    let valid: Vec<_> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().ok().cloned())
        .collect();
    if !valid.is_empty() {
        let committed = ctx
            .broker
            .cluster
            .propose(vec![MetadataRecord::CreateAcls { bindings: valid }])
            .await;
        if let Err(e) = committed {
            for o in outcomes.iter_mut().filter(|o| o.is_ok()) {
                *o = Err((ResponseError::RequestTimedOut, e.to_string()));
            }
        }
    }
    let mut response = CreateAclsResponse::default();
    response.results = outcomes
        .into_iter()
        .map(|o| {
            let mut result = AclCreationResult::default();
            if let Err((code, message)) = o {
                result.error_code = code.code();
                result.error_message = Some(StrBytes::from_string(message));
            }
            result
        })
        .collect();
    response
}
