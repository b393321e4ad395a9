//! The cluster reconciler against a fake API server: what it writes on create, that an
//! unchanged cluster writes nothing, spec changes, invalid specs, leftovers, readiness, and
//! resuming after a crash part-way through.

use crate::common;

use std::sync::Arc;

use common::access::Scope;
use common::{FakeApi, FakeKafka, context, fixture};
use krait_crd::KafkaCluster;
use krait_operator::cluster::reconcile;
use serde_json::{Value, json};

const CLUSTERS: &str = "/apis/krait.dev/v1alpha1/namespaces/kafka/kafkaclusters";
const STATEFULSETS: &str = "/apis/apps/v1/namespaces/kafka/statefulsets";
const SERVICES: &str = "/api/v1/namespaces/kafka/services";
const PODS: &str = "/api/v1/namespaces/kafka/pods";
const SECRETS: &str = "/api/v1/namespaces/kafka/secrets";

/// Stores the minimal fixture cluster, as `kubectl apply` would.
fn setup() -> (FakeApi, FakeKafka) {
    let api = FakeApi::default();
    api.put(CLUSTERS, fixture("minimal.yaml"));
    let kafka = FakeKafka {
        cluster_id: Some("krait-test-cluster".into()),
        ..FakeKafka::default()
    };
    (api, kafka)
}

fn cluster(api: &FakeApi) -> KafkaCluster {
    serde_json::from_value(api.get(CLUSTERS, "main").unwrap()).unwrap()
}

/// Runs one reconcile of the stored cluster, as the controller would on an event.
async fn reconcile_stored(api: &FakeApi, kafka: &FakeKafka) -> Result<(), reconcile::Error> {
    reconcile::reconcile(Arc::new(cluster(api)), context(api, kafka))
        .await
        .map(drop)
}

fn condition(api: &FakeApi, kind: &str) -> (String, String) {
    let c = cluster(api);
    let status = c.status.expect("status written");
    let cond = status
        .conditions
        .iter()
        .find(|c| c.type_ == kind)
        .expect(kind);
    (cond.status.clone(), cond.reason.clone())
}

fn edit_spec(api: &FakeApi, edit: impl FnOnce(&mut Value)) {
    let mut c = api.get(CLUSTERS, "main").unwrap();
    edit(&mut c["spec"]);
    c["metadata"]["generation"] = json!(c["metadata"]["generation"].as_i64().unwrap() + 1);
    api.put(CLUSTERS, c);
}

#[tokio::test]
async fn first_reconcile_creates_every_object_in_order_and_reports_progress() {
    let (api, kafka) = setup();
    reconcile_stored(&api, &kafka).await.unwrap();
    assert_eq!(
        api.take_writes(),
        vec![
            "PATCH serviceaccounts/main",
            "PATCH secrets/main-cluster-ca",
            "PATCH secrets/main-cluster-ca-cert",
            "PATCH secrets/main-broker-certs",
            "PATCH secrets/main-operator-credentials",
            "PATCH configmaps/main-config",
            "PATCH services/main-brokers",
            "PATCH services/main-bootstrap",
            "PATCH statefulsets/main",
            "PATCH poddisruptionbudgets/main",
            "PATCH kafkaclusters/main/status",
        ]
    );
    let status = cluster(&api).status.unwrap();
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(
        status.bootstrap_address.as_deref(),
        Some("main-bootstrap.kafka.svc:9094")
    );
    assert_eq!(status.brokers.len(), 3);
    assert!(status.brokers.iter().all(|b| !b.ready));
    assert_eq!(
        condition(&api, "Ready"),
        ("False".into(), "BrokersNotReady".into())
    );
    assert_eq!(
        condition(&api, "Progressing"),
        ("True".into(), "RollingOut".into())
    );
    assert_eq!(
        condition(&api, "Degraded"),
        ("False".into(), "AsExpected".into())
    );
    let events = api.events("kafka");
    assert_eq!(api.event_reasons("kafka"), ["Normal RollingOut"]);
    assert_eq!(events[0].regarding, "main");
    assert_eq!(
        events[0].note,
        "waiting for the StatefulSet to start 3 brokers"
    );
    api.check_accesses("cluster_create", Scope::Namespaced);
}

#[tokio::test]
async fn reconciling_an_unchanged_cluster_writes_nothing() {
    let (api, kafka) = setup();
    reconcile_stored(&api, &kafka).await.unwrap();
    api.take_writes();
    reconcile_stored(&api, &kafka).await.unwrap();
    reconcile_stored(&api, &kafka).await.unwrap();
    assert_eq!(api.take_writes(), Vec::<String>::new());
}

#[tokio::test]
async fn a_spec_change_reapplies_only_what_it_changes() {
    let (api, kafka) = setup();
    reconcile_stored(&api, &kafka).await.unwrap();
    api.take_writes();
    edit_spec(&api, |spec| {
        spec["image"] = json!("ghcr.io/krait-dev/krait-broker:0.2.0")
    });
    reconcile_stored(&api, &kafka).await.unwrap();
    assert_eq!(
        api.take_writes(),
        vec!["PATCH statefulsets/main", "PATCH kafkaclusters/main/status"]
    );
    let sts = api.get(STATEFULSETS, "main").unwrap();
    assert_eq!(
        sts["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/krait-dev/krait-broker:0.2.0"
    );
    assert_eq!(cluster(&api).status.unwrap().observed_generation, Some(2));
}

#[tokio::test]
async fn an_invalid_spec_changes_no_object_and_says_why() {
    let (api, kafka) = setup();
    reconcile_stored(&api, &kafka).await.unwrap();
    let before = api.get(STATEFULSETS, "main").unwrap();
    api.take_writes();
    edit_spec(&api, |spec| spec["defaultReplicationFactor"] = json!(5));
    reconcile_stored(&api, &kafka).await.unwrap();
    assert_eq!(api.take_writes(), vec!["PATCH kafkaclusters/main/status"]);
    assert_eq!(api.get(STATEFULSETS, "main").unwrap(), before);
    assert_eq!(
        condition(&api, "Ready"),
        ("False".into(), "InvalidSpec".into())
    );
    assert_eq!(
        condition(&api, "Degraded"),
        ("True".into(), "InvalidSpec".into())
    );
    let status = cluster(&api).status.unwrap();
    assert_eq!(status.observed_generation, Some(2));
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert!(
        ready
            .message
            .contains("defaultReplicationFactor 5 exceeds replicas 3"),
        "{}",
        ready.message
    );
    let events = api.events("kafka");
    let refused = events.last().unwrap();
    assert_eq!(
        (refused.type_.as_str(), refused.reason.as_str()),
        ("Warning", "InvalidSpec")
    );
    assert!(
        refused
            .note
            .contains("defaultReplicationFactor 5 exceeds replicas 3"),
        "{refused:?}"
    );
    // Reconciling the same invalid spec again writes nothing more, and says nothing more.
    reconcile_stored(&api, &kafka).await.unwrap();
    assert_eq!(api.take_writes(), Vec::<String>::new());
    assert_eq!(api.events("kafka"), events);
}

#[tokio::test]
async fn removing_the_external_listener_deletes_its_services() {
    let (api, kafka) = setup();
    edit_spec(&api, |spec| {
        spec["listeners"] = json!([{"name": "tls", "port": 9094, "type": "internal", "tls": true},
            {"name": "public", "type": "loadbalancer", "port": 9095,
             "advertisedAddresses": ["a:9094", "b:9094", "c:9094"]}]);
    });
    reconcile_stored(&api, &kafka).await.unwrap();
    let mut names = api.names(SERVICES);
    names.sort();
    assert_eq!(
        names,
        [
            "main-0-external",
            "main-1-external",
            "main-2-external",
            "main-bootstrap",
            "main-brokers"
        ]
    );
    api.take_writes();
    edit_spec(&api, |spec| {
        spec["listeners"] = json!([{"name": "tls", "port": 9094, "type": "internal", "tls": true}]);
    });
    reconcile_stored(&api, &kafka).await.unwrap();
    let writes = api.take_writes();
    for id in 0..3 {
        assert!(
            writes.contains(&format!("DELETE services/main-{id}-external")),
            "{writes:?}"
        );
    }
    assert_eq!(api.names(SERVICES).len(), 2);
}

#[tokio::test]
async fn a_leftover_of_every_owned_kind_is_deleted() {
    // Objects this cluster controls under names it no longer builds (as an older operator
    // version might have named them): every kind is cleaned up the same way.
    let (api, kafka) = setup();
    let uid = cluster(&api).metadata.uid.unwrap();
    let leftovers = [
        (
            "/api/v1/namespaces/kafka/serviceaccounts",
            "v1",
            "ServiceAccount",
        ),
        ("/api/v1/namespaces/kafka/configmaps", "v1", "ConfigMap"),
        (SERVICES, "v1", "Service"),
        (STATEFULSETS, "apps/v1", "StatefulSet"),
        (
            "/apis/policy/v1/namespaces/kafka/poddisruptionbudgets",
            "policy/v1",
            "PodDisruptionBudget",
        ),
    ];
    for (collection, api_version, kind) in leftovers {
        api.put(
            collection,
            json!({"apiVersion": api_version, "kind": kind,
            "metadata": {"name": "main-old", "namespace": "kafka",
                "labels": {"app.kubernetes.io/instance": "main",
                           "app.kubernetes.io/managed-by": "krait-operator"},
                "ownerReferences": [{"apiVersion": "krait.dev/v1alpha1", "kind": "KafkaCluster",
                    "name": "main", "uid": uid, "controller": true}]}}),
        );
    }
    reconcile_stored(&api, &kafka).await.unwrap();
    for (collection, _, kind) in leftovers {
        assert!(
            !api.names(collection).contains(&"main-old".to_string()),
            "{kind} left over"
        );
    }
    api.check_accesses("cluster_leftovers", Scope::Namespaced);
}

#[tokio::test]
async fn objects_not_controlled_by_the_cluster_are_never_deleted() {
    let (api, kafka) = setup();
    // Carries the operator's labels but belongs to someone else.
    api.put(
        SERVICES,
        json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "main-debug", "namespace": "kafka",
                     "labels": {"app.kubernetes.io/instance": "main",
                                "app.kubernetes.io/managed-by": "krait-operator"}}}),
    );
    reconcile_stored(&api, &kafka).await.unwrap();
    assert!(api.names(SERVICES).contains(&"main-debug".to_string()));
}

#[tokio::test]
async fn ready_pods_and_a_finished_rollout_make_the_cluster_ready() {
    let (api, kafka) = setup();
    reconcile_stored(&api, &kafka).await.unwrap();
    let mut sts = api.get(STATEFULSETS, "main").unwrap();
    sts["status"] = json!({"observedGeneration": sts["metadata"]["generation"], "replicas": 3,
        "readyReplicas": 3, "updatedReplicas": 3, "currentRevision": "r1", "updateRevision": "r1"});
    api.put(STATEFULSETS, sts);
    for id in 0..3 {
        let ready = if id == 1 { "False" } else { "True" };
        api.put(PODS, json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("main-{id}"), "namespace": "kafka",
                "labels": {"app.kubernetes.io/instance": "main", "app.kubernetes.io/managed-by": "krait-operator"}},
            "status": {"conditions": [{"type": "Ready", "status": ready}]}}));
    }
    reconcile_stored(&api, &kafka).await.unwrap();
    assert_eq!(
        condition(&api, "Ready"),
        ("False".into(), "BrokersNotReady".into())
    );
    assert_eq!(
        condition(&api, "Degraded"),
        ("True".into(), "BrokersUnavailable".into())
    );
    assert_eq!(
        condition(&api, "Progressing"),
        ("False".into(), "UpToDate".into())
    );
    let status = cluster(&api).status.unwrap();
    assert_eq!(status.ready_brokers, 2);
    assert_eq!(
        status.brokers_ready.as_deref(),
        Some("2/3"),
        "kubectl get's Brokers column"
    );
    assert_eq!(
        status.brokers.iter().map(|b| b.ready).collect::<Vec<_>>(),
        [true, false, true]
    );
    assert_eq!(
        status.cluster_id, None,
        "only asked once every broker is ready"
    );

    let mut pod = api.get(PODS, "main-1").unwrap();
    pod["status"]["conditions"][0]["status"] = json!("True");
    api.put(PODS, pod);
    reconcile_stored(&api, &kafka).await.unwrap();
    assert_eq!(
        condition(&api, "Ready"),
        ("True".into(), "AllBrokersReady".into())
    );
    assert_eq!(
        condition(&api, "Degraded"),
        ("False".into(), "AsExpected".into())
    );
    assert_eq!(
        cluster(&api).status.unwrap().cluster_id.as_deref(),
        Some("krait-test-cluster")
    );
    assert_eq!(
        api.event_reasons("kafka"),
        [
            "Normal RollingOut",
            "Normal UpToDate",
            "Warning BrokersUnavailable",
            "Normal AllBrokersReady"
        ]
    );
    assert_eq!(api.events("kafka")[3].note, "3/3 brokers ready");
}

#[tokio::test]
async fn a_paused_cluster_keeps_its_objects_as_they_are() {
    let (api, kafka) = setup();
    reconcile_stored(&api, &kafka).await.unwrap();
    api.take_writes();
    edit_spec(&api, |spec| {
        spec["paused"] = json!(true);
        spec["replicas"] = json!(5);
    });
    reconcile_stored(&api, &kafka).await.unwrap();
    assert_eq!(api.take_writes(), vec!["PATCH kafkaclusters/main/status"]);
    assert_eq!(
        api.get(STATEFULSETS, "main").unwrap()["spec"]["replicas"],
        3
    );
    assert_eq!(
        condition(&api, "Progressing"),
        ("False".into(), "Paused".into())
    );
}

#[tokio::test]
async fn a_reconcile_that_died_part_way_is_finished_by_the_next_one() {
    // The reference: one clean reconcile.
    let (clean, kafka) = setup();
    reconcile_stored(&clean, &kafka).await.unwrap();

    let (api, kafka) = setup();
    // The eighth write (the bootstrap Service) fails, as if the operator died there.
    api.fail_write_in(7);
    let err = reconcile_stored(&api, &kafka).await.unwrap_err();
    assert!(
        err.to_string().contains("applying Service main-bootstrap"),
        "{err}"
    );
    assert!(
        api.get(STATEFULSETS, "main").is_none(),
        "nothing after the failure was applied"
    );
    assert_eq!(
        condition(&api, "Degraded"),
        ("True".into(), "ApplyFailed".into())
    );
    let failed = api.events("kafka");
    assert_eq!(api.event_reasons("kafka"), ["Warning ReconcileFailed"]);
    assert!(
        failed[0].note.contains("applying Service main-bootstrap"),
        "{failed:?}"
    );
    api.take_writes();

    reconcile_stored(&api, &kafka).await.unwrap();
    let writes = api.take_writes();
    assert!(
        !writes.contains(&"PATCH configmaps/main-config".to_string()),
        "done before: {writes:?}"
    );
    assert!(
        !writes.iter().any(|w| w.starts_with("PATCH secrets/")),
        "the certificates issued before are kept: {writes:?}"
    );
    assert!(writes.contains(&"PATCH services/main-bootstrap".to_string()));
    assert!(writes.contains(&"PATCH statefulsets/main".to_string()));
    // Everything but the key material (fresh keys in each API server) is as built at once.
    let objects = |api: &FakeApi| {
        let mut s = api.snapshot();
        s.retain(|(c, _), _| c != CLUSTERS && !c.ends_with("/secrets"));
        s
    };
    assert_eq!(api.names(SECRETS), clean.names(SECRETS));
    assert_eq!(objects(&api), objects(&clean));
    assert_eq!(
        condition(&api, "Degraded"),
        ("False".into(), "AsExpected".into())
    );
}

#[tokio::test]
async fn a_failure_that_repeats_is_one_event_with_a_count() {
    let (api, kafka) = setup();
    // One operator process: one recorder, which remembers what it published.
    let ctx = context(&api, &kafka);
    for _ in 0..3 {
        api.fail_write_in(0);
        reconcile::reconcile(Arc::new(cluster(&api)), ctx.clone())
            .await
            .unwrap_err();
    }
    let events = api.events("kafka");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0].reason.as_str(), events[0].count),
        ("ReconcileFailed", 3)
    );
    assert!(
        events[0].note.contains("applying ServiceAccount main"),
        "{events:?}"
    );
    api.check_accesses("cluster_failure", Scope::Namespaced);
}

#[tokio::test]
async fn an_owned_object_changed_behind_the_operators_back_is_reverted() {
    let (api, kafka) = setup();
    reconcile_stored(&api, &kafka).await.unwrap();
    api.take_writes();
    // `kubectl scale statefulset main --replicas 1`, plus server-side defaults and status,
    // which are not drift.
    let mut sts = api.get(STATEFULSETS, "main").unwrap();
    sts["spec"]["replicas"] = json!(1);
    sts["spec"]["revisionHistoryLimit"] = json!(10);
    sts["status"] = json!({"replicas": 1});
    api.put(STATEFULSETS, sts);
    reconcile_stored(&api, &kafka).await.unwrap();
    let writes = api.take_writes();
    assert!(
        writes.contains(&"PATCH statefulsets/main".to_string()),
        "{writes:?}"
    );
    assert_eq!(
        api.get(STATEFULSETS, "main").unwrap()["spec"]["replicas"],
        3
    );

    // Only additions by the server: nothing to revert.
    let mut svc = api.get(SERVICES, "main-bootstrap").unwrap();
    svc["spec"]["clusterIP"] = json!("10.0.0.12");
    svc["spec"]["ports"][0]["targetPort"] = json!("kafka");
    api.put(SERVICES, svc);
    reconcile_stored(&api, &kafka).await.unwrap();
    let writes = api.take_writes();
    assert!(
        !writes.iter().any(|w| w.starts_with("PATCH services")),
        "{writes:?}"
    );
}
