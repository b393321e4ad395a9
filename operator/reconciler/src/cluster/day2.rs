//! Day-2 decisions of one cluster reconcile, as a pure function of what it observed: how many
//! brokers the StatefulSet should run now, the one action to carry out (a scale step from
//! `scale.rs`, a roll step from `roll.rs`, or an on-demand rebalance), and what status says
//! about it. Nothing here talks to Kubernetes or Kafka; `reconcile.rs` carries the action out.
//!
//! Precedence, which is the safety argument across the two machines: scaling first (it
//! refuses, drains and waits for reassignments before anything else), then an on-demand
//! rebalance, then restarts, each only when the one before has nothing to do.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use krait_admin::Reassignment;
use krait_crd::cluster::RebalanceStatus;
use krait_planner::{PartitionAssignment, Plan};

use super::build::voter_count;
use super::lost_voter;
use super::roll::{self, PartitionIsr, PodObserved, RollObserved, RollStep};
use super::scale::{self, ScaleObserved, ScaleStep};
use super::validate::ValidatedCluster;
use crate::cluster_admin::ClusterState;
use crate::conditions::{DEGRADED, Decided, PROGRESSING};
use crate::names::{RESTART_ANNOTATION, REVISION_LABEL};

/// `krait.dev/rebalance` values.
pub const REBALANCE_EXECUTE: &str = "execute";
pub const REBALANCE_DRY_RUN: &str = "dry-run";
/// `min.insync.replicas` of a topic whose config could not be read: Kafka's default.
const DEFAULT_MIN_INSYNC: i32 = 1;

/// `status.rebalance.state` values.
const PLANNED: &str = "Planned";
const MOVING: &str = "Moving";
const COMPLETE: &str = "Complete";

/// What one reconcile observed.
#[derive(Debug)]
pub struct Observed<'a> {
    pub cluster: &'a ValidatedCluster,
    pub statefulset: Option<&'a StatefulSet>,
    pub pods: &'a [Pod],
    pub voters: &'a BTreeSet<i32>,
    /// The cluster's state, or why it could not be read; `None` when it was not asked.
    pub kafka: Option<&'a Result<ClusterState, String>>,
    /// The cluster's `krait.dev/rebalance` annotation.
    pub rebalance_request: Option<&'a str>,
    /// `status.rebalance` as last written.
    pub previous: Option<&'a RebalanceStatus>,
}

/// The one side effect of this reconcile besides applying objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    None,
    /// Start these reassignments, after setting the replication throttle when given.
    Reassign {
        moves: Vec<Reassignment>,
        throttle: Option<u64>,
    },
    ClearThrottle,
    Unregister(BTreeSet<i32>),
    /// Take this broker, whose voter's data directory was lost, out of the voters and restart
    /// its pod (policy/v1 Eviction), so it rejoins as an observer on its new volume.
    ReplaceLostVoter(i32),
    /// Make this broker a metadata quorum voter.
    AddVoter(i32),
    /// Take this broker out of the metadata quorum's voters.
    RemoveVoter(i32),
    /// Evict this broker's pod (a restart); the StatefulSet controller recreates it.
    RestartPod(i32),
}

/// What the reconcile should do and report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub statefulset_replicas: i32,
    pub action: Action,
    /// Overrides the rollout's `Progressing` condition when set.
    pub progressing: Option<Decided>,
    /// Overrides `Degraded` when set.
    pub degraded: Option<Decided>,
    pub rebalance: Option<RebalanceStatus>,
    /// The rebalance annotation has been acted on and is to be removed.
    pub rebalance_request_done: bool,
}

impl Decision {
    fn quiet(replicas: i32, previous: Option<&RebalanceStatus>) -> Self {
        Self {
            statefulset_replicas: replicas,
            action: Action::None,
            progressing: None,
            degraded: None,
            rebalance: previous.cloned(),
            rebalance_request_done: false,
        }
    }
}

/// The decision for one reconcile.
pub fn decide(o: &Observed<'_>) -> Decision {
    let desired = o.cluster.spec.replicas;
    let Some(running) = o.statefulset.and_then(|s| s.spec.replicas) else {
        // The cluster is being created: every broker starts at once.
        return Decision::quiet(desired, o.previous);
    };
    match o.kafka {
        Some(Ok(state)) => decide_observed(o, state, running),
        unobserved => decide_unobserved(o, unobserved, running),
    }
}

/// Without the cluster's state only what cannot hurt is done: growing the StatefulSet, and
/// restarting stale pods that are down anyway.
fn decide_unobserved(
    o: &Observed<'_>,
    kafka: Option<&Result<ClusterState, String>>,
    running: i32,
) -> Decision {
    let desired = o.cluster.spec.replicas;
    let mut d = Decision::quiet(running.max(desired), o.previous);
    let pods = pods_observed(o);
    let stuck = roll::next_roll_step(&RollObserved {
        statefulset_replicas: running,
        pods,
        ..RollObserved::default()
    });
    if let RollStep::Restart { pod } = stuck {
        d.action = Action::RestartPod(pod);
        d.progressing = Some(roll_condition(&stuck));
    } else if desired < running {
        let why = match kafka {
            Some(Err(e)) => format!("cannot read the cluster's state: {e}"),
            _ => "no broker is ready".to_string(),
        };
        d.progressing = Some(Decided::new(
            PROGRESSING,
            true,
            "WaitingForCluster",
            format!("scale-down to {desired} waits: {why}"),
        ));
    }
    d
}

fn decide_observed(o: &Observed<'_>, state: &ClusterState, running: i32) -> Decision {
    let scale_in = scale_observed(o, state, running);
    let step = scale::next_step(&scale_in);
    let replicas = match step {
        ScaleStep::GrowStatefulSet { replicas } | ScaleStep::ShrinkStatefulSet { replicas } => {
            replicas
        }
        _ => running,
    };
    let mut d = Decision::quiet(replicas, o.previous);
    d.rebalance = o.previous.map(|p| progressed(p, state));
    // A broker that has been a member and is merely down, with no scaling under way, is the
    // roll's to wait for (or to restart, when it is stuck on a stale revision); a broker that
    // never joined is a scale-up's.
    let roll_waits_instead = match &step {
        ScaleStep::WaitForBrokers { missing } => {
            scale_in.desired_replicas == scale_in.statefulset_replicas
                && missing.is_subset(&scale_in.registered_brokers)
        }
        _ => false,
    };
    match &step {
        ScaleStep::Steady { clear_throttle } => {
            if *clear_throttle {
                d.action = Action::ClearThrottle;
            }
            if !on_demand_rebalance(o, &scale_in, &mut d) {
                roll_step(o, state, running, &mut d);
            }
        }
        _ if roll_waits_instead => roll_step(o, state, running, &mut d),
        _ => scale_action(o, &step, &mut d),
    }
    d
}

/// Carries a non-steady scale step into the decision.
fn scale_action(o: &Observed<'_>, step: &ScaleStep, d: &mut Decision) {
    let (reason, message) = scale::describe(step);
    d.progressing = Some(Decided::new(PROGRESSING, true, reason, message.clone()));
    match step {
        ScaleStep::Rebalance { plan, throttle } => {
            d.rebalance = Some(planned("ScaleUp", MOVING, plan, &targets(o)));
            d.action = reassign(plan, *throttle);
        }
        ScaleStep::Drain { plan, throttle, .. } => {
            d.rebalance = Some(planned("ScaleDown", MOVING, plan, &targets(o)));
            d.action = reassign(plan, *throttle);
        }
        ScaleStep::Unregister { brokers } => d.action = Action::Unregister(brokers.clone()),
        ScaleStep::ReplaceLostVoter { broker, .. } => {
            d.action = Action::ReplaceLostVoter(*broker);
            d.degraded = Some(Decided::new(DEGRADED, true, reason, message));
        }
        ScaleStep::AddVoter { broker } => d.action = Action::AddVoter(*broker),
        ScaleStep::RemoveVoter { broker } => d.action = Action::RemoveVoter(*broker),
        ScaleStep::Refused { .. } => {
            d.progressing = Some(Decided::new(PROGRESSING, false, reason, message));
        }
        ScaleStep::PlanFailed { .. } => {
            d.degraded = Some(Decided::new(DEGRADED, true, reason, message));
        }
        _ => {}
    }
}

/// Handles `krait.dev/rebalance` on a steady cluster; true when it decided something.
fn on_demand_rebalance(o: &Observed<'_>, scale_in: &ScaleObserved, d: &mut Decision) -> bool {
    let Some(request) = o.rebalance_request else {
        return false;
    };
    if request != REBALANCE_EXECUTE && request != REBALANCE_DRY_RUN {
        d.degraded = Some(Decided::new(
            DEGRADED,
            true,
            "InvalidRebalanceRequest",
            format!(
                "krait.dev/rebalance is {request:?}; use {REBALANCE_EXECUTE:?} or \
                 {REBALANCE_DRY_RUN:?}"
            ),
        ));
        return false;
    }
    let plan = match scale::plan_onto_targets(scale_in) {
        Ok(plan) => plan,
        Err(error) => {
            d.degraded = Some(Decided::new(
                DEGRADED,
                true,
                "PlanFailed",
                format!("cannot plan the requested rebalance: {error}"),
            ));
            d.rebalance_request_done = true;
            return true;
        }
    };
    d.rebalance_request_done = true;
    let targets = targets(o);
    if request == REBALANCE_DRY_RUN {
        d.rebalance = Some(planned("DryRun", PLANNED, &plan, &targets));
        return true;
    }
    if plan.moves.is_empty() {
        d.rebalance = Some(planned("OnDemand", COMPLETE, &plan, &targets));
        return true;
    }
    d.rebalance = Some(planned("OnDemand", MOVING, &plan, &targets));
    d.action = reassign(&plan, scale_in.throttle_bytes_per_sec);
    d.progressing = Some(Decided::new(
        PROGRESSING,
        true,
        "Rebalancing",
        format!(
            "rebalancing on request: {} partition(s), {} bytes",
            plan.summary.partitions_moved, plan.summary.bytes_moved
        ),
    ));
    true
}

fn roll_step(o: &Observed<'_>, state: &ClusterState, running: i32, d: &mut Decision) {
    let step = roll::next_roll_step(&roll_observed(o, state, running));
    match step {
        RollStep::Done => {}
        RollStep::Restart { pod } => {
            d.action = Action::RestartPod(pod);
            d.progressing = Some(roll_condition(&step));
        }
        _ => d.progressing = Some(roll_condition(&step)),
    }
}

fn roll_condition(step: &RollStep) -> Decided {
    let (reason, message) = roll::describe(step);
    let moving = !matches!(step, RollStep::Blocked { .. });
    Decided::new(PROGRESSING, moving, reason, message)
}

fn reassign(plan: &Plan, throttle: Option<i64>) -> Action {
    Action::Reassign {
        moves: plan
            .moves
            .iter()
            .map(|m| Reassignment {
                topic: m.topic.clone(),
                partition: m.partition,
                replicas: Some(m.to.clone()),
            })
            .collect(),
        throttle: throttle.and_then(|t| u64::try_from(t).ok()),
    }
}

fn targets(o: &Observed<'_>) -> Vec<i32> {
    (0..o.cluster.spec.replicas).collect()
}

fn per_broker(counts: &BTreeMap<i32, usize>) -> BTreeMap<String, i32> {
    counts
        .iter()
        .map(|(id, n)| (id.to_string(), i32::try_from(*n).unwrap_or(i32::MAX)))
        .collect()
}

fn planned(trigger: &str, state: &str, plan: &Plan, targets: &[i32]) -> RebalanceStatus {
    let s = &plan.summary;
    let total = i32::try_from(s.partitions_moved).unwrap_or(i32::MAX);
    let bytes = i64::try_from(s.bytes_moved).unwrap_or(i64::MAX);
    let done = state == COMPLETE;
    RebalanceStatus {
        trigger: trigger.into(),
        state: state.into(),
        target_brokers: targets.to_vec(),
        partitions_total: total,
        partitions_moved: if done { total } else { 0 },
        bytes_total: bytes,
        bytes_moved: if done { bytes } else { 0 },
        leaders_changed: i32::try_from(s.leaders_changed).unwrap_or(i32::MAX),
        replicas_per_broker_before: per_broker(&s.replicas_per_broker_before),
        replicas_per_broker_after: per_broker(&s.replicas_per_broker_after),
        leaders_per_broker_before: per_broker(&s.leaders_per_broker_before),
        leaders_per_broker_after: per_broker(&s.leaders_per_broker_after),
    }
}

/// A moving rebalance's progress from the reassignments still running: what is no longer
/// moving has arrived. Complete once none is.
pub fn progressed(previous: &RebalanceStatus, state: &ClusterState) -> RebalanceStatus {
    let mut next = previous.clone();
    if previous.state != MOVING {
        return next;
    }
    let sizes: BTreeMap<(&str, i32), u64> = state
        .partitions
        .iter()
        .map(|p| ((p.topic.as_str(), p.partition), p.size_bytes))
        .collect();
    let copying: Vec<_> = state
        .reassignments
        .iter()
        .filter(|r| !r.adding.is_empty())
        .collect();
    if copying.is_empty() {
        next.state = COMPLETE.into();
        next.partitions_moved = next.partitions_total;
        next.bytes_moved = next.bytes_total;
        return next;
    }
    let remaining_bytes: u64 = copying
        .iter()
        .map(|r| {
            let size = sizes
                .get(&(r.topic.as_str(), r.partition))
                .copied()
                .unwrap_or(0);
            size * r.adding.len() as u64
        })
        .sum();
    let remaining = i32::try_from(copying.len()).unwrap_or(i32::MAX);
    next.partitions_moved = (next.partitions_total - remaining).max(0);
    next.bytes_moved = (next.bytes_total - i64::try_from(remaining_bytes).unwrap_or(0)).max(0);
    next
}

/// The broker id of one of the cluster's pods, from its name (`<cluster>-<ordinal>`).
fn pod_id(o: &Observed<'_>, pod: &Pod) -> Option<i32> {
    let name = pod.metadata.name.as_deref()?;
    let prefix = format!("{}-", o.cluster.names.statefulset());
    name.strip_prefix(&prefix)?.parse().ok()
}

/// Ready, and not on its way out.
fn pod_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pods_observed(o: &Observed<'_>) -> Vec<PodObserved> {
    let update_revision = o
        .statefulset
        .and_then(|s| s.status.as_ref())
        .and_then(|s| s.update_revision.as_deref());
    o.pods
        .iter()
        .filter_map(|pod| {
            let id = pod_id(o, pod)?;
            let revision = pod
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(REVISION_LABEL));
            Some(PodObserved {
                id,
                ready: pod_ready(pod),
                // A pod is stale only when both revisions are known and differ: what cannot
                // be judged is not restarted.
                current_revision: match (update_revision, revision) {
                    (Some(update), Some(own)) => update == own,
                    _ => true,
                },
                restart_requested: pod
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(RESTART_ANNOTATION))
                    .is_some_and(|v| v == "true"),
            })
        })
        .collect()
}

fn scale_observed(o: &Observed<'_>, state: &ClusterState, running: i32) -> ScaleObserved {
    let spec = &o.cluster.spec;
    ScaleObserved {
        desired_replicas: spec.replicas,
        statefulset_replicas: running,
        ready_pods: pods_observed(o)
            .iter()
            .filter(|p| p.ready)
            .map(|p| p.id)
            .collect(),
        live_brokers: state
            .live_brokers()
            .map(|b| (b.id, b.rack.clone()))
            .collect(),
        registered_brokers: state.brokers.iter().map(|b| b.id).collect(),
        // The quorum's own answer; the voters the cluster formed with where it gave none.
        voters: if state.quorum.voters.is_empty() {
            o.voters.clone()
        } else {
            state.quorum.voters.clone()
        },
        observers: state.quorum.observers.clone(),
        voter_directories: state.quorum.directories.clone(),
        lost_directories: o
            .pods
            .iter()
            .filter_map(|pod| Some((pod_id(o, pod)?, lost_voter::lost_directory(pod)?)))
            .collect(),
        desired_voters: usize::try_from(voter_count(spec)).unwrap_or(1),
        partitions: state
            .partitions
            .iter()
            .map(|p| PartitionAssignment {
                topic: p.topic.clone(),
                partition: p.partition,
                replicas: p.replicas.clone(),
                size_bytes: p.size_bytes,
            })
            .collect(),
        reassignments_in_progress: state.reassignments.len(),
        rebalance_on_scale: spec.rebalance.on_scale,
        throttle_bytes_per_sec: spec.rebalance.throttle_bytes_per_second,
        // The operator clears only a throttle it could have set itself.
        throttle_set: spec.rebalance.throttle_bytes_per_second.is_some()
            && !state.throttled_brokers.is_empty(),
    }
}

fn roll_observed(o: &Observed<'_>, state: &ClusterState, running: i32) -> RollObserved {
    RollObserved {
        statefulset_replicas: running,
        pods: pods_observed(o),
        controller_id: state.controller_id,
        partitions: state
            .partitions
            .iter()
            .map(|p| PartitionIsr {
                topic: p.topic.clone(),
                partition: p.partition,
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
                min_insync: state
                    .min_insync
                    .get(&p.topic)
                    .copied()
                    .unwrap_or(DEFAULT_MIN_INSYNC),
            })
            .collect(),
        live_brokers: state.live_brokers().map(|b| b.id).collect(),
    }
}
