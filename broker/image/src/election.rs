//! Partition leader election, and the partition changes that broker liveness calls for.
//!
//! [`repair`] is level-triggered: given the image, it returns every change that brings
//! partitions back in line with which brokers are alive (dead replicas out of the ISR, a live
//! in-sync leader for every partition that can have one). The controller runs it after any
//! broker is fenced or unfenced; running it again on the result returns nothing.
//!
//! A leader is only ever chosen from the ISR — every acknowledged record is on each ISR member —
//! unless the topic enables unclean election, which trades those records for availability.

use crate::{BrokerId, ClusterImage, PartitionChange, PartitionState};

/// The outcome of electing a leader for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Election {
    /// A live in-sync replica, the first in preferred order.
    Clean(BrokerId),
    /// No in-sync replica is alive; a live out-of-sync one leads, and what only the ISR had is lost.
    Unclean(BrokerId),
    /// Nobody may lead: the partition is offline until an in-sync replica returns.
    Offline,
}

/// Elects a leader from the partition's live replicas, preferring in-sync ones in replica order.
/// Replicas being removed by a reassignment are chosen only when nothing else can lead.
pub fn elect(
    state: &PartitionState,
    is_live: impl Fn(BrokerId) -> bool,
    unclean_allowed: bool,
) -> Election {
    let preference = state
        .target_replicas()
        .into_iter()
        .chain(state.removing.iter().copied());
    let live: Vec<BrokerId> = preference.filter(|r| is_live(*r)).collect();
    if let Some(leader) = live.iter().find(|r| state.isr.contains(r)) {
        return Election::Clean(*leader);
    }
    match live.first() {
        Some(leader) if unclean_allowed => Election::Unclean(*leader),
        _ => Election::Offline,
    }
}

/// Every partition change the brokers' liveness calls for. `unclean_allowed(topic)` says whether
/// the topic has `unclean.leader.election.enable`.
pub fn repair(
    image: &ClusterImage,
    unclean_allowed: impl Fn(&str) -> bool,
) -> Vec<PartitionChange> {
    image
        .partitions()
        .filter_map(|(topic, partition, state)| {
            let change = repair_one(image, topic, partition, state, unclean_allowed(topic));
            (!change.is_noop(state)).then_some(change)
        })
        .collect()
}

fn repair_one(
    image: &ClusterImage,
    topic: &str,
    partition: i32,
    state: &PartitionState,
    unclean_allowed: bool,
) -> PartitionChange {
    let mut change = PartitionChange::from_state(topic, partition, state);
    let live_isr: Vec<BrokerId> = state
        .isr
        .iter()
        .copied()
        .filter(|r| image.is_live(*r))
        .collect();
    let leader_live = state.leader.is_some_and(|l| image.is_live(l));
    if leader_live {
        change.isr = live_isr;
        return change;
    }
    match elect(state, |r| image.is_live(r), unclean_allowed) {
        Election::Clean(leader) => {
            change.leader = Some(leader);
            change.isr = live_isr;
        }
        Election::Unclean(leader) => {
            change.leader = Some(leader);
            change.isr = vec![leader];
        }
        // The ISR is kept as it is: its members hold every acknowledged record, and the first of
        // them to come back leads cleanly.
        Election::Offline => change.leader = None,
    }
    change
}

/// Moves leadership of each partition to its preferred (first) replica where that replica is
/// alive, in sync and not already leading (Kafka's preferred leader election).
pub fn preferred(
    image: &ClusterImage,
    partitions: &[(String, i32)],
) -> Vec<Result<PartitionChange, ElectionError>> {
    on_each(image, partitions, |topic, partition, state| {
        let preferred = *state
            .replicas
            .first()
            .ok_or(ElectionError::PreferredNotAvailable)?;
        if state.leader == Some(preferred) {
            return Err(ElectionError::ElectionNotNeeded);
        }
        if !image.is_live(preferred) || !state.isr.contains(&preferred) {
            return Err(ElectionError::PreferredNotAvailable);
        }
        let mut change = PartitionChange::from_state(topic, partition, state);
        change.leader = Some(preferred);
        Ok(change)
    })
}

/// Elects a leader for each offline partition even from outside the ISR (Kafka's unclean
/// election on demand).
pub fn unclean(
    image: &ClusterImage,
    partitions: &[(String, i32)],
) -> Vec<Result<PartitionChange, ElectionError>> {
    on_each(image, partitions, |topic, partition, state| {
        if state.leader.is_some_and(|l| image.is_live(l)) {
            return Err(ElectionError::ElectionNotNeeded);
        }
        let change = repair_one(image, topic, partition, state, true);
        if change.leader.is_none() {
            return Err(ElectionError::EligibleLeadersNotAvailable);
        }
        Ok(change)
    })
}

/// Runs an on-demand election `elect` for each requested partition that exists.
fn on_each(
    image: &ClusterImage,
    partitions: &[(String, i32)],
    elect: impl Fn(&str, i32, &PartitionState) -> Result<PartitionChange, ElectionError>,
) -> Vec<Result<PartitionChange, ElectionError>> {
    partitions
        .iter()
        .map(|(topic, partition)| {
            let state = image
                .partition(topic, *partition)
                .ok_or(ElectionError::UnknownPartition)?;
            elect(topic, *partition, state)
        })
        .collect()
}

/// Why an on-demand election did not happen; each maps to Kafka's error code of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ElectionError {
    #[error("unknown topic or partition")]
    UnknownPartition,
    #[error("the partition already has the leader asked for")]
    ElectionNotNeeded,
    #[error("the preferred leader is not alive and in sync")]
    PreferredNotAvailable,
    #[error("no live replica can lead")]
    EligibleLeadersNotAvailable,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MetadataRecord;
    use crate::image::tests::image_with;

    fn fence(image: &mut ClusterImage, id: BrokerId) {
        image.apply(&MetadataRecord::FenceBroker { id }).unwrap();
    }

    fn unfence(image: &mut ClusterImage, id: BrokerId) {
        image.apply(&MetadataRecord::UnfenceBroker { id }).unwrap();
    }

    fn apply_all(image: &mut ClusterImage, changes: Vec<PartitionChange>) {
        for c in changes {
            image.apply(&MetadataRecord::ChangePartition(c)).unwrap();
        }
    }

    fn state(isr: &[BrokerId], removing: &[BrokerId]) -> PartitionState {
        PartitionState {
            isr: isr.to_vec(),
            removing: removing.to_vec(),
            ..PartitionState::new(vec![1, 2, 3])
        }
    }

    #[test]
    fn election_prefers_live_isr_members_in_replica_order() {
        assert_eq!(
            elect(&state(&[2, 3], &[]), |_| true, false),
            Election::Clean(2)
        );
        assert_eq!(
            elect(&state(&[2, 3], &[]), |r| r != 2, false),
            Election::Clean(3)
        );
        assert_eq!(
            elect(&state(&[2], &[]), |r| r != 2, false),
            Election::Offline
        );
        assert_eq!(
            elect(&state(&[2], &[]), |r| r != 2, true),
            Election::Unclean(1)
        );
        assert_eq!(elect(&state(&[2], &[]), |_| false, true), Election::Offline);
    }

    #[test]
    fn replicas_being_removed_lead_only_as_a_last_resort() {
        assert_eq!(
            elect(&state(&[1, 2], &[1]), |_| true, false),
            Election::Clean(2)
        );
        assert_eq!(
            elect(&state(&[1], &[1]), |_| true, false),
            Election::Clean(1)
        );
    }

    #[test]
    fn fencing_the_leader_moves_leadership_and_shrinks_the_isr() {
        let mut image = image_with(&[1, 2, 3], &[&[1, 2, 3], &[2, 3, 1]]);
        fence(&mut image, 1);
        let changes = repair(&image, |_| false);
        assert_eq!(changes.len(), 2);
        apply_all(&mut image, changes);
        let p0 = image.partition("t", 0).unwrap();
        assert_eq!(
            (p0.leader, p0.isr.clone(), p0.leader_epoch),
            (Some(2), vec![2, 3], 1)
        );
        let p1 = image.partition("t", 1).unwrap();
        assert_eq!(
            (p1.leader, p1.isr.clone(), p1.leader_epoch),
            (Some(2), vec![2, 3], 0)
        );
        assert!(repair(&image, |_| false).is_empty(), "repair converges");
    }

    #[test]
    fn losing_every_isr_member_leaves_the_partition_offline_with_its_last_isr() {
        let mut image = image_with(&[1, 2, 3], &[&[1, 2, 3]]);
        fence(&mut image, 2);
        fence(&mut image, 3);
        let change = repair(&image, |_| false);
        apply_all(&mut image, change);
        assert_eq!(image.partition("t", 0).unwrap().isr, vec![1]);
        unfence(&mut image, 2);
        fence(&mut image, 1);
        let change = repair(&image, |_| false);
        apply_all(&mut image, change);
        let p = image.partition("t", 0).unwrap().clone();
        assert_eq!(
            (p.leader, p.isr.clone()),
            (None, vec![1]),
            "2 is out of sync: no leader"
        );
        unfence(&mut image, 1);
        let change = repair(&image, |_| false);
        apply_all(&mut image, change);
        let p = image.partition("t", 0).unwrap();
        assert_eq!(
            (p.leader, p.isr.clone()),
            (Some(1), vec![1]),
            "the last in-sync replica leads"
        );
    }

    #[test]
    fn unclean_topics_elect_an_out_of_sync_replica_with_an_isr_of_one() {
        let mut image = image_with(&[1, 2, 3], &[&[1, 2, 3]]);
        fence(&mut image, 2);
        fence(&mut image, 3);
        let change = repair(&image, |_| true);
        apply_all(&mut image, change);
        unfence(&mut image, 3);
        fence(&mut image, 1);
        let change = repair(&image, |_| true);
        apply_all(&mut image, change);
        let p = image.partition("t", 0).unwrap();
        assert_eq!((p.leader, p.isr.clone()), (Some(3), vec![3]));
    }

    /// Broker `id` registers again from another data directory than before (its volume was
    /// replaced).
    fn back_empty(image: &mut ClusterImage, id: BrokerId) {
        let mut registration = image.brokers[&id].clone();
        for directory in [1, 2] {
            registration.directory = Some(uuid::Uuid::from_u128(directory));
            image
                .apply(&MetadataRecord::RegisterBroker(registration.clone()))
                .unwrap();
        }
    }

    #[test]
    fn a_broker_back_with_an_empty_volume_is_replaced_as_leader_and_never_elected_from_it() {
        // 0: led by 1 with followers in sync; 1: only 1 is in sync (2 was down).
        let mut image = image_with(&[1, 2], &[&[1, 2], &[1, 2]]);
        let t = image.topics.get_mut("t").unwrap();
        t.partitions[1].isr = vec![1];
        back_empty(&mut image, 1);
        let change = repair(&image, |_| false);
        apply_all(&mut image, change);
        let p = |image: &ClusterImage, i| image.partition("t", i).unwrap().clone();
        assert_eq!((p(&image, 0).leader, p(&image, 0).isr), (Some(2), vec![2]));
        // The acknowledged records of partition 1 were only on 1's lost volume: it stays
        // offline rather than serve an empty log as if nothing happened.
        assert_eq!((p(&image, 1).leader, p(&image, 1).isr), (None, vec![]));
        assert!(repair(&image, |_| false).is_empty());
        // An unclean election, automatic or asked for, accepts the loss.
        let change = repair(&image, |_| true);
        apply_all(&mut image, change);
        assert_eq!((p(&image, 1).leader, p(&image, 1).isr), (Some(1), vec![1]));
    }

    #[test]
    fn preferred_election_returns_leadership_to_the_first_replica() {
        let mut image = image_with(&[1, 2, 3], &[&[1, 2, 3]]);
        fence(&mut image, 1);
        let change = repair(&image, |_| false);
        apply_all(&mut image, change);
        let key = vec![("t".to_string(), 0)];
        assert_eq!(
            preferred(&image, &key),
            vec![Err(ElectionError::PreferredNotAvailable)]
        );
        unfence(&mut image, 1);
        // Back, but not yet in the ISR: the leader adds it once it catches up.
        assert_eq!(
            preferred(&image, &key),
            vec![Err(ElectionError::PreferredNotAvailable)]
        );
        let p = image.partition("t", 0).unwrap().clone();
        let mut rejoin = PartitionChange::from_state("t", 0, &p);
        rejoin.isr = vec![2, 3, 1];
        apply_all(&mut image, vec![rejoin]);
        let changes: Vec<_> = preferred(&image, &key)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        apply_all(&mut image, changes);
        assert_eq!(image.partition("t", 0).unwrap().leader, Some(1));
        assert_eq!(
            preferred(&image, &key),
            vec![Err(ElectionError::ElectionNotNeeded)]
        );
        let missing = vec![("nope".to_string(), 0)];
        assert_eq!(
            preferred(&image, &missing),
            vec![Err(ElectionError::UnknownPartition)]
        );
    }

    #[test]
    fn unclean_election_on_demand_needs_an_offline_partition_and_a_live_replica() {
        let mut image = image_with(&[1, 2], &[&[1, 2]]);
        let key = vec![("t".to_string(), 0)];
        assert_eq!(
            unclean(&image, &key),
            vec![Err(ElectionError::ElectionNotNeeded)]
        );
        fence(&mut image, 2);
        let change = repair(&image, |_| false);
        apply_all(&mut image, change);
        fence(&mut image, 1);
        let change = repair(&image, |_| false);
        apply_all(&mut image, change);
        assert_eq!(
            unclean(&image, &key),
            vec![Err(ElectionError::EligibleLeadersNotAvailable)]
        );
        unfence(&mut image, 2);
        let change = unclean(&image, &key).pop().unwrap().unwrap();
        assert_eq!((change.leader, change.isr), (Some(2), vec![2]));
    }
}
