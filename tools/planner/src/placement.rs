//! Phase 1, the forced moves: every replica on a broker outside the target (or repeated in its
//! partition) is given a target broker, and partitions that span too few racks get replicas
//! in the missing racks. Nothing else moves here; balancing comes afterwards.

use crate::model::PartitionAssignment;
use crate::topology::{BrokerIx, Topology};

/// One partition's replica list while it is being repaired: `None` is a slot that needs a
/// broker. Slots keep their positions, so a replacement inherits the leader slot if the
/// leader moved.
type Slots = Vec<Option<BrokerIx>>;

/// Replica lists, in dense target brokers, that keep every replica already on a target broker
/// except those the rack spread forces out.
pub(crate) fn place(
    topology: &Topology,
    partitions: &[&PartitionAssignment],
) -> Vec<Vec<BrokerIx>> {
    let mut slots: Vec<Slots> = partitions
        .iter()
        .map(|p| kept_slots(topology, &p.replicas))
        .collect();
    let mut loads = vec![0usize; topology.broker_count()];
    for broker in slots.iter().flatten().flatten() {
        loads[*broker] += 1;
    }
    for partition in &mut slots {
        restore_spread(topology, partition, &mut loads);
        fill_vacancies(topology, partition, &mut loads);
    }
    slots
        .into_iter()
        .map(|p| p.into_iter().flatten().collect())
        .collect()
}

/// Keeps each replica on a target broker (the first occurrence if repeated); vacates the rest.
fn kept_slots(topology: &Topology, replicas: &[i32]) -> Slots {
    let mut slots: Slots = Vec::with_capacity(replicas.len());
    for &id in replicas {
        let broker = topology.dense(id).filter(|b| !slots.contains(&Some(*b)));
        slots.push(broker);
    }
    slots
}

fn kept(slots: &[Option<BrokerIx>]) -> impl Iterator<Item = BrokerIx> + '_ {
    slots.iter().flatten().copied()
}

/// Vacates replicas that share a rack with another replica until the vacant slots can bring
/// the partition up to its required rack spread. The replica evicted is the one on the most
/// loaded broker, the last slot on a tie (so the leader tends to stay).
fn restore_spread(topology: &Topology, slots: &mut Slots, loads: &mut [usize]) {
    let required = topology.required_spread(slots.len());
    loop {
        let vacant = slots.iter().filter(|s| s.is_none()).count();
        if topology.spread(kept(slots)) + vacant >= required {
            return;
        }
        let held: Vec<BrokerIx> = kept(slots).collect();
        // Spread + vacant < required <= replication factor, so some rack holds two replicas.
        let Some((slot, broker)) = slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.map(|b| (i, b)))
            .filter(|&(_, b)| topology.count_in_rack(&held, topology.rack_of(b)) >= 2)
            .max_by_key(|&(i, b)| (loads[b], i))
        else {
            return;
        };
        slots[slot] = None;
        loads[broker] -= 1;
    }
}

/// Gives every vacant slot the least loaded eligible target broker: one not yet in the
/// partition and, while the partition spans fewer racks than required, in a rack it lacks.
fn fill_vacancies(topology: &Topology, slots: &mut Slots, loads: &mut [usize]) {
    let required = topology.required_spread(slots.len());
    for slot in 0..slots.len() {
        if slots[slot].is_some() {
            continue;
        }
        let held: Vec<BrokerIx> = kept(slots).collect();
        let needs_new_rack = topology.spread(held.iter().copied()) < required;
        // Validation guarantees replication factor <= target brokers, and restore_spread left
        // enough vacancies to reach the spread, so a candidate always exists.
        let chosen = (0..topology.broker_count())
            .filter(|b| !held.contains(b))
            .filter(|&b| !needs_new_rack || topology.count_in_rack(&held, topology.rack_of(b)) == 0)
            .min_by_key(|&b| (loads[b], b));
        if let Some(broker) = chosen {
            slots[slot] = Some(broker);
            loads[broker] += 1;
        }
    }
}
