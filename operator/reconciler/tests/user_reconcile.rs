//! The user reconciler against a fake API server and an in-memory Kafka: the finalizer, the
//! generated password and its Secret, a password taken from a named Secret and rotated when
//! that Secret changes, ACLs brought to exactly the spec's (drift reverted), the conditions that
//! say what is wrong, and deletion removing the user and its ACLs unless the cluster is gone.

use crate::common;

use std::sync::Arc;

use base64::Engine as _;
use common::access::Scope;
use common::{FakeApi, FakeKafka, context};
use krait_acl::{AclBinding, Operation, PatternType, Permission, ResourceType};
use krait_crd::KafkaUser;
use krait_operator::user::reconcile;
use serde_json::{Value, json};

const CLUSTERS: &str = "/apis/krait.dev/v1alpha1/namespaces/kafka/kafkaclusters";
const USERS: &str = "/apis/krait.dev/v1alpha1/namespaces/kafka/kafkausers";
const SECRETS: &str = "/api/v1/namespaces/kafka/secrets";

fn cluster() -> Value {
    json!({"apiVersion": "krait.dev/v1alpha1", "kind": "KafkaCluster",
        "metadata": {"name": "main", "namespace": "kafka", "uid": "c1", "generation": 1},
        "spec": {"replicas": 3, "image": "krait:1", "storage": {"size": "1Gi"}}})
}

fn user(name: &str, created: &str, spec: Value) -> Value {
    json!({"apiVersion": "krait.dev/v1alpha1", "kind": "KafkaUser",
        "metadata": {"name": name, "namespace": "kafka", "uid": format!("u-{name}"), "generation": 1,
                     "creationTimestamp": created},
        "spec": spec})
}

fn orders_app() -> Value {
    json!({"clusterRef": "main", "authentication": {"type": "scram-sha-512"},
           "authorization": {"type": "simple", "acls": [
               {"resource": {"type": "topic", "name": "orders"}, "operations": ["Read", "Write"]},
               {"resource": {"type": "group", "name": "orders-", "patternType": "prefixed"},
                "operations": ["Read"]}]}})
}

fn setup(users: &[Value]) -> (FakeApi, FakeKafka) {
    let api = FakeApi::default();
    api.put(CLUSTERS, cluster());
    for u in users {
        api.put(USERS, u.clone());
    }
    (api, FakeKafka::default())
}

fn stored(api: &FakeApi, name: &str) -> KafkaUser {
    serde_json::from_value(api.get(USERS, name).expect(name)).unwrap()
}

async fn reconcile_stored(api: &FakeApi, kafka: &FakeKafka, name: &str) {
    reconcile::reconcile(Arc::new(stored(api, name)), context(api, kafka))
        .await
        .unwrap();
}

/// Reconciles until the finalizer is in place and one full pass has run.
async fn settle(api: &FakeApi, kafka: &FakeKafka, name: &str) {
    reconcile_stored(api, kafka, name).await;
    reconcile_stored(api, kafka, name).await;
}

fn ready(api: &FakeApi, name: &str) -> (String, String, String) {
    let c = stored(api, name)
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    (c.status, c.reason, c.message)
}

fn secret_value(api: &FakeApi, name: &str, key: &str) -> String {
    let secret = api.get(SECRETS, name).expect(name);
    let encoded = secret["data"][key].as_str().expect(key);
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap(),
    )
    .unwrap()
}

fn acls_of(kafka: &FakeKafka, principal: &str) -> Vec<(ResourceType, String, Operation)> {
    kafka
        .users
        .acls
        .lock()
        .unwrap()
        .iter()
        .filter(|b| b.principal == principal)
        .map(|b| (b.resource_type, b.resource_name.clone(), b.operation))
        .collect()
}

#[tokio::test]
async fn a_scram_user_gets_a_generated_password_in_its_secret_and_its_acls() {
    let (api, kafka) = setup(&[user("orders-app", "2026-01-01T00:00:00Z", orders_app())]);
    reconcile_stored(&api, &kafka, "orders-app").await;
    assert_eq!(
        stored(&api, "orders-app").metadata.finalizers,
        Some(vec!["krait.dev/user".to_string()]),
        "finalizer first"
    );
    assert!(kafka.users.passwords.lock().unwrap().is_empty());

    reconcile_stored(&api, &kafka, "orders-app").await;
    let password = secret_value(&api, "orders-app", "password");
    assert_eq!(password.len(), 32);
    assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(secret_value(&api, "orders-app", "username"), "orders-app");
    assert!(secret_value(&api, "orders-app", "sasl.jaas.config").contains(&password));
    let secret = api.get(SECRETS, "orders-app").unwrap();
    assert_eq!(
        secret["metadata"]["ownerReferences"][0]["uid"],
        "u-orders-app"
    );
    assert_eq!(
        kafka.users.passwords.lock().unwrap()["orders-app"],
        password
    );
    assert_eq!(
        acls_of(&kafka, "User:orders-app"),
        vec![
            (ResourceType::Topic, "orders".into(), Operation::Read),
            (ResourceType::Topic, "orders".into(), Operation::Write),
            (ResourceType::Group, "orders-".into(), Operation::Read),
        ]
    );
    let status = stored(&api, "orders-app").status.unwrap();
    assert_eq!(status.username.as_deref(), Some("orders-app"));
    assert_eq!(status.secret.as_deref(), Some("orders-app"));
    assert_eq!(
        (status.acls, status.observed_generation),
        (Some(3), Some(1))
    );
    assert_eq!(ready(&api, "orders-app").1, "Synced");
    assert_eq!(api.event_reasons("kafka"), ["Normal Synced"]);

    // Settled: the password is not set again, nothing is written.
    api.take_writes();
    reconcile_stored(&api, &kafka, "orders-app").await;
    assert_eq!(kafka.users.count("set_scram"), 1);
    assert_eq!(
        api.take_writes(),
        Vec::<String>::new(),
        "in sync: no writes"
    );
    assert_eq!(
        secret_value(&api, "orders-app", "password"),
        password,
        "kept"
    );
}

#[tokio::test]
async fn acl_edits_take_effect_and_drift_is_reverted() {
    let (api, kafka) = setup(&[user("orders-app", "2026-01-01T00:00:00Z", orders_app())]);
    settle(&api, &kafka, "orders-app").await;

    // Someone grants the user more behind the operator's back, and removes one of its ACLs.
    let stray = AclBinding {
        resource_type: ResourceType::Topic,
        resource_name: "payments".into(),
        pattern_type: PatternType::Literal,
        principal: "User:orders-app".into(),
        host: "*".into(),
        operation: Operation::Read,
        permission: Permission::Allow,
    };
    {
        let mut acls = kafka.users.acls.lock().unwrap();
        acls.insert(stray.clone());
        acls.retain(|b| b.operation != Operation::Write);
        // Another principal's ACL is not the user's business.
        acls.insert(AclBinding {
            principal: "User:someone-else".into(),
            ..stray.clone()
        });
    }
    reconcile_stored(&api, &kafka, "orders-app").await;
    assert_eq!(
        acls_of(&kafka, "User:orders-app"),
        vec![
            (ResourceType::Topic, "orders".into(), Operation::Read),
            (ResourceType::Topic, "orders".into(), Operation::Write),
            (ResourceType::Group, "orders-".into(), Operation::Read),
        ]
    );
    assert_eq!(acls_of(&kafka, "User:someone-else").len(), 1);

    // The spec changes: Write goes, a deny and the cluster's IdempotentWrite come.
    let mut u = api.get(USERS, "orders-app").unwrap();
    u["spec"]["authorization"]["acls"] = json!([
        {"resource": {"type": "topic", "name": "orders"}, "operations": ["Read"]},
        {"resource": {"type": "topic", "name": "orders"}, "operations": ["Write"], "type": "deny"},
        {"resource": {"type": "cluster"}, "operations": ["IdempotentWrite"]}]);
    u["metadata"]["generation"] = json!(2);
    api.put(USERS, u);
    reconcile_stored(&api, &kafka, "orders-app").await;
    let acls = kafka.users.acls.lock().unwrap().clone();
    let mine: Vec<_> = acls
        .iter()
        .filter(|b| b.principal == "User:orders-app")
        .map(|b| (b.resource_name.as_str(), b.operation, b.permission))
        .collect();
    assert_eq!(
        mine,
        vec![
            ("orders", Operation::Read, Permission::Allow),
            ("orders", Operation::Write, Permission::Deny),
            (
                "kafka-cluster",
                Operation::IdempotentWrite,
                Permission::Allow
            ),
        ]
    );
    let status = stored(&api, "orders-app").status.unwrap();
    assert_eq!(
        (status.acls, status.observed_generation),
        (Some(3), Some(2))
    );
}

#[tokio::test]
async fn a_password_from_a_named_secret_is_set_again_when_the_secret_changes() {
    let spec = json!({"clusterRef": "main", "userName": "billing",
        "authentication": {"type": "scram-sha-512",
            "password": {"valueFrom": {"secretKeyRef": {"name": "billing-pw", "key": "pw"}}}}});
    let (api, kafka) = setup(&[user("billing-user", "2026-01-01T00:00:00Z", spec)]);
    settle(&api, &kafka, "billing-user").await;
    let (status, reason, message) = ready(&api, "billing-user");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "PasswordSecretNotFound")
    );
    assert!(message.contains("billing-pw"), "{message}");
    assert!(kafka.users.passwords.lock().unwrap().is_empty());

    let put_password = |pw: &str| {
        api.put(
            SECRETS,
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": "billing-pw", "namespace": "kafka"},
                   "stringData": {"pw": pw}}),
        );
    };
    put_password("first-password");
    reconcile_stored(&api, &kafka, "billing-user").await;
    assert_eq!(ready(&api, "billing-user").1, "Synced");
    assert_eq!(
        kafka.users.passwords.lock().unwrap()["billing"],
        "first-password"
    );
    assert!(
        api.get(SECRETS, "billing-user").is_none(),
        "nothing generated"
    );
    let status = stored(&api, "billing-user").status.unwrap();
    assert_eq!(
        (status.username.as_deref(), status.secret.as_deref()),
        (Some("billing"), Some("billing-pw"))
    );

    reconcile_stored(&api, &kafka, "billing-user").await;
    assert_eq!(kafka.users.count("set_scram"), 1, "unchanged Secret");
    put_password("rotated-password");
    reconcile_stored(&api, &kafka, "billing-user").await;
    assert_eq!(
        kafka.users.passwords.lock().unwrap()["billing"],
        "rotated-password"
    );
    assert_eq!(kafka.users.count("set_scram"), 2);

    // A credential removed behind the operator's back is put back.
    kafka.users.passwords.lock().unwrap().clear();
    reconcile_stored(&api, &kafka, "billing-user").await;
    assert_eq!(
        kafka.users.passwords.lock().unwrap()["billing"],
        "rotated-password"
    );
}

#[tokio::test]
async fn a_secret_of_the_same_name_made_by_someone_else_is_never_taken_over() {
    let (api, kafka) = setup(&[user("orders-app", "2026-01-01T00:00:00Z", orders_app())]);
    api.put(
        SECRETS,
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "orders-app", "namespace": "kafka"},
               "stringData": {"password": "not-the-operators"}}),
    );
    settle(&api, &kafka, "orders-app").await;
    let (status, reason, _) = ready(&api, "orders-app");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "SecretConflict")
    );
    assert!(kafka.users.passwords.lock().unwrap().is_empty());
    assert_eq!(
        secret_value(&api, "orders-app", "password"),
        "not-the-operators"
    );
}

#[tokio::test]
async fn two_users_with_one_kafka_name_the_oldest_wins() {
    let mut copy = orders_app();
    copy["userName"] = json!("orders-app");
    let (api, kafka) = setup(&[
        user("orders-app", "2026-01-01T00:00:00Z", orders_app()),
        user("orders-copy", "2026-01-02T00:00:00Z", copy),
    ]);
    settle(&api, &kafka, "orders-app").await;
    settle(&api, &kafka, "orders-copy").await;
    let (_, reason, message) = ready(&api, "orders-copy");
    assert_eq!(reason, "UserNameConflict");
    assert!(message.contains("orders-app"), "{message}");
    assert!(
        api.get(SECRETS, "orders-copy").is_none(),
        "no password made"
    );

    // Deleting the loser must not remove the winner's user.
    api.delete_stored(USERS, "orders-copy");
    reconcile_stored(&api, &kafka, "orders-copy").await;
    assert!(
        api.get(USERS, "orders-copy").is_none(),
        "finalizer released"
    );
    assert!(
        kafka
            .users
            .passwords
            .lock()
            .unwrap()
            .contains_key("orders-app")
    );
    assert_eq!(acls_of(&kafka, "User:orders-app").len(), 3);
}

#[tokio::test]
async fn deleting_the_user_removes_its_credential_and_acls() {
    let (api, kafka) = setup(&[user("orders-app", "2026-01-01T00:00:00Z", orders_app())]);
    settle(&api, &kafka, "orders-app").await;
    api.delete_stored(USERS, "orders-app");
    reconcile_stored(&api, &kafka, "orders-app").await;
    assert!(kafka.users.passwords.lock().unwrap().is_empty());
    assert!(acls_of(&kafka, "User:orders-app").is_empty());
    assert!(api.get(USERS, "orders-app").is_none());
    api.check_accesses("user_lifecycle", Scope::Namespaced);
}

#[tokio::test]
async fn the_finalizer_goes_when_the_cluster_is_gone_or_being_deleted() {
    for case in ["gone", "deleting"] {
        let (api, kafka) = setup(&[user("orders-app", "2026-01-01T00:00:00Z", orders_app())]);
        settle(&api, &kafka, "orders-app").await;
        kafka.users.calls.lock().unwrap().clear();
        match case {
            "gone" => drop(api.delete_stored(CLUSTERS, "main")),
            _ => {
                let mut c = cluster();
                c["metadata"]["deletionTimestamp"] = json!("2026-01-03T00:00:00Z");
                c["metadata"]["finalizers"] = json!(["example.com/hold"]);
                api.put(CLUSTERS, c);
            }
        }
        api.delete_stored(USERS, "orders-app");
        reconcile_stored(&api, &kafka, "orders-app").await;
        assert!(api.get(USERS, "orders-app").is_none(), "{case}: released");
        assert_eq!(
            kafka.users.count("delete_scram"),
            0,
            "{case}: no Kafka call"
        );
    }
}

#[tokio::test]
async fn a_user_of_a_missing_cluster_waits_with_a_condition() {
    let (api, kafka) = setup(&[]);
    let mut spec = orders_app();
    spec["clusterRef"] = json!("absent");
    api.put(USERS, user("orders-app", "2026-01-01T00:00:00Z", spec));
    settle(&api, &kafka, "orders-app").await;
    let (status, reason, message) = ready(&api, "orders-app");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "ClusterNotFound")
    );
    assert!(message.contains("absent"), "{message}");
    assert!(api.get(SECRETS, "orders-app").is_none());
}

#[tokio::test]
async fn the_operators_own_user_name_is_refused_and_never_removed() {
    let mut spec = orders_app();
    spec["userName"] = json!("krait-operator");
    let (api, kafka) = setup(&[user("sneaky", "2026-01-01T00:00:00Z", spec)]);
    kafka
        .users
        .passwords
        .lock()
        .unwrap()
        .insert("krait-operator".into(), "the-operators".into());
    settle(&api, &kafka, "sneaky").await;
    let (status, reason, _) = ready(&api, "sneaky");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "ReservedUserName")
    );
    api.delete_stored(USERS, "sneaky");
    reconcile_stored(&api, &kafka, "sneaky").await;
    assert!(api.get(USERS, "sneaky").is_none());
    assert_eq!(
        kafka.users.passwords.lock().unwrap()["krait-operator"],
        "the-operators"
    );
    assert_eq!(kafka.users.count("set_scram"), 0);
}

fn clients_ca_secret(api: &FakeApi) -> String {
    use base64::engine::general_purpose::STANDARD;
    let names = krait_operator::names::ClusterNames::new("main", "kafka");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let ca = krait_operator::cluster::pki::clients::new_clients_ca(&names, 0, now, 365).unwrap();
    api.put(
        SECRETS,
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "main-clients-ca", "namespace": "kafka"},
               "data": {"ca.crt": STANDARD.encode(&ca.cert_pem),
                        "ca.key": STANDARD.encode(&ca.key_pem)}}),
    );
    ca.cert_pem
}

fn tls_app() -> Value {
    json!({"clusterRef": "main", "authentication": {"type": "tls"},
           "authorization": {"type": "simple", "acls": [
               {"resource": {"type": "topic", "name": "orders"}, "operations": ["Write"]}]}})
}

#[tokio::test]
async fn a_tls_user_gets_a_certificate_from_the_clients_ca_and_no_password() {
    let (api, kafka) = setup(&[user("tls-app", "2026-01-01T00:00:00Z", tls_app())]);
    settle(&api, &kafka, "tls-app").await;
    let (status, reason, message) = ready(&api, "tls-app");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "ClientsCaNotFound")
    );
    assert!(message.contains("authentication type tls"), "{message}");

    let ca = clients_ca_secret(&api);
    // A password left from when the user was a SCRAM user goes.
    kafka
        .users
        .passwords
        .lock()
        .unwrap()
        .insert("tls-app".into(), "old".into());
    reconcile_stored(&api, &kafka, "tls-app").await;
    assert_eq!(ready(&api, "tls-app").1, "Synced");
    assert_eq!(secret_value(&api, "tls-app", "ca.crt"), ca);
    let cert = secret_value(&api, "tls-app", "user.crt");
    let info = krait_operator::cluster::pki::clients::certificate_info(&cert).unwrap();
    assert_eq!(info.common_name.as_deref(), Some("tls-app"));
    assert!(secret_value(&api, "tls-app", "user.key").contains("PRIVATE KEY"));
    assert!(kafka.users.passwords.lock().unwrap().is_empty());
    assert_eq!(acls_of(&kafka, "User:tls-app").len(), 1);
    let status = stored(&api, "tls-app").status.unwrap();
    assert_eq!(status.secret.as_deref(), Some("tls-app"));
    assert!(status.certificate_not_after.is_some());
    assert_eq!(status.password_secret_version, None);

    // Settled: the certificate is kept.
    api.take_writes();
    reconcile_stored(&api, &kafka, "tls-app").await;
    assert_eq!(
        api.take_writes(),
        Vec::<String>::new(),
        "in sync: no writes"
    );
    assert_eq!(secret_value(&api, "tls-app", "user.crt"), cert);

    // A new clients CA: the certificate is issued again by it.
    let new_ca = clients_ca_secret(&api);
    reconcile_stored(&api, &kafka, "tls-app").await;
    assert_eq!(secret_value(&api, "tls-app", "ca.crt"), new_ca);
    assert_ne!(secret_value(&api, "tls-app", "user.crt"), cert);
}
