//! Krait's custom resources (group `krait.dev`, version `v1alpha1`): the Rust types, their
//! OpenAPI schemas, the CustomResourceDefinitions generated from them, and the two renderings
//! kept in the tree (`crds/` by [`manifests`], `docs/crd-reference.md` by [`reference`]). No
//! Kubernetes client and no reconcile logic live here.

pub mod cluster;
pub mod listener;
pub mod manifests;
pub mod reference;
pub mod topic;
pub mod user;

pub use cluster::{KafkaCluster, KafkaClusterSpec, KafkaClusterStatus};
pub use topic::{KafkaTopic, KafkaTopicSpec, KafkaTopicStatus};
pub use user::{KafkaUser, KafkaUserSpec, KafkaUserStatus};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// API group of every Krait resource.
pub const GROUP: &str = "krait.dev";

/// Every CRD with the file name it is kept under in `crds/`.
pub fn all_crds() -> Vec<(&'static str, CustomResourceDefinition)> {
    vec![
        ("kafkaclusters.krait.dev.yaml", KafkaCluster::crd()),
        ("kafkatopics.krait.dev.yaml", KafkaTopic::crd()),
        ("kafkausers.krait.dev.yaml", KafkaUser::crd()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_name_defaults_to_metadata_name() {
        let t: KafkaTopic = serde_yaml::from_str(
            "apiVersion: krait.dev/v1alpha1\nkind: KafkaTopic\nmetadata: {name: orders}\n\
             spec: {clusterRef: main, partitions: 3}\n",
        )
        .unwrap();
        assert_eq!(t.topic_name(), "orders");
        assert_eq!(t.spec.deletion_policy, topic::DeletionPolicy::Retain);
        let named = KafkaTopic {
            spec: KafkaTopicSpec {
                topic_name: Some("Orders_v2".into()),
                ..t.spec.clone()
            },
            ..t
        };
        assert_eq!(named.topic_name(), "Orders_v2");
    }

    #[test]
    fn cluster_defaults_leave_listeners_to_the_operator() {
        let c: KafkaCluster = serde_yaml::from_str(
            "apiVersion: krait.dev/v1alpha1\nkind: KafkaCluster\nmetadata: {name: main}\n\
             spec: {replicas: 3, image: krait:1, storage: {size: 1Gi}}\n",
        )
        .unwrap();
        assert!(c.spec.listeners.is_none(), "the operator picks the default");
        assert!(!c.spec.paused);
        assert!(c.spec.authorization.is_none());
    }

    #[test]
    fn schemas_carry_bounds_and_printer_columns() {
        let crd = serde_json::to_value(KafkaCluster::crd()).unwrap();
        let version = &crd["spec"]["versions"][0];
        let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
        assert_eq!(
            spec["properties"]["replicas"]["minimum"].as_f64(),
            Some(1.0)
        );
        assert!(
            spec["required"]
                .as_array()
                .unwrap()
                .contains(&"image".into())
        );
        assert_eq!(version["subresources"]["status"], serde_json::json!({}));
        let columns = version["additionalPrinterColumns"].as_array().unwrap();
        assert!(columns.iter().any(|c| c["name"] == "Ready"));
        let topic = serde_json::to_value(KafkaTopic::crd()).unwrap();
        let policy = &topic["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["properties"]["deletionPolicy"];
        assert_eq!(policy["enum"], serde_json::json!(["Retain", "Delete"]));
    }

    #[test]
    fn the_pod_monitor_is_off_by_default_and_its_interval_must_be_a_prometheus_duration() {
        let crd = serde_json::to_value(KafkaCluster::crd()).unwrap();
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        let metrics = &spec["properties"]["metrics"];
        assert!(
            !spec["required"]
                .as_array()
                .unwrap()
                .contains(&"metrics".into())
        );
        let pod_monitor = &metrics["properties"]["podMonitor"]["properties"];
        assert_eq!(pod_monitor["enabled"]["default"], false);
        let interval = &pod_monitor["interval"];
        assert_eq!(interval["default"], "30s");
        assert_eq!(interval["minLength"], 1);
        assert_eq!(
            interval["pattern"].as_str(),
            Some(cluster::PROMETHEUS_DURATION_PATTERN)
        );
        assert_eq!(
            pod_monitor["labels"]["additionalProperties"]["type"],
            "string"
        );
        let c: KafkaCluster = serde_yaml::from_str(
            "apiVersion: krait.dev/v1alpha1\nkind: KafkaCluster\nmetadata: {name: main}\n\
             spec: {replicas: 3, image: krait:1, storage: {size: 1Gi}, metrics: {podMonitor: {}}}\n",
        )
        .unwrap();
        let defaulted = c.spec.metrics.unwrap().pod_monitor;
        assert!(!defaulted.enabled);
        assert_eq!(defaulted.interval, "30s");
    }

    #[test]
    fn cross_field_and_immutability_rules_are_enforced_at_admission() {
        let rules = |crd: serde_json::Value| -> Vec<String> {
            let mut found = Vec::new();
            collect_rules(&crd, &mut found);
            found
        };
        let cluster = rules(serde_json::to_value(KafkaCluster::crd()).unwrap());
        assert!(cluster.contains(&"self.ephemeral || has(self.size)".to_string()));
        assert!(cluster.contains(&"self.ephemeral == oldSelf.ephemeral".to_string()));
        assert!(
            cluster
                .iter()
                .any(|r| r.contains("self.storageClass == oldSelf.storageClass"))
        );
        assert!(
            cluster
                .iter()
                .any(|r| r.contains("self.spec.defaultReplicationFactor <= self.spec.replicas"))
        );
        let topic = rules(serde_json::to_value(KafkaTopic::crd()).unwrap());
        assert_eq!(
            topic.iter().filter(|r| *r == "self == oldSelf").count(),
            2,
            "clusterRef and topicName"
        );
        assert!(topic.contains(&"has(self.topicName) == has(oldSelf.topicName)".to_string()));
    }

    fn collect_rules(node: &serde_json::Value, found: &mut Vec<String>) {
        match node {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::Array(rules)) = map.get("x-kubernetes-validations") {
                    found.extend(
                        rules
                            .iter()
                            .filter_map(|r| r["rule"].as_str().map(String::from)),
                    );
                }
                map.values().for_each(|v| collect_rules(v, found));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| collect_rules(v, found)),
            _ => {}
        }
    }
}
