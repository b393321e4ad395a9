//! The operator's metrics, dashboard and alerts against a real Prometheus (Debian's package,
//! installed by `tests/setup test`) scraping the operator's own `/metrics` endpoint and the real
//! `krait-broker` processes it runs: the fake API server holds the objects and
//! `common::kubelet` plays the StatefulSet controller and the kubelet, as in
//! `scaling_brokers.rs`.
//!
//! The operator's per-cluster series are read from its controller cache at each scrape; here
//! the test feeds that cache the KafkaCluster after every reconcile, as the watch would.
//!
//! Checked: `promtool check metrics` on the operator's output, and `docs/metrics.md`'s operator
//! table against it both ways; a scale-up shows in `krait_operator_cluster_operation` while it
//! runs and not after; every query of the chart's *Krait / Operator* dashboard returns series;
//! every rule of the chart's rule file parses and runs; a failed reconcile fires
//! `KraitOperatorReconcileErrors`; a cluster whose CA and certificates are valid two days fires
//! `KraitCertificateExpiringSoon` (the operator's CA) and `KraitBrokerCertificateExpiringSoon`
//! (the certificate the brokers serve on the cluster port). Each rule's `for` is shortened to
//! 1 s so the test does not wait out production hold times; the expressions are the chart's.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use common::broker::broker_bin;
use common::kubelet::{Kubelet, Loopback, STATEFULSETS};
use common::workload::Workload;
use common::{FakeApi, context_with};
use krait_crd::KafkaCluster;
use krait_operator::cluster::reconcile;
use krait_operator::context::Context;
use krait_operator::http::{self, Health};
use krait_operator::kafka::{AdminEndpoint, KafkaConnector};
use krait_operator::names::HTTP_PORT;
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use serde_json::{Value, json};

const CLUSTERS: &str = "/apis/krait.dev/v1alpha1/namespaces/kafka/kafkaclusters";
const KAFKA_PORT: i32 = 9092;
const LONG: Duration = Duration::from_secs(120);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("{name} is missing: `tests/setup test` installs Debian's prometheus package")
    })
}

/// `GET path` on 127.0.0.1:`port` (HTTP/1.0, so the body is not chunked): status and body.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

fn percent_encoded(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

struct Prometheus {
    port: u16,
    child: Child,
    log: PathBuf,
}

impl Prometheus {
    /// Scrapes the brokers' `http` ports (with the labels the chart's PodMonitor gives them)
    /// and the operator (with `honor_labels`, as the chart's ServiceMonitor does) every second.
    fn start(dir: &Path, brokers: &[u16], operator: u16, rules: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let targets: Vec<String> = brokers.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let config = json!({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [rules],
            "scrape_configs": [
                {"job_name": "krait", "static_configs": [
                    {"targets": targets, "labels": {"krait_cluster": "main", "namespace": "kafka"}}]},
                {"job_name": "krait-operator", "honor_labels": true, "static_configs": [
                    {"targets": [format!("127.0.0.1:{operator}")],
                     "labels": {"namespace": "krait-system"}}]},
            ],
        });
        let file = dir.join("prometheus.yml");
        std::fs::write(&file, serde_yaml::to_string(&config).unwrap()).unwrap();
        let log = dir.join("prometheus.log");
        let child = Command::new(tool("prometheus"))
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting prometheus");
        Self { port, child, log }
    }

    fn api(&self, path: &str) -> Value {
        let (_, body) = get(self.port, &format!("/api/v1/{path}"))
            .unwrap_or_else(|| panic!("Prometheus did not answer {path}; see {:?}", self.log));
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    }

    /// The result of an instant query; panics if it does not parse or run.
    fn query(&self, expr: &str) -> Vec<Value> {
        let answer = self.api(&format!("query?query={}", percent_encoded(expr)));
        assert_eq!(answer["status"], "success", "{expr}: {answer}");
        answer["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The one value of an instant query that returns one series.
    fn value(&self, expr: &str) -> Option<f64> {
        let result = self.query(expr);
        let [series] = result.as_slice() else {
            return None;
        };
        series["value"][1].as_str()?.parse().ok()
    }

    /// Alert name -> state (`pending` or `firing`) of the active alerts.
    fn alerts(&self) -> BTreeMap<String, String> {
        let answer = self.api("alerts");
        answer["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                let name = a["labels"]["alertname"].as_str().unwrap_or_default();
                (
                    name.to_string(),
                    a["state"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The chart's rule file with every `for` shortened to 1 s.
fn shortened_rules(dir: &Path) -> (PathBuf, Vec<(String, String)>) {
    let text =
        std::fs::read_to_string(repo().join("charts/krait-operator/files/alerts.yaml")).unwrap();
    let mut rules: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let mut exprs = Vec::new();
    for group in rules["groups"].as_sequence_mut().unwrap() {
        for rule in group["rules"].as_sequence_mut().unwrap() {
            let name = rule["alert"].as_str().unwrap().to_string();
            exprs.push((name, rule["expr"].as_str().unwrap().to_string()));
            if let Some(m) = rule.as_mapping_mut()
                && m.contains_key("for")
            {
                m.insert("for".into(), "1s".into());
            }
        }
    }
    let path = dir.join("alerts.yaml");
    std::fs::write(&path, serde_yaml::to_string(&rules).unwrap()).unwrap();
    (path, exprs)
}

/// Every query of the operator dashboard, with its variables as Grafana fills them when every
/// cluster is selected at a 1 s scrape interval.
fn dashboard_queries() -> Vec<(String, String)> {
    let path = repo().join("charts/krait-operator/files/dashboards/krait-operator.json");
    let board: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = Vec::new();
    for panel in board["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$cluster", ".*")
                .replace("$__rate_interval", "15s")
                .replace("$__range", "5m");
            out.push((panel["title"].as_str().unwrap().to_string(), expr));
        }
    }
    out
}

/// The `krait_operator_*` metrics of docs/metrics.md's tables.
fn documented() -> BTreeSet<String> {
    let docs = std::fs::read_to_string(repo().join("docs/metrics.md")).unwrap();
    docs.lines()
        .filter_map(|l| l.strip_prefix("| `krait_operator_"))
        .filter_map(|l| l.split_once('`'))
        .map(|(name, _)| format!("krait_operator_{name}"))
        .collect()
}

struct Harness {
    api: FakeApi,
    ctx: Arc<Context>,
    kubelet: Kubelet,
    /// The operator's KafkaCluster cache, fed as its watch would.
    cache: Writer<KafkaCluster>,
    /// Every Progressing reason seen, in order, without repeats.
    reasons: Vec<String>,
}

impl Harness {
    fn cluster(&self) -> KafkaCluster {
        serde_json::from_value(self.api.get(CLUSTERS, "main").unwrap()).unwrap()
    }

    fn edit_spec(&self, edit: impl FnOnce(&mut Value)) {
        let mut c = self.api.get(CLUSTERS, "main").unwrap();
        edit(&mut c["spec"]);
        c["metadata"]["generation"] = json!(c["metadata"]["generation"].as_i64().unwrap() + 1);
        self.api.put(CLUSTERS, c);
    }

    /// One pass: the kubelet, one reconcile (its failure is counted, not fatal), the cache.
    async fn step(&mut self) -> KafkaCluster {
        tokio::task::block_in_place(|| self.kubelet.tick());
        self.reconcile().await
    }

    /// One reconcile (its failure is counted, not fatal), then the cache; the kubelet idles,
    /// as while a new pod's image is pulled.
    async fn reconcile(&mut self) -> KafkaCluster {
        if let Err(error) = reconcile::reconcile(Arc::new(self.cluster()), self.ctx.clone()).await {
            eprintln!("reconcile: {error}");
        }
        let cluster = self.cluster();
        self.cache
            .apply_watcher_event(&watcher::Event::Apply(cluster.clone()));
        let reason = progressing(&cluster);
        if self.reasons.last() != Some(&reason) {
            eprintln!("[{:?}] Progressing: {reason}", Instant::now());
            self.reasons.push(reason);
        }
        cluster
    }

    /// Steps until `done` holds, for at most `limit`.
    async fn until(&mut self, what: &str, limit: Duration, done: impl Fn(&KafkaCluster) -> bool) {
        let started = Instant::now();
        loop {
            let cluster = self.step().await;
            if done(&cluster) {
                eprintln!("{what}: {:.1} s", started.elapsed().as_secs_f64());
                return;
            }
            assert!(
                started.elapsed() < limit,
                "{what}: not reached in {limit:?}; status {:#?}",
                cluster.status
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    fn statefulset_replicas(&self) -> i64 {
        self.api
            .get(STATEFULSETS, "main")
            .and_then(|s| s["spec"]["replicas"].as_i64())
            .unwrap_or(0)
    }
}

async fn create_topic(bootstrap: &str, name: &str, partitions: i32, rf: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "3")
        .create()
        .unwrap();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(rf));
    for r in admin.create_topics(&[topic], &opts).await.unwrap() {
        r.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
    }
}

fn progressing(cluster: &KafkaCluster) -> String {
    cluster
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Progressing"))
        .map(|c| c.reason.clone())
        .unwrap_or_default()
}

fn steady(cluster: &KafkaCluster, brokers: i32) -> bool {
    cluster
        .status
        .as_ref()
        .is_some_and(|s| s.ready_brokers == brokers)
        && progressing(cluster) == "UpToDate"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs KRAIT_BROKER_BIN and Debian's prometheus (tests/setup and tests/run provide both)"]
async fn prometheus_scraping_the_operator_and_its_brokers_runs_the_operator_dashboard_and_alerts() {
    let prometheus_bin = tool("prometheus");
    let promtool = tool("promtool");
    let bin = broker_bin();
    let api = FakeApi::default();
    let kubelet = Kubelet::new(&api, &bin, "main");
    let ports = kubelet.ports.clone();
    let connector = Arc::new(Loopback(ports.clone()));
    let ctx = context_with(&api, connector.clone());
    let (cache_reader, cache) = reflector::store::<KafkaCluster>();
    ctx.metrics.watch_clusters(cache_reader);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let operator_port = listener.local_addr().unwrap().port();
    tokio::spawn(http::serve(
        listener,
        Arc::new(Health {
            ready: AtomicBool::new(true),
            metrics: ctx.metrics.clone(),
        }),
    ));
    // Certificates valid two days: both certificate alerts' 7-day threshold is crossed.
    api.put(
        CLUSTERS,
        json!({"apiVersion": "krait.dev/v1alpha1", "kind": "KafkaCluster",
        "metadata": {"name": "main", "namespace": "kafka", "uid": "c1", "generation": 1},
        "spec": {"replicas": 3, "image": "krait:test", "storage": {"ephemeral": true},
                 "listeners": [{"name": "plain", "port": KAFKA_PORT, "type": "internal"}],
                 "clusterCa": {"validityDays": 2, "renewalDays": 1},
                 "defaultReplicationFactor": 3, "minInsyncReplicas": 2}}),
    );
    let mut h = Harness {
        api,
        ctx,
        kubelet,
        cache,
        reasons: Vec::new(),
    };
    let plain = AdminEndpoint::plaintext(&format!("main-bootstrap.kafka.svc:{KAFKA_PORT}"));
    let deadline = Instant::now() + LONG;
    loop {
        h.step().await;
        let state = connector.cluster_admin(&plain).observe().await.ok();
        let registered: BTreeSet<i32> = state
            .map(|k| k.brokers.iter().map(|b| b.id).collect())
            .unwrap_or_default();
        if steady(&h.cluster(), 3) && registered == BTreeSet::from([0, 1, 2]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "three brokers did not form a cluster"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let bootstrap = connector.bootstrap(KAFKA_PORT);
    create_topic(&bootstrap, "orders", 6, 3).await;
    let workload = Workload::start(&bootstrap, "orders", 6, 300);
    let started = Instant::now();
    while workload.acknowledged() < 600 {
        assert!(
            started.elapsed() < LONG,
            "the workload acknowledged too little"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let dir = tempfile::tempdir().unwrap();
    let (rules, exprs) = shortened_rules(dir.path());
    let brokers: Vec<u16> = (0..4).map(|id| ports.port(id, HTTP_PORT)).collect();
    assert!(prometheus_bin.is_file());
    let prom = Prometheus::start(dir.path(), &brokers, operator_port, &rules);
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(prom.port, "/-/ready").is_none_or(|(status, _)| status != 200) {
        assert!(
            Instant::now() < deadline,
            "Prometheus did not start; see {:?}",
            prom.log
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    while prom.value("count(up == 1)") != Some(4.0) {
        assert!(
            Instant::now() < deadline,
            "Prometheus did not scrape the operator and three brokers; see {:?}",
            prom.log
        );
        h.step().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // A reconcile that fails (the API server refuses the StatefulSet's apply), then a
    // scale-up 3 -> 4 that spreads partitions onto the new broker.
    h.edit_spec(|s| s["replicas"] = json!(4));
    h.api.fail_write_in(0);
    // The new broker's pod takes 3 s to start, so the scale-up spans several scrapes.
    let pulling = Instant::now();
    while pulling.elapsed() < Duration::from_secs(3) {
        h.reconcile().await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(h.statefulset_replicas(), 4, "the StatefulSet grew at once");
    assert_eq!(progressing(&h.cluster()), "WaitingForBrokers");
    h.until("scale 3 -> 4 done", LONG, |c| {
        steady(c, 4)
            && c.status
                .as_ref()
                .and_then(|s| s.rebalance.as_ref())
                .is_some_and(|r| r.trigger == "ScaleUp" && r.state == "Complete")
    })
    .await;
    assert_eq!(h.statefulset_replicas(), 4);
    assert!(
        h.reasons.iter().any(|r| r == "Rebalancing"),
        "{:?}",
        h.reasons
    );
    let scale_up = r#"krait_operator_cluster_operation{krait_cluster="main", namespace="kafka", operation="scale-up"}"#;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        h.step().await;
        if prom.value(scale_up) == Some(0.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "scale-up still reported after it finished"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        prom.value(&format!("max_over_time({scale_up}[10m])")),
        Some(1.0),
        "Prometheus saw the scale-up under way"
    );
    assert_eq!(
        prom.value(r#"max_over_time(krait_operator_cluster_operation{operation="roll"}[10m])"#),
        Some(0.0),
        "no roll was reported for a scale-up"
    );
    assert_eq!(
        prom.value(
            r#"sum(krait_operator_reconcile_errors_total{kind="KafkaCluster", reason="apply"})"#
        ),
        Some(1.0)
    );
    assert_eq!(
        prom.value(
            r#"krait_operator_cluster_brokers_ready{krait_cluster="main", namespace="kafka"}"#
        ),
        Some(4.0),
        "honor_labels keeps the cluster's namespace"
    );

    // Every dashboard query returns series; reconciles keep running so rates have samples.
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut pending = dashboard_queries();
    while !pending.is_empty() {
        h.step().await;
        pending.retain(|(_, expr)| prom.query(expr).is_empty());
        assert!(
            Instant::now() < deadline,
            "operator dashboard queries without series: {pending:#?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for (name, expr) in &exprs {
        let answer = prom.api(&format!("query?query={}", percent_encoded(expr)));
        assert_eq!(answer["status"], "success", "{name}: {answer}");
    }
    let expected = [
        "KraitCertificateExpiringSoon",
        "KraitBrokerCertificateExpiringSoon",
        "KraitOperatorReconcileErrors",
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        h.step().await;
        let alerts = prom.alerts();
        if expected
            .iter()
            .all(|a| alerts.get(*a).map(String::as_str) == Some("firing"))
        {
            eprintln!("alerts: {alerts:?}");
            for never in [
                "KraitBrokerDown",
                "KraitOfflinePartitions",
                "KraitNoActiveController",
            ] {
                assert!(
                    !alerts.contains_key(never),
                    "{never} on a healthy cluster: {alerts:?}"
                );
            }
            break;
        }
        assert!(Instant::now() < deadline, "alerts: {alerts:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let days_left = prom
        .value(r#"min(krait_tls_certificate_expiry_timestamp_seconds{listener="cluster"} - time()) / 86400"#)
        .expect("the brokers report the cluster port's certificate");
    assert!((1.9..=2.0).contains(&days_left), "{days_left}");

    // The exposition itself: promtool's lint, and docs/metrics.md's operator table both ways.
    let (_, text) = get(operator_port, "/metrics").expect("the operator's /metrics");
    let mut check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let served: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    assert_eq!(served, documented(), "served vs docs/metrics.md");

    let audit = workload.finish(Duration::from_secs(60));
    assert_eq!(audit.lost, 0, "{audit:?}");
}
