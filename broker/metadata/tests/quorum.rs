//! The metadata quorum end to end: real RocksDB, real gRPC on loopback, several nodes in one
//! process.

mod support;

use std::collections::BTreeMap;
use std::time::Instant;

use krait_image::{ApplyError, ClusterImage, MetadataRecord, PartitionChange};
use krait_metadata::{Membership, ProposeError, QuorumConfig};
use rand::seq::SliceRandom;
use support::{Cluster, create_topic, register, topics, within};

/// A change of partition `t-0` that only applies on top of the `epoch`-th change: proposing
/// them in order and finding the last epoch everywhere shows every node applied them in order.
fn change_in_order(epoch: i32) -> MetadataRecord {
    MetadataRecord::ChangePartition(PartitionChange {
        topic: "t".into(),
        partition: 0,
        expected_partition_epoch: epoch,
        replicas: vec![1],
        isr: vec![1],
        leader: Some(1),
        adding: vec![],
        removing: vec![],
    })
}

fn partition_epoch(image: &ClusterImage) -> Option<i32> {
    image.partition("t", 0).map(|p| p.partition_epoch)
}

async fn three_started_in_shuffled_order() -> Cluster {
    let mut cluster = Cluster::new(&[1, 2, 3]).await;
    let mut order = vec![1, 2, 3];
    order.shuffle(&mut rand::rng());
    for id in order {
        cluster.start(id).await;
    }
    cluster
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_voter_quorum_elects_itself_and_applies_proposals() {
    let mut cluster = Cluster::new(&[7]).await;
    let quorum = cluster.start(7).await;
    assert_eq!(cluster.agreed_leader(&[7]).await, 7);
    let results = within(
        "propose",
        quorum.propose(vec![register(7), create_topic("t", &[7])]),
    )
    .await
    .unwrap();
    assert_eq!(results, vec![Ok(()), Ok(())]);
    let image = quorum.image().borrow().clone();
    assert_eq!(topics(&image), vec!["t"]);
    assert!(image.brokers.contains_key(&7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_started_in_any_order_elect_one_leader_and_apply_the_same_records_in_order() {
    let cluster = three_started_in_shuffled_order().await;
    let leader = cluster.agreed_leader(&[1, 2, 3]).await;
    let quorum = cluster.quorum(leader);
    let setup = vec![register(1), create_topic("t", &[1])];
    assert_eq!(quorum.propose(setup).await.unwrap(), vec![Ok(()), Ok(())]);
    for epoch in 0..20 {
        let results = quorum.propose(vec![change_in_order(epoch)]).await.unwrap();
        assert_eq!(results, vec![Ok(())], "change {epoch}");
    }
    cluster
        .images_reach(&[1, 2, 3], |i| partition_epoch(i) == Some(20))
        .await;
    assert_eq!(cluster.image(1), cluster.image(2));
    assert_eq!(cluster.image(2), cluster.image(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn propose_on_a_follower_is_refused_with_the_leaders_id() {
    let cluster = three_started_in_shuffled_order().await;
    let leader = cluster.agreed_leader(&[1, 2, 3]).await;
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    assert!(!cluster.quorum(follower).is_leader());
    let refused = cluster.quorum(follower).propose(vec![register(9)]).await;
    assert_eq!(
        refused,
        Err(ProposeError::NotLeader {
            leader: Some(leader)
        })
    );
    assert!(cluster.image(follower).brokers.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_leader_dies_a_new_one_keeps_every_committed_record_and_takes_proposals() {
    let mut cluster = three_started_in_shuffled_order().await;
    let old = cluster.agreed_leader(&[1, 2, 3]).await;
    let records = vec![
        register(1),
        create_topic("a", &[1]),
        create_topic("b", &[1]),
    ];
    cluster.quorum(old).propose(records).await.unwrap();
    cluster.stop(old).await;

    let rest: Vec<i32> = cluster.running();
    let new = cluster.agreed_leader(&rest).await;
    assert_ne!(new, old);
    // Committed before the leader died: the survivors hold (or, once the new leader's first
    // entry commits, apply) every one of them.
    cluster
        .images_reach(&rest, |i| topics(i) == ["a", "b"])
        .await;
    let more = cluster
        .quorum(new)
        .propose(vec![create_topic("c", &[1])])
        .await;
    assert_eq!(more.unwrap(), vec![Ok(())]);
    cluster
        .images_reach(&rest, |i| topics(i) == ["a", "b", "c"])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_cluster_recovers_each_image_from_its_own_log_without_forming_again() {
    let mut cluster = three_started_in_shuffled_order().await;
    let leader = cluster.agreed_leader(&[1, 2, 3]).await;
    let records = vec![
        register(1),
        create_topic("a", &[1]),
        create_topic("b", &[1]),
    ];
    cluster.quorum(leader).propose(records).await.unwrap();
    cluster
        .images_reach(&[1, 2, 3], |i| topics(i) == ["a", "b"])
        .await;
    let term_before = cluster.quorum(leader).raft_metrics().borrow().current_term;
    for id in [1, 2, 3] {
        cluster.stop(id).await;
    }

    // Alone, a voter cannot learn anything from a leader: what it shows came from its own disk.
    cluster.start(2).await;
    assert_eq!(topics(&cluster.image(2)), vec!["a", "b"]);
    cluster.start(3).await;
    cluster.start(1).await;
    let leader = cluster.agreed_leader(&[1, 2, 3]).await;
    let metrics = cluster.quorum(leader).raft_metrics().borrow().clone();
    // A restarted leader with a committed vote may lead again in the same term (openraft
    // restores it); a cluster formed anew would start over from term 0.
    assert!(
        metrics.current_term >= term_before,
        "terms go on: no new cluster"
    );
    let membership: Vec<u64> = metrics.membership_config.voter_ids().collect();
    assert_eq!(membership, vec![1, 2, 3]);
    let more = cluster
        .quorum(leader)
        .propose(vec![create_topic("c", &[1])])
        .await;
    assert_eq!(more.unwrap(), vec![Ok(())]);
    cluster
        .images_reach(&[1, 2, 3], |i| topics(i) == ["a", "b", "c"])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voter_that_missed_purged_entries_catches_up_from_an_installed_snapshot() {
    let mut cluster = Cluster::new(&[1, 2, 3]).await;
    cluster.tune = |id, config| {
        support::test_timings(id, config);
        // Nodes 1 and 2 snapshot and purge eagerly; node 3 never builds a snapshot itself,
        // so one it has must have been installed from the leader.
        config.snapshot_every_entries = if id == 3 { 1_000_000 } else { 5 };
        config.entries_kept_after_snapshot = 0;
    };
    cluster.start(3).await;
    cluster.start(1).await;
    cluster.start(2).await;
    let leader = cluster.agreed_leader(&[1, 2, 3]).await;
    cluster
        .quorum(leader)
        .propose(vec![register(1)])
        .await
        .unwrap();
    cluster.images_reach(&[3], |i| i.brokers.len() == 1).await;
    cluster.stop(3).await;

    let leader = cluster.agreed_leader(&[1, 2]).await;
    for n in 0..30 {
        let name = format!("t{n:02}");
        let results = cluster
            .quorum(leader)
            .propose(vec![create_topic(&name, &[1])])
            .await;
        assert_eq!(results.unwrap(), vec![Ok(())]);
    }
    let mut metrics = cluster.quorum(leader).raft_metrics();
    within(
        "the leader purges its log past node 3",
        metrics.wait_for(|m| m.purged.is_some_and(|p| p.index > 10)),
    )
    .await
    .unwrap();

    cluster.start(3).await;
    cluster.images_reach(&[3], |i| i.topics.len() == 30).await;
    let snapshot = cluster.quorum(3).raft_metrics().borrow().snapshot;
    assert!(snapshot.is_some(), "node 3 caught up from a snapshot");
    assert_eq!(cluster.image(3), cluster.image(leader));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_record_returns_its_error_and_changes_nothing_on_any_voter() {
    let cluster = three_started_in_shuffled_order().await;
    let leader = cluster.agreed_leader(&[1, 2, 3]).await;
    let quorum = cluster.quorum(leader);
    quorum
        .propose(vec![register(1), create_topic("t", &[1])])
        .await
        .unwrap();
    cluster
        .images_reach(&[1, 2, 3], |i| topics(i) == ["t"])
        .await;
    let before = cluster.image(leader);

    let mut duplicate = create_topic("t", &[1]);
    if let MetadataRecord::CreateTopic { id, configs, .. } = &mut duplicate {
        *id = uuid::Uuid::from_u128(42);
        configs.insert("retention.ms".into(), "1".into());
    }
    let results = quorum
        .propose(vec![duplicate, create_topic("u", &[1])])
        .await
        .unwrap();
    assert_eq!(
        results,
        vec![Err(ApplyError::TopicExists("t".into())), Ok(())],
        "a refused record does not stop the ones after it"
    );
    cluster
        .images_reach(&[1, 2, 3], |i| topics(i) == ["t", "u"])
        .await;
    for id in [1, 2, 3] {
        assert_eq!(
            cluster.image(id).topics["t"],
            before.topics["t"],
            "node {id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_leader_cannot_commit_while_the_majority_moves_on() {
    let mut cluster = Cluster::new(&[1, 2, 3]).await;
    cluster.tune = |id, config| {
        support::test_timings(id, config);
        config.propose_timeout_ms = 1_500;
    };
    for id in [1, 2, 3] {
        cluster.start(id).await;
    }
    let old = cluster.agreed_leader(&[1, 2, 3]).await;
    cluster
        .quorum(old)
        .propose(vec![register(1)])
        .await
        .unwrap();
    let majority: Vec<i32> = [1, 2, 3].into_iter().filter(|id| *id != old).collect();
    cluster
        .images_reach(&majority, |i| i.brokers.len() == 1)
        .await;

    cluster.quorum(old).set_partitioned(true);
    let lost = cluster
        .quorum(old)
        .propose(vec![create_topic("lost", &[1])])
        .await;
    assert!(
        matches!(
            lost,
            Err(ProposeError::Timeout(_) | ProposeError::NotLeader { .. })
        ),
        "{lost:?}"
    );
    let new = cluster.agreed_leader(&majority).await;
    let kept = cluster
        .quorum(new)
        .propose(vec![create_topic("kept", &[1])])
        .await;
    assert_eq!(kept.unwrap(), vec![Ok(())]);

    cluster.quorum(old).set_partitioned(false);
    cluster
        .images_reach(&[1, 2, 3], |i| topics(i) == ["kept"])
        .await;
    let leader = cluster.agreed_leader(&[1, 2, 3]).await;
    assert_ne!(leader, old, "the stale leader stepped down");
    for id in [1, 2, 3] {
        assert!(!cluster.image(id).topics.contains_key("lost"), "node {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_outside_the_voters_starts_as_an_observer_and_forms_nothing() {
    let store = std::sync::Arc::new(krait_storage::Store::in_memory(
        krait_storage::StoreOptions::default(),
    ));
    let voters = BTreeMap::from([(1, "127.0.0.1:1".to_string())]);
    let config = QuorumConfig::new(2, voters);
    assert!(!config.is_voter());
    let quorum = krait_metadata::MetadataQuorum::start(config, store)
        .await
        .unwrap();
    assert_eq!(quorum.leader(), None);
    assert_eq!(quorum.membership(), Membership::default());
    quorum.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_added_by_the_leader_receives_the_log_across_restarts_and_never_votes() {
    let mut cluster = three_started_in_shuffled_order().await;
    let address = cluster.add_observer(4).await;
    cluster.start(4).await;
    let leader = cluster.agreed_leader(&[1, 2, 3]).await;
    let setup = vec![register(1), create_topic("a", &[1])];
    cluster.quorum(leader).propose(setup).await.unwrap();

    // Only the leader adds members; adding again changes nothing.
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    assert!(matches!(
        cluster.quorum(follower).add_observer(4, &address).await,
        Err(ProposeError::NotLeader { .. })
    ));
    within(
        "add_observer",
        cluster.quorum(leader).add_observer(4, &address),
    )
    .await
    .unwrap();
    within(
        "add_observer again",
        cluster.quorum(leader).add_observer(4, &address),
    )
    .await
    .unwrap();
    cluster.images_reach(&[4], |i| topics(i) == ["a"]).await;
    let expected = Membership {
        voters: [1, 2, 3].into(),
        observers: [4].into(),
    };
    assert_eq!(cluster.quorum(leader).membership(), expected);
    // The observer learns who leads from the leader's next append or heartbeat, which may come
    // just after the entries that carried the image.
    within("the observer to know the leader", async {
        while cluster.quorum(4).leader() != Some(leader) {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(matches!(
        cluster.quorum(4).propose(vec![register(4)]).await,
        Err(ProposeError::NotLeader { leader: Some(l) }) if l == leader
    ));

    // Restarted, it resumes from its own log and gets what it missed.
    cluster.stop(4).await;
    let more = vec![create_topic("b", &[1])];
    cluster.quorum(leader).propose(more).await.unwrap();
    cluster.start(4).await;
    cluster
        .images_reach(&[4], |i| topics(i) == ["a", "b"])
        .await;

    // It does not vote: with two voters down no leader is elected, observer or not.
    let others: Vec<i32> = [1, 2, 3].into_iter().filter(|id| *id != leader).collect();
    for id in &others {
        cluster.stop(*id).await;
    }
    assert!(matches!(
        cluster
            .quorum(leader)
            .propose(vec![create_topic("c", &[1])])
            .await,
        Err(ProposeError::Timeout(_) | ProposeError::NotLeader { .. })
    ));
    assert!(!cluster.quorum(4).is_leader());
    for id in &others {
        cluster.start(*id).await;
    }
    let leader = cluster.agreed_leader(&[1, 2, 3]).await;
    within("remove_observer", cluster.quorum(leader).remove_observer(4))
        .await
        .unwrap();
    assert_eq!(cluster.quorum(leader).membership().observers, [].into());
}

/// Loopback figures, printed: election time of a fresh 3-voter quorum and propose latency.
/// `cargo nextest run --release -p krait-metadata --run-ignored only --no-capture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "prints measurements; run on demand"]
async fn loopback_figures() {
    let started = Instant::now();
    let cluster = three_started_in_shuffled_order().await;
    let leader = cluster.agreed_leader(&[1, 2, 3]).await;
    let elected = started.elapsed();
    let quorum = cluster.quorum(leader);
    quorum.propose(vec![register(1)]).await.unwrap();
    let mut latencies = Vec::new();
    for n in 0..500 {
        let t = Instant::now();
        quorum
            .propose(vec![create_topic(&format!("t{n}"), &[1])])
            .await
            .unwrap();
        latencies.push(t.elapsed());
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "3 voters: first leader after {elected:?} (start of all three to agreement); \
         propose (1 record, acknowledged by a quorum): p50 {:?} p99 {:?} max {:?}",
        at(0.5),
        at(0.99),
        at(1.0)
    );
}

/// Timeouts a test can tell apart from a campaign: with these, a follower calls an election on
/// its own only after 15-20 s without its leader (the lease, 10 s, and then 5-10 s).
fn slow_elections(_id: i32, config: &mut QuorumConfig) {
    config.heartbeat_interval_ms = 50;
    config.election_timeout_min_ms = 5_000;
    config.election_timeout_max_ms = 10_000;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voters_that_know_their_leader_is_gone_elect_a_successor_without_waiting_out_the_timeouts()
{
    let mut cluster = Cluster::new(&[1, 2, 3]).await;
    cluster.tune = slow_elections;
    for id in [1, 2, 3] {
        cluster.start(id).await;
    }
    // Forming the quorum elects its first leader at once, whatever the timeouts.
    let old = cluster.agreed_leader(&[1, 2, 3]).await;
    let setup = vec![register(1), create_topic("a", &[1])];
    let applied = cluster.quorum(old).propose(setup).await.unwrap();
    assert_eq!(applied, vec![Ok(()), Ok(())]);
    cluster
        .images_reach(&[1, 2, 3], |i| topics(i) == ["a"])
        .await;
    cluster.stop(old).await;
    let (a, b) = match cluster.running()[..] {
        [a, b] => (a, b),
        ref rest => panic!("two survivors expected: {rest:?}"),
    };

    // One survivor alone: the other still holds the dead leader's lease and refuses its vote.
    let alone = Instant::now();
    let won = cluster
        .quorum(a)
        .campaign_to_succeed(old, std::time::Duration::from_secs(2))
        .await;
    assert!(!won, "elected while the other survivor held the lease");
    assert!(
        cluster
            .running()
            .iter()
            .all(|id| !cluster.quorum(*id).is_leader())
    );

    // Both: a voter that campaigns gives up the lease, and one of them is elected at once,
    // well before either one's timers (15 s after its leader's last heartbeat) would act.
    let both = Instant::now();
    let (won_a, won_b) = within(
        "both survivors campaign",
        futures_util::future::join(
            cluster
                .quorum(a)
                .campaign_to_succeed(old, std::time::Duration::from_secs(8)),
            cluster
                .quorum(b)
                .campaign_to_succeed(old, std::time::Duration::from_secs(8)),
        ),
    )
    .await;
    assert!(won_a && won_b, "a successor known to both: {won_a} {won_b}");
    let new = cluster.agreed_leader(&[a, b]).await;
    assert!(
        alone.elapsed() < std::time::Duration::from_secs(12),
        "the successor took {:?} after the campaign began: the timers could have elected it",
        alone.elapsed()
    );
    println!(
        "leader {old} stopped: {new} leads, known to both {:?} after they began to campaign",
        both.elapsed()
    );
    let more = cluster
        .quorum(new)
        .propose(vec![create_topic("b", &[1])])
        .await;
    assert_eq!(more.unwrap(), vec![Ok(())]);
    cluster
        .images_reach(&[a, b], |i| topics(i) == ["a", "b"])
        .await;
}
