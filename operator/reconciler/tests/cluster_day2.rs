//! The cluster reconciler's day-2 wiring against the fake API server and a cluster in memory:
//! which StatefulSet size it applies, which single action it takes (reassign, throttle,
//! unregister, evict one pod), what status says, and what it refuses, for each situation.
//! The same paths on real brokers are in `scaling_brokers.rs`.

use crate::common;

use std::cell::Cell;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::access::Scope;
use common::{FakeApi, FakeCluster, FakeKafka, context, fixture};
use krait_crd::KafkaCluster;
use krait_operator::cluster::reconcile;
use krait_operator::cluster_admin::{
    BrokerObserved, ClusterState, PartitionObserved, QuorumObserved,
};
use kube::runtime::controller::Action;
use serde_json::{Value, json};

const CLUSTERS: &str = "/apis/krait.dev/v1alpha1/namespaces/kafka/kafkaclusters";
const STATEFULSETS: &str = "/apis/apps/v1/namespaces/kafka/statefulsets";
const PODS: &str = "/api/v1/namespaces/kafka/pods";
const PDBS: &str = "/apis/policy/v1/namespaces/kafka/poddisruptionbudgets";

/// A healthy, balanced cluster of `brokers` brokers: topic `orders` with 6 partitions of RF 3
/// placed round-robin, all in sync, min.insync.replicas 2; controller 0.
fn healthy(brokers: i32) -> ClusterState {
    ClusterState {
        controller_id: Some(0),
        brokers: (0..brokers)
            .map(|id| BrokerObserved {
                id,
                rack: None,
                fenced: false,
            })
            .collect(),
        partitions: (0..6)
            .map(|p| {
                let replicas: Vec<i32> = (0..3).map(|i| (p + i) % brokers).collect();
                PartitionObserved {
                    topic: "orders".into(),
                    partition: p,
                    isr: replicas.clone(),
                    replicas,
                    size_bytes: 1_000,
                }
            })
            .collect(),
        min_insync: [("orders".to_string(), 2)].into(),
        ..ClusterState::default()
    }
}

struct World {
    api: FakeApi,
    kafka: FakeKafka,
    cluster: FakeCluster,
    /// How many events the test has looked at.
    events_seen: Cell<usize>,
}

impl World {
    /// The minimal fixture, reconciled once (objects created), with `brokers` pods Ready on
    /// revision r1, the StatefulSet's status saying r1, and the cluster `healthy(brokers)`;
    /// reconciled again so its status says so.
    async fn running(brokers: i32) -> Self {
        let api = FakeApi::default();
        let mut c = fixture("minimal.yaml");
        c["spec"]["replicas"] = json!(brokers);
        api.put(CLUSTERS, c);
        let cluster = FakeCluster::default();
        *cluster.state.lock().unwrap() = healthy(brokers);
        let kafka = FakeKafka {
            cluster: Some(cluster.clone()),
            ..FakeKafka::default()
        };
        let w = Self {
            api,
            kafka,
            cluster,
            events_seen: Cell::new(0),
        };
        w.reconcile().await;
        w.set_revision("r1");
        for id in 0..brokers {
            w.put_pod(id, "r1", true);
        }
        w.reconcile().await;
        w.api.take_writes();
        w.cluster.take_actions();
        w.new_events();
        w
    }

    /// The events published since the last call: (`type reason`, note).
    fn new_events(&self) -> Vec<(String, String)> {
        let all = self.api.events("kafka");
        let new = all[self.events_seen.get()..]
            .iter()
            .map(|e| (format!("{} {}", e.type_, e.reason), e.note.clone()))
            .collect();
        self.events_seen.set(all.len());
        new
    }

    /// `type reason` of the events published since the last look.
    fn new_event_reasons(&self) -> Vec<String> {
        self.new_events().into_iter().map(|(r, _)| r).collect()
    }

    fn stored(&self) -> KafkaCluster {
        serde_json::from_value(self.api.get(CLUSTERS, "main").unwrap()).unwrap()
    }

    async fn reconcile(&self) {
        reconcile::reconcile(Arc::new(self.stored()), context(&self.api, &self.kafka))
            .await
            .unwrap();
    }

    fn edit(&self, edit: impl FnOnce(&mut Value)) {
        let mut c = self.api.get(CLUSTERS, "main").unwrap();
        edit(&mut c);
        c["metadata"]["generation"] = json!(c["metadata"]["generation"].as_i64().unwrap() + 1);
        self.api.put(CLUSTERS, c);
    }

    fn set_revision(&self, revision: &str) {
        let mut sts = self.api.get(STATEFULSETS, "main").unwrap();
        let replicas = sts["spec"]["replicas"].clone();
        sts["status"] = json!({"observedGeneration": sts["metadata"]["generation"],
            "replicas": replicas, "readyReplicas": replicas, "updatedReplicas": replicas,
            "currentRevision": "r1", "updateRevision": revision});
        self.api.put(STATEFULSETS, sts);
    }

    fn put_pod(&self, id: i32, revision: &str, ready: bool) {
        self.api.put(
            PODS,
            json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("main-{id}"), "namespace": "kafka",
                "labels": {"app.kubernetes.io/name": "krait",
                           "app.kubernetes.io/instance": "main",
                           "app.kubernetes.io/component": "broker",
                           "app.kubernetes.io/managed-by": "krait-operator",
                           "controller-revision-hash": revision}},
            "status": {"conditions": [{"type": "Ready",
                                       "status": if ready { "True" } else { "False" }}]}}),
        );
    }

    /// The pods the last reconcile evicted (or deleted: neither may happen unasked), and
    /// forgets the writes.
    fn restarted(&self) -> Vec<String> {
        self.api
            .take_writes()
            .into_iter()
            .filter(|w| w.ends_with("/eviction") || w.starts_with("DELETE pods/"))
            .collect()
    }

    fn statefulset_replicas(&self) -> i64 {
        self.api.get(STATEFULSETS, "main").unwrap()["spec"]["replicas"]
            .as_i64()
            .unwrap()
    }

    fn progressing(&self) -> (String, String, String) {
        self.condition("Progressing")
    }

    fn condition(&self, kind: &str) -> (String, String, String) {
        let status = self.stored().status.unwrap();
        let c = status.conditions.iter().find(|c| c.type_ == kind).unwrap();
        (c.status.clone(), c.reason.clone(), c.message.clone())
    }
}

#[tokio::test]
async fn the_statefulset_names_only_the_voters_and_every_broker_its_cluster_address() {
    let w = World::running(3).await;
    let sts = w.api.get(STATEFULSETS, "main").unwrap();
    assert_eq!(sts["spec"]["updateStrategy"]["type"], "OnDelete");
    let args: Vec<String> =
        serde_json::from_value(sts["spec"]["template"]["spec"]["containers"][0]["args"].clone())
            .unwrap();
    assert!(args.contains(&"--cluster-advertise=$(POD_NAME).main-brokers.kafka.svc:9093".into()));
    w.edit(|c| c["spec"]["replicas"] = json!(5));
    w.reconcile().await;
    let sts = w.api.get(STATEFULSETS, "main").unwrap();
    let args: Vec<String> =
        serde_json::from_value(sts["spec"]["template"]["spec"]["containers"][0]["args"].clone())
            .unwrap();
    let voters = args.iter().find(|a| a.starts_with("--voters=")).unwrap();
    assert_eq!(
        voters.matches('@').count(),
        3,
        "voters stay fixed: {voters}"
    );
    assert_eq!(w.stored().status.unwrap().voters, [0, 1, 2]);
}

#[tokio::test]
async fn scale_up_grows_the_statefulset_then_spreads_partitions_onto_the_new_broker() {
    let w = World::running(3).await;
    w.edit(|c| {
        c["spec"]["replicas"] = json!(4);
        c["spec"]["rebalance"] = json!({"throttleBytesPerSecond": 1_000_000});
    });
    w.reconcile().await;
    assert_eq!(w.statefulset_replicas(), 4);
    assert!(w.cluster.take_actions().is_empty(), "nothing moves yet");
    assert_eq!(w.progressing().1, "GrowingStatefulSet");
    assert_eq!(
        w.new_events(),
        [(
            "Normal GrowingStatefulSet".to_string(),
            "raising the StatefulSet to 4 replicas".to_string()
        )]
    );
    w.reconcile().await;
    assert!(w.cluster.take_actions().is_empty(), "nothing moves yet");
    assert_eq!(w.progressing().1, "WaitingForBrokers");
    assert_eq!(w.new_event_reasons(), ["Normal WaitingForBrokers"]);

    w.put_pod(3, "r1", true);
    w.cluster
        .state
        .lock()
        .unwrap()
        .brokers
        .push(BrokerObserved {
            id: 3,
            rack: None,
            fenced: false,
        });
    w.reconcile().await;
    let actions = w.cluster.take_actions();
    assert_eq!(actions[0], "throttle Some(1000000)");
    assert!(
        actions[1].starts_with("reassign ") && actions[1].contains('3'),
        "{actions:?}"
    );
    assert_eq!(w.progressing().1, "Rebalancing");
    let rebalance = w.stored().status.unwrap().rebalance.unwrap();
    assert_eq!(
        (rebalance.trigger.as_str(), rebalance.state.as_str()),
        ("ScaleUp", "Moving")
    );
    let onto_3 = rebalance.replicas_per_broker_after["3"];
    assert!(onto_3 >= 4, "{rebalance:?}");
    assert_eq!(
        rebalance.bytes_total,
        i64::from(onto_3) * 1_000,
        "each new replica copies 1000 bytes"
    );
    let events = w.new_events();
    assert_eq!(
        events[0],
        (
            "Normal RebalanceStarted".to_string(),
            format!(
                "ScaleUp: moving {} partition(s), {} bytes, onto broker(s) 0, 1, 2, 3, \
                 replication throttled to 1000000 bytes/s",
                rebalance.partitions_total, rebalance.bytes_total
            )
        )
    );
    assert_eq!(events[1].0, "Normal AllBrokersReady", "4/4 brokers up");
    w.api.check_accesses("cluster_scale_up", Scope::Namespaced);
}

#[tokio::test]
async fn progress_follows_the_reassignments_still_running_and_completes_when_none_is() {
    let w = World::running(4).await;
    w.cluster.state.lock().unwrap().partitions = healthy(3).partitions;
    w.edit(|c| {
        c["spec"]["rebalance"] = json!({"onScale": false});
        c["metadata"]["annotations"] = json!({"krait.dev/rebalance": "execute"});
    });
    w.reconcile().await;
    let rebalance = w.stored().status.unwrap().rebalance.unwrap();
    assert_eq!(rebalance.state, "Moving");
    assert_eq!(w.cluster.take_actions().len(), 1, "the plan was submitted");
    let total = rebalance.partitions_total;
    // One partition is still copying onto broker 3.
    w.cluster.state.lock().unwrap().reassignments = vec![krait_admin::Ongoing {
        topic: "orders".into(),
        partition: 0,
        replicas: vec![0, 1, 2, 3],
        adding: vec![3],
        removing: vec![2],
    }];
    w.reconcile().await;
    let rebalance = w.stored().status.unwrap().rebalance.unwrap();
    assert_eq!(rebalance.partitions_moved, total - 1);
    assert_eq!(w.progressing().1, "WaitingForReassignments");
    assert!(
        !w.cluster
            .take_actions()
            .iter()
            .any(|a| a.starts_with("reassign")),
        "nothing new starts while partitions move"
    );
    {
        let mut s = w.cluster.state.lock().unwrap();
        s.reassignments.clear();
        s.partitions = healthy(4).partitions;
    }
    w.reconcile().await;
    let rebalance = w.stored().status.unwrap().rebalance.unwrap();
    assert_eq!(
        (rebalance.state.as_str(), rebalance.partitions_moved),
        ("Complete", total)
    );
    let events = w.new_events();
    let finished = events
        .iter()
        .find(|(reason, _)| reason == "Normal RebalanceFinished")
        .unwrap_or_else(|| panic!("{events:?}"));
    assert!(
        finished
            .1
            .starts_with(&format!("OnDemand: {total} partition(s), ")),
        "{finished:?}"
    );
}

#[tokio::test]
async fn scale_down_drains_before_it_shrinks_and_unregisters_after() {
    let w = World::running(4).await;
    w.edit(|c| c["spec"]["replicas"] = json!(3));
    w.reconcile().await;
    assert_eq!(
        w.statefulset_replicas(),
        4,
        "not shrunk while broker 3 holds replicas"
    );
    let actions = w.cluster.take_actions();
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert!(actions[0].starts_with("reassign "), "{actions:?}");
    assert!(
        !actions[0].contains("[3") && !actions[0].contains(", 3"),
        "every replica moves off broker 3: {actions:?}"
    );
    assert_eq!(w.progressing().1, "Draining");
    assert_eq!(
        w.new_event_reasons(),
        ["Normal Draining", "Normal RebalanceStarted"]
    );

    // Drained: the StatefulSet shrinks; the broker still heartbeats while its pod stops.
    w.cluster.state.lock().unwrap().partitions = healthy(3).partitions;
    w.reconcile().await;
    assert_eq!(w.statefulset_replicas(), 3);
    w.api.delete_stored(PODS, "main-3");
    w.reconcile().await;
    assert_eq!(w.progressing().1, "WaitingForShutdown");
    assert!(w.cluster.take_actions().is_empty());

    // Stopped and fenced: unregistered.
    w.cluster.state.lock().unwrap().brokers[3].fenced = true;
    w.reconcile().await;
    assert_eq!(w.cluster.take_actions(), ["unregister 3"]);
    let events = w.new_events();
    let reasons: Vec<&str> = events.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "Normal ShrinkingStatefulSet",
            "Normal RebalanceFinished",
            "Normal WaitingForShutdown",
            "Normal BrokersUnregistered"
        ]
    );
    assert!(
        events[1].1.starts_with("ScaleDown: "),
        "the drain's moves are done: {events:?}"
    );
    assert_eq!(
        events[3].1,
        "removed broker(s) 3 unregistered from the cluster"
    );
    w.api
        .check_accesses("cluster_scale_down", Scope::Namespaced);
}

#[tokio::test]
async fn a_scale_down_a_topics_replication_factor_cannot_fit_is_refused_untouched() {
    // Refused before anything moves: broker 2 stays a voter.
    let w = World::running(3).await;
    w.cluster.state.lock().unwrap().quorum = QuorumObserved {
        voters: BTreeSet::from([0, 1, 2]),
        observers: BTreeSet::new(),
        ..QuorumObserved::default()
    };
    w.edit(|c| c["spec"]["replicas"] = json!(2));
    w.reconcile().await;
    let (status, reason, message) = w.progressing();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "ScaleDownRefused")
    );
    assert!(message.contains("orders"), "{message}");
    assert_eq!(w.statefulset_replicas(), 3);
    assert!(w.cluster.take_actions().is_empty());
    assert_eq!(
        w.new_events(),
        [("Warning ScaleDownRefused".to_string(), message)]
    );

    let w = World::running(4).await;
    w.cluster
        .state
        .lock()
        .unwrap()
        .partitions
        .push(PartitionObserved {
            topic: "wide".into(),
            partition: 0,
            replicas: vec![0, 1, 2, 3],
            isr: vec![0, 1, 2, 3],
            size_bytes: 0,
        });
    w.edit(|c| c["spec"]["replicas"] = json!(3));
    w.reconcile().await;
    let (_, reason, message) = w.progressing();
    assert_eq!(reason, "ScaleDownRefused");
    assert!(
        message.contains("wide") && !message.contains("orders"),
        "{message}"
    );
    assert_eq!(w.statefulset_replicas(), 4);
    assert!(w.cluster.take_actions().is_empty());
}

#[tokio::test]
async fn a_new_template_restarts_one_broker_at_a_time_controller_last() {
    let w = World::running(3).await;
    w.set_revision("r2");
    w.reconcile().await;
    assert_eq!(w.restarted(), ["POST pods/main-2/eviction"]);
    assert!(w.api.get(PODS, "main-2").is_none(), "evicted");
    assert_eq!(w.progressing().1, "RestartingBroker");
    assert_eq!(
        w.new_events(),
        [(
            "Normal RestartingBroker".to_string(),
            "restarting broker 2 (pod main-2): its pod template revision r1 is not the \
             StatefulSet's r2"
                .to_string()
        )]
    );
    let restart = w.api.events("kafka").pop().unwrap();
    assert_eq!(restart.related.as_deref(), Some("main-2"));

    // Recreated on r2, not Ready yet: nothing else restarts.
    w.put_pod(2, "r2", false);
    w.reconcile().await;
    assert!(w.restarted().is_empty());
    assert_eq!(w.progressing().1, "WaitingForBroker");
    assert_eq!(w.new_event_reasons(), ["Normal WaitingForBroker"]);

    w.put_pod(2, "r2", true);
    w.reconcile().await;
    assert_eq!(
        w.restarted(),
        ["POST pods/main-1/eviction"],
        "the controller (0) goes last"
    );
    let events = w.new_events();
    assert_eq!(events[0].0, "Normal RestartingBroker");
    assert!(events[0].1.starts_with("restarting broker 1 (pod main-1)"));
    assert_eq!(events[1].0, "Normal AllBrokersReady", "broker 2 is back");
    w.api.check_accesses("cluster_roll", Scope::Namespaced);
}

#[tokio::test]
async fn a_restart_the_disruption_budget_refuses_waits_and_is_retried() {
    let w = World::running(3).await;
    // A node drain took a broker a moment ago: the disruption controller's view of the
    // budget allows nothing, though every pod the operator saw was Ready.
    let mut pdb = w.api.get(PDBS, "main").unwrap();
    pdb["status"] = json!({"observedGeneration": pdb["metadata"]["generation"],
        "currentHealthy": 2, "desiredHealthy": 2, "expectedPods": 3, "disruptionsAllowed": 0});
    w.api.put(PDBS, pdb);
    w.set_revision("r2");
    let requeue = reconcile::reconcile(Arc::new(w.stored()), context(&w.api, &w.kafka))
        .await
        .expect("a refused eviction is not a reconcile error");
    assert_eq!(requeue, Action::requeue(Duration::from_secs(10)));
    assert_eq!(w.restarted(), ["POST pods/main-2/eviction"], "asked, once");
    assert!(w.api.get(PODS, "main-2").is_some(), "and refused");
    let (status, reason, message) = w.progressing();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "WaitingForDisruptionBudget")
    );
    assert!(message.contains("broker 2"), "{message}");
    assert_eq!(
        w.new_event_reasons(),
        ["Normal WaitingForDisruptionBudget"],
        "a refused eviction restarted nothing"
    );
    let degraded = w.condition("Degraded");
    assert_eq!(
        degraded.0, "False",
        "waiting is not a failure: {degraded:?}"
    );

    // The drained broker is back: the budget allows one disruption again.
    let mut pdb = w.api.get(PDBS, "main").unwrap();
    pdb["status"]["currentHealthy"] = json!(3);
    pdb["status"]["disruptionsAllowed"] = json!(1);
    w.api.put(PDBS, pdb);
    w.reconcile().await;
    assert_eq!(w.restarted(), ["POST pods/main-2/eviction"]);
    assert!(w.api.get(PODS, "main-2").is_none());
    assert_eq!(w.progressing().1, "RestartingBroker");
    assert_eq!(w.new_event_reasons(), ["Normal RestartingBroker"]);
}

#[tokio::test]
async fn brokers_crash_looping_on_a_stale_template_are_restarted_though_the_budget_is_spent() {
    // Brokers 1 and 2 crash-loop on r1; the fixed template is r2. Two brokers down spend the
    // budget (maxUnavailable 1), but a pod that is not Ready may always be evicted.
    let w = World::running(3).await;
    w.put_pod(1, "r1", false);
    w.put_pod(2, "r1", false);
    {
        let mut s = w.cluster.state.lock().unwrap();
        s.brokers[1].fenced = true;
        s.brokers[2].fenced = true;
    }
    w.set_revision("r2");
    w.reconcile().await;
    assert_eq!(w.restarted(), ["POST pods/main-1/eviction"]);
    assert!(w.api.get(PODS, "main-1").is_none());
    w.reconcile().await;
    assert_eq!(w.restarted(), ["POST pods/main-2/eviction"]);
}

#[tokio::test]
async fn the_operators_own_budget_refuses_a_second_broker_down() {
    // What the fake computes from the budget's spec, as the disruption controller would:
    // maxUnavailable 1 with broker 1 already down leaves no disruption for broker 2.
    let w = World::running(3).await;
    w.put_pod(1, "r1", false);
    let client = context(&w.api, &w.kafka).client.clone();
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(client, "kafka");
    let refused = pods
        .evict("main-2", &Default::default())
        .await
        .expect_err("a second broker down");
    assert!(
        matches!(&refused, kube::Error::Api(e) if e.code == 429),
        "{refused:?}"
    );
    // A pod that is down anyway may go while the rest of the budget is healthy.
    pods.evict("main-1", &Default::default()).await.unwrap();
    assert!(w.api.get(PODS, "main-1").is_none());
}

#[tokio::test]
async fn a_restart_that_would_drop_an_isr_below_min_insync_is_reported_not_forced() {
    let w = World::running(3).await;
    {
        let mut s = w.cluster.state.lock().unwrap();
        s.partitions.truncate(1);
        s.partitions[0].replicas = vec![1, 2];
        s.partitions[0].isr = vec![1, 2];
    }
    w.set_revision("r2");
    w.reconcile().await;
    assert!(w.restarted().is_empty());
    let (status, reason, message) = w.progressing();
    assert_eq!((status.as_str(), reason.as_str()), ("False", "RollBlocked"));
    assert!(message.contains("orders-0"), "{message}");
}

#[tokio::test]
async fn the_restart_annotation_restarts_the_whole_cluster_or_one_pod() {
    let w = World::running(3).await;
    let before = w.api.get(STATEFULSETS, "main").unwrap()["spec"]["template"].clone();
    w.edit(|c| c["metadata"]["annotations"] = json!({"krait.dev/restart": "2026-12-02"}));
    w.reconcile().await;
    let after = w.api.get(STATEFULSETS, "main").unwrap()["spec"]["template"].clone();
    assert_ne!(before, after, "a new template revision for every pod");
    assert_eq!(
        after["metadata"]["annotations"]["krait.dev/restart"],
        "2026-12-02"
    );

    let w = World::running(3).await;
    let mut pod = w.api.get(PODS, "main-1").unwrap();
    pod["metadata"]["annotations"] = json!({"krait.dev/restart": "true"});
    w.api.put(PODS, pod);
    w.reconcile().await;
    assert_eq!(w.restarted(), ["POST pods/main-1/eviction"]);
    assert_eq!(
        w.new_events(),
        [(
            "Normal RestartingBroker".to_string(),
            "restarting broker 1 (pod main-1): krait.dev/restart=true on the pod".to_string()
        )]
    );
}

#[tokio::test]
async fn a_dry_run_rebalance_writes_the_plan_to_status_and_moves_nothing() {
    let w = World::running(4).await;
    w.cluster.state.lock().unwrap().partitions = healthy(3).partitions;
    w.edit(|c| {
        c["spec"]["rebalance"] = json!({"onScale": false});
        c["metadata"]["annotations"] = json!({"krait.dev/rebalance": "dry-run"});
    });
    w.reconcile().await;
    assert!(w.cluster.take_actions().is_empty());
    let stored = w.stored();
    let rebalance = stored.status.unwrap().rebalance.unwrap();
    assert_eq!(
        (rebalance.trigger.as_str(), rebalance.state.as_str()),
        ("DryRun", "Planned")
    );
    assert_eq!(rebalance.replicas_per_broker_before["3"], 0);
    assert!(rebalance.replicas_per_broker_after["3"] >= 4);
    assert!(
        stored.metadata.annotations.unwrap_or_default().is_empty(),
        "the handled request is removed"
    );
    assert_eq!(w.new_event_reasons(), ["Normal RebalancePlanned"]);

    w.edit(|c| c["metadata"]["annotations"] = json!({"krait.dev/rebalance": "execute"}));
    w.reconcile().await;
    let actions = w.cluster.take_actions();
    assert_eq!(actions.len(), 1);
    assert!(actions[0].starts_with("reassign "), "{actions:?}");
    assert_eq!(
        w.stored().status.unwrap().rebalance.unwrap().trigger,
        "OnDemand"
    );
    w.api.check_accesses("cluster_rebalance", Scope::Namespaced);
}

#[tokio::test]
async fn an_unreadable_cluster_is_never_shrunk_but_may_grow() {
    let api = FakeApi::default();
    api.put(CLUSTERS, fixture("minimal.yaml"));
    let kafka = FakeKafka::default();
    let w = World {
        api,
        kafka,
        cluster: FakeCluster::default(),
        events_seen: Cell::new(0),
    };
    w.reconcile().await;
    w.put_pod(0, "r1", true);
    w.edit(|c| c["spec"]["replicas"] = json!(2));
    w.reconcile().await;
    assert_eq!(w.statefulset_replicas(), 3);
    assert_eq!(w.progressing().1, "WaitingForCluster");
    w.edit(|c| c["spec"]["replicas"] = json!(5));
    w.reconcile().await;
    assert_eq!(w.statefulset_replicas(), 5);
}

#[tokio::test]
async fn a_scale_down_first_moves_the_leaving_broker_out_of_the_quorums_voters() {
    let w = World::running(3).await;
    {
        let mut state = w.cluster.state.lock().unwrap();
        state.partitions.clear();
        state.quorum = QuorumObserved {
            voters: BTreeSet::from([0, 1, 2]),
            observers: BTreeSet::new(),
            ..QuorumObserved::default()
        };
    }
    w.edit(|c| c["spec"]["replicas"] = json!(2));
    w.reconcile().await;
    assert_eq!(w.cluster.take_actions(), ["remove-voter 2"]);
    let (status, reason, message) = w.progressing();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "RemovingVoter")
    );
    assert!(message.contains("broker 2"), "{message}");
    assert_eq!(
        w.statefulset_replicas(),
        3,
        "the broker stays until it no longer votes"
    );
    assert_eq!(w.stored().status.unwrap().voters, [0, 1]);
    assert!(
        w.new_events()
            .iter()
            .any(|(kind, note)| kind == "Normal VoterRemoved" && note.contains("broker 2")),
    );

    // The quorum made the change; the StatefulSet shrinks next.
    w.cluster.state.lock().unwrap().quorum = QuorumObserved {
        voters: BTreeSet::from([0, 1]),
        observers: BTreeSet::from([2]),
        ..QuorumObserved::default()
    };
    w.reconcile().await;
    assert_eq!(w.statefulset_replicas(), 2);
    assert_eq!(w.stored().status.unwrap().voters, [0, 1]);
}

#[tokio::test]
async fn fewer_controllers_than_voters_removes_the_highest_voter_and_more_adds_an_observer() {
    let w = World::running(3).await;
    w.cluster.state.lock().unwrap().quorum = QuorumObserved {
        voters: BTreeSet::from([0, 1, 2]),
        observers: BTreeSet::new(),
        ..QuorumObserved::default()
    };
    w.edit(|c| c["spec"]["controllers"] = json!(1));
    w.reconcile().await;
    assert_eq!(w.cluster.take_actions(), ["remove-voter 2"]);
    w.cluster.state.lock().unwrap().quorum = QuorumObserved {
        voters: BTreeSet::from([0]),
        observers: BTreeSet::from([1, 2]),
        ..QuorumObserved::default()
    };
    w.edit(|c| c["spec"]["controllers"] = json!(3));
    w.reconcile().await;
    assert_eq!(w.cluster.take_actions(), ["add-voter 1"]);
    assert_eq!(w.progressing().1, "AddingVoter");
}
