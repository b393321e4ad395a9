//! `KafkaTopic` (krait.dev/v1alpha1): one topic of a `KafkaCluster` in the same namespace.
//! Types and schema only; the operator decides how a spec maps onto the Kafka admin protocol.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A Kafka topic managed through the Kafka admin protocol.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "krait.dev",
    version = "v1alpha1",
    kind = "KafkaTopic",
    namespaced,
    status = "KafkaTopicStatus",
    shortname = "kt",
    category = "krait",
    printcolumn = r#"{"name":"Cluster","type":"string","jsonPath":".spec.clusterRef"}"#,
    printcolumn = r#"{"name":"Topic","type":"string","jsonPath":".status.topicName"}"#,
    printcolumn = r#"{"name":"Partitions","type":"integer","description":"Partitions in Kafka","jsonPath":".status.partitions"}"#,
    printcolumn = r#"{"name":"RF","type":"integer","description":"Replication factor in Kafka","jsonPath":".status.replicationFactor"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(
    validation = Rule::new("has(self.topicName) == has(oldSelf.topicName)")
        .message("topicName cannot be added or removed: the Kafka topic name is fixed")
)]
#[serde(rename_all = "camelCase")]
pub struct KafkaTopicSpec {
    /// Name of the `KafkaCluster` (same namespace) that holds the topic. Immutable: a topic
    /// does not move between clusters.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("clusterRef is immutable"))]
    pub cluster_ref: String,

    /// The topic's name in Kafka; `metadata.name` when absent (Kafka allows names that
    /// Kubernetes does not, such as upper case or underscores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Immutable: renaming would leave the old topic behind.
    #[schemars(length(min = 1, max = 249), regex(pattern = r"^[a-zA-Z0-9._-]+$"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("topicName is immutable"))]
    pub topic_name: Option<String>,

    /// Number of partitions. It can only grow: a smaller value is refused with a condition.
    #[schemars(range(min = 1))]
    pub partitions: i32,

    /// Replicas per partition; the cluster's default when absent. A change moves replicas by
    /// partition reassignment (added on live brokers, rack-aware and least loaded first;
    /// out-of-sync replicas dropped first); more replicas than live brokers, or fewer than the
    /// topic's `min.insync.replicas`, is refused with a condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub replication_factor: Option<i32>,

    /// Topic configs with Kafka's names as keys (e.g. `retention.ms`). Only the keys listed
    /// here are managed: other overrides on the topic are left alone.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,

    /// What happens to the Kafka topic when this resource is deleted. Topics the operator
    /// did not create are never deleted.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// Fate of the Kafka topic when its `KafkaTopic` is deleted.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// Keep the topic and its data (the default: deleting data needs an explicit choice).
    #[default]
    Retain,
    /// Delete the topic, if the operator created it.
    Delete,
}

impl KafkaTopic {
    /// The topic's name in Kafka.
    pub fn topic_name(&self) -> &str {
        self.spec
            .topic_name
            .as_deref()
            .or(self.metadata.name.as_deref())
            .unwrap_or_default()
    }
}

/// What the operator last observed and did.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaTopicStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready` (with reasons such as `Synced`, `PartitionShrinkRefused`, `TopicNameConflict`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// The topic's name in Kafka.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_name: Option<String>,

    /// Partitions the topic has in Kafka.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<i32>,

    /// Replicas per partition in Kafka (while a replication factor change moves partitions,
    /// the old and new replicas together).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_factor: Option<i32>,

    /// The topic's id in Kafka, when the admin client reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<String>,

    /// True once the operator has decided to create the topic itself (written before the
    /// CreateTopics call, so a crash in between still counts it as the operator's). Only
    /// such topics are ever deleted.
    #[serde(default)]
    pub created_by_operator: bool,
}
