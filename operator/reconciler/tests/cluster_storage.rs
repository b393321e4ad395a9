//! Storage changes of a running cluster against the fake API server, which refuses what a real
//! one refuses (`common/admission.rs`): a larger `storage.size` grows each broker's claim where
//! the StorageClass allows expansion and re-creates the StatefulSet with its pods orphaned (no
//! broker restarts); shrinking, another class, and growth the class does not allow are refused
//! with a condition while every other change still rolls out.

use crate::common;

use std::sync::Arc;

use common::access::Scope;
use common::admission::STORAGE_CLASSES;
use common::{FakeApi, FakeKafka, context, fixture};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use krait_crd::KafkaCluster;
use krait_operator::cluster::reconcile;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

const CLUSTERS: &str = "/apis/krait.dev/v1alpha1/namespaces/kafka/kafkaclusters";
const STATEFULSETS: &str = "/apis/apps/v1/namespaces/kafka/statefulsets";
const PODS: &str = "/api/v1/namespaces/kafka/pods";
const CLAIMS: &str = "/api/v1/namespaces/kafka/persistentvolumeclaims";

/// The minimal cluster (10Gi claims of the default class, `standard`) and that class.
fn setup(allow_expansion: bool) -> (FakeApi, FakeKafka) {
    let api = FakeApi::default();
    api.put(CLUSTERS, fixture("minimal.yaml"));
    api.put(
        STORAGE_CLASSES,
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
               "metadata": {"name": "standard",
                   "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
               "provisioner": "csi.example.com", "allowVolumeExpansion": allow_expansion}),
    );
    (api, FakeKafka::default())
}

fn cluster(api: &FakeApi) -> KafkaCluster {
    serde_json::from_value(api.get(CLUSTERS, "main").unwrap()).unwrap()
}

async fn reconcile_stored(api: &FakeApi, kafka: &FakeKafka) -> Result<(), reconcile::Error> {
    reconcile::reconcile(Arc::new(cluster(api)), context(api, kafka))
        .await
        .map(drop)
}

fn edit_spec(api: &FakeApi, edit: impl FnOnce(&mut Value)) {
    let mut c = api.get(CLUSTERS, "main").unwrap();
    edit(&mut c["spec"]);
    c["metadata"]["generation"] = json!(c["metadata"]["generation"].as_i64().unwrap() + 1);
    api.put(CLUSTERS, c);
}

fn condition(api: &FakeApi, kind: &str) -> (String, String, String) {
    let status = cluster(api).status.expect("status written");
    let c = status.conditions.iter().find(|c| c.type_ == kind).unwrap();
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

/// Plays the StatefulSet controller and the provisioner: a Ready pod per ordinal, owned by the
/// StatefulSet, and a bound claim per ordinal from its claim template (labels: the template's
/// plus the selector; class: the default one when the template names none), as big as asked.
fn run_statefulset(api: &FakeApi) {
    let mut sts = api.get(STATEFULSETS, "main").unwrap();
    let replicas = sts["spec"]["replicas"].as_i64().unwrap();
    let template = sts["spec"]["volumeClaimTemplates"][0].clone();
    for id in 0..replicas {
        let pod = format!("main-{id}");
        if api.get(PODS, &pod).is_none() {
            let mut labels = sts["spec"]["template"]["metadata"]["labels"].clone();
            labels["controller-revision-hash"] = json!("r1");
            api.put(
                PODS,
                json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": pod, "namespace": "kafka", "labels": labels,
                    "uid": format!("pod-{id}"),
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                        "name": "main", "uid": sts["metadata"]["uid"], "controller": true}]},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
            );
        }
        let claim = format!("data-main-{id}");
        if api.get(CLAIMS, &claim).is_none() {
            let mut spec = template["spec"].clone();
            if spec["storageClassName"].is_null() {
                spec["storageClassName"] = json!("standard");
            }
            spec["volumeName"] = json!(format!("pv-{id}"));
            let size = spec["resources"]["requests"]["storage"].clone();
            let mut labels = template["metadata"]["labels"].clone();
            for (k, v) in sts["spec"]["selector"]["matchLabels"].as_object().unwrap() {
                labels[k] = v.clone();
            }
            api.put(
                CLAIMS,
                json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim, "namespace": "kafka", "labels": labels},
                "spec": spec,
                "status": {"phase": "Bound", "capacity": {"storage": size}}}),
            );
        }
    }
    sts["status"] = json!({"observedGeneration": sts["metadata"]["generation"],
        "replicas": replicas, "readyReplicas": replicas, "updatedReplicas": replicas,
        "currentRevision": "r1", "updateRevision": "r1"});
    api.put(STATEFULSETS, sts);
}

/// Plays the CSI resizer and the kubelet: every claim's volume reaches what it requests.
fn finish_expansion(api: &FakeApi) {
    for name in api.names(CLAIMS) {
        let mut claim = api.get(CLAIMS, &name).unwrap();
        claim["status"]["capacity"]["storage"] =
            claim["spec"]["resources"]["requests"]["storage"].clone();
        api.put(CLAIMS, claim);
    }
}

fn requested(api: &FakeApi, claim: &str) -> Value {
    api.get(CLAIMS, claim).unwrap()["spec"]["resources"]["requests"]["storage"].clone()
}

fn template_size(api: &FakeApi) -> Value {
    api.get(STATEFULSETS, "main").unwrap()["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]
        ["requests"]["storage"]
        .clone()
}

/// A cluster created and running: three Ready brokers on 10Gi claims.
async fn running(allow_expansion: bool) -> (FakeApi, FakeKafka) {
    let (api, kafka) = setup(allow_expansion);
    reconcile_stored(&api, &kafka).await.unwrap();
    run_statefulset(&api);
    reconcile_stored(&api, &kafka).await.unwrap();
    api.take_writes();
    (api, kafka)
}

#[tokio::test]
async fn a_larger_size_grows_every_claim_and_recreates_the_statefulset_without_restarts() {
    let (api, kafka) = running(true).await;
    let old_uid = api.get(STATEFULSETS, "main").unwrap()["metadata"]["uid"].clone();
    let storage = cluster(&api).status.unwrap().storage.unwrap();
    assert_eq!(
        (storage.size.as_str(), storage.state.as_str()),
        ("10Gi", "Ready")
    );
    assert_eq!(storage.claims.len(), 3);

    edit_spec(&api, |spec| spec["storage"]["size"] = json!("20Gi"));
    reconcile_stored(&api, &kafka).await.unwrap();
    assert_eq!(
        api.take_writes(),
        vec![
            "PATCH persistentvolumeclaims/data-main-0",
            "PATCH persistentvolumeclaims/data-main-1",
            "PATCH persistentvolumeclaims/data-main-2",
            "DELETE statefulsets/main",
            "PATCH statefulsets/main",
            "PATCH kafkaclusters/main/status",
        ],
        "claims first, then the StatefulSet re-created; no pod evicted"
    );
    for id in 0..3 {
        assert_eq!(requested(&api, &format!("data-main-{id}")), "20Gi");
        let pod = api
            .get(PODS, &format!("main-{id}"))
            .expect("the pod keeps running");
        assert_eq!(pod["metadata"]["uid"], format!("pod-{id}"), "not restarted");
        assert_eq!(
            pod["metadata"]["ownerReferences"],
            json!([]),
            "orphaned by the deletion, for the new StatefulSet to adopt"
        );
    }
    let sts = api.get(STATEFULSETS, "main").unwrap();
    assert_ne!(sts["metadata"]["uid"], old_uid, "a new StatefulSet");
    assert_eq!(template_size(&api), "20Gi");
    assert_eq!(sts["spec"]["replicas"], 3);
    let storage = cluster(&api).status.unwrap().storage.unwrap();
    assert_eq!(
        (storage.size.as_str(), storage.state.as_str()),
        ("20Gi", "Expanding")
    );
    assert!(
        storage.claims.iter().all(
            |c| c.requested.as_deref() == Some("20Gi") && c.capacity.as_deref() == Some("10Gi")
        )
    );
    let (status, reason, message) = condition(&api, "Progressing");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "ExpandingVolumes")
    );
    assert!(message.contains("data-main-0 (10Gi of 20Gi)"), "{message}");
    assert_eq!(condition(&api, "Degraded").0, "False");

    // The volumes grow; the StatefulSet controller reports on the new set.
    finish_expansion(&api);
    run_statefulset(&api);
    reconcile_stored(&api, &kafka).await.unwrap();
    assert_eq!(api.take_writes(), vec!["PATCH kafkaclusters/main/status"]);
    let storage = cluster(&api).status.unwrap().storage.unwrap();
    assert_eq!(storage.state, "Ready");
    assert_eq!(condition(&api, "Progressing").1, "UpToDate");
    reconcile_stored(&api, &kafka).await.unwrap();
    assert_eq!(api.take_writes(), Vec::<String>::new(), "settled");
    api.check_accesses("cluster_storage", Scope::Namespaced);
}

#[tokio::test]
async fn growth_the_storage_class_does_not_allow_is_refused_and_other_changes_still_roll_out() {
    let (api, kafka) = running(false).await;
    edit_spec(&api, |spec| {
        spec["storage"]["size"] = json!("20Gi");
        spec["image"] = json!("ghcr.io/krait-dev/krait-broker:0.2.0");
    });
    reconcile_stored(&api, &kafka).await.unwrap();
    assert_eq!(
        api.take_writes(),
        vec!["PATCH statefulsets/main", "PATCH kafkaclusters/main/status"],
        "no claim asked to grow, the StatefulSet updated in place"
    );
    assert_eq!(requested(&api, "data-main-0"), "10Gi");
    assert_eq!(template_size(&api), "10Gi");
    let sts = api.get(STATEFULSETS, "main").unwrap();
    assert_eq!(
        sts["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/krait-dev/krait-broker:0.2.0"
    );
    let (status, reason, message) = condition(&api, "Degraded");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "VolumeExpansionNotSupported")
    );
    assert!(message.contains("allowVolumeExpansion"), "{message}");
    let storage = cluster(&api).status.unwrap().storage.unwrap();
    assert_eq!(
        (storage.size.as_str(), storage.state.as_str()),
        ("10Gi", "Refused")
    );

    // Allowed later (the class edited): the growth goes ahead.
    let mut class = api.get(STORAGE_CLASSES, "standard").unwrap();
    class["allowVolumeExpansion"] = json!(true);
    api.put(STORAGE_CLASSES, class);
    reconcile_stored(&api, &kafka).await.unwrap();
    assert_eq!(requested(&api, "data-main-0"), "20Gi");
    assert_eq!(template_size(&api), "20Gi");
    assert_eq!(condition(&api, "Degraded").0, "False");
}

#[tokio::test]
async fn shrinking_and_another_class_are_refused_with_a_condition() {
    let (api, kafka) = running(true).await;
    let before = api.get(STATEFULSETS, "main").unwrap();
    edit_spec(&api, |spec| spec["storage"]["size"] = json!("5Gi"));
    reconcile_stored(&api, &kafka).await.unwrap();
    assert_eq!(api.take_writes(), vec!["PATCH kafkaclusters/main/status"]);
    assert_eq!(api.get(STATEFULSETS, "main").unwrap(), before);
    let (status, reason, message) = condition(&api, "Degraded");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "StorageChangeRefused")
    );
    assert!(
        message.contains("cannot shrink from 10Gi to 5Gi"),
        "{message}"
    );

    edit_spec(&api, |spec| {
        spec["storage"] = json!({"size": "10Gi", "storageClass": "fast"})
    });
    reconcile_stored(&api, &kafka).await.unwrap();
    assert_eq!(api.get(STATEFULSETS, "main").unwrap(), before);
    let (_, reason, message) = condition(&api, "Degraded");
    assert_eq!(reason, "StorageChangeRefused");
    assert!(
        message.contains("storageClass cannot change from the default to fast"),
        "{message}"
    );

    edit_spec(&api, |spec| spec["storage"] = json!({"ephemeral": true}));
    reconcile_stored(&api, &kafka).await.unwrap();
    assert_eq!(api.get(STATEFULSETS, "main").unwrap(), before);
    assert!(
        condition(&api, "Degraded")
            .2
            .contains("storage.ephemeral cannot change")
    );

    // Back to what runs: nothing refused any more.
    edit_spec(&api, |spec| spec["storage"] = json!({"size": "10Gi"}));
    reconcile_stored(&api, &kafka).await.unwrap();
    assert_eq!(condition(&api, "Degraded").0, "False");
    assert_eq!(
        api.get(STATEFULSETS, "main").unwrap()["spec"],
        before["spec"]
    );
}

/// The HTTP code and message of a refused request (200 when it was not refused).
fn code<T>(result: Result<T, kube::Error>) -> (u16, String) {
    match result {
        Err(kube::Error::Api(e)) => (e.code, e.message),
        Ok(_) => (200, String::new()),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn the_fake_api_server_refuses_the_storage_updates_a_real_one_refuses() {
    let (api, kafka) = running(false).await;
    let client = context(&api, &kafka).client.clone();
    let ssa = PatchParams::apply("krait-operator").force();

    // A StatefulSet's claim templates cannot change.
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), "kafka");
    let mut sts = api.get(STATEFULSETS, "main").unwrap();
    sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] =
        json!("20Gi");
    let (status, message) = code(statefulsets.patch("main", &ssa, &Patch::Apply(&sts)).await);
    assert_eq!(status, 422, "{message}");
    assert!(message.contains("updates to statefulset spec"), "{message}");

    // A claim cannot shrink below its volume, nor grow where its class does not allow it.
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client, "kafka");
    let resize = |size: &str| json!({"spec": {"resources": {"requests": {"storage": size}}}});
    let merge = PatchParams::default();
    let shrink = claims
        .patch("data-main-0", &merge, &Patch::Merge(&resize("5Gi")))
        .await;
    let (status, message) = code(shrink);
    assert_eq!(status, 422, "{message}");
    assert!(
        message.contains("can not be less than status.capacity"),
        "{message}"
    );
    let (status, message) = code(
        claims
            .patch("data-main-0", &merge, &Patch::Merge(&resize("20Gi")))
            .await,
    );
    assert_eq!(status, 403, "{message}");
    assert!(message.contains("storageclass that provisions the pvc must support resize"));
    assert_eq!(requested(&api, "data-main-0"), "10Gi");
}
