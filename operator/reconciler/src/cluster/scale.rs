//! Scaling a cluster as a pure state machine: from what one reconcile observed (StatefulSet,
//! pods, the cluster's brokers, voters and partition assignment) it picks the single next step
//! towards `spec.replicas`. It performs nothing and remembers nothing, so a reconcile that
//! stopped anywhere resumes from whatever the next one observes (architecture decision 6).
//!
//! Scale up: grow the StatefulSet, wait until the new brokers are Ready and registered, make
//! voters of them while the quorum has fewer than `spec.controllers`, then (unless
//! `spec.rebalance.onScale` is off) reassign partitions onto them. Scale down: move the
//! metadata quorum's voters off the leaving brokers (ordinals >= `spec.replicas`) first,
//! adding one on a staying broker before removing one that leaves; refuse if a topic's
//! replication factor would not fit, otherwise drain the leaving brokers, shrink the
//! StatefulSet only once they hold no replica, and unregister them once their brokers have
//! stopped.

use std::collections::{BTreeMap, BTreeSet};

use krait_planner::{
    BlockingTopic, Broker, PartitionAssignment, Plan, PlanError, PlanRequest, plan,
};

/// Everything a scaling decision is made from, read fresh by every reconcile.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScaleObserved {
    /// `spec.replicas`.
    pub desired_replicas: i32,
    /// The StatefulSet's `spec.replicas`.
    pub statefulset_replicas: i32,
    /// Ordinals of pods that are Ready; a terminating pod does not count.
    pub ready_pods: BTreeSet<i32>,
    /// Registered, unfenced brokers and their racks, from the cluster's metadata.
    pub live_brokers: BTreeMap<i32, Option<String>>,
    /// Every registered broker, fenced ones included.
    pub registered_brokers: BTreeSet<i32>,
    /// Metadata quorum voters; a voter's broker is never removed.
    pub voters: BTreeSet<i32>,
    /// Brokers following the metadata log without a vote; only they can become voters.
    pub observers: BTreeSet<i32>,
    /// How many voters the quorum should have (`spec.controllers`, at most `spec.replicas`).
    pub desired_voters: usize,
    /// Each voter's data directory id, as the quorum records it.
    pub voter_directories: BTreeMap<i32, String>,
    /// Brokers whose pod says their voter's data directory (this id) was lost
    /// (`lost_voter.rs`).
    pub lost_directories: BTreeMap<i32, String>,
    /// The current assignment of every partition.
    pub partitions: Vec<PartitionAssignment>,
    /// Partition reassignments the cluster reports as ongoing.
    pub reassignments_in_progress: usize,
    /// `spec.rebalance.onScale`.
    pub rebalance_on_scale: bool,
    /// Replication throttle to set while partitions move, if any.
    pub throttle_bytes_per_sec: Option<i64>,
    /// Whether a replication throttle is currently set on the cluster.
    pub throttle_set: bool,
}

/// The one thing the reconciler should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScaleStep {
    /// The cluster has `spec.replicas` brokers, all up, and nothing is moving. Clear the
    /// replication throttle if `clear_throttle`.
    Steady { clear_throttle: bool },
    /// Scale up: raise the StatefulSet to `replicas` first.
    GrowStatefulSet { replicas: i32 },
    /// Brokers that should exist are not Ready or not registered and unfenced yet.
    WaitForBrokers { missing: BTreeSet<i32> },
    /// Submit `plan` (every move in one request) to spread partitions onto new brokers.
    Rebalance { plan: Plan, throttle: Option<i64> },
    /// Partitions are moving; nothing else happens until they are done.
    WaitForReassignments { in_progress: usize },
    /// Scale down: submit `plan` (every move in one request), which moves every replica off
    /// `leaving` onto the brokers that stay.
    Drain {
        plan: Plan,
        leaving: BTreeSet<i32>,
        throttle: Option<i64>,
    },
    /// The leaving brokers hold no replica: lower the StatefulSet to `replicas`.
    ShrinkStatefulSet { replicas: i32 },
    /// The StatefulSet has shrunk but these brokers are still live (pods terminating).
    WaitForShutdown { brokers: BTreeSet<i32> },
    /// These brokers' pods are gone but the cluster still has them registered.
    Unregister { brokers: BTreeSet<i32> },
    /// This voter's data directory was lost (its broker refuses to start on the new volume):
    /// take the voter of that directory out of the quorum and restart the broker, which then
    /// follows the log as an observer and is made a voter again once it has caught up.
    ReplaceLostVoter { broker: i32, directory: String },
    /// Make this broker (Ready, following the metadata log) a voter: the quorum has fewer than
    /// it should among the brokers that stay.
    AddVoter { broker: i32 },
    /// Take this voter out of the quorum: its broker is leaving, or the quorum has more voters
    /// than it should. Its broker stays an observer.
    RemoveVoter { broker: i32 },
    /// The quorum needs another voter, and these brokers that stay could be one once they are
    /// Ready and follow the metadata log.
    WaitForVoterCandidates { brokers: BTreeSet<i32> },
    /// The scale-down cannot be done safely; nothing is removed. `blocking` names the topics
    /// whose replication factor the remaining brokers cannot hold (empty for a voter refusal).
    Refused {
        blocking: Vec<BlockingTopic>,
        reason: String,
    },
    /// The planner rejected the observed assignment itself (a broken observation, not a
    /// refusal); retry on the next reconcile.
    PlanFailed { error: PlanError },
}

/// The next scaling step. The order of checks is the safety argument: nothing starts while
/// partitions move; growing needs no preconditions; a scale-down refuses before touching
/// anything, drains before it shrinks, and unregisters only brokers that have stopped.
pub fn next_step(o: &ScaleObserved) -> ScaleStep {
    // First: the quorum tolerates one lost voter fewer until it is replaced.
    if let Some(step) = lost_voter(o) {
        return step;
    }
    if o.reassignments_in_progress > 0 {
        return ScaleStep::WaitForReassignments {
            in_progress: o.reassignments_in_progress,
        };
    }
    if o.desired_replicas > o.statefulset_replicas {
        return ScaleStep::GrowStatefulSet {
            replicas: o.desired_replicas,
        };
    }
    let scaling_down = o.desired_replicas < o.statefulset_replicas;
    if scaling_down && let Some(refusal) = fit_refusal(o) {
        return refusal;
    }
    if scaling_down && let Some(step) = quorum_step(o) {
        return step;
    }
    if holds_replicas_beyond(o, o.desired_replicas) {
        return wait_for_targets(o).unwrap_or_else(|| drain(o));
    }
    if scaling_down {
        return ScaleStep::ShrinkStatefulSet {
            replicas: o.desired_replicas,
        };
    }
    if let Some(step) = retire_leftovers(o) {
        return step;
    }
    if let Some(wait) = wait_for_targets(o) {
        return wait;
    }
    if let Some(step) = quorum_step(o) {
        return step;
    }
    if o.rebalance_on_scale
        && let Some(step) = rebalance(o)
    {
        return step;
    }
    ScaleStep::Steady {
        clear_throttle: o.throttle_set,
    }
}

/// The brokers that stay: ordinals `0..spec.replicas`.
fn targets(o: &ScaleObserved) -> BTreeSet<i32> {
    (0..o.desired_replicas.max(0)).collect()
}

/// Every broker the observation knows at or above `spec.replicas`.
fn leaving(o: &ScaleObserved) -> BTreeSet<i32> {
    let replicas = o.partitions.iter().flat_map(|p| p.replicas.iter().copied());
    (0..o.statefulset_replicas)
        .chain(o.registered_brokers.iter().copied())
        .chain(replicas)
        .filter(|&id| id >= o.desired_replicas)
        .collect()
}

fn holds_replicas_beyond(o: &ScaleObserved, desired: i32) -> bool {
    o.partitions
        .iter()
        .any(|p| p.replicas.iter().any(|&id| id >= desired))
}

/// A voter whose broker reports its data directory lost, when the quorum still knows it by
/// that directory (after the replacement it is known by the new one) and has other voters.
fn lost_voter(o: &ScaleObserved) -> Option<ScaleStep> {
    if o.voters.len() < 2 {
        return None;
    }
    o.lost_directories
        .iter()
        .find(|(id, lost)| o.voters.contains(id) && o.voter_directories.get(id) == Some(lost))
        .map(|(&broker, directory)| ScaleStep::ReplaceLostVoter {
            broker,
            directory: directory.clone(),
        })
}

/// A scale-down whose remaining brokers cannot hold some topic's replication factor is refused
/// before anything (a voter, a replica) moves.
fn fit_refusal(o: &ScaleObserved) -> Option<ScaleStep> {
    if !holds_replicas_beyond(o, o.desired_replicas) {
        return None;
    }
    match drain(o) {
        refused @ ScaleStep::Refused { .. } => Some(refused),
        _ => None,
    }
}

/// The quorum's next voter change, one at a time: `desired_voters` voters among the brokers
/// that stay. A voter is added before one is removed, so a change never leaves the quorum
/// tolerating fewer lost voters than before it; a leaving broker's voter goes before anything
/// else happens to the broker. Voters spread over racks (`spec.rack`): a new one comes from the
/// rack with the fewest voters, a surplus one goes from the rack with the most; lowest ordinals
/// are added first and highest removed first. Nothing when the quorum was not observed.
fn quorum_step(o: &ScaleObserved) -> Option<ScaleStep> {
    if o.voters.is_empty() {
        return None;
    }
    let staying = targets(o);
    let want = o.desired_voters.clamp(1, staying.len().max(1));
    let rack = |id: &i32| o.live_brokers.get(id).cloned().flatten();
    let voters_in = |r: &Option<String>| o.voters.iter().filter(|v| rack(v) == *r).count();
    if o.voters.intersection(&staying).count() < want {
        let candidates: BTreeSet<i32> = staying.difference(&o.voters).copied().collect();
        let ready = candidates
            .iter()
            .copied()
            .filter(|id| {
                o.observers.contains(id)
                    && o.live_brokers.contains_key(id)
                    && o.ready_pods.contains(id)
            })
            .min_by_key(|id| (voters_in(&rack(id)), *id));
        return Some(match ready {
            Some(broker) => ScaleStep::AddVoter { broker },
            None => ScaleStep::WaitForVoterCandidates {
                brokers: candidates,
            },
        });
    }
    let leaving = o.voters.iter().rev().find(|id| !staying.contains(id));
    let surplus = (o.voters.len() > want)
        .then(|| {
            o.voters
                .iter()
                .max_by_key(|id| (voters_in(&rack(id)), **id))
        })
        .flatten();
    leaving
        .or(surplus)
        .map(|&broker| ScaleStep::RemoveVoter { broker })
}

/// Target brokers that must be up before partitions are moved onto them.
fn wait_for_targets(o: &ScaleObserved) -> Option<ScaleStep> {
    let missing: BTreeSet<i32> = targets(o)
        .into_iter()
        .filter(|id| !o.ready_pods.contains(id) || !o.live_brokers.contains_key(id))
        .collect();
    (!missing.is_empty()).then_some(ScaleStep::WaitForBrokers { missing })
}

/// A plan that puts every replica on the brokers that stay (`0..spec.replicas`), balanced:
/// what a scale step submits, and what an on-demand rebalance runs.
pub fn plan_onto_targets(o: &ScaleObserved) -> Result<Plan, PlanError> {
    plan(&PlanRequest {
        brokers: o
            .live_brokers
            .iter()
            .map(|(&id, rack)| Broker {
                id,
                rack: rack.clone(),
            })
            .collect(),
        target: targets(o),
        partitions: o.partitions.clone(),
    })
}

/// Plans from the current assignment, so a drain interrupted half way plans only what is
/// still on the leaving brokers.
fn drain(o: &ScaleObserved) -> ScaleStep {
    match plan_onto_targets(o) {
        Ok(plan) => ScaleStep::Drain {
            plan,
            leaving: leaving(o),
            throttle: o.throttle_bytes_per_sec,
        },
        Err(PlanError::NotEnoughBrokers { blocking, .. }) => {
            let topics: Vec<&str> = blocking.iter().map(|b| b.topic.as_str()).collect();
            let reason = format!(
                "scale-down to {} replicas refused: topic(s) {} need more brokers than remain",
                o.desired_replicas,
                topics.join(", "),
            );
            ScaleStep::Refused { blocking, reason }
        }
        Err(error) => ScaleStep::PlanFailed { error },
    }
}

/// Brokers above `spec.replicas` that are still registered although their pods are gone.
fn retire_leftovers(o: &ScaleObserved) -> Option<ScaleStep> {
    let (live, stopped): (BTreeSet<i32>, BTreeSet<i32>) = o
        .registered_brokers
        .iter()
        .filter(|&&id| id >= o.desired_replicas && !o.voters.contains(&id))
        .partition(|id| o.live_brokers.contains_key(id));
    if !live.is_empty() {
        return Some(ScaleStep::WaitForShutdown { brokers: live });
    }
    (!stopped.is_empty()).then_some(ScaleStep::Unregister { brokers: stopped })
}

/// A stateless operator cannot remember that brokers were just added, so the trigger is what
/// new brokers look like: a target broker holding fewer replicas than its share (the total
/// divided evenly, rounded down). A balanced cluster never triggers it, and a plan that
/// cannot do better (uneven racks) comes back empty, so this never loops.
fn rebalance(o: &ScaleObserved) -> Option<ScaleStep> {
    if !has_underloaded_target(o) {
        return None;
    }
    match plan_onto_targets(o) {
        Ok(plan) if plan.moves.is_empty() => None,
        Ok(plan) => Some(ScaleStep::Rebalance {
            plan,
            throttle: o.throttle_bytes_per_sec,
        }),
        Err(error) => Some(ScaleStep::PlanFailed { error }),
    }
}

fn has_underloaded_target(o: &ScaleObserved) -> bool {
    let mut counts: BTreeMap<i32, usize> = targets(o).into_iter().map(|id| (id, 0)).collect();
    for id in o.partitions.iter().flat_map(|p| &p.replicas) {
        if let Some(count) = counts.get_mut(id) {
            *count += 1;
        }
    }
    let total: usize = counts.values().sum();
    let share = total / counts.len().max(1);
    counts.values().any(|&count| count < share)
}

/// How far a submitted plan has got, for status: a data-moving partition counts as moved once
/// its replica set equals the move's target set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    pub partitions_moved: usize,
    pub partitions_total: usize,
    pub bytes_moved: u64,
    pub bytes_total: u64,
}

/// Progress of `plan` against the current assignment. Needs the plan's moves, so a reconciler
/// that wants progress across restarts keeps them (or their targets) somewhere it observes.
pub fn progress(partitions: &[PartitionAssignment], plan: &Plan) -> Progress {
    let current: BTreeMap<(&str, i32), BTreeSet<i32>> = partitions
        .iter()
        .map(|p| {
            (
                (p.topic.as_str(), p.partition),
                p.replicas.iter().copied().collect(),
            )
        })
        .collect();
    let mut out = Progress::default();
    for m in plan.moves.iter().filter(|m| m.moves_data()) {
        let bytes = m.size_bytes * m.added_replicas().count() as u64;
        out.partitions_total += 1;
        out.bytes_total += bytes;
        let target: BTreeSet<i32> = m.to.iter().copied().collect();
        if current.get(&(m.topic.as_str(), m.partition)) == Some(&target) {
            out.partitions_moved += 1;
            out.bytes_moved += bytes;
        }
    }
    out
}

/// A status condition's reason and message for a step.
pub fn describe(step: &ScaleStep) -> (&'static str, String) {
    match step {
        ScaleStep::Steady { .. } => ("Scaled", "all brokers are up; nothing to move".into()),
        ScaleStep::GrowStatefulSet { replicas } => (
            "GrowingStatefulSet",
            format!("raising the StatefulSet to {replicas} replicas"),
        ),
        ScaleStep::WaitForBrokers { missing } => (
            "WaitingForBrokers",
            format!(
                "waiting for broker(s) {} to be Ready and registered",
                ids(missing)
            ),
        ),
        ScaleStep::Rebalance { plan, .. } => (
            "Rebalancing",
            format!("spreading partitions onto new brokers: {}", moved(plan)),
        ),
        ScaleStep::WaitForReassignments { in_progress } => (
            "WaitingForReassignments",
            format!("{in_progress} partition reassignment(s) in progress"),
        ),
        ScaleStep::Drain { plan, leaving, .. } => (
            "Draining",
            format!(
                "moving partitions off broker(s) {}: {}",
                ids(leaving),
                moved(plan)
            ),
        ),
        ScaleStep::ShrinkStatefulSet { replicas } => (
            "ShrinkingStatefulSet",
            format!("leaving brokers are empty; lowering the StatefulSet to {replicas} replicas"),
        ),
        ScaleStep::WaitForShutdown { brokers } => (
            "WaitingForShutdown",
            format!("waiting for removed broker(s) {} to stop", ids(brokers)),
        ),
        ScaleStep::Unregister { brokers } => (
            "UnregisteringBrokers",
            format!("unregistering removed broker(s) {}", ids(brokers)),
        ),
        ScaleStep::ReplaceLostVoter { broker, directory } => (
            "ReplacingLostVoter",
            format!(
                "broker {broker} lost its data directory {directory}: removing its voter and \
                 restarting it on its new volume, to be made a voter again once it has caught up"
            ),
        ),
        ScaleStep::AddVoter { broker } => (
            "AddingVoter",
            format!("making broker {broker} a metadata quorum voter"),
        ),
        ScaleStep::RemoveVoter { broker } => (
            "RemovingVoter",
            format!("removing broker {broker} from the metadata quorum's voters"),
        ),
        ScaleStep::WaitForVoterCandidates { brokers } => (
            "WaitingForBrokers",
            format!(
                "the metadata quorum needs another voter: waiting for broker(s) {} to be Ready \
                 and follow the metadata log",
                ids(brokers)
            ),
        ),
        ScaleStep::Refused { reason, .. } => ("ScaleDownRefused", reason.clone()),
        ScaleStep::PlanFailed { error } => (
            "PlanFailed",
            format!("cannot plan partition movement: {error}"),
        ),
    }
}

fn ids(set: &BTreeSet<i32>) -> String {
    set.iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn moved(plan: &Plan) -> String {
    format!(
        "{} partition(s), {} bytes",
        plan.summary.partitions_moved, plan.summary.bytes_moved
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use krait_planner::apply;

    /// A healthy cluster of `brokers` brokers at rest, voters 0..3, no partitions yet.
    fn cluster(brokers: i32) -> ScaleObserved {
        let ids: BTreeSet<i32> = (0..brokers).collect();
        ScaleObserved {
            desired_replicas: brokers,
            statefulset_replicas: brokers,
            ready_pods: ids.clone(),
            live_brokers: ids.iter().map(|&id| (id, None)).collect(),
            voters: (0..brokers.min(3)).collect(),
            observers: ids.iter().copied().filter(|&id| id >= 3).collect(),
            registered_brokers: ids,
            desired_voters: 3,
            rebalance_on_scale: true,
            throttle_bytes_per_sec: Some(10_000_000),
            ..ScaleObserved::default()
        }
    }

    /// Adds a topic placed round-robin over the first `brokers` brokers.
    fn with_topic(mut o: ScaleObserved, topic: &str, partitions: i32, rf: i32) -> ScaleObserved {
        let brokers = o.statefulset_replicas;
        o.partitions
            .extend((0..partitions).map(|p| PartitionAssignment {
                topic: topic.into(),
                partition: p,
                replicas: (0..rf).map(|i| (p + i) % brokers).collect(),
                size_bytes: 1_000,
            }));
        o
    }

    fn on_broker(o: &ScaleObserved, id: i32) -> usize {
        o.partitions
            .iter()
            .filter(|p| p.replicas.contains(&id))
            .count()
    }

    /// The world as a reconciler, the kubelet and the brokers would leave it once `step` has
    /// been carried out completely. `submitted` stands for the reassignments the cluster runs.
    #[derive(Debug)]
    struct World {
        o: ScaleObserved,
        submitted: Option<Plan>,
    }

    impl World {
        fn new(o: ScaleObserved) -> Self {
            Self { o, submitted: None }
        }

        fn perform(&mut self, step: &ScaleStep) {
            let o = &mut self.o;
            match step {
                ScaleStep::Steady { .. } => o.throttle_set = false,
                ScaleStep::GrowStatefulSet { replicas } => o.statefulset_replicas = *replicas,
                ScaleStep::WaitForBrokers { missing: brokers }
                | ScaleStep::WaitForVoterCandidates { brokers } => {
                    for &id in brokers {
                        o.ready_pods.insert(id);
                        o.live_brokers.insert(id, None);
                        o.registered_brokers.insert(id);
                        if !o.voters.contains(&id) {
                            o.observers.insert(id);
                        }
                    }
                }
                ScaleStep::ReplaceLostVoter { broker, .. } => {
                    // Removed, restarted: it follows the log on its new directory.
                    o.voters.remove(broker);
                    o.voter_directories.remove(broker);
                    o.lost_directories.remove(broker);
                    o.observers.insert(*broker);
                }
                ScaleStep::AddVoter { broker } => {
                    assert!(o.observers.remove(broker), "{broker} follows the log");
                    o.voter_directories.insert(*broker, format!("new-{broker}"));
                    o.voters.insert(*broker);
                }
                ScaleStep::RemoveVoter { broker } => {
                    assert!(o.voters.len() > 1, "the last voter stays");
                    assert!(o.voters.remove(broker));
                    o.observers.insert(*broker);
                }
                ScaleStep::Rebalance { plan, .. } | ScaleStep::Drain { plan, .. } => {
                    o.reassignments_in_progress = plan.moves.len();
                    o.throttle_set = true;
                    self.submitted = Some(plan.clone());
                }
                ScaleStep::WaitForReassignments { .. } => {
                    let plan = self.submitted.take().expect("a submitted plan");
                    o.partitions = apply(&o.partitions, &plan);
                    o.reassignments_in_progress = 0;
                }
                ScaleStep::ShrinkStatefulSet { replicas } => {
                    o.statefulset_replicas = *replicas;
                    o.ready_pods.retain(|id| id < replicas);
                }
                ScaleStep::WaitForShutdown { brokers } => {
                    o.live_brokers.retain(|id, _| !brokers.contains(id));
                }
                ScaleStep::Unregister { brokers } => {
                    o.registered_brokers.retain(|id| !brokers.contains(id));
                    o.observers.retain(|id| !brokers.contains(id));
                }
                ScaleStep::Refused { .. } | ScaleStep::PlanFailed { .. } => {
                    panic!("unexpected {step:?}")
                }
            }
        }

        /// Steps until Steady, returning each step's condition reason.
        fn run(&mut self) -> Vec<&'static str> {
            let mut reasons = Vec::new();
            for _ in 0..20 {
                let step = next_step(&self.o);
                reasons.push(describe(&step).0);
                if matches!(step, ScaleStep::Steady { .. }) {
                    return reasons;
                }
                self.perform(&step);
            }
            panic!("no steady state after {reasons:?}")
        }
    }

    #[test]
    fn scale_up_grows_waits_rebalances_then_is_steady() {
        let mut o = with_topic(cluster(3), "orders", 12, 3);
        o.desired_replicas = 4;
        assert_eq!(next_step(&o), ScaleStep::GrowStatefulSet { replicas: 4 });

        o.statefulset_replicas = 4;
        let missing = BTreeSet::from([3]);
        assert_eq!(
            next_step(&o),
            ScaleStep::WaitForBrokers {
                missing: missing.clone()
            }
        );

        o.ready_pods.insert(3);
        assert_eq!(
            next_step(&o),
            ScaleStep::WaitForBrokers { missing },
            "a Ready pod whose broker has not registered is still missing"
        );

        o.live_brokers.insert(3, None);
        o.registered_brokers.insert(3);
        let step = next_step(&o);
        let ScaleStep::Rebalance { plan, throttle } = &step else {
            panic!("expected a rebalance, got {step:?}");
        };
        assert_eq!(*throttle, Some(10_000_000));
        assert_eq!(plan.summary.replicas_per_broker_after[&3], 9);

        let mut world = World::new(o);
        world.perform(&step);
        assert_eq!(
            next_step(&world.o),
            ScaleStep::WaitForReassignments {
                in_progress: plan.moves.len()
            }
        );
        world.perform(&next_step(&world.o));
        assert_eq!(on_broker(&world.o, 3), 9);
        assert_eq!(
            next_step(&world.o),
            ScaleStep::Steady {
                clear_throttle: true
            }
        );
        world.o.throttle_set = false;
        assert_eq!(
            next_step(&world.o),
            ScaleStep::Steady {
                clear_throttle: false
            }
        );
    }

    #[test]
    fn scale_up_without_rebalance_on_scale_skips_the_rebalance() {
        let mut o = with_topic(cluster(3), "orders", 12, 3);
        o.rebalance_on_scale = false;
        o.desired_replicas = 4;
        let mut world = World::new(o);
        assert_eq!(
            world.run(),
            ["GrowingStatefulSet", "WaitingForBrokers", "Scaled"]
        );
        assert_eq!(on_broker(&world.o, 3), 0);
    }

    #[test]
    fn scale_down_drains_waits_shrinks_unregisters_then_is_steady() {
        let mut o = with_topic(cluster(4), "orders", 12, 3);
        o.desired_replicas = 3;
        let step = next_step(&o);
        let ScaleStep::Drain {
            plan,
            leaving,
            throttle,
        } = &step
        else {
            panic!("expected a drain, got {step:?}");
        };
        assert_eq!(*leaving, BTreeSet::from([3]));
        assert_eq!(*throttle, Some(10_000_000));
        assert_eq!(plan.summary.replicas_per_broker_after[&3], 0);
        assert_eq!(plan.summary.leaders_per_broker_after[&3], 0);

        let mut world = World::new(o);
        world.perform(&step);
        let wait = next_step(&world.o);
        assert_eq!(
            wait,
            ScaleStep::WaitForReassignments {
                in_progress: plan.moves.len()
            }
        );
        world.perform(&wait);
        assert_eq!(on_broker(&world.o, 3), 0);
        assert_eq!(
            next_step(&world.o),
            ScaleStep::ShrinkStatefulSet { replicas: 3 }
        );

        world.perform(&ScaleStep::ShrinkStatefulSet { replicas: 3 });
        let stopping = BTreeSet::from([3]);
        assert_eq!(
            next_step(&world.o),
            ScaleStep::WaitForShutdown {
                brokers: stopping.clone()
            },
            "the pod is terminating and its broker still heartbeats"
        );
        world.o.live_brokers.remove(&3);
        assert_eq!(
            next_step(&world.o),
            ScaleStep::Unregister { brokers: stopping }
        );
        world.o.registered_brokers.remove(&3);
        assert_eq!(
            next_step(&world.o),
            ScaleStep::Steady {
                clear_throttle: true
            }
        );
    }

    #[test]
    fn scale_down_that_a_topic_cannot_fit_is_refused_naming_it() {
        let mut o = with_topic(cluster(3), "orders", 6, 3);
        o = with_topic(o, "logs", 6, 1);
        o.desired_replicas = 2;
        let step = next_step(&o);
        let ScaleStep::Refused { blocking, reason } = &step else {
            panic!("expected a refusal, got {step:?}");
        };
        assert_eq!(
            *blocking,
            [BlockingTopic {
                topic: "orders".into(),
                replication_factor: 3
            }]
        );
        assert!(
            reason.contains("orders") && !reason.contains("logs"),
            "{reason}"
        );
        assert_eq!(describe(&step).0, "ScaleDownRefused");
    }

    #[test]
    fn scale_down_moves_leaving_voters_out_of_the_quorum_before_draining() {
        let mut o = with_topic(cluster(5), "orders", 10, 3);
        o.voters = (0..5).collect();
        o.observers.clear();
        o.desired_voters = 5;
        o.desired_replicas = 3;
        assert_eq!(next_step(&o), ScaleStep::RemoveVoter { broker: 4 });
        let mut world = World::new(o);
        assert_eq!(
            world.run(),
            [
                "RemovingVoter",
                "RemovingVoter",
                "Draining",
                "WaitingForReassignments",
                "ShrinkingStatefulSet",
                "WaitingForShutdown",
                "UnregisteringBrokers",
                "Scaled"
            ]
        );
        assert_eq!(world.o.voters, BTreeSet::from([0, 1, 2]));
    }

    #[test]
    fn a_staying_broker_becomes_a_voter_before_a_leaving_one_stops_voting() {
        let mut o = with_topic(cluster(4), "orders", 8, 3);
        o.voters = BTreeSet::from([0, 2, 3]);
        o.observers = BTreeSet::from([1]);
        o.desired_replicas = 3;
        assert_eq!(next_step(&o), ScaleStep::AddVoter { broker: 1 });
        o.ready_pods.remove(&1);
        assert_eq!(
            next_step(&o),
            ScaleStep::WaitForVoterCandidates {
                brokers: BTreeSet::from([1])
            },
            "no voter leaves while its replacement cannot be added"
        );
        o.ready_pods.insert(1);
        let mut world = World::new(o);
        let reasons = world.run();
        assert_eq!(reasons[..3], ["AddingVoter", "RemovingVoter", "Draining"]);
        assert_eq!(world.o.voters, BTreeSet::from([0, 1, 2]));
    }

    #[test]
    fn scaling_one_to_three_to_five_grows_the_quorum_and_controllers_resizes_it() {
        let mut o = cluster(1);
        o.desired_replicas = 3;
        let mut world = World::new(o);
        assert_eq!(
            world.run(),
            [
                "GrowingStatefulSet",
                "WaitingForBrokers",
                "AddingVoter",
                "AddingVoter",
                "Scaled"
            ]
        );
        assert_eq!(world.o.voters, BTreeSet::from([0, 1, 2]));
        world.o.desired_replicas = 5;
        assert_eq!(
            world.run(),
            ["GrowingStatefulSet", "WaitingForBrokers", "Scaled"],
            "three voters by default"
        );
        world.o.desired_voters = 5;
        assert_eq!(world.run(), ["AddingVoter", "AddingVoter", "Scaled"]);
        assert_eq!(world.o.voters, (0..5).collect());
        world.o.desired_voters = 1;
        assert_eq!(
            world.run(),
            [
                "RemovingVoter",
                "RemovingVoter",
                "RemovingVoter",
                "RemovingVoter",
                "Scaled"
            ]
        );
        assert_eq!(world.o.voters, BTreeSet::from([0]));
        world.o.desired_voters = 9;
        assert_eq!(world.run().len(), 5, "at most one voter per broker");
        assert_eq!(world.o.voters.len(), 5);
    }

    #[test]
    fn a_voter_whose_directory_was_lost_is_replaced_first_and_only_once() {
        let mut o = with_topic(cluster(4), "orders", 8, 3);
        o.voter_directories = (0..3).map(|id| (id, format!("dir-{id}"))).collect();
        o.lost_directories = BTreeMap::from([(1, "dir-1".to_string())]);
        o.ready_pods.remove(&1);
        o.live_brokers.remove(&1);
        o.reassignments_in_progress = 1;
        let replace = ScaleStep::ReplaceLostVoter {
            broker: 1,
            directory: "dir-1".into(),
        };
        assert_eq!(next_step(&o), replace, "before anything else");
        o.reassignments_in_progress = 0;
        let mut world = World::new(o.clone());
        assert_eq!(
            world.run(),
            [
                "ReplacingLostVoter",
                "WaitingForBrokers",
                "AddingVoter",
                "Scaled"
            ]
        );
        assert_eq!(world.o.voters, BTreeSet::from([0, 1, 2]));
        // The pod's old message names a directory the quorum no longer knows broker 1 by.
        world.o.lost_directories = BTreeMap::from([(1, "dir-1".to_string())]);
        assert_eq!(world.run(), ["Scaled"]);

        // Not a voter, or the last voter: nothing to replace it from.
        o.voters = BTreeSet::from([1]);
        assert_ne!(next_step(&o), replace);
        o.voters = BTreeSet::from([0, 2]);
        assert_ne!(next_step(&o), replace);
    }

    #[test]
    fn voters_spread_over_racks_as_they_are_added_and_removed() {
        // Six brokers in racks a, a, b, b, c, c; one voter (broker 0, rack a).
        let racks = ["a", "a", "b", "b", "c", "c"];
        let mut o = cluster(6);
        o.live_brokers = (0..6)
            .map(|id| (id, Some(racks[id as usize].to_string())))
            .collect();
        o.voters = BTreeSet::from([0]);
        o.observers = (1..6).collect();
        let mut world = World::new(o);
        world.run();
        assert_eq!(
            world.o.voters,
            BTreeSet::from([0, 2, 4]),
            "one voter per rack"
        );
        world.o.desired_voters = 5;
        world.run();
        assert_eq!(world.o.voters, BTreeSet::from([0, 1, 2, 3, 4]));
        world.o.desired_voters = 3;
        world.run();
        assert_eq!(
            world.o.voters,
            BTreeSet::from([0, 2, 4]),
            "the surplus goes from the fullest racks, highest ordinal first"
        );
    }

    #[test]
    fn an_unobserved_quorum_changes_no_voter() {
        let mut o = cluster(3);
        o.voters.clear();
        o.desired_voters = 1;
        assert_eq!(
            next_step(&o),
            ScaleStep::Steady {
                clear_throttle: false
            }
        );
    }

    #[test]
    fn scale_down_waits_for_reassignments_started_elsewhere() {
        let mut o = with_topic(cluster(4), "orders", 12, 3);
        o.desired_replicas = 3;
        o.reassignments_in_progress = 2;
        assert_eq!(
            next_step(&o),
            ScaleStep::WaitForReassignments { in_progress: 2 }
        );
    }

    #[test]
    fn scale_down_waits_for_a_staying_broker_before_draining() {
        let mut o = with_topic(cluster(4), "orders", 12, 3);
        o.desired_replicas = 3;
        o.ready_pods.remove(&1);
        let missing = BTreeSet::from([1]);
        assert_eq!(next_step(&o), ScaleStep::WaitForBrokers { missing });
    }

    #[test]
    fn scale_restart_mid_drain_plans_only_the_remainder() {
        let mut o = with_topic(cluster(4), "orders", 12, 3);
        o.desired_replicas = 3;
        let ScaleStep::Drain { plan, .. } = next_step(&o) else {
            panic!("expected a drain");
        };
        let half = Plan {
            moves: plan.moves[..plan.moves.len() / 2].to_vec(),
            ..Plan::default()
        };
        o.partitions = apply(&o.partitions, &half);
        let ScaleStep::Drain { plan: rest, .. } = next_step(&o) else {
            panic!("expected the drain to resume");
        };
        let still_on_leaving: BTreeSet<(String, i32)> = o
            .partitions
            .iter()
            .filter(|p| p.replicas.contains(&3))
            .map(|p| (p.topic.clone(), p.partition))
            .collect();
        let replanned: BTreeSet<(String, i32)> = rest
            .moves
            .iter()
            .filter(|m| m.moves_data())
            .map(|m| (m.topic.clone(), m.partition))
            .collect();
        assert!(!still_on_leaving.is_empty());
        assert_eq!(replanned, still_on_leaving);
    }

    #[test]
    fn scale_restart_after_the_drain_shrinks_without_replanning() {
        let mut o = with_topic(cluster(3), "orders", 12, 3);
        // Broker 3 exists, holds nothing: the drain finished before the operator restarted.
        o.statefulset_replicas = 4;
        o.ready_pods.insert(3);
        o.live_brokers.insert(3, None);
        o.registered_brokers.insert(3);
        assert_eq!(next_step(&o), ScaleStep::ShrinkStatefulSet { replicas: 3 });
    }

    #[test]
    fn scale_restart_after_shrink_unregisters_only_stopped_brokers() {
        let mut o = with_topic(cluster(3), "orders", 12, 3);
        o.registered_brokers.extend([3, 4]);
        o.live_brokers.insert(4, None);
        let step = next_step(&o);
        assert_eq!(
            step,
            ScaleStep::WaitForShutdown {
                brokers: BTreeSet::from([4])
            }
        );
        o.live_brokers.remove(&4);
        assert_eq!(
            next_step(&o),
            ScaleStep::Unregister {
                brokers: BTreeSet::from([3, 4])
            }
        );
    }

    #[test]
    fn scale_restart_in_every_state_resumes_to_the_same_end() {
        for (from, to) in [(3, 4), (3, 5), (4, 3), (5, 3)] {
            let mut start = with_topic(cluster(from), "orders", 12, 3);
            start = with_topic(start, "events", 5, 2);
            start.desired_replicas = to;
            let mut reference = World::new(start.clone());
            reference.run();

            // Crash after each step: the next reconcile sees only what that step left behind.
            let mut world = World::new(start);
            loop {
                let step = next_step(&world.o);
                let mut resumed = World::new(world.o.clone());
                resumed.submitted.clone_from(&world.submitted);
                resumed.run();
                assert_eq!(
                    resumed.o, reference.o,
                    "{from}->{to}: restart before {step:?}"
                );
                if matches!(step, ScaleStep::Steady { .. }) {
                    break;
                }
                world.perform(&step);
            }
            assert_eq!(reference.o.statefulset_replicas, to);
            assert_eq!(reference.o.registered_brokers, (0..to).collect());
            assert!((0..to).all(|id| on_broker(&reference.o, id) > 0));
        }
    }

    #[test]
    fn scale_restart_mid_rebalance_finishes_the_spread() {
        let mut o = with_topic(cluster(3), "orders", 12, 3);
        o.desired_replicas = 4;
        let mut world = World::new(o);
        for _ in 0..2 {
            let step = next_step(&world.o);
            world.perform(&step);
        }
        let ScaleStep::Rebalance { plan, .. } = next_step(&world.o) else {
            panic!("expected a rebalance");
        };
        // A partial submission completed, then the operator restarted.
        let first = Plan {
            moves: plan.moves[..2].to_vec(),
            ..Plan::default()
        };
        world.o.partitions = apply(&world.o.partitions, &first);
        assert!(matches!(next_step(&world.o), ScaleStep::Rebalance { .. }));
        assert_eq!(
            world.run(),
            ["Rebalancing", "WaitingForReassignments", "Scaled"]
        );
        assert_eq!(on_broker(&world.o, 3), 9);
    }

    #[test]
    fn scale_steady_cluster_never_rebalances_a_balanced_assignment() {
        let o = with_topic(cluster(3), "orders", 7, 2);
        assert_eq!(
            next_step(&o),
            ScaleStep::Steady {
                clear_throttle: false
            }
        );
    }

    #[test]
    fn scale_progress_counts_finished_moves_and_bytes() {
        let mut o = with_topic(cluster(4), "orders", 12, 3);
        o.desired_replicas = 3;
        let ScaleStep::Drain { plan, .. } = next_step(&o) else {
            panic!("expected a drain");
        };
        let before = progress(&o.partitions, &plan);
        assert_eq!(before.partitions_moved, 0);
        assert_eq!(before.partitions_total, plan.summary.partitions_moved);
        assert_eq!(before.bytes_total, plan.summary.bytes_moved);
        let done = progress(&apply(&o.partitions, &plan), &plan);
        assert_eq!(done.partitions_moved, done.partitions_total);
        assert_eq!(done.bytes_moved, done.bytes_total);
    }
}
