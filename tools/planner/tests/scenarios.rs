//! The planner's rules, one scenario each.

mod common;

use std::collections::BTreeSet;

use common::{Cluster, counts, shuffled, spread, verify};
use krait_planner::{BlockingTopic, PlanError, apply, plan};

fn moved_partitions(plan: &krait_planner::Plan) -> BTreeSet<i32> {
    plan.moves
        .iter()
        .filter(|m| m.moves_data())
        .map(|m| m.partition)
        .collect()
}

#[test]
fn scale_up_three_to_four_moves_smallest_partitions_onto_new_broker() {
    let request = Cluster::brokers(0..4)
        .round_robin("orders", 12, 3, &[0, 1, 2])
        .build();
    let plan = plan(&request).unwrap();
    verify(&request, &plan).unwrap();
    let after = apply(&request.partitions, &plan);
    let (replicas, leaders) = counts(&after, &request.target);
    assert_eq!(replicas.values().copied().collect::<Vec<_>>(), [9, 9, 9, 9]);
    assert_eq!(leaders.values().copied().collect::<Vec<_>>(), [3, 3, 3, 3]);
    // 36 replicas over 4 brokers: exactly 9 must reach broker 3, from the 9 smallest partitions.
    assert_eq!(plan.summary.replicas_moved, 9);
    assert_eq!(plan.summary.partitions_moved, 9);
    assert_eq!(moved_partitions(&plan), (0..9).collect());
    assert_eq!(
        plan.summary.bytes_moved,
        (1..=9).map(|i| i * 1000).sum::<u64>()
    );
    assert_eq!(plan.summary.replicas_per_broker_before[&3], 0);
    assert_eq!(plan.summary.replicas_per_broker_after[&3], 9);
}

#[test]
fn scale_down_four_to_three_drains_broker_three_and_moves_nothing_else() {
    let request = Cluster::brokers(0..4)
        .round_robin("orders", 12, 3, &[0, 1, 2, 3])
        .target([0, 1, 2])
        .build();
    let on_broker_3 = request
        .partitions
        .iter()
        .filter(|p| p.replicas.contains(&3))
        .count();
    let plan = plan(&request).unwrap();
    verify(&request, &plan).unwrap();
    let after = apply(&request.partitions, &plan);
    assert!(after.iter().all(|p| !p.replicas.contains(&3)));
    assert_eq!(plan.summary.replicas_moved, on_broker_3);
    assert_eq!(plan.summary.replicas_per_broker_after[&3], 0);
    assert_eq!(plan.summary.leaders_per_broker_after[&3], 0);
    let (replicas, leaders) = counts(&after, &request.target);
    assert_eq!(replicas.values().copied().collect::<Vec<_>>(), [12, 12, 12]);
    assert_eq!(leaders.values().copied().collect::<Vec<_>>(), [4, 4, 4]);
}

#[test]
fn drain_below_replication_factor_is_refused_naming_each_blocking_topic_once() {
    let request = Cluster::brokers(0..4)
        .round_robin("orders", 4, 3, &[0, 1, 2, 3])
        .round_robin("audit", 2, 3, &[0, 1, 2, 3])
        .round_robin("logs", 4, 2, &[0, 1, 2, 3])
        .target([0, 1])
        .build();
    let blocking = ["audit", "orders"].map(|topic| BlockingTopic {
        topic: topic.into(),
        replication_factor: 3,
    });
    assert_eq!(
        plan(&request),
        Err(PlanError::NotEnoughBrokers {
            blocking: blocking.to_vec(),
            target_brokers: 2,
        })
    );
    let message = plan(&request).unwrap_err().to_string();
    assert!(
        message.contains("audit (replication factor 3), orders"),
        "{message}"
    );
}

#[test]
fn target_naming_an_unknown_broker_is_refused() {
    let request = Cluster::brokers(0..3)
        .round_robin("orders", 3, 1, &[0, 1, 2])
        .target([0, 1, 7])
        .build();
    assert_eq!(plan(&request), Err(PlanError::UnknownBroker(7)));
}

#[test]
fn duplicate_partitions_and_conflicting_brokers_are_refused() {
    let twice = Cluster::brokers(0..3)
        .partition("orders", 0, &[0], 1)
        .partition("orders", 0, &[1], 1)
        .build();
    assert_eq!(
        plan(&twice),
        Err(PlanError::DuplicatePartition {
            topic: "orders".into(),
            partition: 0
        })
    );
    let conflicting = Cluster::racked(&[(0, "a"), (1, "b"), (0, "c")]).build();
    assert_eq!(plan(&conflicting), Err(PlanError::DuplicateBroker(0)));
}

#[test]
fn partitions_crowded_into_two_racks_spread_over_all_three() {
    let request = Cluster::racked(&[(0, "a"), (1, "a"), (2, "b"), (3, "b"), (4, "c"), (5, "c")])
        .round_robin("orders", 6, 3, &[0, 1, 2, 3])
        .build();
    let plan = plan(&request).unwrap();
    verify(&request, &plan).unwrap();
    let after = apply(&request.partitions, &plan);
    let (replicas, _) = counts(&after, &request.target);
    assert!(spread(replicas.values().copied()) <= 1, "{replicas:?}");
}

#[test]
fn partition_already_spread_over_every_rack_is_left_alone() {
    let request = Cluster::racked(&[(0, "a"), (1, "b"), (2, "c")])
        .partition("orders", 0, &[0, 1, 2], 10)
        .partition("orders", 1, &[1, 2, 0], 10)
        .partition("orders", 2, &[2, 0, 1], 10)
        .build();
    assert!(plan(&request).unwrap().moves.is_empty());
}

#[test]
fn rack_spread_wins_over_replica_balance_with_uneven_racks() {
    // Every partition must have a replica in rack "a", which has one broker.
    let request = Cluster::racked(&[(0, "a"), (1, "b"), (2, "b"), (3, "b")])
        .round_robin("orders", 6, 2, &[1, 2, 3])
        .build();
    let plan = plan(&request).unwrap();
    verify(&request, &plan).unwrap();
    let after = apply(&request.partitions, &plan);
    assert!(after.iter().all(|p| p.replicas.contains(&0)));
    assert_eq!(plan.summary.replicas_moved, 6);
}

#[test]
fn skewed_leaders_are_balanced_by_reordering_alone() {
    let mut cluster = Cluster::brokers(0..3);
    for i in 0..6 {
        let followers = if i % 2 == 0 { [0, 1, 2] } else { [0, 2, 1] };
        cluster = cluster.partition("orders", i, &followers, 1 << 20);
    }
    let request = cluster.build();
    let plan = plan(&request).unwrap();
    verify(&request, &plan).unwrap();
    assert_eq!(plan.summary.replicas_moved, 0);
    assert_eq!(plan.summary.bytes_moved, 0);
    assert_eq!(plan.summary.partitions_moved, 0);
    assert_eq!(plan.summary.leaders_changed, 4);
    let leaders: Vec<usize> = plan
        .summary
        .leaders_per_broker_after
        .values()
        .copied()
        .collect();
    assert_eq!(leaders, [2, 2, 2]);
    for m in &plan.moves {
        assert_eq!(
            m.from.iter().collect::<BTreeSet<_>>(),
            m.to.iter().collect::<BTreeSet<_>>()
        );
    }
}

#[test]
fn shuffled_input_yields_the_same_plan() {
    let request = Cluster::racked(&[(1, "a"), (2, "b"), (3, "c"), (4, "a"), (5, "b"), (6, "c")])
        .round_robin("orders", 40, 3, &[1, 2, 3])
        .round_robin("logs", 25, 2, &[2, 4, 6, 5])
        .round_robin("audit", 9, 1, &[1])
        .target([1, 2, 3, 4, 5])
        .build();
    let expected = plan(&request).unwrap();
    verify(&request, &expected).unwrap();
    for seed in 0..10 {
        assert_eq!(plan(&shuffled(&request, seed)).unwrap(), expected);
    }
}

#[test]
fn replanning_an_applied_plan_moves_nothing() {
    let request = Cluster::brokers(0..5)
        .round_robin("orders", 30, 3, &[0, 1])
        .round_robin("logs", 7, 1, &[4])
        .target([1, 2, 3, 4])
        .build();
    let first = plan(&request).unwrap();
    verify(&request, &first).unwrap();
    let again = krait_planner::PlanRequest {
        partitions: apply(&request.partitions, &first),
        ..request
    };
    let second = plan(&again).unwrap();
    assert!(second.moves.is_empty(), "{:?}", second.moves);
    assert_eq!(
        second.summary.replicas_per_broker_after,
        second.summary.replicas_per_broker_before
    );
}

#[test]
fn replica_on_a_vanished_broker_or_repeated_is_replaced_and_empty_lists_stay_empty() {
    let request = Cluster::brokers(0..3)
        .partition("orders", 0, &[0, 42, 1], 5)
        .partition("orders", 1, &[2, 2, 0], 5)
        .partition("empty", 0, &[], 5)
        .build();
    let plan = plan(&request).unwrap();
    verify(&request, &plan).unwrap();
    assert_eq!(plan.summary.replicas_per_broker_before[&42], 1);
    assert_eq!(plan.summary.replicas_per_broker_after[&42], 0);
    assert!(plan.moves.iter().all(|m| m.topic != "empty"));
}

#[test]
fn plan_serializes_in_camel_case() {
    let request = Cluster::brokers(0..2)
        .round_robin("orders", 2, 1, &[0])
        .build();
    let json = serde_json::to_value(plan(&request).unwrap()).unwrap();
    assert_eq!(json["summary"]["replicasMoved"], 1);
    assert_eq!(json["moves"][0]["sizeBytes"], 1000);
    let error = serde_json::to_value(PlanError::NotEnoughBrokers {
        blocking: vec![],
        target_brokers: 1,
    })
    .unwrap();
    assert_eq!(error["notEnoughBrokers"]["targetBrokers"], 1);
}

#[test]
fn rule_checker_rejects_an_assignment_left_as_it_was() {
    let empty = krait_planner::Plan::default();
    let drain = Cluster::brokers(0..3)
        .round_robin("orders", 3, 1, &[0, 1, 2])
        .target([0, 1])
        .build();
    assert!(
        verify(&drain, &empty)
            .unwrap_err()
            .contains("non-target broker 2")
    );
    let skewed = Cluster::brokers(0..3)
        .round_robin("orders", 6, 1, &[0])
        .build();
    assert!(verify(&skewed, &empty).unwrap_err().contains("unbalanced"));
    let crowded = Cluster::racked(&[(0, "a"), (1, "a"), (2, "b")])
        .partition("orders", 0, &[0, 1], 1)
        .build();
    assert!(verify(&crowded, &empty).unwrap_err().contains("racks"));
    let leaders = Cluster::brokers(0..2)
        .partition("orders", 0, &[0, 1], 1)
        .partition("orders", 1, &[0, 1], 1)
        .build();
    assert!(verify(&leaders, &empty).unwrap_err().contains("hand over"));
}
