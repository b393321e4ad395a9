//! The operator's Prometheus metrics: reconciles and their failures by kind and reason, and
//! reconcile duration as a histogram, rendered in the text exposition format.

use krait_sync::MutexExt;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the reconcile-duration histogram buckets.
const BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Debug, Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
struct Inner {
    reconciles: BTreeMap<&'static str, u64>,
    failures: BTreeMap<(&'static str, &'static str), u64>,
    durations: BTreeMap<&'static str, Histogram>,
}

/// Counters shared by every reconcile.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    /// Records one reconcile of `kind` and, when it failed, its reason.
    pub fn record(&self, kind: &'static str, took: Duration, failure: Option<&'static str>) {
        let mut inner = self.inner.lock_unpoisoned();
        *inner.reconciles.entry(kind).or_default() += 1;
        if let Some(reason) = failure {
            *inner.failures.entry((kind, reason)).or_default() += 1;
        }
        let h = inner.durations.entry(kind).or_default();
        if h.counts.is_empty() {
            h.counts = vec![0; BUCKETS.len()];
        }
        let secs = took.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    /// The metrics in Prometheus' text format.
    pub fn render(&self) -> String {
        let inner = self.inner.lock_unpoisoned();
        let mut out = String::new();
        out.push_str("# HELP krait_operator_reconciles_total Reconciles run, by resource kind.\n");
        out.push_str("# TYPE krait_operator_reconciles_total counter\n");
        for (kind, n) in &inner.reconciles {
            let _ = writeln!(
                out,
                "krait_operator_reconciles_total{{kind=\"{kind}\"}} {n}"
            );
        }
        out.push_str("# HELP krait_operator_reconcile_errors_total Failed reconciles, by kind and failed step.\n");
        out.push_str("# TYPE krait_operator_reconcile_errors_total counter\n");
        for ((kind, reason), n) in &inner.failures {
            let _ = writeln!(
                out,
                "krait_operator_reconcile_errors_total{{kind=\"{kind}\",reason=\"{reason}\"}} {n}"
            );
        }
        out.push_str("# HELP krait_operator_reconcile_duration_seconds Reconcile duration.\n");
        out.push_str("# TYPE krait_operator_reconcile_duration_seconds histogram\n");
        for (kind, h) in &inner.durations {
            for (bound, n) in BUCKETS.iter().zip(&h.counts) {
                let _ = writeln!(
                    out,
                    "krait_operator_reconcile_duration_seconds_bucket{{kind=\"{kind}\",le=\"{bound}\"}} {n}"
                );
            }
            let name = "krait_operator_reconcile_duration_seconds";
            let _ = writeln!(
                out,
                "{name}_bucket{{kind=\"{kind}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "{name}_sum{{kind=\"{kind}\"}} {}", h.sum);
            let _ = writeln!(out, "{name}_count{{kind=\"{kind}\"}} {}", h.count);
        }
        out
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
