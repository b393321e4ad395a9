//! Gauges measured at scrape time from the KafkaCluster and KafkaUser objects the controllers'
//! caches hold (status as the reconciler last wrote it): every series is set again from the
//! objects at each scrape, so a deleted resource's series disappear with it.
//!
//! Every series carries `namespace` and `krait_cluster` (the KafkaCluster's name): the labels
//! the brokers' PodMonitor gives the brokers' own series, so one dashboard variable selects a
//! cluster's brokers and its operator state alike. The chart's ServiceMonitor scrapes the
//! operator with `honorLabels`, so `namespace` stays the resource's, not the operator's.

use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use krait_crd::cluster::{CaStatus, RebalanceStatus};
use krait_crd::{KafkaCluster, KafkaUser};
use kube::ResourceExt;
use prometheus::{IntGaugeVec, Opts, Registry};

use super::registered;
use crate::cluster::storage::EXPANDING_VOLUMES;
use crate::conditions::PROGRESSING;

const CLUSTER: &[&str] = &["namespace", "krait_cluster"];

/// The day-2 operations a cluster can be in, each always reported (0 or 1) per cluster.
pub const OPERATIONS: [&str; 6] = [
    "scale-up",
    "scale-down",
    "rebalance",
    "roll",
    "ca-renewal",
    "volume-expansion",
];

pub(super) struct Gauges {
    brokers_desired: IntGaugeVec,
    brokers_ready: IntGaugeVec,
    condition: IntGaugeVec,
    operation: IntGaugeVec,
    rebalance_partitions: IntGaugeVec,
    rebalance_partitions_moved: IntGaugeVec,
    rebalance_bytes: IntGaugeVec,
    rebalance_bytes_moved: IntGaugeVec,
    certificate_expiry: IntGaugeVec,
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    registered(
        registry,
        IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
    )
}

fn with(extra: &[&'static str]) -> Vec<&'static str> {
    CLUSTER.iter().chain(extra).copied().collect()
}

impl Gauges {
    pub(super) fn register(r: &Registry) -> Self {
        let rebalance = with(&["trigger", "state"]);
        Self {
            brokers_desired: gauge_vec(
                r,
                "krait_operator_cluster_brokers_desired",
                "Brokers the KafkaCluster asks for (spec.replicas).",
                CLUSTER,
            ),
            brokers_ready: gauge_vec(
                r,
                "krait_operator_cluster_brokers_ready",
                "Brokers whose pod is Ready (status.readyBrokers).",
                CLUSTER,
            ),
            condition: gauge_vec(
                r,
                "krait_operator_cluster_condition",
                "The KafkaCluster's status conditions: 1 when True, 0 when False, with the \
                 condition's reason.",
                &with(&["type", "reason"]),
            ),
            operation: gauge_vec(
                r,
                "krait_operator_cluster_operation",
                "1 while the cluster is in this day-2 operation (scale-up, scale-down, \
                 rebalance, roll, ca-renewal, volume-expansion), else 0.",
                &with(&["operation"]),
            ),
            rebalance_partitions: gauge_vec(
                r,
                "krait_operator_rebalance_partitions",
                "Partitions the cluster's current or last partition movement copies.",
                &rebalance,
            ),
            rebalance_partitions_moved: gauge_vec(
                r,
                "krait_operator_rebalance_partitions_moved",
                "Of those, partitions that reached their new replicas.",
                &rebalance,
            ),
            rebalance_bytes: gauge_vec(
                r,
                "krait_operator_rebalance_bytes",
                "Bytes the cluster's current or last partition movement copies.",
                &rebalance,
            ),
            rebalance_bytes_moved: gauge_vec(
                r,
                "krait_operator_rebalance_bytes_moved",
                "Of those, bytes of partitions that reached their new replicas.",
                &rebalance,
            ),
            certificate_expiry: gauge_vec(
                r,
                "krait_operator_certificate_expiry_timestamp_seconds",
                "When a certificate the operator issued expires (Unix time): the cluster CA \
                 (certificate=cluster-ca), the clients CA (clients-ca) and each TLS \
                 KafkaUser's (user), with the Secret holding it.",
                &with(&["certificate", "secret"]),
            ),
        }
    }

    pub(super) fn measure(&self, clusters: &[Arc<KafkaCluster>], users: &[Arc<KafkaUser>]) {
        for vec in [
            &self.brokers_desired,
            &self.brokers_ready,
            &self.condition,
            &self.operation,
            &self.rebalance_partitions,
            &self.rebalance_partitions_moved,
            &self.rebalance_bytes,
            &self.rebalance_bytes_moved,
            &self.certificate_expiry,
        ] {
            vec.reset();
        }
        for cluster in clusters {
            self.measure_cluster(cluster);
        }
        for user in users {
            self.measure_user(user);
        }
    }

    fn measure_cluster(&self, cluster: &KafkaCluster) {
        let namespace = cluster.namespace().unwrap_or_default();
        let name = cluster.name_any();
        let at = [namespace.as_str(), name.as_str()];
        self.brokers_desired
            .with_label_values(&at)
            .set(cluster.spec.replicas.into());
        let Some(status) = &cluster.status else {
            self.brokers_ready.with_label_values(&at).set(0);
            return;
        };
        self.brokers_ready
            .with_label_values(&at)
            .set(status.ready_brokers.into());
        for c in &status.conditions {
            self.condition
                .with_label_values(&[&namespace, &name, &c.type_, &c.reason])
                .set((c.status == "True").into());
        }
        let under_way = operations(status);
        for op in OPERATIONS {
            self.operation
                .with_label_values(&[&namespace, &name, op])
                .set(under_way.contains(&op).into());
        }
        if let Some(r) = &status.rebalance {
            let labels = [namespace.as_str(), &name, &r.trigger, &r.state];
            self.rebalance_partitions
                .with_label_values(&labels)
                .set(r.partitions_total.into());
            self.rebalance_partitions_moved
                .with_label_values(&labels)
                .set(r.partitions_moved.into());
            self.rebalance_bytes
                .with_label_values(&labels)
                .set(r.bytes_total);
            self.rebalance_bytes_moved
                .with_label_values(&labels)
                .set(r.bytes_moved);
        }
        let cas = [
            ("cluster-ca", status.cluster_ca.as_ref()),
            ("clients-ca", status.clients_ca.as_ref()),
        ];
        for (which, ca) in cas {
            if let Some(ca) = ca.filter(|ca| ca.state != "NotInUse")
                && let Some(expiry) = unix_time(&ca.not_after)
            {
                self.certificate_expiry
                    .with_label_values(&[&namespace, &name, which, &ca.secret_name])
                    .set(expiry);
            }
        }
    }

    fn measure_user(&self, user: &KafkaUser) {
        let Some(status) = &user.status else {
            return;
        };
        let Some(expiry) = status.certificate_not_after.as_deref().and_then(unix_time) else {
            return;
        };
        let namespace = user.namespace().unwrap_or_default();
        let secret = status.secret.clone().unwrap_or_else(|| user.name_any());
        self.certificate_expiry
            .with_label_values(&[&namespace, &user.spec.cluster_ref, "user", &secret])
            .set(expiry);
    }
}

/// The day-2 operations status says are under way: from the `Progressing` condition's reason
/// (`cluster/scale.rs`, `cluster/roll.rs`, `cluster/day2.rs`, `cluster/storage.rs`), the
/// partition movement's trigger, and the CAs' state.
pub fn operations(status: &krait_crd::KafkaClusterStatus) -> Vec<&'static str> {
    let mut ops = Vec::new();
    let progressing = crate::conditions::find(&status.conditions, PROGRESSING)
        .filter(|c| c.status == "True")
        .map(|c| c.reason.as_str());
    let moving = |r: &RebalanceStatus| r.state == "Moving";
    let movement = status.rebalance.as_ref().filter(|r| moving(r));
    match progressing {
        Some("GrowingStatefulSet" | "WaitingForBrokers") => ops.push("scale-up"),
        Some(
            "Draining" | "ShrinkingStatefulSet" | "WaitingForShutdown" | "UnregisteringBrokers",
        ) => {
            ops.push("scale-down");
        }
        Some(
            "RollingOut"
            | "WaitingForBroker"
            | "RestartingBroker"
            | "WaitingForController"
            | crate::cluster::roll::WAITING_FOR_DISRUPTION_BUDGET,
        ) => ops.push("roll"),
        Some(reason) if reason == EXPANDING_VOLUMES => ops.push("volume-expansion"),
        _ => {}
    }
    if let Some(r) = movement {
        ops.push(match r.trigger.as_str() {
            "ScaleUp" => "scale-up",
            "ScaleDown" => "scale-down",
            _ => "rebalance",
        });
    }
    let renewing = |ca: Option<&CaStatus>| ca.is_some_and(|ca| ca.state == "Renewing");
    if renewing(status.cluster_ca.as_ref()) || renewing(status.clients_ca.as_ref()) {
        ops.push("ca-renewal");
    }
    ops.sort_unstable();
    ops.dedup();
    ops
}

fn unix_time(rfc3339: &str) -> Option<i64> {
    rfc3339.parse::<Timestamp>().ok().map(|t| t.as_second())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
    use krait_crd::KafkaClusterStatus;
    use krait_crd::user::KafkaUserStatus;

    use super::super::Metrics;
    use super::*;

    fn condition(type_: &str, status: bool, reason: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: if status { "True" } else { "False" }.into(),
            reason: reason.into(),
            message: String::new(),
            last_transition_time: Time(Timestamp::UNIX_EPOCH),
            observed_generation: None,
        }
    }

    fn cluster(name: &str, replicas: i32, status: Option<KafkaClusterStatus>) -> Arc<KafkaCluster> {
        let mut c: KafkaCluster = serde_json::from_value(serde_json::json!({
            "apiVersion": "krait.dev/v1alpha1",
            "kind": "KafkaCluster",
            "metadata": {"name": name, "namespace": "kafka"},
            "spec": {"replicas": replicas, "image": "krait:test", "storage": {"ephemeral": true}},
        }))
        .expect("a valid KafkaCluster");
        c.status = status;
        Arc::new(c)
    }

    fn ca(secret: &str, state: &str, not_after: &str) -> CaStatus {
        CaStatus {
            secret_name: secret.into(),
            generation: 0,
            not_after: not_after.into(),
            state: state.into(),
        }
    }

    /// The value of the one sample of `name` with these labels (the encoder sorts labels).
    fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<String> {
        let mut wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        wanted.sort();
        let series = format!("{name}{{{}}}", wanted.join(","));
        text.lines().find_map(|l| {
            l.strip_prefix(&series)?
                .strip_prefix(' ')
                .map(str::to_string)
        })
    }

    #[test]
    fn a_scaling_cluster_reports_its_operation_rebalance_and_certificates() {
        let status = KafkaClusterStatus {
            ready_brokers: 3,
            conditions: vec![
                condition("Ready", true, "AllBrokersReady"),
                condition("Progressing", true, "WaitingForReassignments"),
                condition("Degraded", false, "Scaled"),
            ],
            rebalance: Some(RebalanceStatus {
                trigger: "ScaleUp".into(),
                state: "Moving".into(),
                partitions_total: 12,
                partitions_moved: 5,
                bytes_total: 4096,
                bytes_moved: 1024,
                ..RebalanceStatus::default()
            }),
            cluster_ca: Some(ca("main-cluster-ca-cert", "Ready", "2027-01-01T00:00:00Z")),
            clients_ca: Some(ca(
                "main-clients-ca-cert",
                "Renewing",
                "2026-12-31T00:00:00Z",
            )),
            ..KafkaClusterStatus::default()
        };
        let m = Metrics::default();
        let text = m.render_with(&[cluster("main", 4, Some(status))], &[]);
        let at = [("namespace", "kafka"), ("krait_cluster", "main")];
        let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, &'static str)> {
            at.iter().chain(extra).copied().collect()
        };
        let moving = [("trigger", "ScaleUp"), ("state", "Moving")];
        for (name, labels, value) in [
            ("krait_operator_cluster_brokers_desired", with(&[]), "4"),
            ("krait_operator_cluster_brokers_ready", with(&[]), "3"),
            (
                "krait_operator_cluster_condition",
                with(&[
                    ("type", "Progressing"),
                    ("reason", "WaitingForReassignments"),
                ]),
                "1",
            ),
            (
                "krait_operator_cluster_condition",
                with(&[("type", "Degraded"), ("reason", "Scaled")]),
                "0",
            ),
            (
                "krait_operator_cluster_operation",
                with(&[("operation", "scale-up")]),
                "1",
            ),
            (
                "krait_operator_cluster_operation",
                with(&[("operation", "ca-renewal")]),
                "1",
            ),
            (
                "krait_operator_cluster_operation",
                with(&[("operation", "roll")]),
                "0",
            ),
            (
                "krait_operator_cluster_operation",
                with(&[("operation", "rebalance")]),
                "0",
            ),
            ("krait_operator_rebalance_partitions", with(&moving), "12"),
            (
                "krait_operator_rebalance_partitions_moved",
                with(&moving),
                "5",
            ),
            ("krait_operator_rebalance_bytes", with(&moving), "4096"),
            (
                "krait_operator_rebalance_bytes_moved",
                with(&moving),
                "1024",
            ),
            (
                "krait_operator_certificate_expiry_timestamp_seconds",
                with(&[
                    ("certificate", "cluster-ca"),
                    ("secret", "main-cluster-ca-cert"),
                ]),
                "1798761600",
            ),
            (
                "krait_operator_certificate_expiry_timestamp_seconds",
                with(&[
                    ("certificate", "clients-ca"),
                    ("secret", "main-clients-ca-cert"),
                ]),
                "1798675200",
            ),
        ] {
            assert_eq!(
                sample(&text, name, &labels).as_deref(),
                Some(value),
                "{name} {labels:?} in\n{text}"
            );
        }
    }

    #[test]
    fn a_deleted_cluster_leaves_no_series_and_a_plaintext_cluster_has_no_ca_expiry() {
        let m = Metrics::default();
        let plaintext = KafkaClusterStatus {
            cluster_ca: Some(ca(
                "old-cluster-ca-cert",
                "NotInUse",
                "2027-01-01T00:00:00Z",
            )),
            ..KafkaClusterStatus::default()
        };
        let before = m.render_with(
            &[cluster("gone", 3, None), cluster("old", 1, Some(plaintext))],
            &[],
        );
        assert!(before.contains("krait_cluster=\"gone\""), "{before}");
        assert!(
            !before.contains("krait_operator_certificate_expiry"),
            "{before}"
        );
        let after = m.render_with(&[cluster("old", 1, None)], &[]);
        assert!(!after.contains("krait_cluster=\"gone\""), "{after}");
        assert!(after.contains("krait_cluster=\"old\""), "{after}");
    }

    #[test]
    fn a_tls_user_reports_its_certificate_expiry_under_its_cluster() {
        let mut user: KafkaUser = serde_json::from_value(serde_json::json!({
            "apiVersion": "krait.dev/v1alpha1",
            "kind": "KafkaUser",
            "metadata": {"name": "orders", "namespace": "kafka"},
            "spec": {"clusterRef": "main", "authentication": {"type": "tls"}},
        }))
        .expect("a valid KafkaUser");
        user.status = Some(KafkaUserStatus {
            secret: Some("orders".into()),
            certificate_not_after: Some("2027-01-01T00:00:00Z".into()),
            ..KafkaUserStatus::default()
        });
        let text = Metrics::default().render_with(&[], &[Arc::new(user)]);
        let labels = [
            ("namespace", "kafka"),
            ("krait_cluster", "main"),
            ("certificate", "user"),
            ("secret", "orders"),
        ];
        assert_eq!(
            sample(
                &text,
                "krait_operator_certificate_expiry_timestamp_seconds",
                &labels
            )
            .as_deref(),
            Some("1798761600"),
            "{text}"
        );
    }

    #[test]
    fn a_rolling_cluster_and_an_on_demand_rebalance_are_told_apart() {
        let status = |reason: &str, trigger: &str, state: &str| KafkaClusterStatus {
            conditions: vec![condition("Progressing", true, reason)],
            rebalance: Some(RebalanceStatus {
                trigger: trigger.into(),
                state: state.into(),
                ..RebalanceStatus::default()
            }),
            ..KafkaClusterStatus::default()
        };
        assert_eq!(
            operations(&status("RestartingBroker", "OnDemand", "Complete")),
            ["roll"]
        );
        assert_eq!(
            operations(&status("Rebalancing", "OnDemand", "Moving")),
            ["rebalance"]
        );
        assert_eq!(
            operations(&status("Draining", "ScaleDown", "Moving")),
            ["scale-down"]
        );
        assert_eq!(
            operations(&status(EXPANDING_VOLUMES, "DryRun", "Planned")),
            ["volume-expansion"]
        );
        let settled = KafkaClusterStatus {
            conditions: vec![condition("Progressing", false, "UpToDate")],
            ..KafkaClusterStatus::default()
        };
        assert!(operations(&settled).is_empty());
    }
}
