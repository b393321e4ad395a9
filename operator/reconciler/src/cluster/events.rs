//! What a cluster reconcile tells the user through Kubernetes Events, as a pure function of the
//! status before and after it and the one day-2 action it carried out: each scaling or roll
//! step as it begins, every broker restart and why, rebalances started and finished,
//! refusals, failures, the cluster becoming Ready, and its PodMonitor applied or (a warning)
//! impossible because the API server does not serve the kind. Events mark transitions, so a
//! reconcile that changes nothing says nothing. Publishing is `crate::events`' business.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use krait_crd::cluster::{CaStatus, KafkaClusterStatus, RebalanceStatus};

use super::day2::Action;
use super::pki::TRUST_ANNOTATION;
use crate::conditions::{
    CERTIFICATES_READY, DEGRADED, POD_MONITOR_READY, PROGRESSING, READY, find,
};
use crate::events::Note;
use crate::names::{CONFIG_HASH_ANNOTATION, RESTART_ANNOTATION, REVISION_LABEL};

/// `Progressing` reasons announced by the action's own event instead (it names the pod or the
/// plan), or by `Degraded`'s.
const ANNOUNCED_ELSEWHERE: &[&str] = &[
    "RestartingBroker",
    "Rebalancing",
    "UnregisteringBrokers",
    "InvalidSpec",
    "ApplyFailed",
];
/// `Progressing` reasons that mean a change the user asked for is refused or stuck.
const REFUSALS: &[&str] = &["RollBlocked", "ScaleDownRefused", "WaitingForCluster"];
/// `Degraded` reasons that come with a reconcile error, which has its own event.
const FAILED_RECONCILE: &[&str] = &["ClusterActionFailed", "ApplyFailed"];

/// A broker restarted by this reconcile.
#[derive(Debug, Clone)]
pub struct Restarted {
    pub id: i32,
    pub pod: String,
    pub namespace: String,
    /// Why, from [`restart_reason`].
    pub why: String,
}

/// What one reconcile saw and did.
#[derive(Debug)]
pub struct Seen<'a> {
    /// The status the reconcile started from (`None` for a new cluster).
    pub previous: Option<&'a KafkaClusterStatus>,
    /// The status it wrote.
    pub next: &'a KafkaClusterStatus,
    /// The day-2 action it carried out (not one the API server refused).
    pub done: Option<&'a Action>,
    pub restarted: Option<Restarted>,
}

/// The events of one reconcile, in the order they happened.
pub fn cluster_events(seen: &Seen<'_>) -> Vec<Note> {
    let mut notes = Vec::new();
    notes.extend(progressing(seen));
    notes.extend(action(seen));
    notes.extend(rebalance_finished(seen));
    notes.extend(ca_renewals(seen));
    notes.extend(degraded(seen));
    notes.extend(ready(seen));
    notes.extend(pod_monitor(seen));
    notes.extend(certificates(seen));
    notes
}

fn condition<'a>(status: Option<&'a KafkaClusterStatus>, kind: &str) -> Option<&'a Condition> {
    status.and_then(|s| find(&s.conditions, kind))
}

/// A new `Progressing` reason: the next scaling or roll step, a wait, or a refusal.
fn progressing(seen: &Seen<'_>) -> Option<Note> {
    let now = condition(Some(seen.next), PROGRESSING)?;
    let before = condition(seen.previous, PROGRESSING);
    if before.is_some_and(|b| b.reason == now.reason)
        || ANNOUNCED_ELSEWHERE.contains(&now.reason.as_str())
    {
        return None;
    }
    let reason = now.reason.as_str();
    Some(if REFUSALS.contains(&reason) {
        Note::warning(reason, "Reconcile", &now.message)
    } else {
        Note::normal(reason, "Reconcile", &now.message)
    })
}

/// The day-2 action carried out.
fn action(seen: &Seen<'_>) -> Option<Note> {
    match seen.done? {
        Action::None => None,
        Action::RestartPod(_) => {
            let r = seen.restarted.as_ref()?;
            let mut note = Note::normal(
                "RestartingBroker",
                "Evict",
                format!("restarting broker {} (pod {}): {}", r.id, r.pod, r.why),
            );
            note.related = Some(ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(r.pod.clone()),
                namespace: Some(r.namespace.clone()),
                ..ObjectReference::default()
            });
            Some(note)
        }
        Action::Reassign { moves, throttle } => {
            let throttled = throttle
                .map(|t| format!(", replication throttled to {t} bytes/s"))
                .unwrap_or_default();
            let note = match &seen.next.rebalance {
                Some(r) => format!(
                    "{}: moving {} partition(s), {} bytes, onto broker(s) {}{throttled}",
                    r.trigger,
                    r.partitions_total,
                    r.bytes_total,
                    list(&r.target_brokers)
                ),
                None => format!("moving {} partition(s){throttled}", moves.len()),
            };
            Some(Note::normal("RebalanceStarted", "Reassign", note))
        }
        Action::ClearThrottle => Some(Note::normal(
            "ThrottleCleared",
            "ClearThrottle",
            "partitions are in place; the replication throttle is removed",
        )),
        Action::Unregister(brokers) => Some(Note::normal(
            "BrokersUnregistered",
            "Unregister",
            format!(
                "removed broker(s) {} unregistered from the cluster",
                list(&brokers.iter().copied().collect::<Vec<_>>())
            ),
        )),
        Action::ReplaceLostVoter(id) => Some(Note::warning(
            "VoterDirectoryLost",
            "RemoveRaftVoter",
            format!(
                "broker {id}'s data directory was lost: its voter is removed and the broker \
                 restarted; it becomes a voter again once it has caught up"
            ),
        )),
        Action::AddVoter(id) => Some(Note::normal(
            "VoterAdded",
            "AddRaftVoter",
            format!("broker {id} is now a metadata quorum voter"),
        )),
        Action::RemoveVoter(id) => Some(Note::normal(
            "VoterRemoved",
            "RemoveRaftVoter",
            format!("broker {id} no longer votes in the metadata quorum; it stays an observer"),
        )),
    }
}

/// A rebalance that reached `Complete` (or, for a dry run, `Planned`) in this reconcile.
fn rebalance_finished(seen: &Seen<'_>) -> Option<Note> {
    let now = seen.next.rebalance.as_ref()?;
    let before = seen.previous.and_then(|s| s.rebalance.as_ref());
    let same = |b: &RebalanceStatus| b.trigger == now.trigger && b.state == now.state;
    if before.is_some_and(same) {
        return None;
    }
    match now.state.as_str() {
        "Complete" => Some(Note::normal(
            "RebalanceFinished",
            "Reassign",
            format!(
                "{}: {} partition(s), {} bytes moved; {} leader(s) changed",
                now.trigger, now.partitions_moved, now.bytes_moved, now.leaders_changed
            ),
        )),
        "Planned" => Some(Note::normal(
            "RebalancePlanned",
            "Plan",
            format!(
                "{}: {} partition(s), {} bytes would move onto broker(s) {}; nothing moved",
                now.trigger,
                now.partitions_total,
                now.bytes_total,
                list(&now.target_brokers)
            ),
        )),
        _ => None,
    }
}

/// A CA renewal begun (its successor issued and trusted, so the brokers roll) or finished (the
/// successor signs), for the cluster CA and the clients CA.
fn ca_renewals(seen: &Seen<'_>) -> Vec<Note> {
    let previous = seen.previous;
    let cas: [(&str, Option<&CaStatus>, Option<&CaStatus>); 2] = [
        (
            "cluster CA",
            previous.and_then(|s| s.cluster_ca.as_ref()),
            seen.next.cluster_ca.as_ref(),
        ),
        (
            "clients CA",
            previous.and_then(|s| s.clients_ca.as_ref()),
            seen.next.clients_ca.as_ref(),
        ),
    ];
    let mut notes = Vec::new();
    for (what, before, now) in cas {
        let (Some(before), Some(now)) = (before, now) else {
            continue;
        };
        match (before.state.as_str(), now.state.as_str()) {
            ("Ready", "Renewing") => notes.push(Note::normal(
                "CaRenewalStarted",
                "RenewCa",
                format!(
                    "{what} v{} has a successor v{}, trusted first: the brokers roll, then it signs",
                    now.generation,
                    now.generation + 1
                ),
            )),
            ("Renewing", "Ready") if now.generation > before.generation => {
                notes.push(Note::normal(
                    "CaRenewed",
                    "RenewCa",
                    format!(
                        "{what} v{} signs now (Secret {}); v{} stays trusted until it expires",
                        now.generation, now.secret_name, before.generation
                    ),
                ))
            }
            _ => {}
        }
    }
    notes
}

/// `Degraded` turning true, or true for a new reason: a refusal (an invalid spec, a plan that
/// cannot be made) or brokers down.
fn degraded(seen: &Seen<'_>) -> Option<Note> {
    let now = condition(Some(seen.next), DEGRADED).filter(|c| c.status == "True")?;
    let before = condition(seen.previous, DEGRADED).filter(|c| c.status == "True");
    if before.is_some_and(|b| b.reason == now.reason && b.message == now.message)
        || FAILED_RECONCILE.contains(&now.reason.as_str())
    {
        return None;
    }
    Some(Note::warning(&now.reason, "Reconcile", &now.message))
}

/// `Ready` turning true.
fn ready(seen: &Seen<'_>) -> Option<Note> {
    let now = condition(Some(seen.next), READY).filter(|c| c.status == "True")?;
    let was = condition(seen.previous, READY).is_some_and(|c| c.status == "True");
    (!was).then(|| Note::normal("AllBrokersReady", "Reconcile", &now.message))
}

/// `PodMonitorReady` with a new reason: the PodMonitor applied, or asked for where the API
/// server does not serve its kind (a Warning, told once, not at every reconcile).
fn pod_monitor(seen: &Seen<'_>) -> Option<Note> {
    told_once(seen, POD_MONITOR_READY, "ApplyPodMonitor")
}

/// `CertificatesReady` with a new reason: cert-manager not installed, a certificate pending,
/// a new CA of the issuer being trusted (Warnings), or every certificate in use.
fn certificates(seen: &Seen<'_>) -> Option<Note> {
    told_once(seen, CERTIFICATES_READY, "RequestCertificates")
}

/// A condition's new reason, told once: Normal when true, a Warning when false.
fn told_once(seen: &Seen<'_>, kind: &str, action: &'static str) -> Option<Note> {
    let now = condition(Some(seen.next), kind)?;
    let before = condition(seen.previous, kind);
    if before.is_some_and(|b| b.reason == now.reason) {
        return None;
    }
    Some(if now.status == "True" {
        Note::normal(&now.reason, action, &now.message)
    } else {
        Note::warning(&now.reason, action, &now.message)
    })
}

fn list(ids: &[i32]) -> String {
    ids.iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a broker's pod is restarted, from how it differs from the StatefulSet's template: what
/// can be told apart (image, configuration, resources, a restart request, CA trust), else
/// the revisions. Only what the pod carries is compared: a pod made before the operator
/// stamped an annotation is not said to differ in it.
pub fn restart_reason(pod: &Pod, statefulset: Option<&StatefulSet>) -> String {
    let annotations = pod.metadata.annotations.clone().unwrap_or_default();
    let mut why: Vec<String> = Vec::new();
    if annotations.get(RESTART_ANNOTATION).map(String::as_str) == Some("true") {
        why.push(format!("{RESTART_ANNOTATION}=true on the pod"));
    }
    let template = statefulset.map(|s| &s.spec.template);
    if let Some(template) = template {
        let wanted = template
            .metadata
            .as_ref()
            .and_then(|m| m.annotations.clone());
        let wanted = wanted.unwrap_or_default();
        let differs =
            |key: &str| annotations.contains_key(key) && annotations.get(key) != wanted.get(key);
        let broker = |spec: Option<&k8s_openapi::api::core::v1::PodSpec>| {
            spec.and_then(|s| s.containers.iter().find(|c| c.name == "broker").cloned())
        };
        if let (Some(has), Some(want)) = (broker(pod.spec.as_ref()), broker(template.spec.as_ref()))
        {
            if has.image != want.image {
                why.push(format!(
                    "image {} -> {}",
                    has.image.unwrap_or_default(),
                    want.image.unwrap_or_default()
                ));
            }
            if has.resources != want.resources {
                why.push("resources changed".into());
            }
        }
        if differs(CONFIG_HASH_ANNOTATION) {
            why.push("the broker configuration changed".into());
        }
        if wanted.contains_key(RESTART_ANNOTATION)
            && annotations.get(RESTART_ANNOTATION) != wanted.get(RESTART_ANNOTATION)
        {
            why.push(format!(
                "{RESTART_ANNOTATION}={} on the cluster",
                wanted[RESTART_ANNOTATION]
            ));
        }
        if differs(TRUST_ANNOTATION) {
            why.push("the brokers' trusted cluster CAs changed".into());
        }
    }
    if why.is_empty() {
        let own = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(REVISION_LABEL))
            .cloned()
            .unwrap_or_default();
        let current = statefulset
            .and_then(|s| s.status.as_ref())
            .and_then(|s| s.update_revision.clone())
            .unwrap_or_default();
        why.push(format!(
            "its pod template revision {own} is not the StatefulSet's {current}"
        ));
    }
    let down = !pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    if down {
        why.push("it is not Ready".into());
    }
    why.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conditions::{Decided, merge};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn status(conditions: &[(&'static str, bool, &'static str, &str)]) -> KafkaClusterStatus {
        let decided: Vec<Decided> = conditions
            .iter()
            .map(|(k, s, r, m)| Decided::new(k, *s, r, *m))
            .collect();
        let now = Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        KafkaClusterStatus {
            conditions: merge(&[], &decided, Some(1), &now),
            ..KafkaClusterStatus::default()
        }
    }

    fn reasons(notes: &[Note]) -> Vec<&str> {
        notes.iter().map(|n| n.reason.as_str()).collect()
    }

    #[test]
    fn an_unchanged_status_says_nothing() {
        let s = status(&[
            (READY, true, "AllBrokersReady", "3/3 brokers ready"),
            (PROGRESSING, false, "UpToDate", ""),
            (DEGRADED, true, "BrokersUnavailable", "2/3"),
        ]);
        let seen = Seen {
            previous: Some(&s),
            next: &s,
            done: None,
            restarted: None,
        };
        assert!(cluster_events(&seen).is_empty());
    }

    #[test]
    fn a_new_step_a_refusal_and_becoming_ready_are_told() {
        let before = status(&[(READY, false, "BrokersNotReady", "2/3")]);
        let after = status(&[
            (READY, true, "AllBrokersReady", "3/3 brokers ready"),
            (PROGRESSING, false, "ScaleDownRefused", "below RF 3"),
        ]);
        let notes = cluster_events(&Seen {
            previous: Some(&before),
            next: &after,
            done: None,
            restarted: None,
        });
        assert_eq!(reasons(&notes), ["ScaleDownRefused", "AllBrokersReady"]);
        assert_eq!(notes[0].severity, crate::events::Severity::Warning);
    }

    #[test]
    fn a_pod_monitor_that_cannot_be_created_is_a_warning_told_once() {
        let none = status(&[(READY, true, "AllBrokersReady", "3/3 brokers ready")]);
        let missing = status(&[
            (READY, true, "AllBrokersReady", "3/3 brokers ready"),
            (
                POD_MONITOR_READY,
                false,
                "PodMonitorCRDNotInstalled",
                "no CRD",
            ),
        ]);
        let applied = status(&[
            (READY, true, "AllBrokersReady", "3/3 brokers ready"),
            (POD_MONITOR_READY, true, "PodMonitorApplied", "scrapes"),
        ]);
        let told = |previous: &KafkaClusterStatus, next: &KafkaClusterStatus| {
            cluster_events(&Seen {
                previous: Some(previous),
                next,
                done: None,
                restarted: None,
            })
        };
        let notes = told(&none, &missing);
        assert_eq!(reasons(&notes), ["PodMonitorCRDNotInstalled"]);
        assert_eq!(notes[0].severity, crate::events::Severity::Warning);
        assert_eq!(notes[0].note, "no CRD");
        assert!(
            told(&missing, &missing).is_empty(),
            "not at every reconcile"
        );
        let notes = told(&missing, &applied);
        assert_eq!(reasons(&notes), ["PodMonitorApplied"]);
        assert_eq!(notes[0].severity, crate::events::Severity::Normal);
        assert!(told(&applied, &none).is_empty());
    }

    #[test]
    fn a_restart_names_its_pod_and_why() {
        let s = status(&[(PROGRESSING, true, "RestartingBroker", "restarting broker 2")]);
        let notes = cluster_events(&Seen {
            previous: None,
            next: &s,
            done: Some(&Action::RestartPod(2)),
            restarted: Some(Restarted {
                id: 2,
                pod: "main-2".into(),
                namespace: "kafka".into(),
                why: "image a -> b".into(),
            }),
        });
        assert_eq!(reasons(&notes), ["RestartingBroker"]);
        assert_eq!(
            notes[0].note,
            "restarting broker 2 (pod main-2): image a -> b"
        );
        assert_eq!(
            notes[0].related.as_ref().unwrap().name.as_deref(),
            Some("main-2")
        );
    }

    #[test]
    fn a_restart_reason_names_the_image_and_the_configuration() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "main-0", "annotations": {"krait.dev/config-hash": "a"}},
            "spec": {"containers": [{"name": "broker", "image": "krait:1"}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        let sts: StatefulSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "main"},
            "spec": {"selector": {}, "serviceName": "main-brokers", "template": {
                "metadata": {"annotations": {"krait.dev/config-hash": "b"}},
                "spec": {"containers": [{"name": "broker", "image": "krait:2"}]}}}
        }))
        .unwrap();
        assert_eq!(
            restart_reason(&pod, Some(&sts)),
            "image krait:1 -> krait:2; the broker configuration changed"
        );
    }
}
