//! Phase 4: turns the planned replica lists into [`Move`]s and a [`Summary`].

use std::collections::BTreeMap;

use crate::model::{Move, PartitionAssignment, Plan, PlanRequest, Summary};
use crate::topology::{BrokerIx, Topology};

/// `planned[i]` is the new replica list of `partitions[i]`, in dense target brokers.
pub(crate) fn build_plan(
    request: &PlanRequest,
    topology: &Topology,
    partitions: &[&PartitionAssignment],
    planned: &[Vec<BrokerIx>],
) -> Plan {
    let moves: Vec<Move> = partitions
        .iter()
        .zip(planned)
        .filter_map(|(current, planned)| {
            let to: Vec<i32> = planned.iter().map(|&b| topology.id(b)).collect();
            (to != current.replicas).then(|| Move {
                topic: current.topic.clone(),
                partition: current.partition,
                from: current.replicas.clone(),
                to,
                size_bytes: current.size_bytes,
            })
        })
        .collect();
    let summary = summarize(request, &moves);
    Plan { moves, summary }
}

fn summarize(request: &PlanRequest, moves: &[Move]) -> Summary {
    let mut zero: BTreeMap<i32, usize> = BTreeMap::new();
    let named = request.partitions.iter().flat_map(|p| p.replicas.iter());
    for &id in request
        .brokers
        .iter()
        .map(|b| &b.id)
        .chain(&request.target)
        .chain(named)
    {
        zero.insert(id, 0);
    }
    let (mut replicas_before, mut leaders_before) = (zero.clone(), zero);
    for p in &request.partitions {
        count(&mut replicas_before, &mut leaders_before, &p.replicas);
    }
    let (mut replicas_after, mut leaders_after) = (replicas_before.clone(), leaders_before.clone());
    let mut summary = Summary::default();
    for m in moves {
        uncount(&mut replicas_after, &mut leaders_after, &m.from);
        count(&mut replicas_after, &mut leaders_after, &m.to);
        let added = m.added_replicas().count();
        if added > 0 {
            summary.partitions_moved += 1;
        }
        summary.replicas_moved += added;
        summary.bytes_moved += m.size_bytes * added as u64;
        if m.from.first() != m.to.first() {
            summary.leaders_changed += 1;
        }
    }
    Summary {
        replicas_per_broker_before: replicas_before,
        replicas_per_broker_after: replicas_after,
        leaders_per_broker_before: leaders_before,
        leaders_per_broker_after: leaders_after,
        ..summary
    }
}

fn count(replicas: &mut BTreeMap<i32, usize>, leaders: &mut BTreeMap<i32, usize>, list: &[i32]) {
    for id in list {
        *replicas.entry(*id).or_default() += 1;
    }
    if let Some(leader) = list.first() {
        *leaders.entry(*leader).or_default() += 1;
    }
}

fn uncount(replicas: &mut BTreeMap<i32, usize>, leaders: &mut BTreeMap<i32, usize>, list: &[i32]) {
    for id in list {
        if let Some(n) = replicas.get_mut(id) {
            *n -= 1;
        }
    }
    if let Some(n) = list.first().and_then(|leader| leaders.get_mut(leader)) {
        *n -= 1;
    }
}
