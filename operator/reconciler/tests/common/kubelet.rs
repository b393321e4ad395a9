//! Plays the StatefulSet controller and the kubelet for one cluster on the fake API server,
//! with real `krait-broker` processes on 127.0.0.1: each `tick` makes the pods match the
//! StatefulSet (create missing ordinals from the current template, delete ordinals above
//! `spec.replicas`), starts a broker for every new pod from the template's own command line and
//! environment (the ConfigMap through `envFrom`, the downward API), stops the broker of every
//! pod that was deleted (SIGTERM, as the kubelet does), reports each pod's readiness from the
//! broker's `/readyz`, and writes the StatefulSet's status (revisions, replica counts).
//!
//! The pods' DNS names and container ports are mapped to loopback ports, one set per ordinal,
//! so the template's `--voters`, `--advertise` and listeners work unchanged otherwise. A
//! broker's data directory outlives its pod, as a PersistentVolumeClaim does. Secret volumes
//! (plain or projected) are written into a directory per pod at its start and rewritten on
//! every tick, as the kubelet updates them in place; arguments naming a file under their
//! mount path name the pod's copy.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use krait_operator::cluster_admin::{ClusterAdmin, WireClusterAdmin};
use krait_operator::context::Context;
use krait_operator::kafka::{
    AdminEndpoint, AdminError, KafkaConnector, RdKafkaConnector, TopicAdmin,
};
use krait_operator::user_admin::{UserAdmin, WireUserAdmin};
use serde_json::{Value, json};

use super::FakeApi;

pub const NS: &str = "kafka";
pub const STATEFULSETS: &str = "/apis/apps/v1/namespaces/kafka/statefulsets";
pub const PODS: &str = "/api/v1/namespaces/kafka/pods";
pub const CONFIGMAPS: &str = "/api/v1/namespaces/kafka/configmaps";
pub const SECRETS: &str = "/api/v1/namespaces/kafka/secrets";

/// Where a test on real brokers starts: the fake API server holding KafkaCluster `main` in
/// namespace `kafka` with `spec`, the kubelet that runs its brokers (`KRAIT_BROKER_BIN`), the
/// connector that reaches them over loopback, and a reconciler context using both.
pub fn cluster_main(spec: Value) -> (FakeApi, Kubelet, Arc<Loopback>, Arc<Context>) {
    let api = FakeApi::default();
    let kubelet = Kubelet::new(&api, &super::broker::broker_bin(), "main");
    let connector = Arc::new(Loopback(kubelet.ports.clone()));
    let ctx = super::context_with(&api, connector.clone());
    api.put(
        "/apis/krait.dev/v1alpha1/namespaces/kafka/kafkaclusters",
        json!({"apiVersion": "krait.dev/v1alpha1", "kind": "KafkaCluster",
        "metadata": {"name": "main", "namespace": "kafka", "uid": "c1", "generation": 1},
        "spec": spec}),
    );
    (api, kubelet, connector, ctx)
}

/// What happened to a broker process, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Started(i32),
    Stopped(i32),
}

/// Loopback ports standing in for each ordinal's container ports, shared with the test's
/// Kafka connector.
#[derive(Debug, Clone, Default)]
pub struct PortMap(Arc<Mutex<BTreeMap<(i32, i32), u16>>>);

impl PortMap {
    /// The loopback port of `container_port` on broker `id`, allocated on first use.
    pub fn port(&self, id: i32, container_port: i32) -> u16 {
        *self
            .0
            .lock()
            .unwrap()
            .entry((id, container_port))
            .or_insert_with(free_port)
    }

    /// `127.0.0.1:PORT` of every broker's Kafka listener (`kafka_port`) known so far.
    pub fn kafka_addresses(&self, kafka_port: i32) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|((_, p), _)| *p == kafka_port)
            .map(|(_, port)| format!("127.0.0.1:{port}"))
            .collect()
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Running {
    child: Child,
    http: u16,
    ready: bool,
}

pub struct Kubelet {
    api: FakeApi,
    bin: PathBuf,
    cluster: String,
    root: tempfile::TempDir,
    pub ports: PortMap,
    running: BTreeMap<i32, Running>,
    pub events: Vec<Event>,
    pods_created: u64,
    /// Restart a broker that exited by itself, as `restartPolicy: Always` does (after a
    /// back-off, its exit in the pod's `lastState`); by default such an exit fails the test.
    pub restart_exited: bool,
    /// Brokers that exited by themselves, and when the kubelet starts them again.
    backing_off: BTreeMap<i32, Instant>,
}

/// How long an exited broker waits before its restart (the kubelet's first back-off is 10 s).
const RESTART_BACKOFF: Duration = Duration::from_secs(2);

impl Kubelet {
    pub fn new(api: &FakeApi, bin: &Path, cluster: &str) -> Self {
        Self {
            api: api.clone(),
            bin: bin.to_path_buf(),
            cluster: cluster.to_string(),
            root: tempfile::tempdir().unwrap(),
            ports: PortMap::default(),
            running: BTreeMap::new(),
            events: Vec::new(),
            pods_created: 0,
            restart_exited: false,
            backing_off: BTreeMap::new(),
        }
    }

    fn pod_name(&self, id: i32) -> String {
        format!("{}-{id}", self.cluster)
    }

    /// Brokers whose process runs.
    pub fn running(&self) -> Vec<i32> {
        self.running.keys().copied().collect()
    }

    /// Where broker `id` logs.
    pub fn log(&self, id: i32) -> PathBuf {
        self.root.path().join(format!("broker-{id}.log"))
    }

    /// Where broker `id` writes its termination message (the container's
    /// `terminationMessagePath`).
    fn termination_log(&self, id: i32) -> PathBuf {
        self.root.path().join(format!("termination-{id}.log"))
    }

    /// Broker `id`'s volume is lost: its process is killed (SIGKILL), its data directory
    /// wiped, and its pod deleted, as when a node and its disk are gone; the next `tick`
    /// recreates the pod, whose broker starts on an empty directory.
    pub fn lose_volume(&mut self, id: i32) {
        if let Some(mut running) = self.running.remove(&id) {
            let _ = running.child.kill();
            let _ = running.child.wait();
            self.events.push(Event::Stopped(id));
        }
        self.backing_off.remove(&id);
        let data = self.root.path().join(format!("data-{id}"));
        if data.exists() {
            std::fs::remove_dir_all(&data).unwrap();
        }
        self.api.delete_stored(PODS, &self.pod_name(id));
    }

    /// One pass of the StatefulSet controller and the kubelet.
    pub fn tick(&mut self) {
        let Some(mut sts) = self.api.get(STATEFULSETS, &self.cluster) else {
            return;
        };
        let replicas = sts["spec"]["replicas"].as_i64().unwrap_or(0) as i32;
        let revision = revision(&sts["spec"]["template"]);
        // Pods the operator deleted: their broker stops.
        let gone: Vec<i32> = self
            .running
            .keys()
            .copied()
            .filter(|&id| self.api.get(PODS, &self.pod_name(id)).is_none())
            .collect();
        for id in gone {
            self.stop(id);
        }
        self.backing_off.retain(|&id, _| {
            self.api
                .get(PODS, &format!("{}-{id}", self.cluster))
                .is_some()
        });
        let due: Vec<i32> = self
            .backing_off
            .iter()
            .filter(|(_, at)| Instant::now() >= **at)
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            self.backing_off.remove(&id);
            if let Some(pod) = self.api.get(PODS, &self.pod_name(id)) {
                self.start(id, &pod);
            }
        }
        // Scale-down: the StatefulSet controller deletes ordinals at or above replicas.
        let extra: Vec<i32> = self
            .running
            .keys()
            .copied()
            .filter(|&id| id >= replicas)
            .collect();
        for id in extra {
            self.api.delete_stored(PODS, &self.pod_name(id));
            self.stop(id);
        }
        for id in 0..replicas {
            if self.api.get(PODS, &self.pod_name(id)).is_none() {
                self.create_pod(&sts, id, &revision);
            }
        }
        let running: Vec<i32> = self.running.keys().copied().collect();
        for id in running {
            if let Some(pod) = self.api.get(PODS, &self.pod_name(id)) {
                self.mount_secrets(id, &pod);
            }
        }
        self.report_readiness();
        sts["status"] = self.statefulset_status(&sts, replicas, &revision);
        self.api.put(STATEFULSETS, sts);
    }

    fn statefulset_status(&self, sts: &Value, replicas: i32, revision: &str) -> Value {
        let pods: Vec<Value> = (0..replicas)
            .filter_map(|id| self.api.get(PODS, &self.pod_name(id)))
            .collect();
        let updated = pods
            .iter()
            .filter(|p| p["metadata"]["labels"]["controller-revision-hash"] == revision)
            .count();
        let ready = pods.iter().filter(|p| pod_ready(p)).count();
        let current = if updated == pods.len() {
            json!(revision)
        } else {
            sts["status"]["currentRevision"].clone()
        };
        json!({
            "observedGeneration": sts["metadata"]["generation"],
            "replicas": pods.len(),
            "readyReplicas": ready,
            "updatedReplicas": updated,
            "currentRevision": current,
            "updateRevision": revision,
        })
    }

    fn create_pod(&mut self, sts: &Value, id: i32, revision: &str) {
        let template = &sts["spec"]["template"];
        let name = self.pod_name(id);
        let mut labels = template["metadata"]["labels"].clone();
        labels["controller-revision-hash"] = json!(revision);
        labels["apps.kubernetes.io/pod-index"] = json!(id.to_string());
        self.pods_created += 1;
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": labels,
                         "annotations": template["metadata"]["annotations"].clone(),
                         "uid": format!("pod-{}", self.pods_created)},
            "spec": template["spec"].clone(),
            "status": {"conditions": [{"type": "Ready", "status": "False"}]},
        });
        self.api.put(PODS, pod.clone());
        self.start(id, &pod);
    }

    /// Starts the broker of `pod` from its container's command line and environment.
    fn start(&mut self, id: i32, pod: &Value) {
        let container = &pod["spec"]["containers"][0];
        let name = pod["metadata"]["name"].as_str().unwrap().to_string();
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        for from in container["envFrom"].as_array().into_iter().flatten() {
            let cm = from["configMapRef"]["name"].as_str().unwrap();
            let cm = self.api.get(CONFIGMAPS, cm).expect("the ConfigMap exists");
            for (k, v) in cm["data"].as_object().into_iter().flatten() {
                if k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    env.insert(k.clone(), v.as_str().unwrap().to_string());
                }
            }
        }
        for var in container["env"].as_array().into_iter().flatten() {
            let secret_ref = &var["valueFrom"]["secretKeyRef"];
            if let Some(secret) = secret_ref["name"].as_str() {
                // As the kubelet: a missing Secret or key keeps the pod from starting.
                let secret = self
                    .api
                    .get(SECRETS, secret)
                    .unwrap_or_else(|| panic!("Secret {secret} of pod {id} is missing"));
                let key = secret_ref["key"].as_str().unwrap();
                let encoded = secret["data"][key]
                    .as_str()
                    .unwrap_or_else(|| panic!("Secret of pod {id} has no key {key}"));
                use base64::Engine as _;
                let value = base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .unwrap();
                env.insert(
                    var["name"].as_str().unwrap().to_string(),
                    String::from_utf8(value).unwrap(),
                );
                continue;
            }
            let value = match var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                Some("metadata.name") => name.clone(),
                Some(path) => {
                    let label = path
                        .strip_prefix("metadata.labels['")
                        .and_then(|l| l.strip_suffix("']"))
                        .unwrap_or_else(|| panic!("field path {path} not served"));
                    pod["metadata"]["labels"][label]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                }
                None => var["value"].as_str().unwrap_or_default().to_string(),
            };
            env.insert(var["name"].as_str().unwrap().to_string(), value);
        }
        let data = self.root.path().join(format!("data-{id}"));
        let mounts = self.mount_secrets(id, pod);
        let args: Vec<String> = container["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| self.localize(id, &expand(a.as_str().unwrap(), &env), &data))
            .map(|a| on_mounts(&a, &mounts))
            .collect();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(id))
            .unwrap();
        env.entry("KRAIT_LOG".into())
            .or_insert_with(|| "warn,krait_server=info".into());
        let _ = std::fs::remove_file(self.termination_log(id));
        let child = Command::new(&self.bin)
            .args(&args)
            .env_clear()
            .envs(&env)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.bin.display()));
        let http = self.ports.port(id, 9644);
        self.running.insert(
            id,
            Running {
                child,
                http,
                ready: false,
            },
        );
        self.events.push(Event::Started(id));
        // A restarted container runs again; its last exit stays in `lastState`.
        if let Some(mut pod) = self.api.get(PODS, &self.pod_name(id))
            && pod["status"]["containerStatuses"].is_array()
        {
            pod["status"]["containerStatuses"][0]["state"] = json!({"running": {}});
            self.api.put(PODS, pod);
        }
    }

    /// Writes the pod's Secret volumes (plain or projected) under its own directory; returns
    /// each mount path with the directory that stands in for it. A missing Secret is an error
    /// here, as it keeps a real pod from starting.
    fn mount_secrets(&self, id: i32, pod: &Value) -> Vec<(String, PathBuf)> {
        let mut mounts = Vec::new();
        let container = &pod["spec"]["containers"][0];
        for volume in pod["spec"]["volumes"].as_array().into_iter().flatten() {
            let name = volume["name"].as_str().unwrap();
            let sources: Vec<&Value> = match volume["projected"]["sources"].as_array() {
                Some(sources) => sources.iter().map(|s| &s["secret"]).collect(),
                None => vec![&volume["secret"]],
            };
            let sources: Vec<&Value> = sources.into_iter().filter(|s| s.is_object()).collect();
            let mount = container["volumeMounts"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|m| m["name"] == name);
            let (Some(mount), false) = (mount, sources.is_empty()) else {
                continue;
            };
            let dir = self.root.path().join(format!("pod-{id}-{name}"));
            std::fs::create_dir_all(&dir).unwrap();
            for source in sources {
                let secret_name = source["name"]
                    .as_str()
                    .or_else(|| source["secretName"].as_str())
                    .unwrap();
                let secret = self
                    .api
                    .get(SECRETS, secret_name)
                    .unwrap_or_else(|| panic!("Secret {secret_name} of pod {id} is missing"));
                write_secret(&dir, &secret, source["items"].as_array());
            }
            let path = mount["mountPath"].as_str().unwrap().to_string();
            mounts.push((path, dir));
        }
        mounts
    }

    /// Maps the pod's addresses onto loopback: its data directory, `0.0.0.0:P` listeners and
    /// every `<cluster>-K.<headless>.<ns>.svc:P` name, also as `NAME://HOST:P` in the Kafka
    /// keys of `--override=KEY=VALUE`.
    fn localize(&self, id: i32, arg: &str, data: &Path) -> String {
        if arg.starts_with("--data-dir=") {
            return format!("--data-dir={}", data.display());
        }
        if arg.starts_with("--termination-message-path=") {
            return format!(
                "--termination-message-path={}",
                self.termination_log(id).display()
            );
        }
        let Some((mut flag, mut value)) = arg.split_once('=') else {
            return arg.to_string();
        };
        let keyed;
        if flag == "--override" {
            let Some((key, rest)) = value.split_once('=') else {
                return arg.to_string();
            };
            keyed = format!("{flag}={key}");
            (flag, value) = (keyed.as_str(), rest);
        }
        let mapped: Vec<String> = value
            .split(',')
            .map(|item| {
                let (prefix, address) = match (item.split_once('@'), item.split_once("://")) {
                    (Some((voter, address)), _) => (format!("{voter}@"), address),
                    (None, Some((listener, address))) => (format!("{listener}://"), address),
                    (None, None) => (String::new(), item),
                };
                let Some((host, port)) = address.rsplit_once(':') else {
                    return item.to_string();
                };
                let Ok(port) = port.parse::<i32>() else {
                    return item.to_string();
                };
                let owner = if host == "0.0.0.0" {
                    Some(id)
                } else {
                    host.strip_prefix(&format!("{}-", self.cluster))
                        .and_then(|rest| rest.split('.').next())
                        .and_then(|ordinal| ordinal.parse().ok())
                };
                match owner {
                    Some(owner) => format!("{prefix}127.0.0.1:{}", self.ports.port(owner, port)),
                    None => item.to_string(),
                }
            })
            .collect();
        format!("{flag}={}", mapped.join(","))
    }

    /// SIGTERM, as the kubelet sends, then SIGKILL after the grace period.
    fn stop(&mut self, id: i32) {
        let Some(mut running) = self.running.remove(&id) else {
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(running.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while running.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = running.child.kill();
                let _ = running.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.events.push(Event::Stopped(id));
    }

    /// Records broker `id`'s exit in its pod as the kubelet does (Ready False, the container
    /// waiting in CrashLoopBackOff with the exit and its termination message as `lastState`)
    /// and schedules its restart.
    fn exited(&mut self, id: i32, exit_code: i32) {
        let message = std::fs::read_to_string(self.termination_log(id)).unwrap_or_default();
        eprintln!("kubelet: broker {id} exited with {exit_code}: {message}");
        if let Some(mut pod) = self.api.get(PODS, &self.pod_name(id)) {
            let restarts = pod["status"]["containerStatuses"][0]["restartCount"]
                .as_i64()
                .unwrap_or(0);
            pod["status"]["conditions"] = json!([{"type": "Ready", "status": "False"}]);
            pod["status"]["containerStatuses"] = json!([{
                "name": "broker", "ready": false, "restartCount": restarts + 1,
                "image": "krait:test", "imageID": "",
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": exit_code, "message": message}},
            }]);
            self.api.put(PODS, pod);
        }
        self.backing_off
            .insert(id, Instant::now() + RESTART_BACKOFF);
    }

    fn report_readiness(&mut self) {
        let ids: Vec<i32> = self.running.keys().copied().collect();
        for id in ids {
            let running = self.running.get_mut(&id).unwrap();
            if let Some(status) = running.child.try_wait().unwrap() {
                assert!(
                    self.restart_exited,
                    "broker {id} exited by itself ({status}); its log:\n{}",
                    std::fs::read_to_string(self.log(id)).unwrap_or_default()
                );
                self.running.remove(&id);
                self.events.push(Event::Stopped(id));
                self.exited(id, status.code().unwrap_or(-1));
                continue;
            }
            let ready = readyz(running.http);
            if ready == running.ready {
                continue;
            }
            running.ready = ready;
            let name = self.pod_name(id);
            if let Some(mut pod) = self.api.get(PODS, &name) {
                pod["status"]["conditions"] =
                    json!([{"type": "Ready", "status": if ready { "True" } else { "False" }}]);
                self.api.put(PODS, pod);
            }
        }
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        for running in self.running.values_mut() {
            let _ = running.child.kill();
            let _ = running.child.wait();
        }
    }
}

fn pod_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// The StatefulSet controller names revisions by a hash of the pod template.
fn revision(template: &Value) -> String {
    format!(
        "r{}",
        krait_operator::names::stable_hash(template.to_string().as_bytes())
    )
}

/// Writes a Secret's data (or the listed `items`) into `dir`, each file replaced whole, as the
/// kubelet swaps a volume's contents atomically.
fn write_secret(dir: &Path, secret: &Value, items: Option<&Vec<Value>>) {
    use base64::Engine as _;
    let data = secret["data"].as_object().cloned().unwrap_or_default();
    let files: Vec<(String, String)> = match items {
        Some(items) => items
            .iter()
            .map(|i| {
                (
                    i["key"].as_str().unwrap().into(),
                    i["path"].as_str().unwrap().into(),
                )
            })
            .collect(),
        None => data.keys().map(|k| (k.clone(), k.clone())).collect(),
    };
    for (key, path) in files {
        let encoded = data[&key].as_str().unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        let target = dir.join(&path);
        if std::fs::read(&target).ok().as_deref() == Some(&bytes[..]) {
            continue;
        }
        let staged = dir.join(format!(".{path}.new"));
        std::fs::write(&staged, bytes).unwrap();
        std::fs::rename(&staged, &target).unwrap();
    }
}

/// An argument whose value names a file under a mount path (also a Kafka key's, in
/// `--override=KEY=VALUE`), pointed at the pod's copy.
fn on_mounts(arg: &str, mounts: &[(String, PathBuf)]) -> String {
    let Some((flag, value)) = arg.rsplit_once('=') else {
        return arg.to_string();
    };
    for (path, dir) in mounts {
        if let Some(rest) = value.strip_prefix(&format!("{path}/")) {
            return format!("{flag}={}", dir.join(rest).display());
        }
    }
    arg.to_string()
}

/// `$(VAR)` references, as the kubelet expands them from the container's env.
fn expand(arg: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = arg.to_string();
    for (k, v) in env {
        out = out.replace(&format!("$({k})"), v);
    }
    out
}

/// Whether the broker's `/readyz` answers 200.
fn readyz(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200")
}

/// Sends the operator's admin traffic to the loopback brokers: the port of the listener the
/// operator chose on every broker, with that listener's security (TLS trust and credentials as
/// the operator read them; the host name is not checked, as loopback is not what the
/// certificates name).
pub struct Loopback(pub PortMap);

impl Loopback {
    /// Every broker's loopback address for container port `port`.
    pub fn bootstrap(&self, port: i32) -> String {
        self.0.kafka_addresses(port).join(",")
    }

    fn endpoint(&self, endpoint: &AdminEndpoint) -> AdminEndpoint {
        let port = endpoint
            .bootstrap
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .expect("a HOST:PORT bootstrap address");
        endpoint.at(&self.bootstrap(port))
    }
}

impl KafkaConnector for Loopback {
    fn cluster_id(&self, endpoint: &AdminEndpoint) -> BoxFuture<'static, Option<String>> {
        RdKafkaConnector::default().cluster_id(&self.endpoint(endpoint))
    }

    fn topic_admin(&self, endpoint: &AdminEndpoint) -> Result<Box<dyn TopicAdmin>, AdminError> {
        RdKafkaConnector::default().topic_admin(&self.endpoint(endpoint))
    }

    fn cluster_admin(&self, endpoint: &AdminEndpoint) -> Box<dyn ClusterAdmin> {
        Box::new(WireClusterAdmin::new(
            &self.endpoint(endpoint),
            Duration::from_secs(5),
        ))
    }

    fn user_admin(&self, endpoint: &AdminEndpoint) -> Box<dyn UserAdmin> {
        Box::new(WireUserAdmin::new(
            &self.endpoint(endpoint),
            Duration::from_secs(5),
        ))
    }
}
