use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ApiVersionsRequest,
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse, ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Request, StrBytes};

use super::*;
use krait_admin::PartitionState;
use krait_admin::fake_broker::{FakeBroker, answer, api_versions};

fn broker(id: i32, fenced: bool) -> BrokerInfo {
    BrokerInfo {
        id,
        host: "h".into(),
        port: 9092,
        rack: Some(format!("rack{id}")),
        fenced,
    }
}

fn topic(name: &str, replicas: &[&[i32]]) -> TopicState {
    TopicState {
        name: name.into(),
        partitions: replicas
            .iter()
            .enumerate()
            .map(|(i, r)| PartitionState {
                topic: name.into(),
                partition: i32::try_from(i).unwrap(),
                leader: r[0],
                leader_epoch: 0,
                replicas: r.to_vec(),
                isr: r.to_vec(),
                offline_replicas: vec![],
            })
            .collect(),
    }
}

/// Six partitions of replication factor 2, every one on brokers 1 and 2.
fn crowded() -> TopicState {
    topic(
        "orders",
        &[&[1, 2], &[2, 1], &[1, 2], &[2, 1], &[1, 2], &[2, 1]],
    )
}

fn ids(v: &[i32]) -> BTreeSet<i32> {
    v.iter().copied().collect()
}

#[test]
fn the_target_defaults_to_every_live_broker_minus_the_excluded_ones() {
    let brokers = [
        broker(1, false),
        broker(2, false),
        broker(3, true),
        broker(4, false),
    ];
    let request = plan_request(&brokers, &[], &Target::LiveExcept(ids(&[4]))).unwrap();
    assert_eq!(
        request.target,
        ids(&[1, 2]),
        "fenced 3 and excluded 4 are left out"
    );
    assert_eq!(
        request.brokers.iter().map(|b| b.id).collect::<Vec<_>>(),
        [1, 2, 3, 4],
        "every broker stays known, with its rack"
    );
    assert_eq!(request.brokers[2].rack.as_deref(), Some("rack3"));
}

#[test]
fn named_brokers_are_the_target_and_a_fenced_one_is_refused() {
    let brokers = [broker(1, false), broker(2, false), broker(3, true)];
    let request = plan_request(&brokers, &[], &Target::Only(ids(&[2, 1]))).unwrap();
    assert_eq!(request.target, ids(&[1, 2]));
    let err = plan_request(&brokers, &[], &Target::Only(ids(&[1, 3]))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "broker 3 is fenced (not live), so it cannot receive replicas"
    );
}

#[test]
fn every_partition_is_planned_with_its_current_replicas_and_an_unknown_size() {
    let brokers = [broker(1, false), broker(2, false)];
    let topics = [crowded(), topic("audit", &[&[2]])];
    let request = plan_request(&brokers, &topics, &Target::LiveExcept(BTreeSet::new())).unwrap();
    assert_eq!(request.partitions.len(), 7);
    assert_eq!(
        request.partitions[1],
        PartitionAssignment {
            topic: "orders".into(),
            partition: 1,
            replicas: vec![2, 1],
            size_bytes: 0,
        }
    );
    assert!(request.partitions.iter().all(|p| p.size_bytes == 0));
}

fn crowded_plan() -> (Plan, PlanRequest) {
    let brokers = [broker(1, false), broker(2, false), broker(3, false)];
    let request =
        plan_request(&brokers, &[crowded()], &Target::LiveExcept(BTreeSet::new())).unwrap();
    (krait_planner::plan(&request).unwrap(), request)
}

#[test]
fn the_dry_run_shows_the_totals_the_counts_per_broker_and_every_move() {
    let (plan, request) = crowded_plan();
    let text = render(&plan, &request);
    let s = &plan.summary;
    assert!(text.starts_with("Target brokers: 1,2,3\n"), "{text}");
    assert!(
        text.contains(&format!("Partitions moved: {}\n", s.partitions_moved)),
        "{text}"
    );
    assert!(
        text.contains(&format!("Replicas moved: {}\n", s.replicas_moved)),
        "{text}"
    );
    assert!(
        text.contains(&format!("Leaders changed: {}\n", s.leaders_changed)),
        "{text}"
    );
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let broker_row = |id: &str| {
        rows.iter()
            .find(|r| r.first() == Some(&id))
            .unwrap()
            .clone()
    };
    assert_eq!(
        broker_row("BROKER"),
        ["BROKER", "RACK", "TARGET", "REPLICAS", "LEADERS"]
    );
    assert_eq!(broker_row("3")[..6], ["3", "rack3", "yes", "0", "->", "4"]);
    assert_eq!(broker_row("1")[..6], ["1", "rack1", "yes", "6", "->", "4"]);
    assert_eq!(broker_row("1")[6..], ["3", "->", "2"], "leaders 3 -> 2");
    let moves: Vec<&Vec<&str>> = rows
        .iter()
        .filter(|r| r.first() == Some(&"orders"))
        .collect();
    assert_eq!(moves.len(), plan.moves.len());
    for (row, m) in moves.iter().zip(&plan.moves) {
        assert_eq!(
            **row,
            [
                "orders",
                m.partition.to_string().as_str(),
                id_list(&m.from).as_str(),
                "->",
                id_list(&m.to).as_str()
            ]
        );
    }
}

#[test]
fn an_empty_plan_reads_already_balanced() {
    let (plan, request) = crowded_plan();
    let after = PlanRequest {
        partitions: krait_planner::apply(&request.partitions, &plan),
        ..request
    };
    let again = krait_planner::plan(&after).unwrap();
    assert!(again.moves.is_empty());
    assert_eq!(render(&again, &after), "Already balanced: nothing to move.");
}

#[test]
fn the_kafka_plan_lists_each_moved_partition_with_its_new_replicas() {
    let (plan, _) = crowded_plan();
    let written = crate::plan::parse(&reassignment(&plan).to_json()).unwrap();
    assert_eq!(written.partitions.len(), plan.moves.len());
    for (p, m) in written.partitions.iter().zip(&plan.moves) {
        assert_eq!(
            (&p.topic, p.partition, &p.replicas),
            (&m.topic, m.partition, &m.to)
        );
    }
}

#[test]
fn a_topic_the_target_cannot_hold_is_named_in_the_refusal() {
    let brokers = [broker(1, false), broker(2, false), broker(3, false)];
    let topics = [crowded(), topic("wide", &[&[1, 2, 3]])];
    let request = plan_request(&brokers, &topics, &Target::Only(ids(&[1, 2]))).unwrap();
    let err = RebalanceError::from(krait_planner::plan(&request).unwrap_err());
    assert_eq!(
        err.to_string(),
        "cannot plan the rebalance: 2 target broker(s) cannot hold the replicas of wide \
         (replication factor 3)"
    );
}

#[test]
fn the_follow_up_names_status_and_only_mentions_the_throttle_when_one_was_set() {
    let (plan, _) = crowded_plan();
    let plain = follow_up(&plan, false);
    assert!(
        plain.contains("krait partition reassign --status"),
        "{plain}"
    );
    assert!(!plain.contains("--clear-throttle"), "{plain}");
    assert!(follow_up(&plan, true).contains("krait partition reassign --clear-throttle"));
}

// ------------------------------------------------------------ --execute against a fake broker

/// A fake three-broker cluster (every broker at the fake's address, broker 1 the controller)
/// holding `crowded()` and, with `wide`, an RF-3 topic; `ongoing` reassignments are listed as
/// in progress. Returns the AlterPartitionReassignments requests it receives.
struct FakeCluster {
    fake: FakeBroker,
    submitted: Arc<Mutex<Vec<AlterPartitionReassignmentsRequest>>>,
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn metadata_response(host: &str, port: i32, wide: bool) -> MetadataResponse {
    let mut topics = vec![crowded()];
    if wide {
        topics.push(topic("wide", &[&[1, 2, 3]]));
    }
    MetadataResponse::default()
        .with_controller_id(BrokerId(1))
        .with_brokers(
            (1..=3)
                .map(|id| {
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(id))
                        .with_host(text(host))
                        .with_port(port)
                        .with_rack(Some(text(&format!("rack{id}"))))
                })
                .collect(),
        )
        .with_topics(
            topics
                .iter()
                .map(|t| {
                    MetadataResponseTopic::default()
                        .with_name(Some(TopicName(text(&t.name))))
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    let r: Vec<BrokerId> =
                                        p.replicas.iter().copied().map(BrokerId).collect();
                                    MetadataResponsePartition::default()
                                        .with_partition_index(p.partition)
                                        .with_leader_id(r[0])
                                        .with_replica_nodes(r.clone())
                                        .with_isr_nodes(r)
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
}

fn describe_cluster_response(host: &str, port: i32) -> DescribeClusterResponse {
    DescribeClusterResponse::default()
        .with_controller_id(BrokerId(1))
        .with_brokers(
            (1..=3)
                .map(|id| {
                    DescribeClusterBroker::default()
                        .with_broker_id(BrokerId(id))
                        .with_host(text(host))
                        .with_port(port)
                        .with_rack(Some(text(&format!("rack{id}"))))
                })
                .collect(),
        )
}

fn ongoing_response(ongoing: bool) -> ListPartitionReassignmentsResponse {
    let topics = ongoing.then(|| {
        OngoingTopicReassignment::default()
            .with_name(TopicName(text("orders")))
            .with_partitions(vec![
                OngoingPartitionReassignment::default()
                    .with_partition_index(4)
                    .with_replicas(vec![BrokerId(1), BrokerId(2), BrokerId(3)])
                    .with_adding_replicas(vec![BrokerId(3)])
                    .with_removing_replicas(vec![BrokerId(2)]),
            ])
    });
    ListPartitionReassignmentsResponse::default().with_topics(topics.into_iter().collect())
}

/// Every partition of the request accepted.
fn accepted(request: &AlterPartitionReassignmentsRequest) -> AlterPartitionReassignmentsResponse {
    AlterPartitionReassignmentsResponse::default().with_responses(
        request
            .topics
            .iter()
            .map(|t| {
                ReassignableTopicResponse::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                ReassignablePartitionResponse::default()
                                    .with_partition_index(p.partition_index)
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}

fn fake_cluster(wide: bool, ongoing: bool) -> FakeCluster {
    let own: Arc<OnceLock<(String, i32)>> = Arc::new(OnceLock::new());
    let submitted = Arc::new(Mutex::new(Vec::new()));
    let (me, log) = (Arc::clone(&own), Arc::clone(&submitted));
    let fake = FakeBroker::start(move |h, mut body| {
        let v = h.request_api_version;
        let (host, port) = me.get().unwrap().clone();
        match h.request_api_key {
            ApiVersionsRequest::KEY => answer(
                h,
                &api_versions(&[
                    (MetadataRequest::KEY, 0, 12),
                    (DescribeClusterRequest::KEY, 0, 1),
                    (ListPartitionReassignmentsRequest::KEY, 0, 0),
                    (AlterPartitionReassignmentsRequest::KEY, 0, 0),
                    (IncrementalAlterConfigsRequest::KEY, 0, 1),
                ]),
                v,
            ),
            MetadataRequest::KEY => answer(h, &metadata_response(&host, port, wide), v),
            DescribeClusterRequest::KEY => answer(h, &describe_cluster_response(&host, port), v),
            ListPartitionReassignmentsRequest::KEY => answer(h, &ongoing_response(ongoing), v),
            IncrementalAlterConfigsRequest::KEY => {
                let r = IncrementalAlterConfigsRequest::decode(&mut body, v).unwrap();
                let responses = r
                    .resources
                    .iter()
                    .map(|c| {
                        AlterConfigsResourceResponse::default()
                            .with_resource_type(c.resource_type)
                            .with_resource_name(c.resource_name.clone())
                    })
                    .collect();
                answer(
                    h,
                    &IncrementalAlterConfigsResponse::default().with_responses(responses),
                    v,
                )
            }
            AlterPartitionReassignmentsRequest::KEY => {
                let r = AlterPartitionReassignmentsRequest::decode(&mut body, v).unwrap();
                let response = accepted(&r);
                log.lock().unwrap().push(r);
                answer(h, &response, v)
            }
            other => panic!("unexpected API {other}"),
        }
    });
    let (host, port) = fake.address.rsplit_once(':').unwrap();
    own.set((host.to_string(), port.parse().unwrap())).unwrap();
    FakeCluster { fake, submitted }
}

impl FakeCluster {
    fn global(&self) -> Global {
        Global {
            bootstrap_server: self.fake.address.clone(),
            output: Output::Json,
            timeout_ms: 5_000,
            command_config: None,
            client: Default::default(),
        }
    }

    fn keys(&self) -> Vec<i16> {
        self.fake.requests().iter().map(|(k, _)| *k).collect()
    }
}

fn execute(brokers: &[i32], throttle: Option<u64>) -> RebalanceArgs {
    RebalanceArgs {
        brokers: brokers.to_vec(),
        exclude: vec![],
        topics: vec![],
        execute: true,
        throttle,
        plan_out: None,
    }
}

#[test]
fn execute_sets_the_throttle_then_submits_every_move_in_one_request() {
    let cluster = fake_cluster(false, false);
    run(&cluster.global(), execute(&[], Some(1_000))).unwrap();

    let keys = cluster.keys();
    let alter_at = keys
        .iter()
        .position(|k| *k == AlterPartitionReassignmentsRequest::KEY)
        .unwrap();
    let throttles: Vec<usize> = (0..keys.len())
        .filter(|&i| keys[i] == IncrementalAlterConfigsRequest::KEY)
        .collect();
    assert_eq!(throttles.len(), 3, "one per broker: {keys:?}");
    assert!(
        throttles.iter().all(|&i| i < alter_at),
        "throttle first: {keys:?}"
    );

    let submitted = cluster.submitted.lock().unwrap();
    assert_eq!(submitted.len(), 1, "one request for every move");
    let mut replicas: BTreeMap<i32, usize> = BTreeMap::new();
    let mut moved = BTreeSet::new();
    for t in &submitted[0].topics {
        assert_eq!(t.name.0.as_str(), "orders");
        for p in &t.partitions {
            moved.insert(p.partition_index);
            for b in p.replicas.as_ref().unwrap() {
                *replicas.entry(b.0).or_default() += 1;
            }
        }
    }
    let (plan, _) = crowded_plan();
    let planned: BTreeSet<i32> = plan.moves.iter().map(|m| m.partition).collect();
    assert_eq!(moved, planned);
    assert_eq!(
        replicas.get(&3),
        Some(&4),
        "broker 3 receives its four replicas"
    );
}

#[test]
fn execute_is_refused_while_a_reassignment_is_in_progress() {
    let cluster = fake_cluster(false, true);
    let err = run(&cluster.global(), execute(&[], Some(1_000))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "1 partition reassignment(s) already in progress (orders-4): wait until `krait \
         partition reassign --status` shows none, or cancel them, then rebalance again"
    );
    let keys = cluster.keys();
    assert!(
        !keys.contains(&AlterPartitionReassignmentsRequest::KEY),
        "{keys:?}"
    );
    assert!(
        !keys.contains(&IncrementalAlterConfigsRequest::KEY),
        "{keys:?}"
    );
}

#[test]
fn a_plan_error_submits_nothing() {
    let cluster = fake_cluster(true, false);
    let err = run(&cluster.global(), execute(&[1, 2], Some(1_000))).unwrap_err();
    assert!(
        err.to_string().contains("wide (replication factor 3)"),
        "{err}"
    );
    let keys = cluster.keys();
    assert!(
        !keys.contains(&AlterPartitionReassignmentsRequest::KEY),
        "{keys:?}"
    );
    assert!(
        !keys.contains(&IncrementalAlterConfigsRequest::KEY),
        "{keys:?}"
    );
}
