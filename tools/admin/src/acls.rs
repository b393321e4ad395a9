//! ACLs through the admin protocol: CreateAcls, DescribeAcls and DeleteAcls (v1–3, the
//! versions with pattern types), in `krait-acl`'s model. The request and answer conversions
//! are pure functions, so they are tested without a broker.

use std::ops::RangeInclusive;

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::delete_acls_response::DeleteAclsMatchingAcl;
use kafka_protocol::messages::describe_acls_response::DescribeAclsResource;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;
use krait_acl::{AclBinding, AclBindingFilter, Operation, PatternType, Permission, ResourceType};

use crate::cluster::{Admin, AdminError, Result, text};

/// v0 predates pattern types (every ACL was LITERAL); v1 added them, v2 is v1 made flexible.
const ACL_VERSIONS: RangeInclusive<i16> = 1..=3;

fn strbytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// One CreateAcls entry.
pub fn creation(binding: &AclBinding) -> AclCreation {
    AclCreation::default()
        .with_resource_type(binding.resource_type.code())
        .with_resource_name(strbytes(&binding.resource_name))
        .with_resource_pattern_type(binding.pattern_type.code())
        .with_principal(strbytes(&binding.principal))
        .with_host(strbytes(&binding.host))
        .with_operation(binding.operation.code())
        .with_permission_type(binding.permission.code())
}

/// A DescribeAcls request and a DeleteAcls filter carry the same seven filter fields, but
/// `kafka-protocol` gives the two messages no common trait to fill them through.
macro_rules! with_acl_filter {
    ($message:expr, $filter:expr) => {{
        let filter: &AclBindingFilter = $filter;
        $message
            .with_resource_type_filter(filter.resource_type.code())
            .with_resource_name_filter(filter.resource_name.as_deref().map(strbytes))
            .with_pattern_type_filter(filter.pattern_type.code())
            .with_principal_filter(filter.principal.as_deref().map(strbytes))
            .with_host_filter(filter.host.as_deref().map(strbytes))
            .with_operation(filter.operation.code())
            .with_permission_type(filter.permission.code())
    }};
}

/// The DescribeAcls request for `filter`.
pub fn describe_request(filter: &AclBindingFilter) -> DescribeAclsRequest {
    with_acl_filter!(DescribeAclsRequest::default(), filter)
}

/// One DeleteAcls filter.
pub fn delete_filter(filter: &AclBindingFilter) -> DeleteAclsFilter {
    with_acl_filter!(DeleteAclsFilter::default(), filter)
}

/// The bindings of DescribeAcls answers, one per access control entry; a code this client
/// does not know reads as UNKNOWN.
pub fn bindings_of(resources: &[DescribeAclsResource]) -> Vec<AclBinding> {
    let mut out = Vec::new();
    for resource in resources {
        for acl in &resource.acls {
            out.push(AclBinding {
                resource_type: ResourceType::from_code(resource.resource_type)
                    .unwrap_or(ResourceType::Unknown),
                resource_name: text(&resource.resource_name),
                pattern_type: PatternType::from_code(resource.pattern_type)
                    .unwrap_or(PatternType::Unknown),
                principal: text(&acl.principal),
                host: text(&acl.host),
                operation: Operation::from_code(acl.operation).unwrap_or(Operation::Unknown),
                permission: Permission::from_code(acl.permission_type)
                    .unwrap_or(Permission::Unknown),
            });
        }
    }
    out
}

/// A binding DeleteAcls reports as deleted.
pub fn deleted_binding(acl: &DeleteAclsMatchingAcl) -> AclBinding {
    AclBinding {
        resource_type: ResourceType::from_code(acl.resource_type).unwrap_or(ResourceType::Unknown),
        resource_name: text(&acl.resource_name),
        pattern_type: PatternType::from_code(acl.pattern_type).unwrap_or(PatternType::Unknown),
        principal: text(&acl.principal),
        host: text(&acl.host),
        operation: Operation::from_code(acl.operation).unwrap_or(Operation::Unknown),
        permission: Permission::from_code(acl.permission_type).unwrap_or(Permission::Unknown),
    }
}

impl Admin {
    /// Creates `bindings`; the first one refused is the error (those before it exist).
    pub fn create_acls(&mut self, bindings: &[AclBinding]) -> Result<()> {
        let request =
            CreateAclsRequest::default().with_creations(bindings.iter().map(creation).collect());
        let response = self.bootstrap_connection().call(&request, ACL_VERSIONS)?;
        for (binding, result) in bindings.iter().zip(&response.results) {
            if result.error_code != 0 {
                return Err(AdminError::refused(
                    format!("CreateAcls of {binding}"),
                    result.error_code,
                    result.error_message.as_ref(),
                ));
            }
        }
        Ok(())
    }

    /// The bindings `filter` selects, sorted.
    pub fn describe_acls(&mut self, filter: &AclBindingFilter) -> Result<Vec<AclBinding>> {
        let request = describe_request(filter);
        let response = self.bootstrap_connection().call(&request, ACL_VERSIONS)?;
        if response.error_code != 0 {
            return Err(AdminError::refused(
                "DescribeAcls",
                response.error_code,
                response.error_message.as_ref(),
            ));
        }
        let mut bindings = bindings_of(&response.resources);
        bindings.sort();
        Ok(bindings)
    }

    /// Deletes what each filter selects; returns the deleted bindings, sorted.
    pub fn delete_acls(&mut self, filters: &[AclBindingFilter]) -> Result<Vec<AclBinding>> {
        let request =
            DeleteAclsRequest::default().with_filters(filters.iter().map(delete_filter).collect());
        let response = self.bootstrap_connection().call(&request, ACL_VERSIONS)?;
        let mut deleted = Vec::new();
        for result in &response.filter_results {
            if result.error_code != 0 {
                return Err(AdminError::refused(
                    "DeleteAcls",
                    result.error_code,
                    result.error_message.as_ref(),
                ));
            }
            for acl in &result.matching_acls {
                if acl.error_code != 0 {
                    return Err(AdminError::refused(
                        format!("DeleteAcls of {}", deleted_binding(acl)),
                        acl.error_code,
                        acl.error_message.as_ref(),
                    ));
                }
                deleted.push(deleted_binding(acl));
            }
        }
        deleted.sort();
        Ok(deleted)
    }
}

#[cfg(test)]
#[path = "acls_tests.rs"]
mod tests;
