//! The operator's metrics, exported on `/metrics` in Prometheus' text format through the
//! `prometheus` crate (no hand-written exposition).
//!
//! Two kinds, as the broker's:
//! - **Events**, counted where they happen: reconciles, their failures by failed step, and
//!   their duration, per resource kind.
//! - **State**, measured at scrape time ([`resources`]) from the KafkaCluster and KafkaUser
//!   objects the controllers' caches hold, status as the reconciler last wrote it: each
//!   cluster's brokers, conditions, the day-2 operation under way (scale, roll, rebalance,
//!   volume expansion) and the rebalance's progress, and when each certificate the operator
//!   issued expires. A deleted resource leaves the cache, and its series leave with it.
//!
//! `docs/metrics.md` lists every metric; a test checks the list against the operator's output.

mod resources;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use krait_crd::{KafkaCluster, KafkaUser};
use krait_sync::MutexExt;
use kube::runtime::reflector::Store;
use prometheus::core::Collector;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

/// Upper bounds (seconds) of the reconcile-duration histogram buckets.
const BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The controllers' caches the state is read from, one per watched namespace (or one for all).
#[derive(Default)]
struct Caches {
    clusters: Vec<Store<KafkaCluster>>,
    users: Vec<Store<KafkaUser>>,
}

/// Shared by every reconcile and by the HTTP endpoint.
pub struct Metrics {
    registry: Registry,
    reconciles: IntCounterVec,
    failures: IntCounterVec,
    durations: HistogramVec,
    resources: resources::Gauges,
    caches: Mutex<Caches>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Registers `metric` and hands it back; the names are fixed and unique, so this cannot fail.
fn registered<M: Collector + Clone + 'static>(registry: &Registry, metric: M) -> M {
    registry
        .register(Box::new(metric.clone()))
        .expect("metric names are unique and valid");
    metric
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    registered(
        registry,
        IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
    )
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let reconciles = counter_vec(
            &registry,
            "krait_operator_reconciles_total",
            "Reconciles run, by resource kind.",
            &["kind"],
        );
        let failures = counter_vec(
            &registry,
            "krait_operator_reconcile_errors_total",
            "Failed reconciles, by resource kind and the step that failed.",
            &["kind", "reason"],
        );
        let durations = registered(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "krait_operator_reconcile_duration_seconds",
                    "How long reconciles took, by resource kind.",
                )
                .buckets(BUCKETS.to_vec()),
                &["kind"],
            )
            .expect("valid metric"),
        );
        let resources = resources::Gauges::register(&registry);
        Self {
            registry,
            reconciles,
            failures,
            durations,
            resources,
            caches: Mutex::default(),
        }
    }

    /// Records one reconcile of `kind` and, when it failed, the step that failed.
    pub fn record(&self, kind: &'static str, took: Duration, failure: Option<&'static str>) {
        self.reconciles.with_label_values(&[kind]).inc();
        if let Some(reason) = failure {
            self.failures.with_label_values(&[kind, reason]).inc();
        }
        self.durations
            .with_label_values(&[kind])
            .observe(took.as_secs_f64());
    }

    /// Reads cluster state from this controller cache at every scrape.
    pub fn watch_clusters(&self, store: Store<KafkaCluster>) {
        self.caches.lock_unpoisoned().clusters.push(store);
    }

    /// Reads user certificates from this controller cache at every scrape.
    pub fn watch_users(&self, store: Store<KafkaUser>) {
        self.caches.lock_unpoisoned().users.push(store);
    }

    /// The exposition: the watched resources' state measured now, then everything in
    /// Prometheus' text format.
    pub fn render(&self) -> String {
        let (clusters, users) = {
            let caches = self.caches.lock_unpoisoned();
            let clusters: Vec<Arc<KafkaCluster>> =
                caches.clusters.iter().flat_map(Store::state).collect();
            let users: Vec<Arc<KafkaUser>> = caches.users.iter().flat_map(Store::state).collect();
            (clusters, users)
        };
        self.render_with(&clusters, &users)
    }

    /// [`Self::render`] over these resources.
    pub fn render_with(&self, clusters: &[Arc<KafkaCluster>], users: &[Arc<KafkaUser>]) -> String {
        self.resources.measure(clusters, users);
        let mut out = Vec::with_capacity(8 * 1024);
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "cannot encode the metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_reconciles_errors_and_durations() {
        let m = Metrics::default();
        m.record("KafkaCluster", Duration::from_millis(20), None);
        m.record("KafkaCluster", Duration::from_secs(3), Some("apply"));
        let text = m.render();
        assert!(text.contains("krait_operator_reconciles_total{kind=\"KafkaCluster\"} 2"));
        assert!(text.contains(
            "krait_operator_reconcile_errors_total{kind=\"KafkaCluster\",reason=\"apply\"} 1"
        ));
        assert!(text.contains("_bucket{kind=\"KafkaCluster\",le=\"0.05\"} 1"));
        assert!(text.contains("_bucket{kind=\"KafkaCluster\",le=\"5\"} 2"));
        assert!(text.contains("_count{kind=\"KafkaCluster\"} 2"));
    }
}
