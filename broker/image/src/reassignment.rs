//! Moving a partition's replicas from one set of brokers to another, Kafka's way: add the new
//! replicas, let them catch up into the ISR, move leadership if the leader is leaving, then drop
//! the old ones. The partition never has fewer in-sync copies than before while it moves.
//!
//! [`start`] and [`cancel`] answer AlterPartitionReassignments; [`progress`] is level-triggered:
//! the controller runs it whenever an ISR changes and proposes what it returns.

use crate::election::{Election, elect};
use crate::{BrokerId, ClusterImage, PartitionChange, PartitionState};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReassignError {
    #[error("unknown topic or partition")]
    UnknownPartition,
    #[error("a reassignment needs at least one target replica")]
    EmptyTarget,
    #[error("broker {0} appears twice in the target replicas")]
    DuplicateBroker(BrokerId),
    #[error("broker {0} is not registered")]
    UnknownBroker(BrokerId),
    #[error("no reassignment is in progress")]
    NoReassignmentInProgress,
}

/// The replicas the partition had before any reassignment in progress began.
pub fn original_replicas(state: &PartitionState) -> Vec<BrokerId> {
    state
        .replicas
        .iter()
        .copied()
        .filter(|r| !state.adding.contains(r))
        .collect()
}

/// Starts (or replaces) a reassignment of `topic`-`partition` to `target`, preferred leader
/// first. `Ok(None)` when the partition already has exactly those replicas.
pub fn start(
    image: &ClusterImage,
    topic: &str,
    partition: i32,
    target: &[BrokerId],
) -> Result<Option<PartitionChange>, ReassignError> {
    let state = image
        .partition(topic, partition)
        .ok_or(ReassignError::UnknownPartition)?;
    check_target(image, target)?;
    let original = original_replicas(state);
    if !state.is_reassigning() && original == target {
        return Ok(None);
    }
    let removing: Vec<BrokerId> = original
        .iter()
        .copied()
        .filter(|r| !target.contains(r))
        .collect();
    let mut change = PartitionChange::from_state(topic, partition, state);
    change.replicas = target.iter().chain(removing.iter()).copied().collect();
    change.adding = target
        .iter()
        .copied()
        .filter(|r| !original.contains(r))
        .collect();
    change.removing = removing;
    change.isr.retain(|r| change.replicas.contains(r));
    Ok(Some(change))
}

/// Cancels the reassignment in progress: the partition goes back to its original replicas.
pub fn cancel(
    image: &ClusterImage,
    topic: &str,
    partition: i32,
) -> Result<PartitionChange, ReassignError> {
    let state = image
        .partition(topic, partition)
        .ok_or(ReassignError::UnknownPartition)?;
    if !state.is_reassigning() {
        return Err(ReassignError::NoReassignmentInProgress);
    }
    let original = original_replicas(state);
    let mut change = PartitionChange::from_state(topic, partition, state);
    change.isr.retain(|r| original.contains(r));
    change.replicas = original;
    change.adding.clear();
    change.removing.clear();
    if change.leader.is_some_and(|l| !change.replicas.contains(&l)) {
        change.leader = change.isr.first().copied();
    }
    Ok(change)
}

/// Completes every reassignment whose new replicas are all in the ISR: the old replicas are
/// dropped and, if the leader was one of them, leadership moves to a live in-sync target replica.
pub fn progress(image: &ClusterImage) -> Vec<PartitionChange> {
    image
        .partitions()
        .filter(|(_, _, state)| state.is_reassigning())
        .filter_map(|(topic, partition, state)| complete(image, topic, partition, state))
        .collect()
}

fn complete(
    image: &ClusterImage,
    topic: &str,
    partition: i32,
    state: &PartitionState,
) -> Option<PartitionChange> {
    if !state.adding.iter().all(|r| state.isr.contains(r)) {
        return None;
    }
    let target = state.target_replicas();
    let mut change = PartitionChange::from_state(topic, partition, state);
    change.isr.retain(|r| target.contains(r));
    change.replicas = target;
    change.adding.clear();
    change.removing.clear();
    if change.leader.is_none_or(|l| !change.replicas.contains(&l)) {
        let remaining = PartitionState {
            replicas: change.replicas.clone(),
            isr: change.isr.clone(),
            adding: Vec::new(),
            removing: Vec::new(),
            ..state.clone()
        };
        match elect(&remaining, |r| image.is_live(r), false) {
            Election::Clean(leader) => change.leader = Some(leader),
            // No target replica can lead yet: keep the old leader until one can.
            _ => return None,
        }
    }
    Some(change)
}

fn check_target(image: &ClusterImage, target: &[BrokerId]) -> Result<(), ReassignError> {
    if target.is_empty() {
        return Err(ReassignError::EmptyTarget);
    }
    for (i, r) in target.iter().enumerate() {
        if target[..i].contains(r) {
            return Err(ReassignError::DuplicateBroker(*r));
        }
        if !image.brokers.contains_key(r) {
            return Err(ReassignError::UnknownBroker(*r));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MetadataRecord;
    use crate::image::tests::image_with;

    fn apply(image: &mut ClusterImage, change: PartitionChange) {
        image
            .apply(&MetadataRecord::ChangePartition(change))
            .unwrap();
    }

    fn add_to_isr(image: &mut ClusterImage, broker: BrokerId) {
        let state = image.partition("t", 0).unwrap().clone();
        let mut change = PartitionChange::from_state("t", 0, &state);
        change.isr.push(broker);
        apply(image, change);
    }

    #[test]
    fn moving_from_123_to_234_adds_4_then_drops_1_and_moves_leadership() {
        let mut image = image_with(&[1, 2, 3, 4], &[&[1, 2, 3]]);
        let change = start(&image, "t", 0, &[2, 3, 4]).unwrap().unwrap();
        assert_eq!(change.replicas, vec![2, 3, 4, 1]);
        assert_eq!(
            (change.adding.clone(), change.removing.clone()),
            (vec![4], vec![1])
        );
        apply(&mut image, change);
        assert!(progress(&image).is_empty(), "4 has not caught up yet");

        add_to_isr(&mut image, 4);
        let done = progress(&image);
        assert_eq!(done.len(), 1);
        apply(&mut image, done.into_iter().next().unwrap());
        let p = image.partition("t", 0).unwrap();
        assert_eq!(p.replicas, vec![2, 3, 4]);
        assert_eq!(p.isr, vec![2, 3, 4]);
        assert_eq!(p.leader, Some(2));
        assert!(!p.is_reassigning());
        assert!(progress(&image).is_empty());
    }

    #[test]
    fn the_same_replicas_need_no_reassignment_and_bad_targets_are_refused() {
        let image = image_with(&[1, 2, 3], &[&[1, 2]]);
        assert_eq!(start(&image, "t", 0, &[1, 2]), Ok(None));
        assert_eq!(start(&image, "t", 0, &[]), Err(ReassignError::EmptyTarget));
        assert_eq!(
            start(&image, "t", 0, &[1, 1]),
            Err(ReassignError::DuplicateBroker(1))
        );
        assert_eq!(
            start(&image, "t", 0, &[1, 9]),
            Err(ReassignError::UnknownBroker(9))
        );
        assert_eq!(
            start(&image, "t", 5, &[1]),
            Err(ReassignError::UnknownPartition)
        );
    }

    #[test]
    fn cancelling_restores_the_original_replicas_in_the_order_the_move_kept_them() {
        let mut image = image_with(&[1, 2, 3, 4], &[&[1, 2, 3]]);
        let change = start(&image, "t", 0, &[4, 2, 3]).unwrap().unwrap();
        apply(&mut image, change);
        add_to_isr(&mut image, 4);
        let change = cancel(&image, "t", 0).unwrap();
        apply(&mut image, change);
        let p = image.partition("t", 0).unwrap();
        // As in Kafka, the replica list during a move is target-then-removing, so the original
        // set comes back but the preference order is the one the move left.
        assert_eq!(
            (p.replicas.clone(), p.isr.clone()),
            (vec![2, 3, 1], vec![1, 2, 3])
        );
        assert_eq!(p.leader, Some(1));
        assert_eq!(
            cancel(&image, "t", 0),
            Err(ReassignError::NoReassignmentInProgress)
        );
    }

    #[test]
    fn a_new_target_replaces_a_reassignment_in_progress_from_the_original_set() {
        let mut image = image_with(&[1, 2, 3, 4, 5], &[&[1, 2, 3]]);
        let change = start(&image, "t", 0, &[2, 3, 4]).unwrap().unwrap();
        apply(&mut image, change);
        let change = start(&image, "t", 0, &[1, 2, 5]).unwrap().unwrap();
        assert_eq!(change.replicas, vec![1, 2, 5, 3]);
        assert_eq!((change.adding, change.removing), (vec![5], vec![3]));
        assert!(!change.isr.contains(&4));
    }

    #[test]
    fn completion_waits_while_no_target_replica_can_lead() {
        let mut image = image_with(&[1, 2], &[&[1]]);
        let change = start(&image, "t", 0, &[2]).unwrap().unwrap();
        apply(&mut image, change);
        add_to_isr(&mut image, 2);
        image.apply(&MetadataRecord::FenceBroker { id: 2 }).unwrap();
        assert!(progress(&image).is_empty());
        image
            .apply(&MetadataRecord::UnfenceBroker { id: 2 })
            .unwrap();
        let done = progress(&image);
        assert_eq!(done[0].leader, Some(2));
        assert_eq!(done[0].replicas, vec![2]);
    }
}
