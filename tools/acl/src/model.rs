//! Kafka's ACL vocabulary: the four coded enums (resource type, pattern type, operation,
//! permission), the `AclBinding` a CreateAcls request stores, the checks CreateAcls applies to
//! it, and principal parsing.

use std::fmt;

use crate::AclError;

/// The only name a CLUSTER resource can have (Kafka's `Resource.CLUSTER_NAME`).
pub const CLUSTER_RESOURCE_NAME: &str = "kafka-cluster";
/// A LITERAL resource name that matches every resource of its type.
pub const WILDCARD_RESOURCE: &str = "*";
/// An ACL host that matches every client address.
pub const WILDCARD_HOST: &str = "*";
/// The ACL principal that matches every principal (only the `User` type is a wildcard).
pub const WILDCARD_PRINCIPAL: &str = "User:*";

/// Defines one of Kafka's coded enums: its values with the names Kafka prints and parses, in
/// wire-code order. Kafka numbers these four enums from 0 without gaps, so a value's wire code
/// is its position, and the order of the values below must stay Kafka's.
macro_rules! kafka_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize,
        )]
        #[repr(i8)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in wire-code order.
            pub const VALUES: &'static [$name] = &[$($name::$variant,)+];

            /// The value for a wire code; `None` for a code Kafka does not define.
            pub fn from_code(code: i8) -> Option<Self> {
                let position = usize::try_from(code).ok()?;
                Self::VALUES.get(position).copied()
            }

            /// The wire code.
            pub fn code(self) -> i8 {
                // The discriminants count from 0 in declaration order, as the codes do.
                self as i8
            }

            /// The name Kafka gives the value (`Enum.name()` in Java).
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The value for a name, ignoring ASCII case as Kafka's `fromString` does.
            pub fn from_name(name: &str) -> Option<Self> {
                Self::VALUES.iter().copied().find(|value| value.name().eq_ignore_ascii_case(name))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

kafka_enum! {
    /// The kind of resource an ACL protects (Kafka's `ResourceType`).
    ResourceType {
        /// A code this broker does not understand.
        Unknown => "UNKNOWN",
        /// In a filter: any resource type.
        Any => "ANY",
        /// A topic.
        Topic => "TOPIC",
        /// A consumer group.
        Group => "GROUP",
        /// The cluster itself, always named `kafka-cluster`.
        Cluster => "CLUSTER",
        /// A transactional id.
        TransactionalId => "TRANSACTIONAL_ID",
        /// A delegation token.
        DelegationToken => "DELEGATION_TOKEN",
        /// A user (for delegation tokens created on behalf of another user).
        User => "USER",
    }
}

kafka_enum! {
    /// How an ACL's resource name is read (Kafka's `PatternType`).
    PatternType {
        /// A code this broker does not understand.
        Unknown => "UNKNOWN",
        /// In a filter: any pattern type, names compared exactly.
        Any => "ANY",
        /// In a filter: every pattern that would apply to the filter's name.
        Match => "MATCH",
        /// The name is the resource's name, or `*` for every resource.
        Literal => "LITERAL",
        /// The name is a prefix of the resources' names.
        Prefixed => "PREFIXED",
    }
}

kafka_enum! {
    /// What an ACL allows or denies (Kafka's `AclOperation`).
    Operation {
        /// A code this broker does not understand.
        Unknown => "UNKNOWN",
        /// In a filter: any operation.
        Any => "ANY",
        /// Every operation.
        All => "ALL",
        /// Read.
        Read => "READ",
        /// Write.
        Write => "WRITE",
        /// Create.
        Create => "CREATE",
        /// Delete.
        Delete => "DELETE",
        /// Alter.
        Alter => "ALTER",
        /// Describe.
        Describe => "DESCRIBE",
        /// Inter-broker cluster actions.
        ClusterAction => "CLUSTER_ACTION",
        /// Describe configs.
        DescribeConfigs => "DESCRIBE_CONFIGS",
        /// Alter configs.
        AlterConfigs => "ALTER_CONFIGS",
        /// Idempotent produce.
        IdempotentWrite => "IDEMPOTENT_WRITE",
        /// Create delegation tokens.
        CreateTokens => "CREATE_TOKENS",
        /// Describe delegation tokens.
        DescribeTokens => "DESCRIBE_TOKENS",
    }
}

kafka_enum! {
    /// Whether an ACL allows or denies (Kafka's `AclPermissionType`).
    Permission {
        /// A code this broker does not understand.
        Unknown => "UNKNOWN",
        /// In a filter: either permission.
        Any => "ANY",
        /// Deny; wins over any ALLOW.
        Deny => "DENY",
        /// Allow.
        Allow => "ALLOW",
    }
}

impl ResourceType {
    /// The operations Kafka's authorizer knows for this resource type (Kafka's
    /// `AclEntry.supportedOperations`): what an authorized-operations field may list.
    pub fn supported_operations(self) -> &'static [Operation] {
        use Operation::*;
        match self {
            Self::Topic => &[
                Read,
                Write,
                Create,
                Describe,
                Delete,
                Alter,
                DescribeConfigs,
                AlterConfigs,
            ],
            Self::Group => &[Read, Describe, Delete],
            Self::Cluster => &[
                Create,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
                Alter,
                Describe,
            ],
            Self::TransactionalId => &[Describe, Write],
            Self::DelegationToken => &[Describe],
            Self::User => &[CreateTokens, DescribeTokens],
            Self::Unknown | Self::Any => &[],
        }
    }
}

/// One ACL: Kafka's `AclBinding` (a resource pattern and an access control entry).
///
/// The field order is the sort order, so a set of bindings groups them by resource type
/// and then by resource name, which the authorizer relies on to scan one type only.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct AclBinding {
    /// The kind of resource.
    pub resource_type: ResourceType,
    /// The resource name, prefix, or `*`.
    pub resource_name: String,
    /// LITERAL or PREFIXED once stored.
    pub pattern_type: PatternType,
    /// `Type:name`, e.g. `User:alice`, or `User:*` for everyone.
    pub principal: String,
    /// The client address as text, or `*` for any host.
    pub host: String,
    /// The operation allowed or denied.
    pub operation: Operation,
    /// ALLOW or DENY once stored.
    pub permission: Permission,
}

impl AclBinding {
    /// What CreateAcls refuses, with Kafka's message and in Kafka's order: first the broker's
    /// `AclApis` checks (CLUSTER name, empty name), then the controller's
    /// `AclControlManager.validateNewAcl` (types that cannot be stored), then the principal,
    /// which Kafka parses with `SecurityUtils.parseKafkaPrincipal` before it can match.
    pub fn validate(&self) -> Result<(), AclError> {
        if self.resource_type == ResourceType::Cluster
            && self.resource_name != CLUSTER_RESOURCE_NAME
        {
            return Err(invalid(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_RESOURCE_NAME}"
            )));
        }
        if self.resource_name.is_empty() {
            return Err(invalid("Invalid empty resource name".to_owned()));
        }
        if matches!(
            self.resource_type,
            ResourceType::Unknown | ResourceType::Any
        ) {
            return Err(invalid(format!(
                "Invalid resourceType {}",
                self.resource_type
            )));
        }
        if !matches!(
            self.pattern_type,
            PatternType::Literal | PatternType::Prefixed
        ) {
            return Err(invalid(format!(
                "Invalid patternType {}",
                self.pattern_type
            )));
        }
        if matches!(self.operation, Operation::Unknown | Operation::Any) {
            return Err(invalid(format!("Invalid operation {}", self.operation)));
        }
        if !matches!(self.permission, Permission::Allow | Permission::Deny) {
            return Err(invalid(format!(
                "Invalid permissionType {}",
                self.permission
            )));
        }
        parse_principal(&self.principal).map(|_| ())
    }
}

impl fmt::Display for AclBinding {
    /// Kafka's `AclBinding.toString`, for logs and audit lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "(pattern=ResourcePattern(resourceType={}, name={}, patternType={}), \
             entry=(principal={}, host={}, operation={}, permissionType={}))",
            self.resource_type,
            self.resource_name,
            self.pattern_type,
            self.principal,
            self.host,
            self.operation,
            self.permission
        )
    }
}

/// Splits `Type:name` at the first `:` as Kafka's `SecurityUtils.parseKafkaPrincipal` does.
///
/// Like Kafka, either side may be empty (`User:` parses); only a missing `:` is refused.
pub fn parse_principal(principal: &str) -> Result<(&str, &str), AclError> {
    principal.split_once(':').ok_or_else(|| {
        invalid(format!(
            "expected a string in format principalType:principalName but got {principal}"
        ))
    })
}

fn invalid(message: String) -> AclError {
    AclError::Invalid(message)
}
