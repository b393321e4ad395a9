//! The Kafka side of topic reconciliation against a real `krait-broker` through librdkafka's
//! admin client: create, grow, shrink refused, managed and unmanaged configs, drift revert,
//! delete; and one KafkaTopic reconciled end to end onto the broker.

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::broker::Broker;
use common::{FakeApi, context_with};
use futures_util::future::BoxFuture;
use krait_crd::KafkaTopic;
use krait_operator::cluster_admin::ClusterAdmin;
use krait_operator::kafka::{
    AdminEndpoint, AdminError, KafkaConnector, RdKafkaConnector, TopicAdmin,
};
use krait_operator::topic::{DesiredTopic, Refusal, TopicChange, reconcile, sync};
use krait_operator::user_admin::UserAdmin;
use serde_json::json;

fn admin(broker: &Broker) -> Box<dyn TopicAdmin> {
    RdKafkaConnector::default()
        .topic_admin(&AdminEndpoint::plaintext(&broker.address))
        .unwrap()
}

fn desired(partitions: i32, config: &[(&str, &str)]) -> DesiredTopic {
    DesiredTopic {
        name: "orders".into(),
        partitions,
        replication_factor: None,
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
#[ignore = "needs KRAIT_BROKER_BIN (tests/run sets it)"]
async fn topic_is_created_grown_and_never_shrunk() {
    let broker = Broker::start();
    let admin = admin(&broker);
    let created = sync(
        admin.as_ref(),
        &desired(2, &[("retention.ms", "60000")]),
        true,
    )
    .await
    .unwrap();
    assert_eq!(created.plan.changes, vec![TopicChange::Create]);
    let topic = created.topic.expect("created");
    assert_eq!((topic.partitions, topic.replication_factor), (2, 1));
    assert_eq!(topic.overrides, map(&[("retention.ms", "60000")]));
    let id = admin
        .topic_id("orders")
        .await
        .expect("the broker reports a topic id");
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert_eq!(admin.topic_id("absent").await, None);

    let again = sync(
        admin.as_ref(),
        &desired(2, &[("retention.ms", "60000")]),
        true,
    )
    .await
    .unwrap();
    assert!(again.plan.changes.is_empty(), "in sync: {:?}", again.plan);

    let grown = sync(
        admin.as_ref(),
        &desired(5, &[("retention.ms", "60000")]),
        true,
    )
    .await
    .unwrap();
    assert_eq!(grown.topic.unwrap().partitions, 5);

    let shrink = sync(
        admin.as_ref(),
        &desired(3, &[("retention.ms", "60000")]),
        true,
    )
    .await
    .unwrap();
    assert_eq!(
        shrink.plan.refusals,
        vec![Refusal::PartitionShrink { have: 5, want: 3 }]
    );
    assert_eq!(
        admin.describe("orders").await.unwrap().unwrap().partitions,
        5
    );
}

#[tokio::test]
#[ignore = "needs KRAIT_BROKER_BIN (tests/run sets it)"]
async fn only_spec_keys_are_managed_and_drift_is_reverted() {
    let broker = Broker::start();
    let admin = admin(&broker);
    let spec = desired(1, &[("retention.ms", "60000")]);
    sync(admin.as_ref(), &spec, true).await.unwrap();
    // Someone else sets a key the spec does not manage, and changes a managed one.
    admin
        .alter_configs(
            "orders",
            &map(&[("retention.ms", "1000"), ("max.message.bytes", "2048")]),
        )
        .await
        .unwrap();
    let reverted = sync(admin.as_ref(), &spec, true).await.unwrap();
    assert_eq!(
        reverted.topic.unwrap().overrides,
        map(&[("max.message.bytes", "2048"), ("retention.ms", "60000")])
    );
}

#[tokio::test]
#[ignore = "needs KRAIT_BROKER_BIN (tests/run sets it)"]
async fn describing_or_refusing_to_create_never_creates_a_topic() {
    let broker = Broker::start();
    let admin = admin(&broker);
    // The broker auto-creates topics on Metadata by default; describe must not trigger it.
    assert_eq!(admin.describe("ghost").await.unwrap(), None);
    assert_eq!(admin.describe("ghost").await.unwrap(), None);
    let unclaimed = sync(admin.as_ref(), &desired(1, &[]), false).await.unwrap();
    assert!(unclaimed.topic.is_none());
    assert_eq!(admin.describe("orders").await.unwrap(), None);
}

#[tokio::test]
#[ignore = "needs KRAIT_BROKER_BIN (tests/run sets it)"]
async fn delete_removes_the_topic_and_tolerates_its_absence() {
    let broker = Broker::start();
    let admin = admin(&broker);
    sync(admin.as_ref(), &desired(1, &[]), true).await.unwrap();
    admin.delete("orders").await.unwrap();
    assert_eq!(admin.describe("orders").await.unwrap(), None);
    admin.delete("orders").await.unwrap();
}

#[tokio::test]
#[ignore = "needs KRAIT_BROKER_BIN (tests/run sets it)"]
async fn cluster_id_is_read_from_the_broker() {
    let broker = Broker::start();
    let id = RdKafkaConnector::default()
        .cluster_id(&AdminEndpoint::plaintext(&broker.address))
        .await;
    assert!(id.is_some_and(|id| !id.is_empty()));
}

/// Sends every cluster's admin traffic to the test broker (plaintext), whatever the
/// endpoint the operator chose.
struct ToBroker(AdminEndpoint);

impl KafkaConnector for ToBroker {
    fn cluster_id(&self, _: &AdminEndpoint) -> BoxFuture<'static, Option<String>> {
        RdKafkaConnector::default().cluster_id(&self.0)
    }

    fn topic_admin(&self, _: &AdminEndpoint) -> Result<Box<dyn TopicAdmin>, AdminError> {
        RdKafkaConnector::default().topic_admin(&self.0)
    }

    fn cluster_admin(&self, _: &AdminEndpoint) -> Box<dyn ClusterAdmin> {
        RdKafkaConnector::default().cluster_admin(&self.0)
    }

    fn user_admin(&self, _: &AdminEndpoint) -> Box<dyn UserAdmin> {
        RdKafkaConnector::default().user_admin(&self.0)
    }
}

const CLUSTERS: &str = "/apis/krait.dev/v1alpha1/namespaces/kafka/kafkaclusters";
const TOPICS: &str = "/apis/krait.dev/v1alpha1/namespaces/kafka/kafkatopics";

#[tokio::test]
#[ignore = "needs KRAIT_BROKER_BIN (tests/run sets it)"]
async fn a_kafka_topic_resource_is_reconciled_onto_the_broker_and_drift_reverted() {
    let broker = Broker::start();
    let api = FakeApi::default();
    api.put(
        CLUSTERS,
        json!({"apiVersion": "krait.dev/v1alpha1", "kind": "KafkaCluster",
        "metadata": {"name": "main", "namespace": "kafka", "uid": "c1", "generation": 1},
        "spec": {"replicas": 1, "image": "krait:1", "storage": {"ephemeral": true}}}),
    );
    api.put(
        TOPICS,
        json!({"apiVersion": "krait.dev/v1alpha1", "kind": "KafkaTopic",
        "metadata": {"name": "orders", "namespace": "kafka", "uid": "t1", "generation": 1,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"clusterRef": "main", "topicName": "Orders_v1", "partitions": 3,
                 "config": {"retention.ms": "60000"}, "deletionPolicy": "Delete"}}),
    );
    let ctx = context_with(
        &api,
        Arc::new(ToBroker(AdminEndpoint::plaintext(&broker.address))),
    );
    let stored =
        || -> KafkaTopic { serde_json::from_value(api.get(TOPICS, "orders").unwrap()).unwrap() };
    let run = || async {
        reconcile::reconcile(Arc::new(stored()), ctx.clone())
            .await
            .unwrap()
    };
    run().await; // adds the finalizer
    let action = run().await;
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(Duration::from_secs(120))
    );
    let admin = admin(&broker);
    let topic = admin
        .describe("Orders_v1")
        .await
        .unwrap()
        .expect("created on the broker");
    assert_eq!(topic.partitions, 3);
    let status = stored().status.unwrap();
    assert_eq!(status.topic_name.as_deref(), Some("Orders_v1"));
    assert!(status.topic_id.is_some());
    assert_eq!(status.topic_id, admin.topic_id("Orders_v1").await);

    admin
        .alter_configs("Orders_v1", &map(&[("retention.ms", "5")]))
        .await
        .unwrap();
    run().await;
    let topic = admin.describe("Orders_v1").await.unwrap().unwrap();
    assert_eq!(topic.overrides["retention.ms"], "60000", "drift reverted");

    api.delete_stored(TOPICS, "orders");
    run_cleanup(&api, &ctx).await;
    assert_eq!(
        admin.describe("Orders_v1").await.unwrap(),
        None,
        "deleted with deletionPolicy Delete"
    );
}

async fn run_cleanup(api: &FakeApi, ctx: &Arc<krait_operator::context::Context>) {
    let topic: KafkaTopic = serde_json::from_value(api.get(TOPICS, "orders").unwrap()).unwrap();
    reconcile::reconcile(Arc::new(topic), ctx.clone())
        .await
        .unwrap();
    assert!(api.get(TOPICS, "orders").is_none(), "finalizer released");
}
