//! The cluster's status as a pure function of what was observed after applying: broker
//! readiness from the pods, rollout progress from the StatefulSet, the day-2 step (scaling,
//! moving partitions, restarting), the storage step (volumes growing, changes refused), the
//! PodMonitor, and the conditions.
//! The same observations always give the same status, so an unchanged cluster writes none.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use krait_crd::KafkaCluster;
use krait_crd::cluster::{BrokerStatus, GenericListener, KafkaClusterStatus};

use super::cert_manager::{self, CertificatesState, certificates_condition};
use super::day2::Decision;
use super::listeners;
use super::monitoring::{self, PodMonitorState, pod_monitor_condition};
use super::storage::{self, Plan};
use crate::conditions::{
    CERTIFICATES_READY, DEGRADED, Decided, POD_MONITOR_READY, PROGRESSING, READY, merge,
};
use crate::names::ClusterNames;

/// What the status is computed from.
#[derive(Debug)]
pub struct Observations<'a> {
    pub names: &'a ClusterNames,
    pub replicas: i32,
    /// The listeners served (`ValidatedCluster::listeners`).
    pub listeners: &'a [GenericListener],
    pub statefulset: Option<&'a StatefulSet>,
    pub pods: &'a [Pod],
    pub paused: bool,
    /// This reconcile's day-2 decision, whose conditions take precedence over the rollout's
    /// and the storage step's.
    pub day2: Option<&'a Decision>,
    /// This reconcile's storage plan, whose conditions take precedence over the rollout's.
    pub storage: Option<&'a Plan>,
    /// What became of the PodMonitor; `None` when it was not looked at (a paused cluster),
    /// which keeps its condition as it was.
    pub pod_monitor: Option<&'a PodMonitorState>,
    /// What became of the cert-manager Certificates; `None` when not looked at.
    pub certificates: Option<&'a CertificatesState>,
}

/// The new status of a cluster whose spec is valid.
pub fn cluster_status(
    cluster: &KafkaCluster,
    seen: &Observations<'_>,
    now: &Time,
) -> KafkaClusterStatus {
    let old = cluster.status.clone().unwrap_or_default();
    let brokers: Vec<BrokerStatus> = (0..seen.replicas)
        .map(|id| {
            let pod = seen.names.pod(id);
            let ready = seen
                .pods
                .iter()
                .any(|p| p.metadata.name.as_deref() == Some(pod.as_str()) && pod_ready(p));
            BrokerStatus { id, pod, ready }
        })
        .collect();
    let ready_brokers = brokers.iter().filter(|b| b.ready).count() as i32;
    let rolled_out = seen
        .statefulset
        .is_some_and(|s| rollout_done(s, seen.replicas));
    let mut decided = decide(seen, rolled_out, ready_brokers);
    if let Some(p) = seen.storage {
        for (slot, over) in decided[1..].iter_mut().zip([&p.progressing, &p.degraded]) {
            if let Some(over) = over {
                *slot = over.clone();
            }
        }
    }
    if let Some(d) = seen.day2 {
        for (slot, over) in decided[1..].iter_mut().zip([&d.progressing, &d.degraded]) {
            if let Some(over) = over {
                *slot = over.clone();
            }
        }
    }
    let mut decided = decided.to_vec();
    decided.extend(match seen.pod_monitor {
        Some(state) => pod_monitor_condition(state),
        None => kept(&old, POD_MONITOR_READY),
    });
    decided.extend(match seen.certificates {
        Some(state) => certificates_condition(state),
        None => kept(&old, CERTIFICATES_READY),
    });
    let generation = cluster.metadata.generation;
    KafkaClusterStatus {
        observed_generation: generation,
        conditions: merge(&old.conditions, &decided, generation, now),
        ready_brokers,
        brokers_ready: Some(format!("{ready_brokers}/{}", seen.replicas)),
        brokers,
        bootstrap_address: Some(
            seen.names
                .bootstrap_address(listeners::primary(seen.listeners).port),
        ),
        listeners: listeners::listener_statuses(seen.names, seen.listeners),
        // Learned from the brokers themselves; kept once known (it never changes).
        cluster_id: old.cluster_id,
        voters: old.voters,
        rebalance: old.rebalance,
        cluster_ca: old.cluster_ca,
        clients_ca: old.clients_ca,
        storage: seen.storage.and_then(|p| p.status.clone()).or(old.storage),
    }
}

/// Ready, Progressing and Degraded from the rollout state and the ready-broker count. Ready
/// means every broker serves, whether or not a restart is still due (restarts are rolled).
fn decide(seen: &Observations<'_>, rolled_out: bool, ready_brokers: i32) -> [Decided; 3] {
    let all_ready = seen.statefulset.is_some() && ready_brokers == seen.replicas;
    let readiness = format!("{ready_brokers}/{} brokers ready", seen.replicas);
    [
        if all_ready {
            Decided::new(READY, true, "AllBrokersReady", readiness.clone())
        } else {
            Decided::new(READY, false, "BrokersNotReady", readiness.clone())
        },
        if seen.paused {
            Decided::new(
                PROGRESSING,
                false,
                "Paused",
                "spec.paused is true: nothing is changed",
            )
        } else if !rolled_out {
            Decided::new(PROGRESSING, true, "RollingOut", rollout_message(seen))
        } else {
            Decided::new(
                PROGRESSING,
                false,
                "UpToDate",
                "every broker runs the current spec",
            )
        },
        if rolled_out && !all_ready {
            Decided::new(DEGRADED, true, "BrokersUnavailable", readiness)
        } else {
            Decided::new(DEGRADED, false, "AsExpected", "")
        },
    ]
}

/// The status of a cluster whose spec cannot be built: the objects are left as they are and
/// the conditions say why.
pub fn invalid_status(cluster: &KafkaCluster, message: &str, now: &Time) -> KafkaClusterStatus {
    let old = cluster.status.clone().unwrap_or_default();
    let decided = [
        Decided::new(READY, false, "InvalidSpec", message),
        Decided::new(
            PROGRESSING,
            false,
            "InvalidSpec",
            "fix the spec to continue",
        ),
        Decided::new(DEGRADED, true, "InvalidSpec", message),
    ];
    let mut decided = decided.to_vec();
    decided.extend(kept(&old, POD_MONITOR_READY));
    decided.extend(kept(&old, CERTIFICATES_READY));
    let generation = cluster.metadata.generation;
    KafkaClusterStatus {
        observed_generation: generation,
        conditions: merge(&old.conditions, &decided, generation, now),
        ..old
    }
}

/// The status after applying failed part-way: `Degraded` names the failure; the rest stays.
pub fn apply_failed_status(
    cluster: &KafkaCluster,
    message: &str,
    now: &Time,
) -> KafkaClusterStatus {
    let old = cluster.status.clone().unwrap_or_default();
    let mut decided: Vec<Decided> = Vec::new();
    for kind in [READY, PROGRESSING] {
        decided.push(
            kept(&old, kind).unwrap_or_else(|| Decided::new(kind, false, "ApplyFailed", message)),
        );
    }
    decided.push(Decided::new(DEGRADED, true, "ApplyFailed", message));
    decided.extend(kept(&old, POD_MONITOR_READY));
    decided.extend(kept(&old, CERTIFICATES_READY));
    KafkaClusterStatus {
        conditions: merge(&old.conditions, &decided, cluster.metadata.generation, now),
        ..old
    }
}

/// A condition of the old status, as it was.
fn kept(old: &KafkaClusterStatus, kind: &'static str) -> Option<Decided> {
    crate::conditions::find(&old.conditions, kind).map(|c| Decided {
        kind,
        status: c.status == "True",
        reason: reason_of(&c.reason),
        message: c.message.clone(),
    })
}

/// Reasons are static in [`Decided`]; an old reason read back maps onto the known set.
fn reason_of(reason: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "AllBrokersReady",
        "BrokersNotReady",
        "Paused",
        "RollingOut",
        "UpToDate",
        "InvalidSpec",
        "ApplyFailed",
        // Day-2 reasons (`scale::describe`, `roll::describe`, `day2.rs`).
        "Scaled",
        "GrowingStatefulSet",
        "WaitingForBrokers",
        "Rebalancing",
        "WaitingForReassignments",
        "Draining",
        "ShrinkingStatefulSet",
        "WaitingForShutdown",
        "UnregisteringBrokers",
        "ScaleDownRefused",
        "PlanFailed",
        "RollComplete",
        "WaitingForBroker",
        "WaitingForController",
        "RestartingBroker",
        "RollBlocked",
        super::roll::WAITING_FOR_DISRUPTION_BUDGET,
        "WaitingForCluster",
        "InvalidRebalanceRequest",
        "ClusterActionFailed",
        storage::STORAGE_CHANGE_REFUSED,
        storage::VOLUME_EXPANSION_NOT_SUPPORTED,
        storage::EXPANDING_VOLUMES,
        monitoring::POD_MONITOR_APPLIED,
        monitoring::POD_MONITOR_CRD_NOT_INSTALLED,
        cert_manager::CERTIFICATES_ISSUED,
        cert_manager::CERT_MANAGER_NOT_INSTALLED,
        cert_manager::CERTIFICATES_PENDING,
        cert_manager::WAITING_FOR_TRUST,
    ];
    KNOWN
        .iter()
        .find(|k| **k == reason)
        .copied()
        .unwrap_or("Unknown")
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Whether the StatefulSet controller has caught up with the current spec on every pod.
fn rollout_done(sts: &StatefulSet, replicas: i32) -> bool {
    let Some(status) = &sts.status else {
        return false;
    };
    let generation_seen = status.observed_generation >= sts.metadata.generation;
    let revisions_equal = match (&status.current_revision, &status.update_revision) {
        (Some(current), Some(update)) => current == update,
        _ => false,
    };
    generation_seen
        && revisions_equal
        && status.replicas == replicas
        && status.updated_replicas.unwrap_or(0) == replicas
}

fn rollout_message(seen: &Observations<'_>) -> String {
    match seen.statefulset.and_then(|s| s.status.as_ref()) {
        Some(s) => format!(
            "{}/{} brokers updated, {} ready",
            s.updated_replicas.unwrap_or(0),
            seen.replicas,
            s.ready_replicas.unwrap_or(0)
        ),
        None => format!(
            "waiting for the StatefulSet to start {} brokers",
            seen.replicas
        ),
    }
}
