//! The filter DescribeAcls and DeleteAcls select bindings with: Kafka's `AclBindingFilter`
//! (a `ResourcePatternFilter` and an `AccessControlEntryFilter`) and what those requests refuse.

use crate::AclError;
use crate::model::{
    AclBinding, Operation, PatternType, Permission, ResourceType, WILDCARD_RESOURCE,
};

/// A DescribeAcls / DeleteAcls filter. `None` names, principals and hosts match anything;
/// `Any` types match any value; pattern type `Match` selects the patterns that would apply
/// to `resource_name` (the literal name, the literal `*`, and every prefix of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclBindingFilter {
    /// A resource type, or `Any`.
    pub resource_type: ResourceType,
    /// A resource name, or `None` for any.
    pub resource_name: Option<String>,
    /// A pattern type, `Any`, or `Match`.
    pub pattern_type: PatternType,
    /// A principal (`User:*` matches only the wildcard ACLs), or `None` for any.
    pub principal: Option<String>,
    /// A host (`*` matches only the any-host ACLs), or `None` for any.
    pub host: Option<String>,
    /// An operation, or `Any`.
    pub operation: Operation,
    /// A permission, or `Any`.
    pub permission: Permission,
}

impl AclBindingFilter {
    /// The filter that matches every binding (Kafka's `AclBindingFilter.ANY`).
    pub const ANY: AclBindingFilter = AclBindingFilter {
        resource_type: ResourceType::Any,
        resource_name: None,
        pattern_type: PatternType::Any,
        principal: None,
        host: None,
        operation: Operation::Any,
        permission: Permission::Any,
    };

    /// Whether the filter selects `binding`.
    pub fn matches(&self, binding: &AclBinding) -> bool {
        self.matches_pattern(binding) && self.matches_entry(binding)
    }

    /// What DescribeAcls / DeleteAcls refuse: a filter with UNKNOWN parts, which would
    /// match nothing a client meant (the messages are `AclControlManager.validateFilter`'s).
    pub fn validate(&self) -> Result<(), AclError> {
        if self.resource_type == ResourceType::Unknown || self.pattern_type == PatternType::Unknown
        {
            return Err(AclError::Invalid("Unknown patternFilter.".to_owned()));
        }
        if self.operation == Operation::Unknown || self.permission == Permission::Unknown {
            return Err(AclError::Invalid("Unknown entryFilter.".to_owned()));
        }
        Ok(())
    }

    /// Kafka's `ResourcePatternFilter.matches`.
    fn matches_pattern(&self, binding: &AclBinding) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != binding.resource_type {
            return false;
        }
        let any_or_match = matches!(self.pattern_type, PatternType::Any | PatternType::Match);
        if !any_or_match && self.pattern_type != binding.pattern_type {
            return false;
        }
        let Some(name) = &self.resource_name else {
            return true;
        };
        // ANY and an exact pattern type compare names exactly: `*` then finds only the
        // wildcard ACLs, as `kafka-acls --list --topic '*'` shows them.
        if self.pattern_type != PatternType::Match {
            return *name == binding.resource_name;
        }
        match binding.pattern_type {
            PatternType::Literal => {
                *name == binding.resource_name || binding.resource_name == WILDCARD_RESOURCE
            }
            PatternType::Prefixed => name.starts_with(binding.resource_name.as_str()),
            // Kafka throws here; a stored binding is never anything else, so match nothing.
            _ => false,
        }
    }

    /// Kafka's `AccessControlEntryFilter.matches`: exact values, no wildcard expansion.
    fn matches_entry(&self, binding: &AclBinding) -> bool {
        self.principal
            .as_ref()
            .is_none_or(|principal| *principal == binding.principal)
            && self.host.as_ref().is_none_or(|host| *host == binding.host)
            && (self.operation == Operation::Any || self.operation == binding.operation)
            && (self.permission == Permission::Any || self.permission == binding.permission)
    }
}

impl From<&AclBinding> for AclBindingFilter {
    /// The filter that selects exactly `binding` (what a client sends to delete one ACL).
    fn from(binding: &AclBinding) -> Self {
        AclBindingFilter {
            resource_type: binding.resource_type,
            resource_name: Some(binding.resource_name.clone()),
            pattern_type: binding.pattern_type,
            principal: Some(binding.principal.clone()),
            host: Some(binding.host.clone()),
            operation: binding.operation,
            permission: binding.permission,
        }
    }
}

impl Default for AclBindingFilter {
    /// The filter that matches every binding.
    fn default() -> Self {
        AclBindingFilter::ANY
    }
}
