//! What the three ACL APIs share: the wire form of a binding and of a filter, and the answer
//! when no authorizer is configured. Not an API itself: `create_acls`, `describe_acls` and
//! `delete_acls` are.

use krait_acl::{AclBinding, AclBindingFilter, Operation, PatternType, Permission, ResourceType};
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_protocol::kafka_protocol::protocol::StrBytes;

use crate::context::RequestContext;

/// Kafka's answer to an ACL request on a broker without an authorizer.
pub const NO_AUTHORIZER: &str = "No Authorizer is configured on the broker";

/// Whether the broker enforces ACLs (`authorizer.class.name` is set).
pub fn enabled(ctx: &RequestContext<'_>) -> bool {
    ctx.broker.security.authorizer.is_some()
}

/// Why CreateAcls or DeleteAcls (`verb`: "create", "delete") refuses every binding or
/// filter: no authorizer, or no ALTER on the cluster.
pub fn refusal(ctx: &RequestContext<'_>, verb: &str) -> Option<(ResponseError, String)> {
    if !enabled(ctx) {
        Some((ResponseError::SecurityDisabled, NO_AUTHORIZER.to_string()))
    } else if !ctx.authorized_on_cluster(Operation::Alter) {
        Some((
            ResponseError::ClusterAuthorizationFailed,
            format!("Not authorized to {verb} ACLs"),
        ))
    } else {
        None
    }
}

/// The fields of one ACL as the wire carries them, in CreateAcls' order.
pub struct WireAcl<'a> {
    pub resource_type: i8,
    pub resource_name: &'a str,
    pub pattern_type: i8,
    pub principal: &'a str,
    pub host: &'a str,
    pub operation: i8,
    pub permission: i8,
}

/// A binding from the wire; codes Kafka does not know become `Unknown`, which `validate`
/// refuses.
pub fn binding(w: WireAcl<'_>) -> AclBinding {
    AclBinding {
        resource_type: ResourceType::from_code(w.resource_type).unwrap_or(ResourceType::Unknown),
        resource_name: w.resource_name.to_string(),
        pattern_type: PatternType::from_code(w.pattern_type).unwrap_or(PatternType::Unknown),
        principal: w.principal.to_string(),
        host: w.host.to_string(),
        operation: Operation::from_code(w.operation).unwrap_or(Operation::Unknown),
        permission: Permission::from_code(w.permission).unwrap_or(Permission::Unknown),
    }
}

/// The fields of a DescribeAcls / DeleteAcls filter as the wire carries them.
pub struct WireFilter<'a> {
    pub resource_type: i8,
    pub resource_name: Option<&'a StrBytes>,
    pub pattern_type: i8,
    pub principal: Option<&'a StrBytes>,
    pub host: Option<&'a StrBytes>,
    pub operation: i8,
    pub permission: i8,
}

pub fn filter(w: WireFilter<'_>) -> AclBindingFilter {
    AclBindingFilter {
        resource_type: ResourceType::from_code(w.resource_type).unwrap_or(ResourceType::Unknown),
        resource_name: w.resource_name.map(|s| s.to_string()),
        pattern_type: PatternType::from_code(w.pattern_type).unwrap_or(PatternType::Unknown),
        principal: w.principal.map(|s| s.to_string()),
        host: w.host.map(|s| s.to_string()),
        operation: Operation::from_code(w.operation).unwrap_or(Operation::Unknown),
        permission: Permission::from_code(w.permission).unwrap_or(Permission::Unknown),
    }
}
