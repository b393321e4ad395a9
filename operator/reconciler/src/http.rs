//! The operator's HTTP endpoint: `/healthz` (the process answers), `/readyz` (started and
//! campaigning or leading), `/metrics` (Prometheus). The HTTP itself is krait-probe's.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use krait_probe::Answer;
use tokio::net::TcpListener;

use crate::metrics::Metrics;

/// What the endpoint reports.
#[derive(Debug, Default)]
pub struct Health {
    pub ready: AtomicBool,
    pub metrics: Arc<Metrics>,
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, health: Arc<Health>) {
    krait_probe::serve(listener, move |path| route(path, &health)).await
}

fn route(path: &str, health: &Health) -> Answer {
    match path {
        "/healthz" => Answer::ok("ok\n"),
        "/readyz" if health.ready.load(Ordering::Relaxed) => Answer::ok("ready\n"),
        "/readyz" => Answer::unavailable("starting\n"),
        "/metrics" => Answer::metrics(health.metrics.render()),
        _ => Answer::not_found(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn probes_follow_readiness_and_metrics_show_reconciles() {
        let health = Health::default();
        health
            .metrics
            .record("KafkaTopic", Duration::from_millis(3), None);
        assert_eq!(route("/healthz", &health).status, "200 OK");
        assert_eq!(route("/readyz", &health).status, "503 Service Unavailable");
        health.ready.store(true, Ordering::Relaxed);
        assert_eq!(route("/readyz", &health).status, "200 OK");
        let metrics = route("/metrics", &health).body;
        assert!(
            metrics.contains("krait_operator_reconciles_total{kind=\"KafkaTopic\"} 1"),
            "{metrics}"
        );
        assert_eq!(route("/nope", &health), Answer::not_found());
    }
}
