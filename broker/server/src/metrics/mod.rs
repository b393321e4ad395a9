//! Broker counters, exported in the Prometheus text format on `/metrics`.
//!
//! Plain atomics updated on the request path: no locks, no allocation. Counters per API are
//! indexed by API key, which Kafka keeps small and dense.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::handlers::SERVED;
use krait_protocol::frame::api_name;

const API_SLOTS: usize = 128;

#[derive(Debug)]
pub struct Metrics {
    requests: [AtomicU64; API_SLOTS],
    request_errors: AtomicU64,
    authentication_failures: AtomicU64,
    connections_open: AtomicI64,
    connections_total: AtomicU64,
    connections_refused: AtomicU64,
    connections_timed_out: AtomicU64,
    produced_bytes: AtomicU64,
    fetched_bytes: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: std::array::from_fn(|_| AtomicU64::new(0)),
            request_errors: AtomicU64::new(0),
            authentication_failures: AtomicU64::new(0),
            connections_open: AtomicI64::new(0),
            connections_total: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
            connections_timed_out: AtomicU64::new(0),
            produced_bytes: AtomicU64::new(0),
            fetched_bytes: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    pub fn request(&self, api_key: i16) {
        if let Some(c) = usize::try_from(api_key)
            .ok()
            .and_then(|k| self.requests.get(k))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A request the broker could not serve: unsupported, undecodable or unencodable.
    pub fn request_error(&self) {
        self.request_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// A failed TLS handshake or SASL login.
    pub fn authentication_failed(&self) {
        self.authentication_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Ordering::Relaxed);
        self.connections_total.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    /// A connection closed as soon as it was accepted: max.connections or
    /// max.connections.per.ip was reached.
    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection closed for idling past connections.max.idle.ms or for not completing a
    /// request frame within the read timeout.
    pub fn connection_timed_out(&self) {
        self.connections_timed_out.fetch_add(1, Ordering::Relaxed);
    }

    pub fn produced(&self, bytes: usize) {
        self.produced_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn fetched(&self, bytes: usize) {
        self.fetched_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// The Prometheus exposition, with gauges the caller measures at scrape time.
    pub fn render(&self, topics: usize, partitions: usize) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP krait_requests_total Kafka requests received, by API.\n# TYPE krait_requests_total counter\n");
        for api in SERVED {
            let n = self.requests[api.key as usize].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "krait_requests_total{{api=\"{}\"}} {n}",
                api_name(api.key)
            );
        }
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed).to_string();
        metric(
            "krait_request_errors_total",
            "counter",
            "Requests answered with UNSUPPORTED_VERSION or closed as unreadable.",
            load(&self.request_errors),
        );
        metric(
            "krait_authentication_failures_total",
            "counter",
            "Failed TLS handshakes and SASL logins.",
            load(&self.authentication_failures),
        );
        metric(
            "krait_connections_open",
            "gauge",
            "Open client connections.",
            self.connections_open.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "krait_connections_total",
            "counter",
            "Client connections accepted.",
            load(&self.connections_total),
        );
        metric(
            "krait_connections_refused_total",
            "counter",
            "Client connections closed on accept because a connection limit was reached.",
            load(&self.connections_refused),
        );
        metric(
            "krait_connections_timed_out_total",
            "counter",
            "Client connections closed for idling or for a request frame that did not arrive in time.",
            load(&self.connections_timed_out),
        );
        metric(
            "krait_produced_bytes_total",
            "counter",
            "Record batch bytes appended.",
            load(&self.produced_bytes),
        );
        metric(
            "krait_fetched_bytes_total",
            "counter",
            "Record batch bytes returned by Fetch.",
            load(&self.fetched_bytes),
        );
        metric(
            "krait_topics",
            "gauge",
            "Topics hosted.",
            topics.to_string(),
        );
        metric(
            "krait_partitions",
            "gauge",
            "Partitions hosted.",
            partitions.to_string(),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_is_prometheus_text_with_per_api_counters() {
        let m = Metrics::default();
        m.request(0);
        m.request(0);
        m.request(-5);
        m.request(9999);
        m.produced(100);
        let text = m.render(2, 7);
        assert!(
            text.contains("krait_requests_total{api=\"Produce\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("krait_produced_bytes_total 100\n"));
        assert!(text.contains("krait_partitions 7\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert_eq!(line.split(' ').count(), 2, "sample line {line:?}");
        }
    }
}
