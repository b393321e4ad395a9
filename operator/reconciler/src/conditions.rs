//! Status conditions (`Ready`, `Progressing`, `Degraded`, and a cluster's `PodMonitorReady`):
//! building them and merging a new set into the old one so `lastTransitionTime` moves only when
//! a condition's status changes, which is what lets an unchanged world produce an unchanged
//! status (and no write).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub const READY: &str = "Ready";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";
/// A cluster's PodMonitor (`spec.metrics.podMonitor`), present only while one is asked for:
/// true once applied, false while the API server does not serve the kind
/// (`cluster/monitoring.rs`). Monitoring is not serving: it never touches the other three.
pub const POD_MONITOR_READY: &str = "PodMonitorReady";
/// A cluster whose brokers' certificates come from a cert-manager issuer
/// (`spec.clusterCa.issuerRef`), present only then: true once every broker holds one it can
/// use (`cluster/cert_manager.rs`).
pub const CERTIFICATES_READY: &str = "CertificatesReady";

/// A condition as the reconciler decides it, without timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    pub kind: &'static str,
    pub status: bool,
    pub reason: &'static str,
    pub message: String,
}

impl Decided {
    pub fn new(
        kind: &'static str,
        status: bool,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            status,
            reason,
            message: message.into(),
        }
    }
}

fn status_str(status: bool) -> &'static str {
    if status { "True" } else { "False" }
}

/// The conditions to write: `decided` in order, keeping each old `lastTransitionTime` whose
/// status did not change, and stamping `now` on the others.
pub fn merge(
    old: &[Condition],
    decided: &[Decided],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    decided
        .iter()
        .map(|d| {
            let previous = old.iter().find(|c| c.type_ == d.kind);
            let last_transition_time = match previous {
                Some(p) if p.status == status_str(d.status) => p.last_transition_time.clone(),
                _ => now.clone(),
            };
            Condition {
                type_: d.kind.to_string(),
                status: status_str(d.status).to_string(),
                reason: d.reason.to_string(),
                message: d.message.clone(),
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect()
}

/// The condition of a type, if present.
pub fn find<'a>(conditions: &'a [Condition], kind: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(s: &str) -> Time {
        serde_json::from_value(serde_json::json!(s)).unwrap()
    }

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let t0 = time("2026-01-01T00:00:00Z");
        let t1 = time("2026-01-02T00:00:00Z");
        let first = merge(
            &[],
            &[
                Decided::new(READY, false, "BrokersNotReady", "0/3"),
                Decided::new(DEGRADED, false, "AsExpected", ""),
            ],
            Some(1),
            &t0,
        );
        let second = merge(
            &first,
            &[
                Decided::new(READY, true, "AllBrokersReady", "3/3"),
                Decided::new(DEGRADED, false, "AsExpected", ""),
            ],
            Some(2),
            &t1,
        );
        assert_eq!(find(&second, READY).unwrap().last_transition_time, t1);
        assert_eq!(find(&second, DEGRADED).unwrap().last_transition_time, t0);
        assert_eq!(
            find(&second, DEGRADED).unwrap().observed_generation,
            Some(2)
        );
    }
}
