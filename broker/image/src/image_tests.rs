//! Specifications of the cluster image: how each metadata record changes it, and fixtures
//! the rules' tests share.

use super::*;

/// A broker registration for tests: `broker(2, Some("a"))`.
pub(crate) fn broker(id: BrokerId, rack: Option<&str>) -> BrokerRegistration {
    BrokerRegistration {
        id,
        rack: rack.map(str::to_string),
        kafka_host: "127.0.0.1".to_string(),
        kafka_port: 9092 + id,
        cluster_address: format!("127.0.0.1:{}", 19092 + id),
        listeners: Default::default(),
        incarnation: Uuid::nil(),
        directory: None,
        fenced: false,
    }
}

/// An image with live brokers `ids` and one topic `t` with the given assignments.
pub(crate) fn image_with(ids: &[BrokerId], assignments: &[&[BrokerId]]) -> ClusterImage {
    let mut image = ClusterImage::default();
    for id in ids {
        image
            .apply(&MetadataRecord::RegisterBroker(broker(*id, None)))
            .unwrap();
    }
    image
        .apply(&MetadataRecord::CreateTopic {
            name: "t".into(),
            id: Uuid::nil(),
            assignments: assignments.iter().map(|a| a.to_vec()).collect(),
            configs: BTreeMap::new(),
        })
        .unwrap();
    image
}

#[test]
fn new_partition_is_led_by_its_first_replica_with_every_replica_in_sync() {
    let image = image_with(&[1, 2, 3], &[&[2, 3, 1]]);
    let p = image.partition("t", 0).unwrap();
    assert_eq!(p.leader, Some(2));
    assert_eq!(p.isr, vec![2, 3, 1]);
    assert_eq!((p.leader_epoch, p.partition_epoch), (0, 0));
}

#[test]
fn cluster_id_is_set_once_and_a_different_one_is_refused() {
    let mut image = ClusterImage::default();
    let init = |id: &str| MetadataRecord::InitCluster {
        cluster_id: id.into(),
    };
    image.apply(&init("abc")).unwrap();
    image.apply(&init("abc")).unwrap();
    assert!(matches!(
        image.apply(&init("xyz")),
        Err(ApplyError::ClusterIdMismatch { .. })
    ));
    assert_eq!(image.cluster_id.as_deref(), Some("abc"));
}

#[test]
fn create_topic_refuses_duplicates_unknown_brokers_and_repeated_replicas_changing_nothing() {
    let mut image = image_with(&[1, 2], &[&[1, 2]]);
    let before = image.clone();
    let create = |assignments: Vec<Vec<BrokerId>>| MetadataRecord::CreateTopic {
        name: "u".into(),
        id: Uuid::nil(),
        assignments,
        configs: BTreeMap::new(),
    };
    assert_eq!(
        image.apply(&create(vec![vec![1], vec![7]])),
        Err(ApplyError::UnknownBroker(7))
    );
    assert!(image.apply(&create(vec![vec![1, 1]])).is_err());
    assert!(image.apply(&create(vec![])).is_err());
    assert!(image.apply(&create(vec![vec![]])).is_err());
    assert_eq!(image, before);
    let mut again = create(vec![vec![1]]);
    if let MetadataRecord::CreateTopic { name, .. } = &mut again {
        *name = "t".into();
    }
    assert_eq!(
        image.apply(&again),
        Err(ApplyError::TopicExists("t".into()))
    );
}

#[test]
fn create_partitions_appends_and_delete_topic_removes() {
    let mut image = image_with(&[1, 2], &[&[1, 2]]);
    image
        .apply(&MetadataRecord::CreatePartitions {
            topic: "t".into(),
            assignments: vec![vec![2, 1], vec![1, 2]],
        })
        .unwrap();
    assert_eq!(image.topics["t"].partitions.len(), 3);
    assert_eq!(image.partition("t", 1).unwrap().leader, Some(2));
    image
        .apply(&MetadataRecord::DeleteTopic { name: "t".into() })
        .unwrap();
    assert!(image.topics.is_empty());
    assert_eq!(
        image.apply(&MetadataRecord::DeleteTopic { name: "t".into() }),
        Err(ApplyError::UnknownTopic("t".into()))
    );
}

#[test]
fn partition_change_bumps_leader_epoch_only_on_leader_change_or_lost_replicas() {
    let mut image = image_with(&[1, 2, 3], &[&[1, 2, 3]]);
    let state = image.partition("t", 0).unwrap().clone();
    let mut shrink = PartitionChange::from_state("t", 0, &state);
    shrink.isr = vec![1, 2];
    image
        .apply(&MetadataRecord::ChangePartition(shrink))
        .unwrap();
    let p = image.partition("t", 0).unwrap().clone();
    assert_eq!((p.leader_epoch, p.partition_epoch), (0, 1));

    let mut new_leader = PartitionChange::from_state("t", 0, &p);
    new_leader.leader = Some(2);
    image
        .apply(&MetadataRecord::ChangePartition(new_leader))
        .unwrap();
    let p = image.partition("t", 0).unwrap().clone();
    assert_eq!(
        (p.leader, p.leader_epoch, p.partition_epoch),
        (Some(2), 1, 2)
    );

    let mut drop_replica = PartitionChange::from_state("t", 0, &p);
    drop_replica.replicas = vec![1, 2];
    image
        .apply(&MetadataRecord::ChangePartition(drop_replica))
        .unwrap();
    assert_eq!(image.partition("t", 0).unwrap().leader_epoch, 2);
}

#[test]
fn partition_changes_that_break_the_invariants_are_refused_whoever_proposes_them() {
    let mut image = image_with(&[1, 2, 3], &[&[1, 2, 3]]);
    let state = image.partition("t", 0).unwrap().clone();
    type Breaks = fn(&mut PartitionChange);
    let broken: [(&str, Breaks); 8] = [
        ("leader outside the ISR", |c| {
            c.isr = vec![2, 3];
            c.leader = Some(1)
        }),
        ("ISR member not a replica", |c| c.isr = vec![1, 4]),
        ("repeated ISR member", |c| c.isr = vec![1, 1]),
        ("no replicas", |c| {
            c.replicas.clear();
            c.isr.clear();
            c.leader = None
        }),
        ("repeated replica", |c| c.replicas = vec![1, 1, 2]),
        ("unregistered replica", |c| c.replicas = vec![1, 2, 3, 9]),
        ("adding a non-replica", |c| c.adding = vec![4]),
        ("removing a non-replica", |c| c.removing = vec![4]),
    ];
    let before = image.clone();
    for (what, breaks) in broken {
        let mut change = PartitionChange::from_state("t", 0, &state);
        breaks(&mut change);
        let refused = image.apply(&MetadataRecord::ChangePartition(change));
        assert!(
            matches!(refused, Err(ApplyError::InvalidPartitionState { .. })),
            "{what}: {refused:?}"
        );
        assert_eq!(image, before, "{what}: nothing changed");
    }
    // An offline partition (no leader) with its last ISR member kept is a valid state.
    let mut offline = PartitionChange::from_state("t", 0, &state);
    offline.isr = vec![3];
    offline.leader = None;
    image
        .apply(&MetadataRecord::ChangePartition(offline))
        .unwrap();
}

#[test]
fn partition_change_from_a_stale_epoch_is_refused_and_changes_nothing() {
    let mut image = image_with(&[1, 2], &[&[1, 2]]);
    let state = image.partition("t", 0).unwrap().clone();
    let mut first = PartitionChange::from_state("t", 0, &state);
    first.isr = vec![1];
    let mut second = PartitionChange::from_state("t", 0, &state);
    second.leader = Some(2);
    image
        .apply(&MetadataRecord::ChangePartition(first))
        .unwrap();
    let before = image.clone();
    assert!(matches!(
        image.apply(&MetadataRecord::ChangePartition(second)),
        Err(ApplyError::StalePartitionEpoch {
            expected: 0,
            actual: 1,
            ..
        })
    ));
    assert_eq!(image, before);
}

#[test]
fn offsets_are_committed_overwritten_and_deleted_per_partition_or_group() {
    let mut image = ClusterImage::default();
    let commit = |offset| OffsetCommit {
        offset,
        leader_epoch: -1,
        metadata: None,
        commit_timestamp: 7,
    };
    let record = |offsets: Vec<(&str, i32, i64)>| MetadataRecord::CommitOffsets {
        group: "g".into(),
        offsets: offsets
            .into_iter()
            .map(|(t, p, o)| (t.to_string(), p, commit(o)))
            .collect(),
    };
    image
        .apply(&record(vec![("a", 0, 5), ("a", 1, 6), ("b", 0, 1)]))
        .unwrap();
    image.apply(&record(vec![("a", 0, 9)])).unwrap();
    assert_eq!(image.offsets["g"]["a"][&0].offset, 9);
    assert_eq!(image.offsets["g"]["a"][&1].offset, 6);
    image
        .apply(&MetadataRecord::DeleteOffsets {
            group: "g".into(),
            partitions: Some(vec![("b".into(), 0)]),
        })
        .unwrap();
    assert!(!image.offsets["g"].contains_key("b"));
    let json = serde_json::to_string(&image).unwrap();
    assert_eq!(serde_json::from_str::<ClusterImage>(&json).unwrap(), image);
    image
        .apply(&MetadataRecord::DeleteOffsets {
            group: "g".into(),
            partitions: None,
        })
        .unwrap();
    assert!(image.offsets.is_empty());
}

#[test]
fn a_broker_config_falls_back_to_the_cluster_default_and_an_empty_set_clears_it() {
    let mut image = ClusterImage::default();
    let set = |resource: &str, pairs: &[(&str, &str)]| MetadataRecord::SetBrokerConfigs {
        resource: resource.into(),
        configs: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    image.apply(&set("", &[("rate", "100")])).unwrap();
    image.apply(&set("2", &[("rate", "5")])).unwrap();
    assert_eq!(image.broker_config(1, "rate"), Some("100"));
    assert_eq!(image.broker_config(2, "rate"), Some("5"));
    image.apply(&set("2", &[])).unwrap();
    assert_eq!(image.broker_config(2, "rate"), Some("100"));
    assert!(!image.broker_configs.contains_key("2"));
}

#[test]
fn only_a_fenced_broker_with_no_replica_can_be_unregistered() {
    let mut image = image_with(&[1, 2, 3, 4], &[&[1, 2, 3]]);
    let unregister = |id| MetadataRecord::UnregisterBroker { id };
    assert_eq!(image.apply(&unregister(4)), Err(ApplyError::BrokerAlive(4)));
    image.apply(&MetadataRecord::FenceBroker { id: 3 }).unwrap();
    let before = image.clone();
    assert_eq!(
        image.apply(&unregister(3)),
        Err(ApplyError::BrokerInUse {
            broker: 3,
            partitions: 1,
            example: "t-0".into()
        })
    );
    assert_eq!(image, before);
    image.apply(&MetadataRecord::FenceBroker { id: 4 }).unwrap();
    image.apply(&unregister(4)).unwrap();
    assert!(!image.brokers.contains_key(&4));
    assert_eq!(
        image.apply(&unregister(4)),
        Err(ApplyError::UnknownBroker(4))
    );
    assert_eq!(image.partitions_on(3), vec![("t".to_string(), 0)]);
}

#[test]
fn a_fenced_broker_cannot_rejoin_an_isr_but_may_stay_in_one() {
    let mut image = image_with(&[1, 2, 3], &[&[1, 2, 3]]);
    let mut shrink = PartitionChange::from_state("t", 0, image.partition("t", 0).unwrap());
    shrink.isr = vec![1, 2];
    image
        .apply(&MetadataRecord::ChangePartition(shrink))
        .unwrap();
    image.apply(&MetadataRecord::FenceBroker { id: 3 }).unwrap();
    image.apply(&MetadataRecord::FenceBroker { id: 2 }).unwrap();
    let before = image.clone();
    let mut rejoin = PartitionChange::from_state("t", 0, image.partition("t", 0).unwrap());
    rejoin.isr = vec![1, 2, 3];
    assert!(matches!(
        image.apply(&MetadataRecord::ChangePartition(rejoin)),
        Err(ApplyError::IneligibleReplica { broker: 3, .. })
    ));
    assert_eq!(image, before);
    // Broker 2 is fenced but already in the ISR: a change that keeps it is not refused.
    let mut keep = PartitionChange::from_state("t", 0, image.partition("t", 0).unwrap());
    keep.leader = Some(2);
    image.apply(&MetadataRecord::ChangePartition(keep)).unwrap();
    image
        .apply(&MetadataRecord::UnfenceBroker { id: 3 })
        .unwrap();
    let mut rejoin = PartitionChange::from_state("t", 0, image.partition("t", 0).unwrap());
    rejoin.isr = vec![1, 2, 3];
    image
        .apply(&MetadataRecord::ChangePartition(rejoin))
        .unwrap();
}

#[test]
fn fencing_and_unfencing_flip_liveness_of_registered_brokers_only() {
    let mut image = image_with(&[1, 2], &[&[1]]);
    image.apply(&MetadataRecord::FenceBroker { id: 2 }).unwrap();
    assert!(!image.is_live(2));
    assert_eq!(image.live_brokers().count(), 1);
    image
        .apply(&MetadataRecord::UnfenceBroker { id: 2 })
        .unwrap();
    assert!(image.is_live(2));
    assert_eq!(
        image.apply(&MetadataRecord::FenceBroker { id: 9 }),
        Err(ApplyError::UnknownBroker(9))
    );
}

#[test]
fn records_round_trip_through_serde() {
    let record = MetadataRecord::ChangePartition(PartitionChange {
        topic: "t".into(),
        partition: 3,
        expected_partition_epoch: 7,
        replicas: vec![1, 2, 3],
        isr: vec![1, 3],
        leader: None,
        adding: vec![3],
        removing: vec![],
    });
    let json = serde_json::to_string(&record).unwrap();
    assert_eq!(
        serde_json::from_str::<MetadataRecord>(&json).unwrap(),
        record
    );
}

/// `broker(id)` registered from data directory `directory` by a new process.
fn from_directory(id: BrokerId, directory: Option<u128>) -> MetadataRecord {
    MetadataRecord::RegisterBroker(BrokerRegistration {
        incarnation: Uuid::new_v4(),
        directory: directory.map(Uuid::from_u128),
        ..broker(id, None)
    })
}

#[test]
fn a_broker_back_with_a_new_data_directory_leaves_every_isr_and_leadership_at_once() {
    // Partition 0 led by 1; partition 1 led by 2 with 1 in sync; partition 2 with 1 out of
    // sync; partition 3 led by 2 alone.
    let mut image = image_with(&[1, 2, 3], &[&[1, 2, 3], &[2, 1, 3], &[2, 3, 1], &[2]]);
    let t = image.topics.get_mut("t").unwrap();
    t.partitions[2].isr = vec![2, 3];
    image.apply(&from_directory(1, Some(1))).unwrap();
    let before = image.clone();

    // The same directory from a new process (a restart with the volume kept) changes nothing.
    image.apply(&from_directory(1, Some(1))).unwrap();
    assert_eq!(image.topics, before.topics);

    image.apply(&from_directory(1, Some(2))).unwrap();
    let p = |i| image.partition("t", i).unwrap().clone();
    let was = |i| before.partition("t", i).unwrap().clone();
    assert_eq!((p(0).leader, p(0).isr.clone()), (None, vec![2, 3]));
    assert_eq!(p(0).leader_epoch, was(0).leader_epoch + 1);
    assert_eq!(p(0).partition_epoch, was(0).partition_epoch + 1);
    assert_eq!((p(1).leader, p(1).isr.clone()), (Some(2), vec![2, 3]));
    assert_eq!(p(1).leader_epoch, was(1).leader_epoch);
    assert_eq!(p(1).partition_epoch, was(1).partition_epoch + 1);
    assert_eq!(p(2), was(2));
    assert_eq!(p(3), was(3));
    assert_eq!(image.brokers[&1].directory, Some(Uuid::from_u128(2)));
    assert!(
        image.is_live(1),
        "it registers as usual, a follower with empty replicas"
    );
}

#[test]
fn a_registration_without_a_directory_id_on_either_side_keeps_the_replicas() {
    // Brokers that registered before directories had ids, or records from them.
    let mut image = image_with(&[1, 2], &[&[1, 2]]);
    let before = image.partition("t", 0).unwrap().clone();
    image.apply(&from_directory(1, Some(7))).unwrap();
    image.apply(&from_directory(1, None)).unwrap();
    image.apply(&from_directory(1, Some(8))).unwrap();
    assert_eq!(image.partition("t", 0).unwrap(), &before);
}
