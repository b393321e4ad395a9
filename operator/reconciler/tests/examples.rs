//! The resources in `examples/` deserialize into the Rust types and pass the operator's own
//! validation, so the documented examples are ones the operator accepts.

use std::path::PathBuf;

use krait_crd::{KafkaCluster, KafkaTopic, KafkaUser};
use krait_operator::cluster::validate::validate;
use krait_operator::user::plan::{desired_acls, invalid_acl, password_ref};
use serde::Deserialize;

fn documents(file: &str) -> Vec<serde_yaml::Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde_yaml::Value::deserialize(d).unwrap())
        .collect()
}

#[test]
fn example_cluster_is_valid_and_has_three_brokers() {
    let docs = documents("kafkacluster.yaml");
    let cluster: KafkaCluster = serde_yaml::from_value(docs[0].clone()).unwrap();
    let validated = validate(&cluster).expect("the example validates");
    assert_eq!(validated.spec.replicas, 3);
}

#[test]
fn example_topics_reference_the_example_cluster() {
    let topics: Vec<KafkaTopic> = documents("kafkatopics.yaml")
        .into_iter()
        .map(|d| serde_yaml::from_value(d).unwrap())
        .collect();
    assert!(topics.len() >= 2);
    assert!(topics.iter().all(|t| t.spec.cluster_ref == "main"));
    assert!(
        topics
            .iter()
            .any(|t| t.topic_name() == "payments.events_v1")
    );
}

#[test]
fn example_users_reference_the_example_cluster_and_map_to_valid_acls() {
    let users: Vec<KafkaUser> = documents("kafkausers.yaml")
        .into_iter()
        .filter(|d| d["kind"] == "KafkaUser")
        .map(|d| serde_yaml::from_value(d).unwrap())
        .collect();
    assert_eq!(users.len(), 3);
    for user in &users {
        assert_eq!(user.spec.cluster_ref, "main");
        let acls = desired_acls(user);
        assert!(!acls.is_empty());
        assert_eq!(invalid_acl(&acls), None, "{}", user.user_name());
    }
    let named = password_ref(&users[1]);
    assert_eq!(
        (named.secret.as_str(), named.generated),
        ("analytics-password", false)
    );
}

#[test]
fn example_cert_manager_cluster_names_the_issuer_its_file_makes() {
    let docs = documents("cert-manager/kafkacluster.yaml");
    let cluster: KafkaCluster = docs
        .iter()
        .find(|d| d["kind"] == "KafkaCluster")
        .map(|d| serde_yaml::from_value(d.clone()).unwrap())
        .unwrap();
    let validated = validate(&cluster).expect("the example validates");
    let issuer = validated
        .spec
        .cluster_ca
        .issuer_ref
        .clone()
        .expect("an issuerRef");
    assert!(
        docs.iter().any(|d| d["kind"] == issuer.kind.as_str()
            && d["apiVersion"] == "cert-manager.io/v1"
            && d["metadata"]["name"] == issuer.name.as_str()
            && d["spec"]["ca"].is_mapping()),
        "the file makes the CA issuer {issuer:?}"
    );
    assert_eq!(issuer.group, "cert-manager.io");
}
