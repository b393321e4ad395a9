//! Phase 2, replica balance: single replica moves, each from a more loaded to a less loaded
//! broker, until no allowed move narrows the spread of replica counts. First between racks,
//! then within each rack. A move never breaks a partition's rack spread or puts two of its
//! replicas on one broker.
//!
//! Between racks the measure is the best a rack could do internally: a rack with `t`
//! replicas over `m` brokers has its busiest broker at `ceil(t / m)` and its idlest at
//! `floor(t / m)`. A move from rack A to rack B is worth making when
//! `ceil(t_A / m_A) >= floor(t_B / m_B) + 2`; each such move lowers the sum of squared
//! per-broker counts, so the loop ends. When every rack has the same number of brokers an
//! allowed move always exists while the bound is exceeded, so the result is balanced to one
//! replica; with uneven racks the rack spread may forbid it and the planner stops at the best
//! balance the spread allows.

use std::cmp::Reverse;

use crate::assignment::{Assignment, PartitionIx};
use crate::topology::{BrokerIx, RackIx, Topology};

#[derive(Debug, Clone, Copy)]
struct ReplicaMove {
    partition: PartitionIx,
    from: BrokerIx,
    to: BrokerIx,
}

pub(crate) fn balance_replicas(topology: &Topology, assignment: &mut Assignment) {
    balance_across_racks(topology, assignment);
    for rack in 0..topology.rack_count() {
        balance_within_rack(topology, assignment, rack);
    }
}

/// Racks' replica totals and the (busiest, idlest) broker count each could reach.
struct RackLoads {
    high: Vec<usize>,
    low: Vec<usize>,
}

impl RackLoads {
    fn new(topology: &Topology, assignment: &Assignment) -> Self {
        let (mut high, mut low) = (Vec::new(), Vec::new());
        for rack in 0..topology.rack_count() {
            let members = topology.members(rack);
            let total: usize = members.iter().map(|&b| assignment.load(b)).sum();
            high.push(total.div_ceil(members.len()));
            low.push(total / members.len());
        }
        Self { high, low }
    }
}

fn balance_across_racks(topology: &Topology, assignment: &mut Assignment) {
    let racks = topology.rack_count();
    if racks < 2 {
        return;
    }
    // A rack pair found blocked stays blocked until a move touches either rack; the versions
    // spare rescanning it.
    let mut versions = vec![0u64; racks];
    let mut blocked: Vec<Option<(u64, u64)>> = vec![None; racks * racks];
    loop {
        let loads = RackLoads::new(topology, assignment);
        let mut by_high: Vec<RackIx> = (0..racks).collect();
        by_high.sort_by_key(|&r| (Reverse(loads.high[r]), r));
        let mut by_low: Vec<RackIx> = (0..racks).collect();
        by_low.sort_by_key(|&r| (loads.low[r], r));
        let mut found = None;
        'pairs: for &from in &by_high {
            for &to in &by_low {
                if loads.high[from] < loads.low[to] + 2 {
                    break;
                }
                let seen = Some((versions[from], versions[to]));
                if from == to || blocked[from * racks + to] == seen {
                    continue;
                }
                found = cross_rack_move(topology, assignment, from, to);
                if found.is_some() {
                    break 'pairs;
                }
                blocked[from * racks + to] = seen;
            }
        }
        let Some(step) = found else { return };
        assignment.move_replica(step.partition, step.from, step.to);
        versions[topology.rack_of(step.from)] += 1;
        versions[topology.rack_of(step.to)] += 1;
    }
}

/// Whether moving one of `partition`'s replicas from rack `from` to rack `to` keeps its rack
/// spread (which the placement phase made maximal) and leaves room for it in `to`.
fn keeps_spread(
    topology: &Topology,
    assignment: &Assignment,
    partition: PartitionIx,
    from: RackIx,
    to: RackIx,
) -> bool {
    let replicas = assignment.replicas(partition);
    let in_to = topology.count_in_rack(replicas, to);
    in_to < topology.members(to).len()
        && (in_to == 0 || topology.count_in_rack(replicas, from) >= 2)
}

/// The replica to move from rack `from` to rack `to`: taken from the busiest broker in
/// `from` that has a movable one, smallest partition first, and given to the idlest broker in
/// `to` that lacks the partition.
fn cross_rack_move(
    topology: &Topology,
    assignment: &Assignment,
    from: RackIx,
    to: RackIx,
) -> Option<ReplicaMove> {
    let mut sources = topology.members(from).to_vec();
    sources.sort_by_key(|&b| (Reverse(assignment.load(b)), b));
    for source in sources {
        for partition in assignment.hosted(source) {
            if !keeps_spread(topology, assignment, partition, from, to) {
                continue;
            }
            let destination = topology
                .members(to)
                .iter()
                .copied()
                .filter(|&b| !assignment.holds(partition, b))
                .min_by_key(|&b| (assignment.load(b), b));
            if let Some(destination) = destination {
                return Some(ReplicaMove {
                    partition,
                    from: source,
                    to: destination,
                });
            }
        }
    }
    None
}

/// Moves replicas from the busiest to the idlest broker of `rack` until they differ by at most
/// one. Such a move always exists: the busier broker holds at least two partitions the idler
/// one lacks, and a move inside a rack cannot change a partition's rack spread.
fn balance_within_rack(topology: &Topology, assignment: &mut Assignment, rack: RackIx) {
    let members = topology.members(rack);
    loop {
        let busiest = members
            .iter()
            .copied()
            .max_by_key(|&b| (assignment.load(b), Reverse(b)));
        let idlest = members
            .iter()
            .copied()
            .min_by_key(|&b| (assignment.load(b), b));
        let (Some(busiest), Some(idlest)) = (busiest, idlest) else {
            return;
        };
        if assignment.load(busiest) < assignment.load(idlest) + 2 {
            return;
        }
        let partition = assignment
            .hosted(busiest)
            .find(|&p| !assignment.holds(p, idlest));
        let Some(partition) = partition else { return };
        assignment.move_replica(partition, busiest, idlest);
    }
}
