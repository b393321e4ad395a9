//! Rack awareness against the fake API server: a cluster with `spec.rack` gets a
//! ClusterRoleBinding that lets its brokers read Nodes, guarded by a finalizer because nothing
//! else would ever delete a cluster-scoped object made for a namespaced one; the binding goes
//! when `spec.rack` goes and when the cluster is deleted. And the brokers' init step
//! (`krait-operator rack`): the Node's label written to the rack file, or a clear error.

use crate::common;

use std::sync::Arc;

use common::access::Scope;
use common::{FakeApi, FakeKafka, context, fixture};
use krait_crd::KafkaCluster;
use krait_operator::cluster::rack_binding::RACK_FINALIZER;
use krait_operator::cluster::reconcile;
use krait_operator::rack::{RackError, write_node_rack};
use serde_json::{Value, json};

const CLUSTERS: &str = "/apis/krait.dev/v1alpha1/namespaces/kafka/kafkaclusters";
const STATEFULSETS: &str = "/apis/apps/v1/namespaces/kafka/statefulsets";
const BINDINGS: &str = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings";
const BINDING: &str = "krait-kafka-main-rack";
const NODES: &str = "/api/v1/nodes";
const ZONE: &str = "topology.kubernetes.io/zone";

fn rack_aware() -> Value {
    let mut c = fixture("minimal.yaml");
    c["spec"]["rack"] = json!({"topologyKey": ZONE});
    c
}

async fn reconcile_stored(api: &FakeApi) {
    let cluster: KafkaCluster = serde_json::from_value(api.get(CLUSTERS, "main").unwrap()).unwrap();
    reconcile::reconcile(Arc::new(cluster), context(api, &FakeKafka::default()))
        .await
        .unwrap();
}

fn finalizers(api: &FakeApi) -> Vec<Value> {
    let c = api.get(CLUSTERS, "main").unwrap();
    c["metadata"]["finalizers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn edit_rack(api: &FakeApi, rack: Option<Value>) {
    let mut c = api.get(CLUSTERS, "main").unwrap();
    match rack {
        Some(r) => c["spec"]["rack"] = r,
        None => drop(c["spec"].as_object_mut().unwrap().remove("rack")),
    }
    c["metadata"]["generation"] = json!(c["metadata"]["generation"].as_i64().unwrap() + 1);
    api.put(CLUSTERS, c);
}

#[tokio::test]
async fn a_rack_aware_cluster_binds_its_brokers_to_the_node_reader_role_until_it_goes() {
    let api = FakeApi::default();
    api.put(CLUSTERS, rack_aware());
    reconcile_stored(&api).await;
    let writes = api.take_writes();
    assert_eq!(
        writes[..3],
        [
            "PATCH kafkaclusters/main",
            "PATCH clusterrolebindings/krait-kafka-main-rack",
            "PATCH serviceaccounts/main",
        ],
        "the finalizer before the binding, the binding before the pods: {writes:?}"
    );
    assert_eq!(finalizers(&api), [json!(RACK_FINALIZER)]);
    let binding = api.get(BINDINGS, BINDING).expect("binding applied");
    assert_eq!(
        binding["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
               "name": "krait-operator-broker-rack"})
    );
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "main", "namespace": "kafka"}])
    );
    assert_eq!(
        binding["metadata"]["labels"]["krait.dev/cluster-namespace"],
        "kafka"
    );
    assert!(binding["metadata"]["ownerReferences"].is_null());
    let sts = api.get(STATEFULSETS, "main").unwrap();
    let init = &sts["spec"]["template"]["spec"]["initContainers"][0];
    assert_eq!(init["name"], "rack");

    // Nothing changed: nothing written.
    reconcile_stored(&api).await;
    assert_eq!(api.take_writes(), Vec::<String>::new());

    // spec.rack removed: the binding goes, then the finalizer; the brokers lose the init step.
    edit_rack(&api, None);
    reconcile_stored(&api).await;
    let writes = api.take_writes();
    assert!(
        writes.starts_with(&[
            "DELETE clusterrolebindings/krait-kafka-main-rack".to_string(),
            "PATCH kafkaclusters/main".to_string(),
        ]),
        "{writes:?}"
    );
    assert!(api.get(BINDINGS, BINDING).is_none());
    assert_eq!(finalizers(&api), Vec::<Value>::new());
    let sts = api.get(STATEFULSETS, "main").unwrap();
    assert!(sts["spec"]["template"]["spec"]["initContainers"].is_null());

    // Back on, then the cluster deleted: the finalizer holds it until the binding is gone.
    edit_rack(&api, Some(json!({"topologyKey": ZONE})));
    reconcile_stored(&api).await;
    assert!(api.get(BINDINGS, BINDING).is_some());
    api.delete_stored(CLUSTERS, "main");
    assert!(api.get(CLUSTERS, "main").is_some(), "held by the finalizer");
    api.take_writes();
    reconcile_stored(&api).await;
    assert_eq!(
        api.take_writes(),
        [
            "DELETE clusterrolebindings/krait-kafka-main-rack",
            "PATCH kafkaclusters/main",
        ]
    );
    assert!(api.get(BINDINGS, BINDING).is_none());
    assert!(api.get(CLUSTERS, "main").is_none(), "deleted once released");
    api.check_accesses("cluster_rack", Scope::Namespaced);
}

#[tokio::test]
async fn a_binding_to_another_role_is_replaced_since_its_role_ref_cannot_change() {
    let api = FakeApi::default();
    api.put(CLUSTERS, rack_aware());
    reconcile_stored(&api).await;
    let mut binding = api.get(BINDINGS, BINDING).unwrap();
    binding["roleRef"]["name"] = json!("old-release-broker-rack");
    binding["metadata"]["annotations"]["krait.dev/desired-hash"] = json!("stale");
    api.put(BINDINGS, binding);
    api.take_writes();
    reconcile_stored(&api).await;
    assert_eq!(
        api.take_writes(),
        [
            "DELETE clusterrolebindings/krait-kafka-main-rack",
            "PATCH clusterrolebindings/krait-kafka-main-rack",
        ]
    );
    let binding = api.get(BINDINGS, BINDING).unwrap();
    assert_eq!(binding["roleRef"]["name"], "krait-operator-broker-rack");
}

#[tokio::test]
async fn a_cluster_without_racks_asks_nothing_cluster_scoped() {
    let api = FakeApi::default();
    api.put(CLUSTERS, fixture("minimal.yaml"));
    reconcile_stored(&api).await;
    reconcile_stored(&api).await;
    let cluster_scoped: Vec<_> = api
        .accesses()
        .into_iter()
        .filter(|a| a.group == "rbac.authorization.k8s.io")
        .collect();
    assert!(cluster_scoped.is_empty(), "{cluster_scoped:?}");
    assert_eq!(finalizers(&api), Vec::<Value>::new());
}

fn node(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}})
}

#[tokio::test]
async fn the_init_step_writes_the_rack_from_the_nodes_topology_label() {
    let api = FakeApi::default();
    api.put(NODES, node("node-a", json!({ZONE: "eu-west-1b"})));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rack");
    let rack = write_node_rack(api.client(), "node-a", ZONE, &out)
        .await
        .unwrap();
    assert_eq!(rack, "eu-west-1b");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "eu-west-1b\n");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no partial file left"
    );
    api.check_accesses("broker_rack", Scope::Broker);
}

#[tokio::test]
async fn a_node_without_the_label_fails_the_init_step_naming_node_and_label() {
    let api = FakeApi::default();
    api.put(
        NODES,
        node("node-a", json!({"kubernetes.io/hostname": "node-a"})),
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rack");
    let err = write_node_rack(api.client(), "node-a", ZONE, &out)
        .await
        .unwrap_err();
    assert!(matches!(err, RackError::MissingLabel { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("Node node-a has no label topology.kubernetes.io/zone"),
        "{message}"
    );
    assert!(message.contains("spec.rack.topologyKey"), "{message}");
    assert!(!out.exists(), "no rack written");
    // An empty value is no rack either.
    api.put(NODES, node("node-b", json!({ZONE: ""})));
    let err = write_node_rack(api.client(), "node-b", ZONE, &out)
        .await
        .unwrap_err();
    assert!(matches!(err, RackError::MissingLabel { .. }), "{err:?}");
}

#[tokio::test]
async fn a_forbidden_or_missing_node_fails_the_init_step_saying_why() {
    let api = FakeApi::default();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rack");
    let err = write_node_rack(api.client(), "gone", ZONE, &out)
        .await
        .unwrap_err();
    assert!(matches!(err, RackError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("reading Node gone"), "{err}");
    api.put(NODES, node("node-a", json!({ZONE: "eu-west-1b"})));
    api.forbid("nodes");
    let err = write_node_rack(api.client(), "node-a", ZONE, &out)
        .await
        .unwrap_err();
    assert!(matches!(err, RackError::Forbidden { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("needs `get` on nodes"), "{message}");
    assert!(message.contains("ClusterRoleBinding"), "{message}");
    assert!(!out.exists());
}
