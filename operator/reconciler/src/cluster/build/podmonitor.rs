//! The cluster's Prometheus Operator `PodMonitor` (`spec.metrics.podMonitor`): scrapes every
//! broker of this cluster, and no other pod, on its `http` port's `/metrics`. The kind is not
//! compiled in (a `DynamicObject` of [`pod_monitor_resource`]): the operator needs no crate
//! for it and creates it only where the API server serves it (`cluster/monitoring.rs`).

use std::collections::BTreeMap;

use kube::api::{ApiResource, DynamicObject};
use serde_json::json;

use super::owned_meta;
use crate::cluster::validate::ValidatedCluster;

/// API group of the Prometheus Operator's kinds.
pub const MONITORING_GROUP: &str = "monitoring.coreos.com";
/// The version of it the operator writes.
pub const MONITORING_VERSION: &str = "v1";
/// The PodMonitor's plural, as discovery lists it.
pub const POD_MONITORS: &str = "podmonitors";
/// The broker container port the PodMonitor scrapes (`build/statefulset.rs` names it).
pub const METRICS_PORT_NAME: &str = "http";
/// Where the broker serves its metrics on that port.
pub const METRICS_PATH: &str = "/metrics";

/// `monitoring.coreos.com/v1` `PodMonitor`, for a dynamic `Api`.
pub fn pod_monitor_resource() -> ApiResource {
    ApiResource {
        group: MONITORING_GROUP.into(),
        version: MONITORING_VERSION.into(),
        api_version: format!("{MONITORING_GROUP}/{MONITORING_VERSION}"),
        kind: "PodMonitor".into(),
        plural: POD_MONITORS.into(),
    }
}

/// The PodMonitor, where `spec.metrics.podMonitor.enabled`: in the cluster's namespace, with
/// the user's labels under the operator's, selecting the pods by the StatefulSet's own selector.
pub fn pod_monitor(cluster: &ValidatedCluster) -> Option<DynamicObject> {
    let spec = &cluster.spec.metrics.as_ref()?.pod_monitor;
    if !spec.enabled {
        return None;
    }
    let mut metadata = owned_meta(cluster, cluster.names.pod_monitor());
    let mut labels: BTreeMap<String, String> = spec.labels.clone();
    labels.extend(cluster.names.labels());
    metadata.labels = Some(labels);
    let mut object = DynamicObject::new(&cluster.names.pod_monitor(), &pod_monitor_resource());
    object.metadata = metadata;
    Some(object.data(json!({
        "spec": {
            "namespaceSelector": {"matchNames": [cluster.names.namespace]},
            "selector": {"matchLabels": cluster.names.selector_labels()},
            "podMetricsEndpoints": [{
                "port": METRICS_PORT_NAME,
                "path": METRICS_PATH,
                "interval": spec.interval,
                // The labels the chart's alerts and dashboards group by (as its own broker
                // PodMonitor sets them): the cluster and its namespace.
                "relabelings": [
                    {"sourceLabels": ["__meta_kubernetes_pod_label_app_kubernetes_io_instance"],
                     "targetLabel": "krait_cluster"},
                    {"sourceLabels": ["__meta_kubernetes_namespace"], "targetLabel": "namespace"},
                ],
            }],
        }
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::validate::validate;
    use krait_crd::KafkaCluster;

    fn cluster(metrics: serde_json::Value) -> ValidatedCluster {
        let cluster: KafkaCluster = serde_json::from_value(json!({
            "apiVersion": "krait.dev/v1alpha1", "kind": "KafkaCluster",
            "metadata": {"name": "main", "namespace": "kafka", "uid": "uid-main"},
            "spec": {"replicas": 3, "image": "krait:1", "storage": {"size": "1Gi"},
                     "metrics": metrics}
        }))
        .unwrap();
        validate(&cluster).unwrap()
    }

    #[test]
    fn an_enabled_pod_monitor_scrapes_exactly_this_clusters_brokers() {
        let built = pod_monitor(&cluster(json!({"podMonitor": {
            "enabled": true, "interval": "15s",
            "labels": {"release": "prom", "app.kubernetes.io/instance": "mine"}}})))
        .unwrap();
        let v = serde_json::to_value(&built).unwrap();
        assert_eq!(v["apiVersion"], "monitoring.coreos.com/v1");
        assert_eq!(v["kind"], "PodMonitor");
        assert_eq!(v["metadata"]["name"], "main-brokers");
        assert_eq!(v["metadata"]["namespace"], "kafka");
        let labels = &v["metadata"]["labels"];
        assert_eq!(labels["release"], "prom");
        assert_eq!(
            labels["app.kubernetes.io/instance"], "main",
            "the operator's labels win"
        );
        assert_eq!(labels["app.kubernetes.io/managed-by"], "krait-operator");
        let owner = &v["metadata"]["ownerReferences"][0];
        assert_eq!(
            (&owner["kind"], &owner["uid"], &owner["controller"]),
            (&json!("KafkaCluster"), &json!("uid-main"), &json!(true))
        );
        assert_eq!(
            v["spec"]["selector"],
            json!({"matchLabels": {"app.kubernetes.io/name": "krait",
                "app.kubernetes.io/instance": "main", "app.kubernetes.io/component": "broker"}})
        );
        assert_eq!(
            v["spec"]["namespaceSelector"],
            json!({"matchNames": ["kafka"]})
        );
        assert_eq!(
            v["spec"]["podMetricsEndpoints"],
            json!([{"port": "http", "path": "/metrics", "interval": "15s", "relabelings": [
                {"sourceLabels": ["__meta_kubernetes_pod_label_app_kubernetes_io_instance"],
                 "targetLabel": "krait_cluster"},
                {"sourceLabels": ["__meta_kubernetes_namespace"], "targetLabel": "namespace"},
            ]}])
        );
    }

    #[test]
    fn the_interval_defaults_to_thirty_seconds() {
        let built = pod_monitor(&cluster(json!({"podMonitor": {"enabled": true}}))).unwrap();
        assert_eq!(
            built.data["spec"]["podMetricsEndpoints"][0]["interval"],
            "30s"
        );
    }

    #[test]
    fn no_pod_monitor_unless_enabled() {
        assert!(pod_monitor(&cluster(json!(null))).is_none());
        assert!(pod_monitor(&cluster(json!({}))).is_none());
        assert!(pod_monitor(&cluster(json!({"podMonitor": {"interval": "1m"}}))).is_none());
    }
}
