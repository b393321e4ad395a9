//! Kafka's ACL model (resource types, pattern types, operations, permissions, bindings and
//! the filters DescribeAcls / DeleteAcls match with) and the StandardAuthorizer's decision.
//! Pure: the server keeps the bindings in the replicated metadata and asks `authorize`.

mod acls;
mod authorizer;
mod error;
mod filter;
mod model;

pub use acls::Acls;
pub use authorizer::{Action, AuthorizerConfig, Decision};
pub use error::AclError;
pub use filter::AclBindingFilter;
pub use model::{
    AclBinding, CLUSTER_RESOURCE_NAME, Operation, PatternType, Permission, ResourceType,
    WILDCARD_HOST, WILDCARD_PRINCIPAL, WILDCARD_RESOURCE, parse_principal,
};
