//! Kafka's StandardAuthorizer decision over an `Acls` set: super users, the ACLs whose
//! pattern applies to the resource, DENY over ALLOW, implied DESCRIBE / DESCRIBE_CONFIGS,
//! and the `allow.everyone.if.no.acl.found` default.

use std::collections::BTreeSet;

use crate::AclError;
use crate::acls::Acls;
use crate::model::{
    AclBinding, Operation, PatternType, Permission, ResourceType, WILDCARD_HOST,
    WILDCARD_PRINCIPAL, WILDCARD_RESOURCE, parse_principal,
};

/// The authorizer's static configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerConfig {
    /// `super.users`: principals (`User:admin`) allowed everything, whatever the ACLs say.
    pub super_users: BTreeSet<String>,
    /// `allow.everyone.if.no.acl.found`: allow when no ACL's pattern applies to the resource.
    pub allow_everyone_if_no_acl_found: bool,
}

impl AuthorizerConfig {
    /// Kafka's `super.users` value: `User:a;User:b`, semicolon-separated, each trimmed,
    /// empty entries skipped. Entries are kept as written; see `try_parse_super_users`.
    pub fn parse_super_users(value: &str) -> BTreeSet<String> {
        value
            .split(';')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// `parse_super_users`, refusing an entry that is not `Type:name` as Kafka's
    /// StandardAuthorizer does when it reads the configuration.
    pub fn try_parse_super_users(value: &str) -> Result<BTreeSet<String>, AclError> {
        let users = Self::parse_super_users(value);
        for user in &users {
            parse_principal(user)?;
        }
        Ok(users)
    }
}

/// Who asks for what: one authorization question, always about a literal resource name.
#[derive(Debug, Clone, Copy)]
pub struct Action<'a> {
    /// The session's principal, `Type:name` (e.g. `User:alice`).
    pub principal: &'a str,
    /// The client's address as text, compared exactly with the ACL hosts.
    pub host: &'a str,
    /// The operation asked for.
    pub operation: Operation,
    /// The kind of resource.
    pub resource_type: ResourceType,
    /// The resource's name (`kafka-cluster` for the cluster).
    pub resource_name: &'a str,
}

/// Why the authorizer answered as it did (Kafka's `MatchingRule`), for audit logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision<'a> {
    /// The principal is a super user: allowed.
    SuperUser,
    /// A DENY ACL applies: denied, whatever ALLOW ACLs say.
    Denied(&'a AclBinding),
    /// An ALLOW ACL applies and no DENY does: allowed.
    Allowed(&'a AclBinding),
    /// No ACL's pattern applies to the resource: `allow.everyone.if.no.acl.found` decides.
    NoAclFound {
        /// The configured default.
        allowed: bool,
    },
    /// ACLs exist for the resource but none applies to this principal, host and operation.
    NoMatchingAcl,
}

impl Decision<'_> {
    /// Whether the action is allowed.
    pub fn is_allowed(&self) -> bool {
        match self {
            Decision::SuperUser | Decision::Allowed(_) => true,
            Decision::NoAclFound { allowed } => *allowed,
            Decision::Denied(_) | Decision::NoMatchingAcl => false,
        }
    }
}

impl Acls {
    /// StandardAuthorizer's answer: whether `action` is allowed.
    pub fn authorize(&self, config: &AuthorizerConfig, action: &Action<'_>) -> bool {
        self.decide(config, action).is_allowed()
    }

    /// StandardAuthorizer's answer with the rule that produced it.
    pub fn decide<'a>(&'a self, config: &AuthorizerConfig, action: &Action<'_>) -> Decision<'a> {
        if config.super_users.contains(action.principal) {
            return Decision::SuperUser;
        }
        let mut resource_has_acls = false;
        let mut allowed_by = None;
        for binding in self.of_resource_type(action.resource_type) {
            if !pattern_applies(binding, action.resource_name) {
                continue;
            }
            // Any ACL on the resource, for whoever and whatever, disables the
            // no-ACL default: Kafka's `hasResourceAcls`.
            resource_has_acls = true;
            match entry_applies(binding, action) {
                Some(Permission::Deny) => return Decision::Denied(binding),
                Some(_) => allowed_by = allowed_by.or(Some(binding)),
                None => {}
            }
        }
        match allowed_by {
            Some(binding) => Decision::Allowed(binding),
            None if resource_has_acls => Decision::NoMatchingAcl,
            None => Decision::NoAclFound {
                allowed: config.allow_everyone_if_no_acl_found,
            },
        }
    }
}

/// Whether the binding's resource pattern covers the literal resource `name`.
fn pattern_applies(binding: &AclBinding, name: &str) -> bool {
    match binding.pattern_type {
        PatternType::Literal => {
            binding.resource_name == name || binding.resource_name == WILDCARD_RESOURCE
        }
        PatternType::Prefixed => name.starts_with(binding.resource_name.as_str()),
        _ => false,
    }
}

/// Kafka's `StandardAuthorizerData.findResult`: the binding's permission when its principal,
/// host and operation apply to the action, `None` when they do not.
fn entry_applies(binding: &AclBinding, action: &Action<'_>) -> Option<Permission> {
    if binding.principal != action.principal && binding.principal != WILDCARD_PRINCIPAL {
        return None;
    }
    if binding.host != WILDCARD_HOST && binding.host != action.host {
        return None;
    }
    if binding.operation != Operation::All && !operation_applies(binding, action.operation) {
        return None;
    }
    Some(binding.permission)
}

/// Whether a non-ALL binding's operation covers the asked one. Implication only widens
/// ALLOWs: an ALLOW of READ lets a client DESCRIBE, but a DENY of READ does not stop it.
fn operation_applies(binding: &AclBinding, asked: Operation) -> bool {
    if binding.permission != Permission::Allow {
        return binding.operation == asked;
    }
    match asked {
        Operation::Describe => matches!(
            binding.operation,
            Operation::Describe
                | Operation::Read
                | Operation::Write
                | Operation::Delete
                | Operation::Alter
        ),
        Operation::DescribeConfigs => matches!(
            binding.operation,
            Operation::DescribeConfigs | Operation::AlterConfigs
        ),
        _ => binding.operation == asked,
    }
}
