//! `KafkaUser` (krait.dev/v1alpha1): one Kafka user of a `KafkaCluster` in the same namespace,
//! with how it authenticates and what its ACLs allow, in Strimzi's shape. Types and schema
//! only; the operator decides how a spec maps onto the Kafka admin protocol.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A Kafka user: its SCRAM credentials and its ACLs, kept in the cluster's metadata through
/// the Kafka admin protocol.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "krait.dev",
    version = "v1alpha1",
    kind = "KafkaUser",
    namespaced,
    status = "KafkaUserStatus",
    shortname = "ku",
    category = "krait",
    printcolumn = r#"{"name":"Cluster","type":"string","jsonPath":".spec.clusterRef"}"#,
    printcolumn = r#"{"name":"Authentication","type":"string","jsonPath":".spec.authentication.type"}"#,
    printcolumn = r#"{"name":"User","type":"string","jsonPath":".status.username"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(
    validation = Rule::new("has(self.userName) == has(oldSelf.userName)")
        .message("userName cannot be added or removed: the Kafka user name is fixed")
)]
#[serde(rename_all = "camelCase")]
pub struct KafkaUserSpec {
    /// Name of the `KafkaCluster` (same namespace) the user belongs to. Immutable: a user does
    /// not move between clusters.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("clusterRef is immutable"))]
    pub cluster_ref: String,

    /// The user's name in Kafka (its principal is `User:<userName>`); `metadata.name` when
    /// absent. Immutable: renaming would leave the old user and its ACLs behind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[a-zA-Z0-9._@-]+$"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("userName is immutable"))]
    pub user_name: Option<String>,

    /// How the user proves who it is.
    pub authentication: UserAuthentication,

    /// What the user may do; no ACLs for it when absent (under `simple` authorization the user
    /// may then do nothing but what `User:*` ACLs allow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<UserAuthorization>,
}

/// `spec.authentication`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(
    validation = Rule::new("self.type == 'scram-sha-512' || !has(self.password)")
        .message("password applies to scram-sha-512 users only")
)]
#[serde(rename_all = "camelCase")]
pub struct UserAuthentication {
    /// `scram-sha-512`: SASL SCRAM-SHA-512 with a password, generated into a Secret named
    /// after the KafkaUser unless `password` names one. `tls`: a client certificate and key
    /// in a Secret named after the KafkaUser (`user.crt`, `user.key`, and the clients CA's
    /// `ca.crt`), renewed before it expires.
    #[serde(rename = "type")]
    pub kind: UserAuthenticationType,

    /// The password, taken from a Secret the user manages; a change of that Secret changes the
    /// password in Kafka. Generated (32 letters and digits) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<PasswordSource>,
}

/// Authentication a KafkaUser can have.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum UserAuthenticationType {
    #[serde(rename = "scram-sha-512")]
    ScramSha512,
    /// A client certificate (CN = the user name) signed by the cluster's clients CA, for
    /// listeners with `authentication.type: tls`.
    #[serde(rename = "tls")]
    Tls,
}

/// `spec.authentication.password`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordSource {
    pub value_from: PasswordValueFrom,
}

/// Where the password is.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordValueFrom {
    pub secret_key_ref: SecretKeyRef,
}

/// A key of a Secret in the KafkaUser's namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// `spec.authorization`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserAuthorization {
    /// `simple`: ACLs for the brokers' StandardAuthorizer.
    #[serde(rename = "type")]
    pub kind: UserAuthorizationType,

    /// The user's ACLs. The operator owns every ACL of the user's principal: ones not listed
    /// here are removed.
    #[serde(default)]
    pub acls: Vec<AclRule>,
}

/// Authorization a KafkaUser can have.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UserAuthorizationType {
    Simple,
}

/// One ACL rule: a resource, the operations and whether they are allowed or denied.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AclRule {
    pub resource: AclResource,

    /// Operations allowed (or denied) on the resource.
    #[schemars(length(min = 1))]
    pub operations: Vec<AclOperation>,

    /// The client address the rule applies to; `*` (any host) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub host: Option<String>,

    /// `allow` (the default) or `deny`; a deny wins over any allow.
    #[serde(default, rename = "type")]
    pub permission: AclPermission,
}

/// The resource of an ACL rule.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(
    validation = Rule::new("self.type == 'cluster' || (has(self.name) && size(self.name) > 0)")
        .message("a topic, group or transactionalId resource needs a name"),
    validation = Rule::new("self.type != 'cluster' || !has(self.name) || self.name == 'kafka-cluster'")
        .message("the cluster resource is named kafka-cluster (or left unnamed)"),
    validation = Rule::new("self.type != 'cluster' || !has(self.patternType) || self.patternType == 'literal'")
        .message("the cluster resource takes the literal pattern type only")
)]
#[serde(rename_all = "camelCase")]
pub struct AclResource {
    #[serde(rename = "type")]
    pub kind: AclResourceType,

    /// The resource's name, a prefix of names (`patternType: prefixed`), or `*` for every
    /// resource of the type. Not set for `cluster`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub name: Option<String>,

    /// `literal` (the default) or `prefixed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern_type: Option<AclPatternType>,
}

/// Resource types an ACL rule can name.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AclResourceType {
    Topic,
    Group,
    Cluster,
    TransactionalId,
}

/// How a rule's resource name is read.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AclPatternType {
    Literal,
    Prefixed,
}

/// Operations, with Kafka's names.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum AclOperation {
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
}

/// Whether a rule allows or denies.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AclPermission {
    #[default]
    Allow,
    Deny,
}

impl KafkaUser {
    /// The user's name in Kafka.
    pub fn user_name(&self) -> &str {
        self.spec
            .user_name
            .as_deref()
            .or(self.metadata.name.as_deref())
            .unwrap_or_default()
    }
}

/// What the operator last observed and did.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaUserStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready` (with reasons such as `Synced`, `ClusterNotFound`, `PasswordSecretNotFound`,
    /// `InvalidAcl`, `UserNameConflict`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// The user's name in Kafka.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,

    /// The Secret holding the user's credentials: the generated one, or the one
    /// `spec.authentication.password` names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,

    /// The `resourceVersion` of the password's Secret when the password was last set in Kafka:
    /// a different one means the password may have changed, and it is set again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_version: Option<String>,

    /// For a `tls` user: when its certificate expires (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_not_after: Option<String>,

    /// ACLs of the user in Kafka after the last reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acls: Option<i32>,
}
