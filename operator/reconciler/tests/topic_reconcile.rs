//! The Kubernetes side of the topic reconciler against a fake API server and an in-memory
//! Kafka: finalizer, creation claim, shrink refusal, name conflicts, and deletion rules.

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::access::Scope;
use common::{FakeApi, FakeKafka, context};
use krait_crd::KafkaTopic;
use krait_operator::kafka::ObservedTopic;
use krait_operator::topic::reconcile;
use serde_json::{Value, json};

const CLUSTERS: &str = "/apis/krait.dev/v1alpha1/namespaces/kafka/kafkaclusters";
const TOPICS: &str = "/apis/krait.dev/v1alpha1/namespaces/kafka/kafkatopics";

fn cluster() -> Value {
    json!({"apiVersion": "krait.dev/v1alpha1", "kind": "KafkaCluster",
        "metadata": {"name": "main", "namespace": "kafka", "uid": "c1", "generation": 1},
        "spec": {"replicas": 3, "image": "krait:1", "storage": {"size": "1Gi"}}})
}

fn topic(name: &str, created: &str, spec: Value) -> Value {
    json!({"apiVersion": "krait.dev/v1alpha1", "kind": "KafkaTopic",
        "metadata": {"name": name, "namespace": "kafka", "uid": format!("t-{name}"), "generation": 1,
                     "creationTimestamp": created},
        "spec": spec})
}

fn setup(topics: &[Value]) -> (FakeApi, FakeKafka) {
    let api = FakeApi::default();
    api.put(CLUSTERS, cluster());
    for t in topics {
        api.put(TOPICS, t.clone());
    }
    (api, FakeKafka::default())
}

fn stored(api: &FakeApi, name: &str) -> KafkaTopic {
    serde_json::from_value(api.get(TOPICS, name).expect(name)).unwrap()
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
    let t = stored(api, name);
    let c = t
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    (c.status, c.reason, c.message)
}

fn spec(partitions: i32) -> Value {
    json!({"clusterRef": "main", "topicName": "orders", "partitions": partitions,
           "config": {"retention.ms": "60000"}, "deletionPolicy": "Delete"})
}

#[tokio::test]
async fn a_new_topic_gets_a_finalizer_then_is_created_and_claimed() {
    let (api, kafka) = setup(&[topic("orders", "2026-01-01T00:00:00Z", spec(3))]);
    reconcile_stored(&api, &kafka, "orders").await;
    assert_eq!(
        api.take_writes(),
        vec!["PATCH kafkatopics/orders"],
        "finalizer first"
    );
    assert_eq!(
        stored(&api, "orders").metadata.finalizers,
        Some(vec!["krait.dev/topic".to_string()])
    );
    assert!(kafka.topics.lock().unwrap().is_empty());

    reconcile_stored(&api, &kafka, "orders").await;
    let created = kafka.topics.lock().unwrap()["orders"].clone();
    assert_eq!(created.partitions, 3);
    assert_eq!(created.overrides["retention.ms"], "60000");
    let status = stored(&api, "orders").status.unwrap();
    assert!(status.created_by_operator);
    assert_eq!(
        (
            status.partitions,
            status.replication_factor,
            status.observed_generation
        ),
        (Some(3), Some(1), Some(1))
    );
    assert_eq!(status.topic_id.as_deref(), Some("id-orders"));
    assert_eq!(ready(&api, "orders").1, "Synced");
    assert_eq!(api.event_reasons("kafka"), ["Normal Synced"]);
    assert_eq!(api.events("kafka")[0].regarding, "orders");

    api.take_writes();
    reconcile_stored(&api, &kafka, "orders").await;
    assert_eq!(
        api.take_writes(),
        Vec::<String>::new(),
        "in sync: no writes"
    );
}

#[tokio::test]
async fn shrinking_partitions_is_refused_with_a_condition() {
    let (api, kafka) = setup(&[topic("orders", "2026-01-01T00:00:00Z", spec(6))]);
    settle(&api, &kafka, "orders").await;
    let mut t = api.get(TOPICS, "orders").unwrap();
    t["spec"]["partitions"] = json!(2);
    t["metadata"]["generation"] = json!(2);
    api.put(TOPICS, t);
    reconcile_stored(&api, &kafka, "orders").await;
    assert_eq!(kafka.topics.lock().unwrap()["orders"].partitions, 6);
    let (status, reason, message) = ready(&api, "orders");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "PartitionShrinkRefused")
    );
    assert!(message.contains("6 partitions"), "{message}");
    assert_eq!(
        api.event_reasons("kafka"),
        ["Normal Synced", "Warning PartitionShrinkRefused"]
    );
    assert_eq!(api.events("kafka")[1].note, message);
}

#[tokio::test]
async fn a_second_resource_for_the_same_topic_name_gets_a_conflict() {
    let (api, kafka) = setup(&[
        topic("orders", "2026-01-01T00:00:00Z", spec(3)),
        topic("orders-copy", "2026-01-02T00:00:00Z", spec(12)),
    ]);
    settle(&api, &kafka, "orders").await;
    settle(&api, &kafka, "orders-copy").await;
    let (status, reason, message) = ready(&api, "orders-copy");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "TopicNameConflict")
    );
    assert!(message.contains("KafkaTopic orders"), "{message}");
    assert_eq!(
        kafka.topics.lock().unwrap()["orders"].partitions,
        3,
        "the loser changes nothing"
    );

    // Deleting the loser must not delete the winner's topic.
    api.delete_stored(TOPICS, "orders-copy");
    reconcile_stored(&api, &kafka, "orders-copy").await;
    assert!(
        api.get(TOPICS, "orders-copy").is_none(),
        "finalizer released"
    );
    assert!(kafka.topics.lock().unwrap().contains_key("orders"));
}

#[tokio::test]
async fn deletion_policy_delete_removes_a_topic_the_operator_created() {
    let (api, kafka) = setup(&[topic("orders", "2026-01-01T00:00:00Z", spec(3))]);
    settle(&api, &kafka, "orders").await;
    api.delete_stored(TOPICS, "orders");
    reconcile_stored(&api, &kafka, "orders").await;
    assert!(kafka.topics.lock().unwrap().is_empty());
    assert!(api.get(TOPICS, "orders").is_none());
    api.check_accesses("topic_lifecycle", Scope::Namespaced);
}

#[tokio::test]
async fn deletion_policy_retain_keeps_the_topic() {
    let mut retain = spec(3);
    retain["deletionPolicy"] = json!("Retain");
    let (api, kafka) = setup(&[topic("orders", "2026-01-01T00:00:00Z", retain)]);
    settle(&api, &kafka, "orders").await;
    api.delete_stored(TOPICS, "orders");
    reconcile_stored(&api, &kafka, "orders").await;
    assert!(kafka.topics.lock().unwrap().contains_key("orders"));
    assert!(api.get(TOPICS, "orders").is_none());
}

#[tokio::test]
async fn a_topic_created_outside_kubernetes_is_adopted_but_never_deleted() {
    let (api, kafka) = setup(&[topic("orders", "2026-01-01T00:00:00Z", spec(3))]);
    kafka.topics.lock().unwrap().insert(
        "orders".into(),
        ObservedTopic {
            partitions: 1,
            replication_factor: 1,
            overrides: BTreeMap::from([("max.message.bytes".into(), "2048".into())]),
        },
    );
    settle(&api, &kafka, "orders").await;
    let topic = kafka.topics.lock().unwrap()["orders"].clone();
    assert_eq!(topic.partitions, 3, "adopted and grown");
    assert_eq!(
        topic.overrides["max.message.bytes"], "2048",
        "unmanaged key kept"
    );
    assert_eq!(topic.overrides["retention.ms"], "60000");
    assert!(!stored(&api, "orders").status.unwrap().created_by_operator);
    api.delete_stored(TOPICS, "orders");
    reconcile_stored(&api, &kafka, "orders").await;
    assert!(
        kafka.topics.lock().unwrap().contains_key("orders"),
        "not ours to delete"
    );
    assert!(api.get(TOPICS, "orders").is_none());
}

#[tokio::test]
async fn the_finalizer_goes_when_the_cluster_is_gone_or_being_deleted() {
    for cluster_state in ["gone", "deleting"] {
        let (api, kafka) = setup(&[topic("orders", "2026-01-01T00:00:00Z", spec(3))]);
        settle(&api, &kafka, "orders").await;
        match cluster_state {
            "gone" => drop(api.delete_stored(CLUSTERS, "main")),
            _ => {
                let mut c = api.get(CLUSTERS, "main").unwrap();
                c["metadata"]["deletionTimestamp"] = json!("2026-01-03T00:00:00Z");
                api.put(CLUSTERS, c);
            }
        }
        api.delete_stored(TOPICS, "orders");
        reconcile_stored(&api, &kafka, "orders").await;
        assert!(
            api.get(TOPICS, "orders").is_none(),
            "{cluster_state}: finalizer released"
        );
        assert!(
            kafka.topics.lock().unwrap().contains_key("orders"),
            "{cluster_state}"
        );
    }
}

#[tokio::test]
async fn a_missing_cluster_is_reported_and_nothing_is_created() {
    let mut other = spec(3);
    other["clusterRef"] = json!("nope");
    let (api, kafka) = setup(&[topic("orders", "2026-01-01T00:00:00Z", other)]);
    settle(&api, &kafka, "orders").await;
    assert_eq!(ready(&api, "orders").1, "ClusterNotFound");
    assert!(kafka.topics.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_unreachable_cluster_is_reported_and_retried() {
    let (api, kafka) = setup(&[topic("orders", "2026-01-01T00:00:00Z", spec(3))]);
    kafka
        .unreachable
        .store(true, std::sync::atomic::Ordering::Relaxed);
    reconcile_stored(&api, &kafka, "orders").await; // finalizer
    let t = stored(&api, "orders");
    let err = reconcile::reconcile(Arc::new(t), context(&api, &kafka))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("Broker transport failure"),
        "{err}"
    );
    let (status, reason, _) = ready(&api, "orders");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "KafkaError"));
    kafka
        .unreachable
        .store(false, std::sync::atomic::Ordering::Relaxed);
    reconcile_stored(&api, &kafka, "orders").await;
    assert_eq!(ready(&api, "orders").1, "Synced");
    assert_eq!(
        api.event_reasons("kafka"),
        ["Warning ReconcileFailed", "Normal Synced"]
    );
}
