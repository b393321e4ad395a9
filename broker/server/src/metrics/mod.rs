//! The broker's metrics, exported on `/metrics` in Prometheus' text format through the
//! `prometheus` crate (no hand-written exposition).
//!
//! Two kinds:
//! - **Events**, counted where they happen: requests and their latency per API, bytes and
//!   records per topic, connections per listener, requests waiting in purgatory, ISR changes.
//!   The per-API handles are resolved once, at start, into a table indexed by API key, so the
//!   request path does no label lookup.
//! - **State**, measured at scrape time from what the broker already holds ([`state`]):
//!   partitions and their replication health, the controller, the metadata log, consumer
//!   groups and their lag, RocksDB; and the process ([`process`]).
//!
//! `docs/metrics.md` lists every metric; a test checks the list against a live broker.

mod process;
mod state;

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use krait_protocol::kafka_protocol::messages::ApiKey;
use krait_sync::MutexExt;
use krait_tls::TlsAcceptor;
use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::broker::Broker;
use crate::handlers::SERVED;

const API_SLOTS: usize = 128;

/// Request latency buckets, in seconds: from 0.25 ms (a Metadata answer) to 30 s (a Produce
/// waiting out its timeout).
const LATENCY_BUCKETS: &[f64] = &[
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0,
];

/// One API's handles. Its request counter exists from the start; its latency series appear
/// with its first request, so the exposition does not carry empty histograms for every API.
#[derive(Debug)]
struct ApiMetrics {
    name: String,
    requests: IntCounter,
    total: OnceLock<Histogram>,
    remote: OnceLock<Histogram>,
}

/// Where a request waits for others, as Kafka's purgatories hold them.
#[derive(Debug, Clone, Copy)]
pub enum Purgatory {
    /// Produce with acks=all, waiting for the in-sync replicas.
    Produce,
    /// Fetch waiting for `min.bytes` or `max.wait.ms`.
    Fetch,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    apis: Vec<Option<ApiMetrics>>,
    total: HistogramVec,
    remote: HistogramVec,
    request_errors: IntCounter,
    authentication_failures: IntCounter,
    connections_open: IntGaugeVec,
    connections: IntCounterVec,
    connections_refused: IntCounterVec,
    connections_timed_out: IntCounterVec,
    topic_bytes_in: IntCounterVec,
    topic_records_in: IntCounterVec,
    topic_bytes_out: IntCounterVec,
    /// The two purgatories' gauges (krait_purgatory_requests), resolved once: every acks=all
    /// produce and waiting fetch counts itself in one.
    purgatory_produce: IntGauge,
    purgatory_fetch: IntGauge,
    isr_shrinks: IntCounter,
    isr_expands: IntCounter,
    state: state::Gauges,
    process: process::Process,
    certificate_expiry: IntGaugeVec,
    /// The TLS acceptors whose certificates are reported, by listener.
    served: Mutex<Vec<(String, TlsAcceptor)>>,
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

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    registered(registry, IntCounter::new(name, help).expect("valid metric"))
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    registered(
        registry,
        IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
    )
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    registered(registry, IntGauge::new(name, help).expect("valid metric"))
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    registered(
        registry,
        IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
    )
}

fn histogram_vec(registry: &Registry, name: &str, help: &str) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
    registered(
        registry,
        HistogramVec::new(opts, &["api"]).expect("valid metric"),
    )
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = counter_vec(
            &registry,
            "krait_requests_total",
            "Kafka requests received, by API.",
            &["api"],
        );
        let total = histogram_vec(
            &registry,
            "krait_request_duration_seconds",
            "Time from a request's whole frame being read to its answer being written to the \
             connection, by API (Kafka's TotalTimeMs; requests on one connection are served in \
             order, so there is no separate queue time).",
        );
        let remote = histogram_vec(
            &registry,
            "krait_request_remote_duration_seconds",
            "The part of krait_request_duration_seconds a request waited on others: a Produce \
             with acks=all for its in-sync replicas, a Fetch for min.bytes or max.wait.ms \
             (Kafka's RemoteTimeMs). Local time is the difference.",
        );
        let apis = (0..API_SLOTS)
            .map(|key| {
                let api = SERVED.iter().find(|a| a.key as usize == key)?;
                // kafka-protocol names each key as Kafka does (`SaslHandshake`, `DescribeAcls`).
                let name = format!("{:?}", api.key);
                Some(ApiMetrics {
                    requests: requests.with_label_values(&[name.as_str()]),
                    name,
                    total: OnceLock::new(),
                    remote: OnceLock::new(),
                })
            })
            .collect();
        let purgatory = gauge_vec(
            &registry,
            "krait_purgatory_requests",
            "Requests waiting on others: Produce for its in-sync replicas, Fetch for min.bytes \
             or max.wait.ms.",
            &["purgatory"],
        );
        let state = state::Gauges::register(&registry);
        let process = process::Process::register(&registry);
        let certificate_expiry = gauge_vec(
            &registry,
            "krait_tls_certificate_expiry_timestamp_seconds",
            "When the certificate this broker serves expires (Unix time), by listener: each TLS \
             Kafka listener, and `cluster` for the cluster port. Read from the files the \
             broker reloads, so a renewal shows once new connections get it.",
            &["listener"],
        );
        Self {
            certificate_expiry,
            served: Mutex::default(),
            apis,
            total,
            remote,
            request_errors: counter(
                &registry,
                "krait_request_errors_total",
                "Requests answered with UNSUPPORTED_VERSION or closed as unreadable.",
            ),
            authentication_failures: counter(
                &registry,
                "krait_authentication_failures_total",
                "Failed TLS handshakes and SASL logins.",
            ),
            connections_open: gauge_vec(
                &registry,
                "krait_connections_open",
                "Open client connections, by listener.",
                &["listener"],
            ),
            connections: counter_vec(
                &registry,
                "krait_connections_total",
                "Client connections accepted, by listener.",
                &["listener"],
            ),
            connections_refused: counter_vec(
                &registry,
                "krait_connections_refused_total",
                "Client connections closed on accept because max.connections or \
                 max.connections.per.ip was reached, by listener.",
                &["listener"],
            ),
            connections_timed_out: counter_vec(
                &registry,
                "krait_connections_timed_out_total",
                "Client connections closed for idling (connections.max.idle.ms) or for a request \
                 frame that did not arrive in time, by listener.",
                &["listener"],
            ),
            topic_bytes_in: counter_vec(
                &registry,
                "krait_topic_bytes_in_total",
                "Record batch bytes appended by producers, by topic (Kafka's BytesInPerSec).",
                &["topic"],
            ),
            topic_records_in: counter_vec(
                &registry,
                "krait_topic_records_in_total",
                "Records appended by producers, by topic (Kafka's MessagesInPerSec).",
                &["topic"],
            ),
            topic_bytes_out: counter_vec(
                &registry,
                "krait_topic_bytes_out_total",
                "Record batch bytes returned to consumers by Fetch, by topic (Kafka's \
                 BytesOutPerSec; replication to followers is not counted).",
                &["topic"],
            ),
            purgatory_produce: purgatory.with_label_values(&["produce"]),
            purgatory_fetch: purgatory.with_label_values(&["fetch"]),
            isr_shrinks: counter(
                &registry,
                "krait_isr_shrinks_total",
                "In-sync replica sets this broker, as leader, shrank.",
            ),
            isr_expands: counter(
                &registry,
                "krait_isr_expands_total",
                "In-sync replica sets this broker, as leader, expanded.",
            ),
            state,
            process,
            registry,
        }
    }

    fn api(&self, api_key: i16) -> Option<&ApiMetrics> {
        usize::try_from(api_key)
            .ok()
            .and_then(|k| self.apis.get(k))
            .and_then(Option::as_ref)
    }

    /// A request of `api_key` was received.
    pub fn request(&self, api_key: i16) {
        if let Some(api) = self.api(api_key) {
            api.requests.inc();
        }
    }

    /// A request of `api_key` was answered (or, for acks=0, done) after `elapsed`.
    pub fn answered(&self, api_key: i16, elapsed: Duration) {
        if let Some(api) = self.api(api_key) {
            api.total
                .get_or_init(|| self.total.with_label_values(&[api.name.as_str()]))
                .observe(elapsed.as_secs_f64());
        }
    }

    /// A request of `api` waited `waited` on others (see [`Purgatory`]).
    pub fn waited(&self, api: ApiKey, waited: Duration) {
        if let Some(slot) = self.api(api as i16) {
            slot.remote
                .get_or_init(|| self.remote.with_label_values(&[slot.name.as_str()]))
                .observe(waited.as_secs_f64());
        }
    }

    /// Counts a request as waiting in `purgatory` until the guard drops.
    pub fn in_purgatory(&self, purgatory: Purgatory) -> PurgatoryGuard {
        let gauge = match purgatory {
            Purgatory::Produce => &self.purgatory_produce,
            Purgatory::Fetch => &self.purgatory_fetch,
        };
        gauge.inc();
        PurgatoryGuard(gauge.clone())
    }

    /// A request the broker could not serve: unsupported, undecodable or unencodable.
    pub fn request_error(&self) {
        self.request_errors.inc();
    }

    /// A failed TLS handshake or SASL login.
    pub fn authentication_failed(&self) {
        self.authentication_failures.inc();
    }

    /// A connection accepted on `listener`; it counts as open until the guard drops.
    pub fn connection_opened(&self, listener: &str) -> ConnectionGuard {
        self.connections.with_label_values(&[listener]).inc();
        let open = self.connections_open.with_label_values(&[listener]);
        open.inc();
        ConnectionGuard(open)
    }

    /// A connection closed as soon as it was accepted: max.connections or
    /// max.connections.per.ip was reached.
    pub fn connection_refused(&self, listener: &str) {
        self.connections_refused
            .with_label_values(&[listener])
            .inc();
    }

    /// A connection closed for idling past connections.max.idle.ms or for not completing a
    /// request frame within the read timeout.
    pub fn connection_timed_out(&self, listener: &str) {
        self.connections_timed_out
            .with_label_values(&[listener])
            .inc();
    }

    /// A producer's batches appended to a partition of `topic`.
    pub fn produced(&self, topic: &str, bytes: usize, records: u64) {
        self.topic_bytes_in
            .with_label_values(&[topic])
            .inc_by(bytes as u64);
        self.topic_records_in
            .with_label_values(&[topic])
            .inc_by(records);
    }

    /// Record bytes of `topic` returned to a consumer.
    pub fn fetched(&self, topic: &str, bytes: usize) {
        if bytes > 0 {
            self.topic_bytes_out
                .with_label_values(&[topic])
                .inc_by(bytes as u64);
        }
    }

    /// An ISR change this broker asked for as leader was committed.
    pub fn isr_changed(&self, shrunk: bool) {
        if shrunk {
            self.isr_shrinks.inc();
        } else {
            self.isr_expands.inc();
        }
    }

    /// Drops the per-topic series of topics that no longer exist.
    fn forget_deleted_topics(&self, exists: impl Fn(&str) -> bool) {
        for vec in [
            &self.topic_bytes_in,
            &self.topic_records_in,
            &self.topic_bytes_out,
        ] {
            let gone: Vec<String> = vec
                .collect()
                .iter()
                .flat_map(|family| family.get_metric())
                .filter_map(|m| {
                    let topic = m.get_label().iter().find(|l| l.name() == "topic")?;
                    (!exists(topic.value())).then(|| topic.value().to_string())
                })
                .collect();
            for topic in gone {
                let _ = vec.remove_label_values(&[&topic]);
            }
        }
    }

    /// Reports the expiry of the certificate `acceptor` serves on `listener`.
    pub fn watch_certificate(&self, listener: &str, acceptor: TlsAcceptor) {
        self.served
            .lock_unpoisoned()
            .push((listener.to_string(), acceptor));
    }

    /// Each served certificate's expiry, after looking for a renewal on disk (a few `stat`s):
    /// the figure is the certificate the next connection gets.
    fn measure_certificates(&self) {
        for (listener, acceptor) in self.served.lock_unpoisoned().iter() {
            // A renewal that cannot be loaded yet keeps the previous certificate, reported.
            let _ = acceptor.reload_if_changed();
            match acceptor.certificate_not_after() {
                Some(at) => self
                    .certificate_expiry
                    .with_label_values(&[listener])
                    .set(at),
                None => {
                    let _ = self.certificate_expiry.remove_label_values(&[listener]);
                }
            }
        }
    }

    /// The exposition: state measured now, then everything in Prometheus' text format.
    pub fn render(&self, broker: &Broker) -> String {
        self.forget_deleted_topics(|t| broker.topics.get(t).is_some());
        self.state.measure(broker);
        self.process.measure();
        self.measure_certificates();
        let mut out = Vec::with_capacity(16 * 1024);
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "cannot encode the metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Keeps a request counted in its purgatory.
#[derive(Debug)]
pub struct PurgatoryGuard(IntGauge);

impl Drop for PurgatoryGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Keeps a connection counted as open.
#[derive(Debug)]
pub struct ConnectionGuard(IntGauge);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_api_handles_count_only_served_apis_and_observe_latency() {
        let m = Metrics::default();
        m.request(0);
        m.request(0);
        m.request(-5);
        m.request(9999);
        m.answered(0, Duration::from_millis(3));
        m.waited(ApiKey::Produce, Duration::from_millis(2));
        let families = m.registry.gather();
        let family = |name: &str| {
            families
                .iter()
                .find(|f| f.name() == name)
                .unwrap_or_else(|| panic!("{name} missing"))
        };
        let produce = |name: &str| {
            family(name)
                .get_metric()
                .iter()
                .find(|m| m.get_label()[0].value() == "Produce")
                .unwrap()
                .clone()
        };
        assert_eq!(
            produce("krait_requests_total").get_counter().get_value(),
            2.0
        );
        let total = produce("krait_request_duration_seconds");
        assert_eq!(total.get_histogram().get_sample_count(), 1);
        assert!((total.get_histogram().get_sample_sum() - 0.003).abs() < 1e-9);
        let remote = produce("krait_request_remote_duration_seconds");
        assert_eq!(remote.get_histogram().get_sample_count(), 1);
        // Every served API has its series from the start, at zero.
        assert_eq!(
            family("krait_requests_total").get_metric().len(),
            SERVED.len()
        );
    }

    #[test]
    fn guards_count_while_held_and_deleted_topics_lose_their_series() {
        let m = Metrics::default();
        let open = |m: &Metrics| m.connections_open.with_label_values(&["PLAIN"]).get();
        {
            let _a = m.connection_opened("PLAIN");
            let _b = m.connection_opened("PLAIN");
            assert_eq!(open(&m), 2);
            let _w = m.in_purgatory(Purgatory::Fetch);
            assert_eq!(m.purgatory_fetch.get(), 1);
        }
        assert_eq!(open(&m), 0);
        assert_eq!(m.purgatory_fetch.get(), 0);
        assert_eq!(m.connections.with_label_values(&["PLAIN"]).get(), 2);

        m.produced("kept", 100, 3);
        m.produced("gone", 50, 1);
        m.fetched("gone", 10);
        m.forget_deleted_topics(|t| t == "kept");
        let topics: Vec<String> = m
            .topic_bytes_in
            .collect()
            .iter()
            .flat_map(|f| f.get_metric())
            .map(|m| m.get_label()[0].value().to_string())
            .collect();
        assert_eq!(topics, vec!["kept".to_string()]);
        assert_eq!(m.topic_records_in.with_label_values(&["kept"]).get(), 3);
    }
}
