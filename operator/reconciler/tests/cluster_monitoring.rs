//! `spec.metrics.podMonitor` against the fake API server, which serves the Prometheus
//! Operator's PodMonitor kind only once a test installs its CRD: where it is served, the
//! cluster's PodMonitor is applied (selector, port, interval, labels, owner) and deleted when
//! disabled; where it is not, nothing is asked of monitoring.coreos.com, the cluster still
//! becomes Ready, and a Warning event and the `PodMonitorReady` condition say why, until the
//! CRD is installed and the next reconcile creates it.

use crate::common;

use std::sync::Arc;

use common::access::Scope;
use common::{FakeApi, FakeKafka, context, fixture};
use krait_crd::KafkaCluster;
use krait_operator::cluster::reconcile;
use serde_json::{Value, json};

const CLUSTERS: &str = "/apis/krait.dev/v1alpha1/namespaces/kafka/kafkaclusters";
const STATEFULSETS: &str = "/apis/apps/v1/namespaces/kafka/statefulsets";
const PODS: &str = "/api/v1/namespaces/kafka/pods";
const POD_MONITORS: &str = "/apis/monitoring.coreos.com/v1/namespaces/kafka/podmonitors";
const MONITORING: &str = "monitoring.coreos.com";

fn monitored(interval: &str) -> Value {
    let mut c = fixture("minimal.yaml");
    c["spec"]["metrics"] = json!({"podMonitor": {"enabled": true, "interval": interval,
        "labels": {"release": "prometheus"}}});
    c
}

fn install_pod_monitor_crd(api: &FakeApi) {
    api.install_crd("monitoring.coreos.com/v1", "podmonitors", "PodMonitor");
}

fn cluster(api: &FakeApi) -> KafkaCluster {
    serde_json::from_value(api.get(CLUSTERS, "main").unwrap()).unwrap()
}

async fn reconcile_stored(api: &FakeApi, kafka: &FakeKafka) {
    reconcile::reconcile(Arc::new(cluster(api)), context(api, kafka))
        .await
        .unwrap();
}

fn edit_spec(api: &FakeApi, edit: impl FnOnce(&mut Value)) {
    let mut c = api.get(CLUSTERS, "main").unwrap();
    edit(&mut c["spec"]);
    c["metadata"]["generation"] = json!(c["metadata"]["generation"].as_i64().unwrap() + 1);
    api.put(CLUSTERS, c);
}

/// (status, reason, message) of a condition, if present.
fn condition(api: &FakeApi, kind: &str) -> Option<(String, String, String)> {
    let status = cluster(api).status.expect("status written");
    let c = status.conditions.iter().find(|c| c.type_ == kind)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Plays the StatefulSet controller: a Ready pod per ordinal, the rollout finished.
fn run_statefulset(api: &FakeApi) {
    let mut sts = api.get(STATEFULSETS, "main").unwrap();
    for id in 0..3 {
        let labels = sts["spec"]["template"]["metadata"]["labels"].clone();
        api.put(
            PODS,
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("main-{id}"), "namespace": "kafka", "labels": labels},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        );
    }
    sts["status"] = json!({"observedGeneration": sts["metadata"]["generation"], "replicas": 3,
        "readyReplicas": 3, "updatedReplicas": 3, "currentRevision": "r1", "updateRevision": "r1"});
    api.put(STATEFULSETS, sts);
}

fn monitoring_requests(api: &FakeApi) -> Vec<String> {
    api.accesses()
        .into_iter()
        .filter(|a| a.group == MONITORING)
        .map(|a| format!("{} {}/{}", a.verb, a.resource, a.name))
        .collect()
}

#[tokio::test]
async fn an_enabled_pod_monitor_scrapes_exactly_the_clusters_brokers_and_goes_when_disabled() {
    let (api, kafka) = (FakeApi::default(), FakeKafka::default());
    install_pod_monitor_crd(&api);
    api.put(CLUSTERS, monitored("15s"));
    reconcile_stored(&api, &kafka).await;
    let writes = api.take_writes();
    assert_eq!(
        writes
            .iter()
            .rev()
            .find(|w| !w.starts_with("PATCH kafkaclusters/")),
        Some(&"PATCH podmonitors/main-brokers".to_string()),
        "applied after every other object: {writes:?}"
    );
    let monitor = api.get(POD_MONITORS, "main-brokers").expect("applied");
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor["kind"], "PodMonitor");
    let sts = api.get(STATEFULSETS, "main").unwrap();
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"], sts["spec"]["selector"]["matchLabels"],
        "the broker pods, by the StatefulSet's own selector"
    );
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"],
        "main"
    );
    assert_eq!(
        monitor["spec"]["namespaceSelector"],
        json!({"matchNames": ["kafka"]})
    );
    assert_eq!(
        monitor["spec"]["podMetricsEndpoints"],
        json!([{"port": "http", "path": "/metrics", "interval": "15s", "relabelings": [
            {"sourceLabels": ["__meta_kubernetes_pod_label_app_kubernetes_io_instance"],
             "targetLabel": "krait_cluster"},
            {"sourceLabels": ["__meta_kubernetes_namespace"], "targetLabel": "namespace"},
        ]}])
    );
    let ports = &sts["spec"]["template"]["spec"]["containers"][0]["ports"];
    assert!(
        ports
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "http"),
        "the broker container names the scraped port: {ports}"
    );
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    let owner = &monitor["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "KafkaCluster");
    assert_eq!(owner["uid"], cluster(&api).metadata.uid.unwrap().as_str());
    assert_eq!(owner["controller"], true);
    let (ready, reason, message) = condition(&api, "PodMonitorReady").unwrap();
    assert_eq!(
        (ready.as_str(), reason.as_str()),
        ("True", "PodMonitorApplied")
    );
    assert!(message.contains("every 15s"), "{message}");

    // Unchanged: nothing written.
    reconcile_stored(&api, &kafka).await;
    assert_eq!(api.take_writes(), Vec::<String>::new());

    // A new interval is applied.
    edit_spec(&api, |s| {
        s["metrics"]["podMonitor"]["interval"] = json!("1m")
    });
    reconcile_stored(&api, &kafka).await;
    assert_eq!(
        api.take_writes(),
        [
            "PATCH podmonitors/main-brokers",
            "PATCH kafkaclusters/main/status"
        ]
    );
    let monitor = api.get(POD_MONITORS, "main-brokers").unwrap();
    assert_eq!(monitor["spec"]["podMetricsEndpoints"][0]["interval"], "1m");

    // Disabled: deleted, and the condition goes with it.
    edit_spec(&api, |s| {
        s["metrics"]["podMonitor"]["enabled"] = json!(false)
    });
    reconcile_stored(&api, &kafka).await;
    assert_eq!(
        api.take_writes(),
        [
            "DELETE podmonitors/main-brokers",
            "PATCH kafkaclusters/main/status"
        ]
    );
    assert!(api.get(POD_MONITORS, "main-brokers").is_none());
    assert_eq!(condition(&api, "PodMonitorReady"), None);

    // Enabled again, then the whole metrics section removed: deleted as well.
    edit_spec(&api, |s| {
        s["metrics"]["podMonitor"]["enabled"] = json!(true)
    });
    reconcile_stored(&api, &kafka).await;
    assert!(api.get(POD_MONITORS, "main-brokers").is_some());
    edit_spec(&api, |s| drop(s.as_object_mut().unwrap().remove("metrics")));
    reconcile_stored(&api, &kafka).await;
    assert!(api.get(POD_MONITORS, "main-brokers").is_none());
    api.check_accesses("cluster_monitoring", Scope::Namespaced);
}

#[tokio::test]
async fn without_the_crd_nothing_is_asked_of_monitoring_and_the_cluster_still_becomes_ready() {
    let kafka = FakeKafka {
        cluster_id: Some("krait-test-cluster".into()),
        ..FakeKafka::default()
    };
    let api = FakeApi::default();
    api.put(CLUSTERS, monitored("30s"));
    reconcile_stored(&api, &kafka).await;
    run_statefulset(&api);
    reconcile_stored(&api, &kafka).await;
    // Twice more: the warning is told once, not at every reconcile.
    reconcile_stored(&api, &kafka).await;
    reconcile_stored(&api, &kafka).await;

    assert_eq!(monitoring_requests(&api), Vec::<String>::new());
    assert!(
        !api.take_writes().iter().any(|w| w.contains("podmonitors")),
        "no write to monitoring.coreos.com"
    );
    let (ready, reason, _) = condition(&api, "Ready").unwrap();
    assert_eq!(
        (ready.as_str(), reason.as_str()),
        ("True", "AllBrokersReady")
    );
    let (degraded, reason, _) = condition(&api, "Degraded").unwrap();
    assert_eq!(
        (degraded.as_str(), reason.as_str()),
        ("False", "AsExpected")
    );
    let (monitor_ready, reason, message) = condition(&api, "PodMonitorReady").unwrap();
    assert_eq!(
        (monitor_ready.as_str(), reason.as_str()),
        ("False", "PodMonitorCRDNotInstalled")
    );
    assert!(
        message.contains("does not serve monitoring.coreos.com/v1 podmonitors"),
        "{message}"
    );
    let warnings: Vec<_> = api
        .events("kafka")
        .into_iter()
        .filter(|e| e.reason == "PodMonitorCRDNotInstalled")
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(
        (warnings[0].type_.as_str(), warnings[0].count),
        ("Warning", 1)
    );
    assert_eq!(warnings[0].note, message);
    assert_eq!(warnings[0].regarding, "main");

    // The Prometheus Operator's CRDs installed: the next reconcile creates the PodMonitor.
    install_pod_monitor_crd(&api);
    reconcile_stored(&api, &kafka).await;
    assert_eq!(
        api.take_writes(),
        [
            "PATCH podmonitors/main-brokers",
            "PATCH kafkaclusters/main/status"
        ]
    );
    assert!(api.get(POD_MONITORS, "main-brokers").is_some());
    let (monitor_ready, reason, _) = condition(&api, "PodMonitorReady").unwrap();
    assert_eq!(
        (monitor_ready.as_str(), reason.as_str()),
        ("True", "PodMonitorApplied")
    );
    assert_eq!(
        api.event_reasons("kafka").last().map(String::as_str),
        Some("Normal PodMonitorApplied")
    );
}

#[tokio::test]
async fn a_cluster_without_metrics_asks_nothing_of_monitoring_even_where_it_is_served() {
    let api = FakeApi::default();
    api.put(CLUSTERS, fixture("minimal.yaml"));
    let kafka = FakeKafka::default();
    reconcile_stored(&api, &kafka).await;
    assert_eq!(monitoring_requests(&api), Vec::<String>::new());
    assert_eq!(condition(&api, "PodMonitorReady"), None);
    // Served: looked at for a leftover (list), nothing written.
    install_pod_monitor_crd(&api);
    api.take_writes();
    reconcile_stored(&api, &kafka).await;
    assert_eq!(
        monitoring_requests(&api),
        ["list podmonitors/"],
        "only the read for leftovers"
    );
    assert_eq!(api.take_writes(), Vec::<String>::new());
}

#[tokio::test]
async fn a_pod_monitor_the_cluster_does_not_control_is_left_alone() {
    let api = FakeApi::default();
    install_pod_monitor_crd(&api);
    api.put(CLUSTERS, fixture("minimal.yaml"));
    api.put(
        POD_MONITORS,
        json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
            "metadata": {"name": "main-custom", "namespace": "kafka",
                "labels": {"app.kubernetes.io/instance": "main",
                    "app.kubernetes.io/managed-by": "krait-operator"}},
            "spec": {"selector": {}}}),
    );
    reconcile_stored(&api, &FakeKafka::default()).await;
    assert!(api.get(POD_MONITORS, "main-custom").is_some());
    assert!(
        !api.take_writes()
            .iter()
            .any(|w| w.starts_with("DELETE podmonitors")),
    );
}
