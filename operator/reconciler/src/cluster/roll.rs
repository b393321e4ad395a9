//! Safe rolling restarts as a pure state machine. The StatefulSet uses `updateStrategy:
//! OnDelete`, so a broker restarts only when the operator evicts its pod; this module decides
//! which pod, if any, may be evicted now. It evicts nothing and remembers nothing: one restart
//! at a time is guaranteed by refusing to pick a pod while any broker is down or behind, and
//! the API server holds each eviction to the PodDisruptionBudgets besides.
//!
//! A pod is restarted only when every expected pod is Ready with its broker live, no partition
//! is under-replicated (so the previous broker is back in every ISR), the cluster has a
//! controller, and removing the pod from the ISRs it sits in leaves each of those partitions at
//! `min.insync.replicas` or more. Non-controllers go first, highest ordinal first; the
//! controller goes last so leadership of the metadata quorum moves once.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

/// `Progressing` reason while a PodDisruptionBudget refuses the eviction this module chose
/// (HTTP 429 from the eviction subresource, e.g. during a node drain).
pub const WAITING_FOR_DISRUPTION_BUDGET: &str = "WaitingForDisruptionBudget";

/// One broker pod as the reconciler saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodObserved {
    /// The pod's ordinal, which is its broker id.
    pub id: i32,
    /// Ready, and not terminating (a pod with a deletionTimestamp must be reported not Ready).
    pub ready: bool,
    /// The pod's `controller-revision-hash` equals the StatefulSet's `updateRevision`.
    pub current_revision: bool,
    /// A restart annotation asks for this pod to be restarted.
    pub restart_requested: bool,
}

impl PodObserved {
    fn needs_roll(&self) -> bool {
        !self.current_revision || self.restart_requested
    }
}

/// One partition's replicas and in-sync replicas, with its topic's `min.insync.replicas`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionIsr {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub min_insync: i32,
}

/// Everything a roll decision is made from, read fresh by every reconcile.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RollObserved {
    /// The StatefulSet's `spec.replicas`: pods `0..statefulset_replicas` are expected, so a
    /// deleted pod that has not been recreated yet still counts as down.
    pub statefulset_replicas: i32,
    pub pods: Vec<PodObserved>,
    /// The current controller (metadata quorum leader), if the cluster has one.
    pub controller_id: Option<i32>,
    pub partitions: Vec<PartitionIsr>,
    /// Registered, unfenced brokers.
    pub live_brokers: BTreeSet<i32>,
}

/// The one thing the reconciler should do next for a roll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollStep {
    /// No pod is on a stale revision or asked to restart, and every broker is up and in sync.
    Done,
    /// `pod` is not Ready, its broker is not live, or (when `lagging` is not empty) it is
    /// missing from the ISR of those partitions.
    WaitForReady {
        pod: i32,
        lagging: Vec<(String, i32)>,
    },
    /// No controller: a restarted broker's partitions could not elect new leaders.
    WaitForController,
    /// Delete this pod.
    Restart { pod: i32 },
    /// Restarting `pod` would drop these partitions below `min.insync.replicas`. Reported
    /// instead of forced; it clears when their ISR grows or their `min.insync.replicas` drops.
    Blocked {
        pod: i32,
        partitions: Vec<(String, i32)>,
    },
}

/// The next roll step.
pub fn next_roll_step(o: &RollObserved) -> RollStep {
    // A pod on a stale revision that is down (crash-looping on a bad image or config, say)
    // serves nothing and sits in no ISR: restarting it onto the current revision is the only
    // way it can come back, and it cannot lower any ISR.
    if let Some(pod) = stuck_stale_pod(o) {
        return RollStep::Restart { pod };
    }
    // Health first, even with nothing left to roll: the last restarted pod has to come back
    // before the roll is done, and it is on the current revision the moment it is recreated.
    if let Some(wait) = first_unready(o).or_else(|| first_lagging(o)) {
        return wait;
    }
    let Some(pod) = roll_order(o).first().copied() else {
        return RollStep::Done;
    };
    if o.controller_id.is_none() {
        return RollStep::WaitForController;
    }
    let partitions = below_min_insync_without(o, pod);
    if partitions.is_empty() {
        RollStep::Restart { pod }
    } else {
        RollStep::Blocked { pod, partitions }
    }
}

/// Pods that need a restart, in the order they get one: non-controllers by descending
/// ordinal, then the controller.
pub fn roll_order(o: &RollObserved) -> Vec<i32> {
    let mut ids: Vec<i32> = o
        .pods
        .iter()
        .filter(|p| p.needs_roll())
        .map(|p| p.id)
        .collect();
    ids.sort_by_key(|&id| (Some(id) == o.controller_id, Reverse(id)));
    ids
}

/// The lowest pod that needs a restart, is not Ready and whose broker is not live.
fn stuck_stale_pod(o: &RollObserved) -> Option<i32> {
    o.pods
        .iter()
        .filter(|p| p.needs_roll() && !p.ready && !o.live_brokers.contains(&p.id))
        .map(|p| p.id)
        .min()
}

/// The lowest expected pod that is missing, not Ready, or whose broker is not live.
fn first_unready(o: &RollObserved) -> Option<RollStep> {
    let ready: BTreeMap<i32, bool> = o.pods.iter().map(|p| (p.id, p.ready)).collect();
    let expected: BTreeSet<i32> = (0..o.statefulset_replicas)
        .chain(ready.keys().copied())
        .collect();
    expected
        .into_iter()
        .find(|id| ready.get(id) != Some(&true) || !o.live_brokers.contains(id))
        .map(|pod| RollStep::WaitForReady {
            pod,
            lagging: Vec::new(),
        })
}

/// The lowest broker missing from the ISR of a partition it replicates, with those partitions.
fn first_lagging(o: &RollObserved) -> Option<RollStep> {
    let mut lagging: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
    for p in &o.partitions {
        for &replica in p.replicas.iter().filter(|r| !p.isr.contains(r)) {
            lagging
                .entry(replica)
                .or_default()
                .push((p.topic.clone(), p.partition));
        }
    }
    lagging.pop_first().map(|(pod, mut lagging)| {
        lagging.sort();
        RollStep::WaitForReady { pod, lagging }
    })
}

/// Partitions whose ISR contains `pod` and would shrink below `min.insync.replicas` without it.
fn below_min_insync_without(o: &RollObserved, pod: i32) -> Vec<(String, i32)> {
    let mut blocking: Vec<(String, i32)> = o
        .partitions
        .iter()
        .filter(|p| p.isr.contains(&pod) && (p.isr.len() as i64 - 1) < i64::from(p.min_insync))
        .map(|p| (p.topic.clone(), p.partition))
        .collect();
    blocking.sort();
    blocking
}

/// A status condition's reason and message for a step.
pub fn describe(step: &RollStep) -> (&'static str, String) {
    match step {
        RollStep::Done => (
            "RollComplete",
            "every broker runs the current revision".into(),
        ),
        RollStep::WaitForReady { pod, lagging } if lagging.is_empty() => (
            "WaitingForBroker",
            format!("waiting for broker {pod} to be Ready and registered"),
        ),
        RollStep::WaitForReady { pod, lagging } => (
            "WaitingForBroker",
            format!(
                "waiting for broker {pod} to rejoin the ISR of {}",
                list(lagging)
            ),
        ),
        RollStep::WaitForController => (
            "WaitingForController",
            "the cluster has no controller; restarts wait for one".into(),
        ),
        RollStep::Restart { pod } => ("RestartingBroker", format!("restarting broker {pod}")),
        RollStep::Blocked { pod, partitions } => (
            "RollBlocked",
            format!(
                "restarting broker {pod} would drop {} below min.insync.replicas",
                list(partitions)
            ),
        ),
    }
}

fn list(partitions: &[(String, i32)]) -> String {
    partitions
        .iter()
        .map(|(topic, partition)| format!("{topic}-{partition}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `brokers` Ready, live, stale pods; controller 0; one RF-3 partition per broker with
    /// min.insync.replicas 2, all in sync.
    fn stale_cluster(brokers: i32) -> RollObserved {
        RollObserved {
            statefulset_replicas: brokers,
            pods: (0..brokers)
                .map(|id| PodObserved {
                    id,
                    ready: true,
                    current_revision: false,
                    restart_requested: false,
                })
                .collect(),
            controller_id: Some(0),
            partitions: (0..brokers)
                .map(|p| {
                    let replicas: Vec<i32> = (0..3).map(|i| (p + i) % brokers).collect();
                    PartitionIsr {
                        topic: "orders".into(),
                        partition: p,
                        isr: replicas.clone(),
                        replicas,
                        min_insync: 2,
                    }
                })
                .collect(),
            live_brokers: (0..brokers).collect(),
        }
    }

    fn pod(o: &mut RollObserved, id: i32) -> &mut PodObserved {
        o.pods.iter_mut().find(|p| p.id == id).expect("pod exists")
    }

    /// Deleting a pod: it vanishes, its broker is fenced and drops out of every ISR.
    fn delete(o: &mut RollObserved, id: i32) {
        o.pods.retain(|p| p.id != id);
        o.live_brokers.remove(&id);
        for p in &mut o.partitions {
            p.isr.retain(|&r| r != id);
        }
    }

    /// The StatefulSet controller recreates the pod on the current revision, not yet Ready.
    fn recreate(o: &mut RollObserved, id: i32) {
        o.pods.push(PodObserved {
            id,
            ready: false,
            current_revision: true,
            restart_requested: false,
        });
    }

    fn catch_up(o: &mut RollObserved, id: i32) {
        for p in o.partitions.iter_mut().filter(|p| p.replicas.contains(&id)) {
            if !p.isr.contains(&id) {
                p.isr.push(id);
            }
        }
    }

    /// Plays one restart through: delete, recreate, Ready, registered, back in every ISR,
    /// checking the step at each stage.
    fn restart_and_recover(o: &mut RollObserved, id: i32) {
        delete(o, id);
        assert_eq!(next_roll_step(o), waiting(id, &[]), "pod {id} deleted");
        recreate(o, id);
        assert_eq!(next_roll_step(o), waiting(id, &[]), "pod {id} recreated");
        pod(o, id).ready = true;
        assert_eq!(
            next_roll_step(o),
            waiting(id, &[]),
            "pod {id} not registered"
        );
        o.live_brokers.insert(id);
        let lagging: Vec<(String, i32)> = o
            .partitions
            .iter()
            .filter(|p| p.replicas.contains(&id))
            .map(|p| (p.topic.clone(), p.partition))
            .collect();
        let lagging: Vec<(&str, i32)> = lagging.iter().map(|(t, p)| (t.as_str(), *p)).collect();
        assert_eq!(
            next_roll_step(o),
            waiting(id, &lagging),
            "pod {id} catching up"
        );
        catch_up(o, id);
    }

    fn waiting(pod: i32, lagging: &[(&str, i32)]) -> RollStep {
        RollStep::WaitForReady {
            pod,
            lagging: lagging.iter().map(|&(t, p)| (t.to_owned(), p)).collect(),
        }
    }

    #[test]
    fn roll_restarts_high_ordinals_first_and_the_controller_last() {
        let mut o = stale_cluster(3);
        o.controller_id = Some(1);
        assert_eq!(roll_order(&o), [2, 0, 1]);
        let mut restarted = Vec::new();
        while let RollStep::Restart { pod } = next_roll_step(&o) {
            restarted.push(pod);
            restart_and_recover(&mut o, pod);
        }
        assert_eq!(restarted, [2, 0, 1]);
        assert_eq!(next_roll_step(&o), RollStep::Done);
    }

    #[test]
    fn roll_waits_while_any_pod_is_unready() {
        let mut o = stale_cluster(3);
        pod(&mut o, 0).ready = false;
        assert_eq!(next_roll_step(&o), waiting(0, &[]));
    }

    #[test]
    fn roll_waits_for_a_broker_that_is_ready_but_fenced() {
        let mut o = stale_cluster(3);
        o.live_brokers.remove(&1);
        assert_eq!(next_roll_step(&o), waiting(1, &[]));
    }

    #[test]
    fn roll_waits_for_any_under_replicated_partition() {
        let mut o = stale_cluster(3);
        o.partitions[0].isr.retain(|&r| r != 1);
        o.partitions[2].isr.retain(|&r| r != 1);
        assert_eq!(
            next_roll_step(&o),
            waiting(1, &[("orders", 0), ("orders", 2)])
        );
    }

    #[test]
    fn roll_is_blocked_when_the_isr_is_at_min_insync() {
        let mut o = stale_cluster(3);
        o.partitions[1].min_insync = 3;
        o.partitions.push(PartitionIsr {
            topic: "audit".into(),
            partition: 4,
            replicas: vec![2],
            isr: vec![2],
            min_insync: 1,
        });
        let step = next_roll_step(&o);
        assert_eq!(
            step,
            RollStep::Blocked {
                pod: 2,
                partitions: vec![("audit".into(), 4), ("orders".into(), 1)],
            }
        );
        assert_eq!(
            describe(&step).1,
            "restarting broker 2 would drop audit-4, orders-1 below min.insync.replicas"
        );
    }

    #[test]
    fn roll_restart_annotation_restarts_only_that_pod() {
        let mut o = stale_cluster(3);
        for id in 0..3 {
            pod(&mut o, id).current_revision = true;
        }
        pod(&mut o, 0).restart_requested = true;
        assert_eq!(next_roll_step(&o), RollStep::Restart { pod: 0 });
        restart_and_recover(&mut o, 0);
        assert_eq!(next_roll_step(&o), RollStep::Done);
    }

    #[test]
    fn roll_is_done_when_every_pod_is_current_and_back() {
        let mut o = stale_cluster(3);
        for id in 0..3 {
            pod(&mut o, id).current_revision = true;
        }
        assert_eq!(next_roll_step(&o), RollStep::Done);
        // The last restarted pod is current as soon as it exists, but the roll is not over.
        pod(&mut o, 1).ready = false;
        assert_eq!(next_roll_step(&o), waiting(1, &[]));
    }

    #[test]
    fn roll_waits_for_a_controller() {
        let mut o = stale_cluster(3);
        o.controller_id = None;
        assert_eq!(next_roll_step(&o), RollStep::WaitForController);
    }

    #[test]
    fn roll_restart_in_every_state_picks_up_where_it_was() {
        // A restart of the operator at any point leaves an observation; each must lead on to
        // the same order without restarting a pod twice.
        let mut o = stale_cluster(4);
        o.controller_id = Some(3);
        let mut restarted = Vec::new();
        while let RollStep::Restart { pod } = next_roll_step(&o) {
            restarted.push(pod);
            let fresh = o.clone();
            assert_eq!(next_roll_step(&fresh), RollStep::Restart { pod });
            restart_and_recover(&mut o, pod);
        }
        assert_eq!(restarted, [2, 1, 0, 3]);
        assert_eq!(next_roll_step(&o), RollStep::Done);
    }

    #[test]
    fn roll_restarts_a_stale_pod_that_is_down_without_waiting_for_it() {
        let mut o = stale_cluster(3);
        pod(&mut o, 1).ready = false;
        o.live_brokers.remove(&1);
        for p in &mut o.partitions {
            p.isr.retain(|&r| r != 1);
        }
        assert_eq!(next_roll_step(&o), RollStep::Restart { pod: 1 });
        // Once recreated on the current revision it is waited for like any restarted pod.
        delete(&mut o, 1);
        recreate(&mut o, 1);
        assert_eq!(next_roll_step(&o), waiting(1, &[]));
    }

    #[test]
    fn roll_never_restarts_a_down_pod_that_is_already_current() {
        let mut o = stale_cluster(3);
        let p = pod(&mut o, 2);
        p.current_revision = true;
        p.ready = false;
        o.live_brokers.remove(&2);
        assert_eq!(next_roll_step(&o), waiting(2, &[]));
    }
}
