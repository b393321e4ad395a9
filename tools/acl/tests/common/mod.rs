//! Shared test vocabulary: terse binding / action builders and a serde round trip.

#![allow(dead_code)]

use krait_acl::{
    AclBinding, Action, AuthorizerConfig, Operation, PatternType, Permission, ResourceType,
};

pub const ALICE: &str = "User:alice";
pub const BOB: &str = "User:bob";
pub const ALICE_HOST: &str = "10.0.0.1";

/// A binding with host `*`.
pub fn acl(
    permission: Permission,
    principal: &str,
    operation: Operation,
    resource_type: ResourceType,
    pattern_type: PatternType,
    resource_name: &str,
) -> AclBinding {
    AclBinding {
        resource_type,
        resource_name: resource_name.to_owned(),
        pattern_type,
        principal: principal.to_owned(),
        host: "*".to_owned(),
        operation,
        permission,
    }
}

/// ALLOW on a literal topic, any host.
pub fn allow_topic(principal: &str, operation: Operation, topic: &str) -> AclBinding {
    acl(
        Permission::Allow,
        principal,
        operation,
        ResourceType::Topic,
        PatternType::Literal,
        topic,
    )
}

/// DENY on a literal topic, any host.
pub fn deny_topic(principal: &str, operation: Operation, topic: &str) -> AclBinding {
    AclBinding {
        permission: Permission::Deny,
        ..allow_topic(principal, operation, topic)
    }
}

/// ALLOW on a literal group, any host.
pub fn allow_group(principal: &str, operation: Operation, group: &str) -> AclBinding {
    AclBinding {
        resource_type: ResourceType::Group,
        ..allow_topic(principal, operation, group)
    }
}

/// `binding` with its resource name read as a prefix (a PREFIXED pattern).
pub fn prefixed_pattern(binding: AclBinding) -> AclBinding {
    AclBinding {
        pattern_type: PatternType::Prefixed,
        ..binding
    }
}

/// A question from `principal` at `ALICE_HOST` about a topic.
pub fn on_topic<'a>(principal: &'a str, operation: Operation, topic: &'a str) -> Action<'a> {
    Action {
        principal,
        host: ALICE_HOST,
        operation,
        resource_type: ResourceType::Topic,
        resource_name: topic,
    }
}

/// Deny-by-default, no super users.
pub fn strict() -> AuthorizerConfig {
    AuthorizerConfig::default()
}

/// Allow when no ACL applies to the resource.
pub fn permissive() -> AuthorizerConfig {
    AuthorizerConfig {
        allow_everyone_if_no_acl_found: true,
        ..AuthorizerConfig::default()
    }
}

/// Through JSON and back, as the metadata log and its snapshots carry ACLs.
pub fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned>(value: &T) -> T {
    serde_json::from_str(&serde_json::to_string(value).expect("serialize")).expect("deserialize")
}
