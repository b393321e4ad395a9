//! Checks a [`PlanRequest`] and puts it in canonical order, so that the planning phases see
//! the same input however the caller ordered its vectors. Refusals are decided here, before
//! anything is planned.

use std::collections::{BTreeMap, btree_map::Entry};

use crate::error::{BlockingTopic, PlanError};
use crate::model::{Broker, PartitionAssignment, PlanRequest};
use crate::topology::Topology;

/// A request that can be planned: its target topology and its partitions sorted by
/// (topic, partition).
#[derive(Debug)]
pub(crate) struct Validated<'a> {
    pub topology: Topology,
    pub partitions: Vec<&'a PartitionAssignment>,
}

pub(crate) fn validate(request: &PlanRequest) -> Result<Validated<'_>, PlanError> {
    let racks = racks_by_broker(&request.brokers)?;
    if let Some(&unknown) = request.target.iter().find(|id| !racks.contains_key(id)) {
        return Err(PlanError::UnknownBroker(unknown));
    }
    let partitions = sorted_partitions(&request.partitions)?;
    check_replication_factors(&partitions, request.target.len())?;
    Ok(Validated {
        topology: Topology::new(&racks, &request.target),
        partitions,
    })
}

fn racks_by_broker(brokers: &[Broker]) -> Result<BTreeMap<i32, Option<String>>, PlanError> {
    let mut racks = BTreeMap::new();
    let mut conflicts = Vec::new();
    for broker in brokers {
        match racks.entry(broker.id) {
            Entry::Vacant(slot) => {
                slot.insert(broker.rack.clone());
            }
            Entry::Occupied(seen) if *seen.get() != broker.rack => conflicts.push(broker.id),
            Entry::Occupied(_) => {}
        }
    }
    match conflicts.into_iter().min() {
        Some(id) => Err(PlanError::DuplicateBroker(id)),
        None => Ok(racks),
    }
}

fn sorted_partitions(
    partitions: &[PartitionAssignment],
) -> Result<Vec<&PartitionAssignment>, PlanError> {
    let mut sorted: Vec<&PartitionAssignment> = partitions.iter().collect();
    sorted.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    let duplicate = sorted
        .windows(2)
        .find(|pair| pair[0].topic == pair[1].topic && pair[0].partition == pair[1].partition);
    match duplicate {
        Some(pair) => Err(PlanError::DuplicatePartition {
            topic: pair[0].topic.clone(),
            partition: pair[0].partition,
        }),
        None => Ok(sorted),
    }
}

fn check_replication_factors(
    partitions: &[&PartitionAssignment],
    target_brokers: usize,
) -> Result<(), PlanError> {
    let mut blocking: BTreeMap<&str, usize> = BTreeMap::new();
    for p in partitions
        .iter()
        .filter(|p| p.replicas.len() > target_brokers)
    {
        let rf = blocking.entry(p.topic.as_str()).or_default();
        *rf = (*rf).max(p.replicas.len());
    }
    if blocking.is_empty() {
        return Ok(());
    }
    Err(PlanError::NotEnoughBrokers {
        blocking: blocking
            .into_iter()
            .map(|(topic, replication_factor)| BlockingTopic {
                topic: topic.to_owned(),
                replication_factor,
            })
            .collect(),
        target_brokers,
    })
}
