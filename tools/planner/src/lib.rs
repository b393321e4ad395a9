//! Krait's rebalance planner: from a cluster's current partition assignment, its brokers and
//! racks, and the set of brokers that should hold replicas, it computes a reassignment plan.
//! Pure and deterministic: no I/O, no clock, no randomness, no hash-order iteration. Applying
//! the plan (throttles, progress, the reassignment API) belongs to the operator.
//!
//! # What a plan guarantees
//!
//! - Every partition keeps its replica count. If a partition has more replicas than there are
//!   target brokers, nothing is planned: [`PlanError::NotEnoughBrokers`] names every such topic.
//! - Afterwards every replica sits on a target broker and a partition's replicas are distinct.
//! - **Racks.** Each partition spans `min(replication factor, racks among target brokers)`
//!   racks, which is always feasible. Brokers without a rack together count as one rack, so a
//!   cluster without racks has no rack constraint, and a mix puts the rackless brokers in one
//!   shared failure domain (the safe reading). Rack spread is a hard rule and wins over count
//!   balance: a partition never loses rack spread to even out replica counts.
//! - **Replica balance.** Replica counts differ by at most one between brokers of a rack, and
//!   across all target brokers whenever racks have equal broker counts (or there is one
//!   rack, or none). With uneven racks the spread can force more onto the smaller racks; the
//!   planner then stops where no single move between racks narrows the spread.
//! - **Leader balance.** Preferred leaders (first replicas) are balanced by reordering replica
//!   lists only, which moves no data; when any ordering reaches a spread of one, the plan does.
//! - **Little movement.** Replicas on target brokers stay unless draining, the rack spread or
//!   balance needs them elsewhere; when a broker has to shed replicas the smallest partitions
//!   go first, and only as many as the bounds need.
//! - **Convergence.** Planning again on [`apply`]'s result yields no moves: each phase stops at
//!   a state the same phase leaves untouched.
//!
//! # Algorithm
//!
//! 1. *Validate* (`validate`): refuse what cannot be planned, sort brokers
//!    and partitions so input order cannot matter, number target brokers and racks densely.
//! 2. *Place* (`placement`): keep replicas on target brokers, evict the
//!    fewest same-rack replicas needed for the rack spread, and give each vacant slot the
//!    least loaded eligible broker. Slots keep their positions.
//! 3. *Balance replicas* (`balance`): single replica moves from busy to idle
//!    brokers, first between racks, then within each rack, smallest partitions first, until no
//!    allowed move narrows the spread. Scans are per broker over size-ordered sets, so the
//!    cost grows with moves times brokers, not with partitions squared.
//! 4. *Balance leaders* (`leaders`): shortest handoff paths between brokers
//!    (a semi-matching), applied by swapping a replica into the first slot.
//! 5. *Diff* (`summary`): a [`Move`] for each partition whose replica list
//!    (order included) changed, sorted by (topic, partition), and a [`Summary`].

mod assignment;
mod balance;
mod error;
mod leaders;
mod model;
mod placement;
mod summary;
mod topology;
mod validate;

use std::collections::BTreeMap;

pub use error::{BlockingTopic, PlanError};
pub use model::{Broker, Move, PartitionAssignment, Plan, PlanRequest, Summary};

use assignment::Assignment;

/// Plans the reassignment that drains brokers outside `request.target`, spreads partitions
/// across racks and balances replicas and leaders over the target brokers.
pub fn plan(request: &PlanRequest) -> Result<Plan, PlanError> {
    let validated = validate::validate(request)?;
    let topology = &validated.topology;
    let placed = placement::place(topology, &validated.partitions);
    let sizes = validated.partitions.iter().map(|p| p.size_bytes).collect();
    let mut assignment = Assignment::new(topology.broker_count(), placed, sizes);
    balance::balance_replicas(topology, &mut assignment);
    let mut replicas = assignment.into_replicas();
    leaders::balance_leaders(topology.broker_count(), &mut replicas);
    Ok(summary::build_plan(
        request,
        topology,
        &validated.partitions,
        &replicas,
    ))
}

/// The assignment after `plan` is carried out: `partitions` in the same order, with each moved
/// partition's replica list replaced by its move's `to`.
pub fn apply(partitions: &[PartitionAssignment], plan: &Plan) -> Vec<PartitionAssignment> {
    let moves: BTreeMap<(&str, i32), &Move> = plan
        .moves
        .iter()
        .map(|m| ((m.topic.as_str(), m.partition), m))
        .collect();
    partitions
        .iter()
        .map(|p| {
            let mut after = p.clone();
            if let Some(m) = moves.get(&(p.topic.as_str(), p.partition)) {
                after.replicas.clone_from(&m.to);
            }
            after
        })
        .collect()
}
