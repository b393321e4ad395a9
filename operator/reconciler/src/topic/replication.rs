//! Changing a topic's replication factor, as Kafka does it: a partition reassignment per
//! partition whose replica count differs from the spec. A pure function of the cluster's
//! observed state picks the next step; the reconciler carries it out through the admin
//! protocol and looks again next time, so an operator restart mid-change resumes.
//!
//! Replicas are added on live brokers, a rack the partition lacks first, then the broker
//! holding the fewest replicas. Replicas are removed out-of-sync first, then from racks that
//! hold two of the partition's replicas, then from the busiest broker; the preferred leader
//! (first in the list) and the last in-sync replica are never removed. A factor the live
//! brokers cannot hold, or one below the topic's `min.insync.replicas`, is refused.

use std::collections::BTreeMap;

use krait_admin::Reassignment;

use crate::cluster_admin::{ClusterState, PartitionObserved};

/// What to do next about a topic's replication factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicationStep {
    /// Every partition has the wanted number of replicas and none of them is moving.
    Done,
    /// Reassignments of this many of the topic's partitions are still running.
    Moving { partitions: usize },
    /// Start these reassignments (every partition still to change, in one request).
    Reassign(Vec<Reassignment>),
    /// The change cannot be made; nothing is started.
    Refused(String),
}

/// The next step towards `want` replicas for every partition of `topic`.
pub fn next_step(topic: &str, want: i32, state: &ClusterState) -> ReplicationStep {
    let moving = state
        .reassignments
        .iter()
        .filter(|r| r.topic == topic)
        .count();
    if moving > 0 {
        return ReplicationStep::Moving { partitions: moving };
    }
    let partitions: Vec<&PartitionObserved> = state
        .partitions
        .iter()
        .filter(|p| p.topic == topic)
        .collect();
    let want_len = usize::try_from(want).unwrap_or(0);
    if partitions.iter().all(|p| p.replicas.len() == want_len) {
        return ReplicationStep::Done;
    }
    if let Some(refusal) = refusal(topic, want, state) {
        return ReplicationStep::Refused(refusal);
    }
    let mut placer = Placer::new(state);
    let moves = partitions
        .iter()
        .filter(|p| p.replicas.len() != want_len)
        .map(|p| Reassignment {
            topic: topic.to_string(),
            partition: p.partition,
            replicas: Some(placer.resize(p, want_len)),
        })
        .collect();
    ReplicationStep::Reassign(moves)
}

fn refusal(topic: &str, want: i32, state: &ClusterState) -> Option<String> {
    let live = state.live_brokers().count();
    let min_insync = state.min_insync.get(topic).copied().unwrap_or(1);
    if want < 1 {
        Some(format!("replication factor {want} is not a replica count"))
    } else if usize::try_from(want).unwrap_or(usize::MAX) > live {
        Some(format!(
            "replication factor {want} needs {want} live brokers; the cluster has {live}"
        ))
    } else if want < min_insync {
        Some(format!(
            "replication factor {want} is below the topic's min.insync.replicas \
             ({min_insync}): acks=all producers would be refused"
        ))
    } else {
        None
    }
}

/// Chooses brokers for added replicas and replicas to drop, keeping the replica count per
/// live broker up to date across the partitions it resizes.
struct Placer {
    racks: BTreeMap<i32, Option<String>>,
    load: BTreeMap<i32, usize>,
}

impl Placer {
    fn new(state: &ClusterState) -> Self {
        let racks: BTreeMap<i32, Option<String>> = state
            .live_brokers()
            .map(|b| (b.id, b.rack.clone()))
            .collect();
        let mut load: BTreeMap<i32, usize> = racks.keys().map(|&id| (id, 0)).collect();
        for id in state.partitions.iter().flat_map(|p| &p.replicas) {
            if let Some(n) = load.get_mut(id) {
                *n += 1;
            }
        }
        Self { racks, load }
    }

    fn rack(&self, broker: i32) -> Option<&str> {
        self.racks.get(&broker).and_then(|r| r.as_deref())
    }

    /// How many of `replicas` share `broker`'s rack (0 when it has none).
    fn rack_mates(&self, replicas: &[i32], broker: i32) -> usize {
        match self.rack(broker) {
            None => 0,
            Some(rack) => replicas
                .iter()
                .filter(|&&r| r != broker && self.rack(r) == Some(rack))
                .count(),
        }
    }

    fn resize(&mut self, partition: &PartitionObserved, want: usize) -> Vec<i32> {
        let mut replicas = partition.replicas.clone();
        while replicas.len() < want {
            let Some(added) = self.addition(&replicas) else {
                break;
            };
            replicas.push(added);
            *self.load.entry(added).or_default() += 1;
        }
        while replicas.len() > want {
            let Some(at) = self.removal(&replicas, &partition.isr) else {
                break;
            };
            let removed = replicas.remove(at);
            if let Some(n) = self.load.get_mut(&removed) {
                *n = n.saturating_sub(1);
            }
        }
        replicas
    }

    /// A live broker not holding the partition: a new rack first, then the least loaded.
    fn addition(&self, replicas: &[i32]) -> Option<i32> {
        self.racks
            .keys()
            .copied()
            .filter(|b| !replicas.contains(b))
            .min_by_key(|&b| (self.rack_mates(replicas, b), self.load[&b], b))
    }

    /// The position to drop: never the preferred leader (unless it is out of sync) nor the
    /// last in-sync replica; out-of-sync first, then a doubled rack, then the busiest broker.
    fn removal(&self, replicas: &[i32], isr: &[i32]) -> Option<usize> {
        let in_sync = replicas.iter().filter(|r| isr.contains(r)).count();
        (0..replicas.len())
            // Out of sync may always go; in sync only if neither the preferred leader nor the
            // last in-sync replica.
            .filter(|&i| !isr.contains(&replicas[i]) || (i > 0 && in_sync > 1))
            .max_by_key(|&i| {
                let b = replicas[i];
                (
                    !isr.contains(&b),
                    self.rack_mates(replicas, b),
                    self.load.get(&b).copied().unwrap_or(0),
                    i,
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use krait_admin::Ongoing;

    use super::*;
    use crate::cluster_admin::BrokerObserved;

    /// Brokers 1..=n, on racks `r1`.. as given (None: no rack), none fenced.
    fn cluster(racks: &[Option<&str>]) -> ClusterState {
        ClusterState {
            brokers: racks
                .iter()
                .enumerate()
                .map(|(i, r)| BrokerObserved {
                    id: i as i32 + 1,
                    rack: r.map(str::to_string),
                    fenced: false,
                })
                .collect(),
            ..ClusterState::default()
        }
    }

    fn with(mut state: ClusterState, topic: &str, replicas: &[&[i32]]) -> ClusterState {
        for (i, r) in replicas.iter().enumerate() {
            state.partitions.push(PartitionObserved {
                topic: topic.into(),
                partition: i as i32,
                replicas: r.to_vec(),
                isr: r.to_vec(),
                size_bytes: 0,
            });
        }
        state.min_insync.insert(topic.into(), 1);
        state
    }

    fn moves(step: ReplicationStep) -> Vec<Vec<i32>> {
        match step {
            ReplicationStep::Reassign(m) => m.into_iter().map(|r| r.replicas.unwrap()).collect(),
            other => panic!("expected reassignments, got {other:?}"),
        }
    }

    #[test]
    fn a_topic_at_its_replication_factor_needs_nothing() {
        let s = with(cluster(&[None, None, None]), "t", &[&[1, 2], &[2, 3]]);
        assert_eq!(next_step("t", 2, &s), ReplicationStep::Done);
    }

    #[test]
    fn growing_adds_the_least_loaded_broker_and_keeps_the_existing_order() {
        // Broker 3 holds one replica of another topic, broker 4 none.
        let s = with(cluster(&[None, None, None, None]), "other", &[&[3]]);
        let s = with(s, "t", &[&[1, 2], &[2, 1]]);
        assert_eq!(
            moves(next_step("t", 3, &s)),
            vec![vec![1, 2, 4], vec![2, 1, 3]]
        );
    }

    #[test]
    fn growing_prefers_a_rack_the_partition_lacks_over_a_lighter_broker() {
        // Broker 2 shares rack a with broker 1 and is empty; broker 3 on rack b is busier.
        let s = with(
            cluster(&[Some("a"), Some("a"), Some("b")]),
            "busy",
            &[&[3], &[3]],
        );
        let s = with(s, "t", &[&[1]]);
        assert_eq!(moves(next_step("t", 2, &s)), vec![vec![1, 3]]);
    }

    #[test]
    fn shrinking_drops_out_of_sync_replicas_first_and_never_the_preferred_leader() {
        let mut s = with(cluster(&[None, None, None]), "t", &[&[1, 2, 3], &[3, 1, 2]]);
        s.partitions[0].isr = vec![1, 3];
        let m = moves(next_step("t", 2, &s));
        assert_eq!(m[0], vec![1, 3], "out-of-sync broker 2 goes");
        assert_eq!(m[1][0], 3, "the preferred leader stays");
        assert_eq!(m[1].len(), 2);
    }

    #[test]
    fn shrinking_drops_a_replica_from_a_doubled_rack() {
        let s = with(
            cluster(&[Some("a"), Some("a"), Some("b")]),
            "t",
            &[&[1, 3, 2]],
        );
        assert_eq!(moves(next_step("t", 2, &s)), vec![vec![1, 3]]);
    }

    #[test]
    fn shrinking_never_removes_the_last_in_sync_replica() {
        let mut s = with(cluster(&[None, None]), "t", &[&[1, 2]]);
        s.partitions[0].isr = vec![2];
        assert_eq!(moves(next_step("t", 1, &s)), vec![vec![2]]);
    }

    #[test]
    fn more_replicas_than_live_brokers_is_refused() {
        let mut s = with(cluster(&[None, None, None]), "t", &[&[1, 2]]);
        s.brokers[2].fenced = true;
        let ReplicationStep::Refused(why) = next_step("t", 3, &s) else {
            panic!("not refused");
        };
        assert!(
            why.contains("needs 3 live brokers; the cluster has 2"),
            "{why}"
        );
    }

    #[test]
    fn a_factor_below_min_insync_replicas_is_refused() {
        let mut s = with(cluster(&[None, None, None]), "t", &[&[1, 2, 3]]);
        s.min_insync.insert("t".into(), 2);
        let ReplicationStep::Refused(why) = next_step("t", 1, &s) else {
            panic!("not refused");
        };
        assert!(why.contains("min.insync.replicas (2)"), "{why}");
    }

    #[test]
    fn nothing_new_starts_while_the_topics_partitions_move() {
        let mut s = with(cluster(&[None, None, None]), "t", &[&[1, 2, 3], &[1]]);
        s.reassignments.push(Ongoing {
            topic: "t".into(),
            partition: 1,
            replicas: vec![1, 2, 3],
            adding: vec![2, 3],
            removing: vec![],
        });
        assert_eq!(
            next_step("t", 3, &s),
            ReplicationStep::Moving { partitions: 1 }
        );
    }

    #[test]
    fn replanning_after_the_moves_yields_done() {
        let s = with(
            cluster(&[Some("a"), Some("b"), Some("c"), None]),
            "t",
            &[&[1], &[2], &[4]],
        );
        let planned = moves(next_step("t", 3, &s));
        let mut after = s.clone();
        for (p, replicas) in after.partitions.iter_mut().zip(&planned) {
            p.replicas.clone_from(replicas);
            p.isr.clone_from(replicas);
        }
        assert_eq!(next_step("t", 3, &after), ReplicationStep::Done);
        for replicas in &planned {
            let mut sorted = replicas.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), 3, "distinct brokers: {replicas:?}");
        }
    }
}
