//! What a `KafkaUser` asks of Kafka, decided without I/O: its principal, the ACL bindings its
//! spec means, the difference from the bindings the cluster holds, the Secret a generated
//! password lives in, and where the password comes from.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use krait_acl::{AclBinding, Operation, PatternType, Permission, ResourceType};
use krait_crd::user::{
    AclOperation, AclPatternType, AclPermission, AclResourceType, AclRule, KafkaUser,
};
use kube::{Resource, ResourceExt};

use crate::cluster::listeners::OPERATOR_USER;
use crate::names::MANAGER;

/// Keys of a user's credentials Secret, as Strimzi's: the password, a JAAS line for Kafka's
/// Java clients, and the user name.
pub const USERNAME_KEY: &str = "username";
pub const PASSWORD_KEY: &str = "password";
pub const JAAS_KEY: &str = "sasl.jaas.config";
/// Keys of a `tls` user's Secret: the clients CA's certificate, the user's certificate and key.
pub const CA_CERT_KEY: &str = "ca.crt";
pub const USER_CERT_KEY: &str = "user.crt";
pub const USER_KEY_KEY: &str = "user.key";
/// Label naming the cluster a user's Secret belongs to.
pub const CLUSTER_LABEL: &str = "krait.dev/cluster";

/// Why the user's name cannot be a KafkaUser's, if it cannot: the operator's own user is a
/// super user whose password only the operator holds.
pub fn reserved_name(user: &KafkaUser) -> Option<String> {
    (user.user_name() == OPERATOR_USER)
        .then(|| format!("{OPERATOR_USER} is the operator's own user; choose another userName"))
}

/// `User:<name>`, the principal SCRAM logins of the user get.
pub fn principal(user: &KafkaUser) -> String {
    format!("User:{}", user.user_name())
}

/// The bindings `user`'s spec asks for: one per rule and operation, deduplicated and sorted.
/// Empty when the spec has no `authorization`.
pub fn desired_acls(user: &KafkaUser) -> BTreeSet<AclBinding> {
    let principal = principal(user);
    user.spec
        .authorization
        .iter()
        .flat_map(|a| a.acls.iter())
        .flat_map(|rule| bindings_of(rule, &principal))
        .collect()
}

fn bindings_of(rule: &AclRule, principal: &str) -> Vec<AclBinding> {
    let resource_type = match rule.resource.kind {
        AclResourceType::Topic => ResourceType::Topic,
        AclResourceType::Group => ResourceType::Group,
        AclResourceType::Cluster => ResourceType::Cluster,
        AclResourceType::TransactionalId => ResourceType::TransactionalId,
    };
    let resource_name = match rule.resource.kind {
        AclResourceType::Cluster => krait_acl::CLUSTER_RESOURCE_NAME.to_string(),
        _ => rule.resource.name.clone().unwrap_or_default(),
    };
    let pattern_type = match rule.resource.pattern_type {
        Some(AclPatternType::Prefixed) => PatternType::Prefixed,
        Some(AclPatternType::Literal) | None => PatternType::Literal,
    };
    let permission = match rule.permission {
        AclPermission::Allow => Permission::Allow,
        AclPermission::Deny => Permission::Deny,
    };
    rule.operations
        .iter()
        .map(|op| AclBinding {
            resource_type,
            resource_name: resource_name.clone(),
            pattern_type,
            principal: principal.to_string(),
            host: rule.host.clone().unwrap_or_else(|| "*".into()),
            operation: operation(*op),
            permission,
        })
        .collect()
}

fn operation(op: AclOperation) -> Operation {
    match op {
        AclOperation::All => Operation::All,
        AclOperation::Read => Operation::Read,
        AclOperation::Write => Operation::Write,
        AclOperation::Create => Operation::Create,
        AclOperation::Delete => Operation::Delete,
        AclOperation::Alter => Operation::Alter,
        AclOperation::Describe => Operation::Describe,
        AclOperation::ClusterAction => Operation::ClusterAction,
        AclOperation::DescribeConfigs => Operation::DescribeConfigs,
        AclOperation::AlterConfigs => Operation::AlterConfigs,
        AclOperation::IdempotentWrite => Operation::IdempotentWrite,
    }
}

/// The first binding the brokers would refuse, with Kafka's reason (what the CRD's schema
/// cannot say, such as an empty resource name that slipped past an older schema).
pub fn invalid_acl(desired: &BTreeSet<AclBinding>) -> Option<String> {
    desired
        .iter()
        .find_map(|b| b.validate().err().map(|e| format!("{b}: {}", e.message())))
}

/// What to change so the cluster holds exactly `desired` for the user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclDiff {
    pub create: Vec<AclBinding>,
    pub delete: Vec<AclBinding>,
}

impl AclDiff {
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.delete.is_empty()
    }
}

/// Bindings in `desired` and not in `current` are created; those in `current` and not in
/// `desired` are deleted (the operator owns every ACL of the user's principal).
pub fn diff_acls(desired: &BTreeSet<AclBinding>, current: &[AclBinding]) -> AclDiff {
    let current: BTreeSet<&AclBinding> = current.iter().collect();
    AclDiff {
        create: desired
            .iter()
            .filter(|b| !current.contains(b))
            .cloned()
            .collect(),
        delete: current
            .iter()
            .filter(|b| !desired.contains(**b))
            .map(|b| (*b).clone())
            .collect(),
    }
}

/// What the user authenticates with, or why it has nothing yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A SCRAM password and the `resourceVersion` of the Secret holding it.
    Password { password: String, version: String },
    /// A client certificate, in the user's Secret; when it expires (RFC 3339).
    Certificate { not_after: Option<String> },
    /// Nothing yet: the `Ready` reason and message saying why.
    Missing {
        reason: &'static str,
        message: String,
    },
}

/// Where the user's password is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordRef {
    /// The Secret's name.
    pub secret: String,
    /// The key holding the password.
    pub key: String,
    /// Whether the operator generates the password and owns the Secret.
    pub generated: bool,
}

/// The Secret named by `spec.authentication.password`, or the one the operator generates: the
/// KafkaUser's own name (Strimzi's convention).
pub fn password_ref(user: &KafkaUser) -> PasswordRef {
    match &user.spec.authentication.password {
        Some(source) => PasswordRef {
            secret: source.value_from.secret_key_ref.name.clone(),
            key: source.value_from.secret_key_ref.key.clone(),
            generated: false,
        },
        None => PasswordRef {
            secret: user.name_any(),
            key: PASSWORD_KEY.into(),
            generated: true,
        },
    }
}

/// The credentials Secret of a user whose password the operator generated, owned by the
/// KafkaUser (deleted with it).
pub fn credentials_secret(user: &KafkaUser, password: &str) -> Secret {
    let name = user.user_name();
    user_secret(
        user,
        BTreeMap::from([
            (USERNAME_KEY.to_string(), bytes(name)),
            (PASSWORD_KEY.to_string(), bytes(password)),
            (
                JAAS_KEY.to_string(),
                bytes(&format!(
                    "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{name}\" password=\"{password}\";"
                )),
            ),
        ]),
    )
}

/// The Secret of a `tls` user: its certificate and key, and the clients CA's certificate (as
/// Strimzi's user Secrets hold them), owned by the KafkaUser.
pub fn certificate_secret(user: &KafkaUser, ca_pem: &str, cert_pem: &str, key_pem: &str) -> Secret {
    user_secret(
        user,
        BTreeMap::from([
            (CA_CERT_KEY.to_string(), bytes(ca_pem)),
            (USER_CERT_KEY.to_string(), bytes(cert_pem)),
            (USER_KEY_KEY.to_string(), bytes(key_pem)),
        ]),
    )
}

fn user_secret(user: &KafkaUser, data: BTreeMap<String, ByteString>) -> Secret {
    let labels = BTreeMap::from([
        ("app.kubernetes.io/managed-by".to_string(), MANAGER.into()),
        ("app.kubernetes.io/name".to_string(), "krait".into()),
        ("app.kubernetes.io/component".to_string(), "user".into()),
        (CLUSTER_LABEL.to_string(), user.spec.cluster_ref.clone()),
    ]);
    Secret {
        metadata: ObjectMeta {
            name: Some(user.name_any()),
            namespace: user.namespace(),
            labels: Some(labels),
            owner_references: Some(vec![owner_reference(user)]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".into()),
        data: Some(data),
        ..Secret::default()
    }
}

fn owner_reference(user: &KafkaUser) -> OwnerReference {
    OwnerReference {
        api_version: KafkaUser::api_version(&()).into_owned(),
        kind: KafkaUser::kind(&()).into_owned(),
        name: user.name_any(),
        uid: user.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Whether `secret` is the credentials Secret the operator generated for `user`.
pub fn owned_by(secret: &Secret, user: &KafkaUser) -> bool {
    let uid = user.uid();
    secret
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == KafkaUser::kind(&()) && Some(&o.uid) == uid.as_ref())
}

/// The text under `key` in `secret`, when it is there and UTF-8.
pub fn secret_text(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(key)
        .and_then(|v| String::from_utf8(v.0.clone()).ok())
        .or_else(|| secret.string_data.as_ref()?.get(key).cloned())
}

fn bytes(s: &str) -> ByteString {
    ByteString(s.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(yaml: &str) -> KafkaUser {
        let mut u: KafkaUser = serde_yaml::from_str(yaml).unwrap();
        u.metadata.uid = Some("u1".into());
        u.metadata.namespace = Some("kafka".into());
        u
    }

    const ORDERS_APP: &str = "apiVersion: krait.dev/v1alpha1\nkind: KafkaUser\n\
        metadata: {name: orders-app}\n\
        spec:\n  clusterRef: main\n  authentication: {type: scram-sha-512}\n  authorization:\n    type: simple\n    acls:\n\
        \x20     - resource: {type: topic, name: orders}\n        operations: [Read, Write, Describe]\n\
        \x20     - resource: {type: group, name: orders-, patternType: prefixed}\n        operations: [Read]\n\
        \x20     - resource: {type: cluster}\n        operations: [IdempotentWrite]\n\
        \x20     - resource: {type: topic, name: audit}\n        operations: [Write, Write]\n        host: 10.0.0.1\n        type: deny\n";

    #[test]
    fn each_rule_and_operation_is_one_binding_of_the_users_principal() {
        let u = user(ORDERS_APP);
        assert_eq!(principal(&u), "User:orders-app");
        let acls = desired_acls(&u);
        assert_eq!(acls.len(), 3 + 1 + 1 + 1, "the repeated Write counts once");
        assert!(acls.iter().all(|b| b.principal == "User:orders-app"));
        let cluster = acls
            .iter()
            .find(|b| b.resource_type == ResourceType::Cluster)
            .unwrap();
        assert_eq!(cluster.resource_name, "kafka-cluster");
        assert_eq!(cluster.operation, Operation::IdempotentWrite);
        let group = acls
            .iter()
            .find(|b| b.resource_type == ResourceType::Group)
            .unwrap();
        assert_eq!(
            (group.pattern_type, group.host.as_str()),
            (PatternType::Prefixed, "*")
        );
        let deny = acls
            .iter()
            .find(|b| b.permission == Permission::Deny)
            .unwrap();
        assert_eq!(
            (deny.resource_name.as_str(), deny.host.as_str()),
            ("audit", "10.0.0.1")
        );
        assert_eq!(invalid_acl(&acls), None);
    }

    #[test]
    fn the_operators_own_user_is_reserved() {
        let mut u = user(ORDERS_APP);
        assert_eq!(reserved_name(&u), None);
        u.spec.user_name = Some("krait-operator".into());
        assert!(reserved_name(&u).unwrap().contains("operator's own user"));
    }

    #[test]
    fn no_authorization_means_no_acls() {
        let u = user(
            "apiVersion: krait.dev/v1alpha1\nkind: KafkaUser\nmetadata: {name: a}\n\
             spec: {clusterRef: main, userName: App.One, authentication: {type: scram-sha-512}}\n",
        );
        assert!(desired_acls(&u).is_empty());
        assert_eq!(principal(&u), "User:App.One");
    }

    #[test]
    fn the_diff_adds_what_is_missing_and_removes_what_the_spec_lacks() {
        let u = user(ORDERS_APP);
        let desired = desired_acls(&u);
        let mut current: Vec<AclBinding> = desired.iter().skip(1).cloned().collect();
        let mut stray = current[0].clone();
        stray.operation = Operation::Alter;
        current.push(stray.clone());
        let diff = diff_acls(&desired, &current);
        assert_eq!(diff.create, vec![desired.iter().next().unwrap().clone()]);
        assert_eq!(diff.delete, vec![stray]);
        let all: Vec<AclBinding> = desired.iter().cloned().collect();
        assert!(diff_acls(&desired, &all).is_empty());
    }

    #[test]
    fn an_empty_resource_name_is_refused_with_kafkas_reason() {
        let mut u = user(ORDERS_APP);
        u.spec.authorization.as_mut().unwrap().acls[0].resource.name = Some(String::new());
        let why = invalid_acl(&desired_acls(&u)).expect("refused");
        assert!(why.contains("Invalid empty resource name"), "{why}");
    }

    #[test]
    fn a_generated_password_lives_in_a_secret_owned_by_the_user() {
        let u = user(ORDERS_APP);
        let at = password_ref(&u);
        assert_eq!(
            at,
            PasswordRef {
                secret: "orders-app".into(),
                key: "password".into(),
                generated: true
            }
        );
        let s = credentials_secret(&u, "pw");
        assert!(owned_by(&s, &u));
        assert_eq!(secret_text(&s, PASSWORD_KEY).as_deref(), Some("pw"));
        assert_eq!(secret_text(&s, USERNAME_KEY).as_deref(), Some("orders-app"));
        assert!(
            secret_text(&s, JAAS_KEY)
                .unwrap()
                .contains("username=\"orders-app\" password=\"pw\"")
        );
        assert_eq!(s.metadata.labels.as_ref().unwrap()[CLUSTER_LABEL], "main");
        let mut other = u.clone();
        other.metadata.uid = Some("u2".into());
        assert!(!owned_by(&s, &other), "another incarnation's Secret");
    }

    #[test]
    fn a_named_secret_is_read_not_generated() {
        let u = user(
            "apiVersion: krait.dev/v1alpha1\nkind: KafkaUser\nmetadata: {name: a}\n\
             spec:\n  clusterRef: main\n  authentication:\n    type: scram-sha-512\n    password:\n\
             \x20     valueFrom: {secretKeyRef: {name: app-secret, key: pw}}\n",
        );
        assert_eq!(
            password_ref(&u),
            PasswordRef {
                secret: "app-secret".into(),
                key: "pw".into(),
                generated: false
            }
        );
    }
}
