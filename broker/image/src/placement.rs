//! Where the replicas of new partitions go: rack-aware, spread evenly over the brokers given,
//! and deterministic (the same inputs always give the same assignment, on every controller).
//!
//! Each new partition takes as leader the broker leading the fewest partitions, then as
//! followers the brokers on racks this partition does not use yet, fewest replicas first. The
//! load of existing partitions counts, so topics created one after another still spread.

use std::collections::BTreeMap;

use crate::{BrokerId, ClusterImage};

/// A broker that may receive replicas, and its rack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: BrokerId,
    pub rack: Option<String>,
}

/// How many replicas and leaders each broker already holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Load {
    pub replicas: BTreeMap<BrokerId, usize>,
    pub leaders: BTreeMap<BrokerId, usize>,
}

impl Load {
    /// The load of every partition in the image; the preferred (first) replica counts as leader,
    /// since that is where leadership returns when the cluster is balanced.
    pub fn of(image: &ClusterImage) -> Self {
        let mut load = Self::default();
        for (_, _, p) in image.partitions() {
            load.add(&p.target_replicas());
        }
        load
    }

    fn add(&mut self, replicas: &[BrokerId]) {
        if let Some(leader) = replicas.first() {
            *self.leaders.entry(*leader).or_default() += 1;
        }
        for r in replicas {
            *self.replicas.entry(*r).or_default() += 1;
        }
    }

    fn replicas_of(&self, id: BrokerId) -> usize {
        self.replicas.get(&id).copied().unwrap_or(0)
    }

    fn leaders_of(&self, id: BrokerId) -> usize {
        self.leaders.get(&id).copied().unwrap_or(0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    #[error("replication factor must be at least 1")]
    ZeroReplicationFactor,
    #[error("replication factor {requested} is larger than the {available} live brokers")]
    NotEnoughBrokers { requested: usize, available: usize },
}

/// The live brokers of an image as placement candidates, in id order.
pub fn live_candidates(image: &ClusterImage) -> Vec<Candidate> {
    image
        .live_brokers()
        .map(|b| Candidate {
            id: b.id,
            rack: b.rack.clone(),
        })
        .collect()
}

/// Replicas for `partitions` new partitions of `replication_factor` each, preferred leader first.
pub fn place(
    candidates: &[Candidate],
    existing: &Load,
    partitions: usize,
    replication_factor: usize,
) -> Result<Vec<Vec<BrokerId>>, PlacementError> {
    if replication_factor == 0 {
        return Err(PlacementError::ZeroReplicationFactor);
    }
    if replication_factor > candidates.len() {
        return Err(PlacementError::NotEnoughBrokers {
            requested: replication_factor,
            available: candidates.len(),
        });
    }
    let mut load = existing.clone();
    let mut assignments = Vec::with_capacity(partitions);
    for _ in 0..partitions {
        let replicas = place_one(candidates, &load, replication_factor);
        load.add(&replicas);
        assignments.push(replicas);
    }
    Ok(assignments)
}

fn place_one(candidates: &[Candidate], load: &Load, replication_factor: usize) -> Vec<BrokerId> {
    let leader = candidates
        .iter()
        .min_by_key(|c| (load.leaders_of(c.id), load.replicas_of(c.id), c.id))
        .expect("at least one candidate");
    let mut chosen = vec![leader];
    while chosen.len() < replication_factor {
        let next = candidates
            .iter()
            .filter(|c| !chosen.iter().any(|x| x.id == c.id))
            .min_by_key(|c| {
                let same_rack = chosen.iter().filter(|x| shares_rack(x, c)).count();
                (same_rack, load.replicas_of(c.id), c.id)
            })
            .expect("replication factor checked against candidates");
        chosen.push(next);
    }
    chosen.iter().map(|c| c.id).collect()
}

/// Brokers without a rack are each their own failure domain.
fn shares_rack(a: &Candidate, b: &Candidate) -> bool {
    matches!((&a.rack, &b.rack), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    fn candidates(racks: &[Option<&str>]) -> Vec<Candidate> {
        racks
            .iter()
            .enumerate()
            .map(|(i, r)| Candidate {
                id: i as BrokerId + 1,
                rack: r.map(str::to_string),
            })
            .collect()
    }

    fn spread(counts: &BTreeMap<BrokerId, usize>, brokers: &[Candidate]) -> usize {
        let values: Vec<usize> = brokers
            .iter()
            .map(|b| counts.get(&b.id).copied().unwrap_or(0))
            .collect();
        values.iter().max().unwrap() - values.iter().min().unwrap()
    }

    #[test]
    fn three_brokers_rf3_rotate_the_leader() {
        let brokers = candidates(&[None, None, None]);
        let plan = place(&brokers, &Load::default(), 3, 3).unwrap();
        let leaders: Vec<_> = plan.iter().map(|r| r[0]).collect();
        assert_eq!(leaders, vec![1, 2, 3]);
        assert!(plan.iter().all(|r| r.len() == 3));
    }

    #[test]
    fn followers_go_to_another_rack_first() {
        let brokers = candidates(&[Some("a"), Some("a"), Some("b"), Some("b")]);
        for replicas in place(&brokers, &Load::default(), 8, 2).unwrap() {
            let racks: BTreeSet<_> = replicas
                .iter()
                .map(|id| brokers[*id as usize - 1].rack.clone())
                .collect();
            assert_eq!(racks.len(), 2, "{replicas:?}");
        }
    }

    #[test]
    fn replication_factor_beyond_the_brokers_or_zero_is_refused() {
        let brokers = candidates(&[None, None]);
        assert_eq!(
            place(&brokers, &Load::default(), 1, 3),
            Err(PlacementError::NotEnoughBrokers {
                requested: 3,
                available: 2
            })
        );
        assert_eq!(
            place(&brokers, &Load::default(), 1, 0),
            Err(PlacementError::ZeroReplicationFactor)
        );
    }

    #[test]
    fn existing_load_steers_new_partitions_to_the_emptier_broker() {
        let brokers = candidates(&[None, None, None]);
        let mut load = Load::default();
        for _ in 0..10 {
            load.add(&[1, 2]);
        }
        let plan = place(&brokers, &load, 1, 1).unwrap();
        assert_eq!(plan, vec![vec![3]]);
    }

    fn cluster() -> impl Strategy<Value = (Vec<Candidate>, usize, usize)> {
        (1usize..12).prop_flat_map(|n| {
            (
                proptest::collection::vec(proptest::option::of(0u8..4), n),
                1usize..40,
                1usize..=n,
            )
                .prop_map(|(racks, partitions, rf)| {
                    let brokers = racks
                        .iter()
                        .enumerate()
                        .map(|(i, r)| Candidate {
                            id: i as BrokerId + 1,
                            rack: r.map(|r| format!("rack-{r}")),
                        })
                        .collect();
                    (brokers, partitions, rf)
                })
        })
    }

    proptest! {
        #[test]
        fn every_partition_gets_rf_distinct_known_brokers((brokers, partitions, rf) in cluster()) {
            let plan = place(&brokers, &Load::default(), partitions, rf).unwrap();
            prop_assert_eq!(plan.len(), partitions);
            for replicas in &plan {
                let distinct: BTreeSet<_> = replicas.iter().collect();
                prop_assert_eq!(distinct.len(), rf);
                prop_assert!(replicas.iter().all(|r| brokers.iter().any(|b| b.id == *r)));
            }
        }

        #[test]
        fn replicas_use_distinct_racks_when_there_are_enough((brokers, partitions, rf) in cluster()) {
            // Rackless brokers are failure domains of their own.
            let domains: BTreeSet<String> = brokers
                .iter()
                .map(|b| b.rack.clone().unwrap_or_else(|| format!("broker-{}", b.id)))
                .collect();
            prop_assume!(domains.len() >= rf);
            for replicas in place(&brokers, &Load::default(), partitions, rf).unwrap() {
                let used: BTreeSet<String> = replicas
                    .iter()
                    .map(|id| {
                        let b = &brokers[*id as usize - 1];
                        b.rack.clone().unwrap_or_else(|| format!("broker-{}", b.id))
                    })
                    .collect();
                prop_assert_eq!(used.len(), rf, "{:?}", replicas);
            }
        }

        #[test]
        fn without_racks_leaders_and_replicas_spread_within_one((n, partitions, rf) in
            (1usize..12).prop_flat_map(|n| (Just(n), 1usize..60, 1usize..=n)))
        {
            let brokers: Vec<Candidate> =
                (1..=n as BrokerId).map(|id| Candidate { id, rack: None }).collect();
            let plan = place(&brokers, &Load::default(), partitions, rf).unwrap();
            let mut load = Load::default();
            for r in &plan {
                load.add(r);
            }
            prop_assert!(spread(&load.leaders, &brokers) <= 1);
            prop_assert!(spread(&load.replicas, &brokers) <= 1, "{:?}", load.replicas);
        }

        #[test]
        fn placement_is_deterministic((brokers, partitions, rf) in cluster()) {
            prop_assert_eq!(
                place(&brokers, &Load::default(), partitions, rf),
                place(&brokers, &Load::default(), partitions, rf)
            );
        }
    }
}
