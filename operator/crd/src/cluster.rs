//! `KafkaCluster` (krait.dev/v1alpha1): the desired shape of one Krait broker cluster and what
//! the operator last observed of it. Types and schema only; what a spec means is decided by the
//! operator's validation, not here.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, LocalObjectReference, ResourceRequirements, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::listener::{
    AuthenticationType, Authorization, AuthorizationType, DEFAULT_KAFKA_PORT, GenericListener,
    ListenerAuthentication, ListenerType,
};

/// A cluster of Krait brokers run as a StatefulSet: broker id = pod ordinal.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "krait.dev",
    version = "v1alpha1",
    kind = "KafkaCluster",
    namespaced,
    status = "KafkaClusterStatus",
    shortname = "kc",
    category = "krait",
    // `kubectl get kafkaclusters`: is it healthy (Ready, brokers ready/desired) and what is it
    // doing (the Progressing reason: RollingOut, Draining, RestartingBroker, UpToDate, ...).
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Brokers","type":"string","description":"Ready brokers / desired","jsonPath":".status.brokersReady"}"#,
    printcolumn = r#"{"name":"Progressing","type":"string","description":"What the operator is doing","jsonPath":".status.conditions[?(@.type==\"Progressing\")].reason"}"#,
    printcolumn = r#"{"name":"Image","type":"string","jsonPath":".spec.image"}"#,
    printcolumn = r#"{"name":"Degraded","type":"string","jsonPath":".status.conditions[?(@.type==\"Degraded\")].reason","priority":1}"#,
    printcolumn = r#"{"name":"Bootstrap","type":"string","jsonPath":".status.bootstrapAddress","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    // Cross-field rules the API server enforces at admission (the operator checks them too,
    // for clusters created before a rule existed).
    validation = Rule::new("!has(self.spec.defaultReplicationFactor) || self.spec.defaultReplicationFactor <= self.spec.replicas")
        .message("spec.defaultReplicationFactor must not exceed spec.replicas"),
    validation = Rule::new("!has(self.spec.minInsyncReplicas) || self.spec.minInsyncReplicas <= (has(self.spec.defaultReplicationFactor) ? self.spec.defaultReplicationFactor : 1)")
        .message("spec.minInsyncReplicas must not exceed the default replication factor")
)]
#[serde(rename_all = "camelCase")]
pub struct KafkaClusterSpec {
    /// Number of brokers. Broker ids are the pod ordinals 0..replicas-1.
    #[schemars(range(min = 1, max = 64))]
    pub replicas: i32,

    /// How many brokers vote in the metadata quorum (KRaft's controllers): 3 by default, and
    /// never more than `replicas`. Scaling up adds voters as new brokers join, and scaling down
    /// moves voters off the brokers that go before they go; a change of this field alone adds
    /// or removes voters one at a time. An odd number tolerates as many lost voters as the
    /// next even one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 9))]
    pub controllers: Option<i32>,

    /// Broker container image, e.g. `ghcr.io/krait-dev/krait-broker:0.1.0`.
    #[schemars(length(min = 1))]
    pub image: String,

    /// When the kubelet pulls the image; Kubernetes' default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,

    /// Secrets holding registry credentials for the image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,

    /// CPU and memory requests and limits of the broker container. A resource given neither a
    /// request nor a limit is requested by default: cpu 500m, memory 1Gi. A memory limit also
    /// sizes the broker: half of it is its memory budget, `memory.mb`, unless `config` sets that key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Where each broker keeps its data directory.
    pub storage: Storage,

    /// Broker configuration with Kafka's own names as keys (e.g. `log.retention.ms`), rendered
    /// into the brokers' ConfigMap. Keys the broker does not know are refused by validation.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,

    /// How clients reach the brokers: the Kafka listeners, each with its port, type, TLS and
    /// authentication. A new cluster without any gets one internal listener on port 9094 with
    /// TLS and SCRAM-SHA-512 (`tls`); a cluster made before listeners were a list keeps the
    /// plaintext listener it has. Names and ports are unique; at most one listener is
    /// `nodeport` or `loadbalancer`.
    #[serde(
        default,
        deserialize_with = "crate::listener::deserialize_listeners",
        skip_serializing_if = "Option::is_none"
    )]
    #[x_kube(validation = Rule::new("self.all(l, self.exists_one(m, m.name == l.name))").message("listener names must be unique"))]
    #[x_kube(validation = Rule::new("self.all(l, self.exists_one(m, m.port == l.port))").message("listener ports must be unique"))]
    #[x_kube(validation = Rule::new("self.filter(l, l.type != 'internal').size() <= 1").message("at most one listener can be nodeport or loadbalancer"))]
    #[schemars(length(min = 1, max = 8))]
    pub listeners: Option<Vec<GenericListener>>,

    /// ACLs enforced by the brokers; none (every authenticated or anonymous client may do
    /// everything) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,

    /// Spread brokers over failure domains and tell each broker its rack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<RackAwareness>,

    /// Overrides merged into the broker pods.
    #[serde(default)]
    pub pod_template: PodOverrides,

    /// Replication factor of topics created without one (`default.replication.factor`);
    /// at most `replicas`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub default_replication_factor: Option<i32>,

    /// Default `min.insync.replicas` of topics; at most the default replication factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub min_insync_replicas: Option<i32>,

    /// How partitions move when brokers are added or removed. Removing brokers always drains
    /// them first; on demand, annotate the cluster `krait.dev/rebalance=execute` (or
    /// `dry-run` to only write the plan's summary to `status.rebalance`).
    #[serde(default)]
    pub rebalance: RebalanceSpec,

    /// While true the operator changes nothing for this cluster (objects and status stay as
    /// they are), e.g. for manual maintenance.
    #[serde(default)]
    pub paused: bool,

    /// The cluster CA the operator runs for the brokers' cluster port (mutual TLS between
    /// brokers, each certificate naming its broker's node id): how long its certificates are
    /// valid and how early they are renewed.
    #[serde(default)]
    pub cluster_ca: CertificateAuthority,

    /// How Prometheus finds the brokers' metrics (`/metrics` on each broker pod's `http` port,
    /// 9644). Nothing is created when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsSpec>,
}

/// What the operator creates for scraping the brokers' metrics.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSpec {
    /// A Prometheus Operator `PodMonitor` (monitoring.coreos.com/v1) named
    /// `<cluster>-brokers`, owned by the cluster, selecting exactly this cluster's broker pods.
    /// Created only where the API server serves that kind (the Prometheus Operator's CRDs are
    /// installed); until then the `PodMonitorReady` condition says why there is none. Deleted
    /// when `enabled` turns false or `metrics` is removed.
    #[serde(default)]
    pub pod_monitor: PodMonitorSpec,
}

/// The cluster's `PodMonitor`: whether there is one, how often it scrapes, its labels.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodMonitorSpec {
    /// Create the PodMonitor.
    #[serde(default)]
    pub enabled: bool,

    /// How often Prometheus scrapes each broker, as a Prometheus duration (e.g. `30s`, `1m`,
    /// `1m30s`: units `y`, `w`, `d`, `h`, `m`, `s`, `ms`, largest first).
    #[serde(default = "default_scrape_interval")]
    #[schemars(length(min = 1), pattern(PROMETHEUS_DURATION_PATTERN))]
    pub interval: String,

    /// Labels of the PodMonitor, for the `podMonitorSelector` of the Prometheus that should
    /// pick it up (e.g. `release: prometheus`). The operator's own labels win on a clash.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A Prometheus duration, as the Prometheus Operator's CRDs accept one (without its bare
/// `0`, which is no scrape interval): whole numbers with units, largest first.
pub const PROMETHEUS_DURATION_PATTERN: &str =
    "^(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$";

impl Default for PodMonitorSpec {
    fn default() -> Self {
        Self {
            enabled: false,
            interval: default_scrape_interval(),
            labels: BTreeMap::new(),
        }
    }
}

fn default_scrape_interval() -> String {
    "30s".into()
}

/// Validity and renewal of a CA the operator generates and of the certificates it signs
/// (Strimzi's `clusterCa` names), or the cert-manager issuer that signs the brokers'
/// certificates instead.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(
    validation = Rule::new("self.renewalDays < self.validityDays")
        .message("clusterCa.renewalDays must be less than clusterCa.validityDays")
)]
#[serde(rename_all = "camelCase")]
pub struct CertificateAuthority {
    /// Days the CA certificate and each broker certificate are valid from issue.
    #[serde(default = "default_validity_days")]
    #[schemars(range(min = 2, max = 36500))]
    pub validity_days: i32,

    /// Days before expiry that a certificate is renewed. A broker certificate is re-issued and
    /// re-read by its broker in place; a new CA is first trusted by every broker (one rolling
    /// restart), then signs new broker certificates, and the old CA is trusted until it
    /// expires.
    #[serde(default = "default_renewal_days")]
    #[schemars(range(min = 1, max = 36499))]
    pub renewal_days: i32,

    /// A cert-manager `Issuer` (in the cluster's namespace) or `ClusterIssuer` that signs the
    /// brokers' certificates instead of a CA the operator generates: the operator requests one
    /// `Certificate` per broker (valid `validityDays`, renewed `renewalDays` before its end)
    /// and trusts the CA certificates the issuer returns (`ca.crt`). A CA change of the issuer
    /// is trusted by every broker (one rolling restart) before a certificate it signed is
    /// used. Needs cert-manager installed; the issuer must return `ca.crt` (a CA, Vault or
    /// self-signed issuer does; ACME does not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_ref: Option<IssuerRef>,
}

/// A cert-manager issuer (cert-manager's own `issuerRef` fields).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuerRef {
    /// The issuer's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// `Issuer` (namespaced, in the cluster's namespace) or `ClusterIssuer`.
    #[serde(default)]
    pub kind: IssuerKind,
    /// The issuer's API group: `cert-manager.io` for cert-manager's own issuers, another for
    /// an external issuer.
    #[serde(default = "default_issuer_group")]
    #[schemars(length(min = 1, max = 253))]
    pub group: String,
}

/// The kinds of cert-manager issuer.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum IssuerKind {
    #[default]
    Issuer,
    ClusterIssuer,
}

impl IssuerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IssuerKind::Issuer => "Issuer",
            IssuerKind::ClusterIssuer => "ClusterIssuer",
        }
    }
}

fn default_issuer_group() -> String {
    "cert-manager.io".into()
}

impl Default for CertificateAuthority {
    fn default() -> Self {
        Self {
            validity_days: default_validity_days(),
            renewal_days: default_renewal_days(),
            issuer_ref: None,
        }
    }
}

fn default_validity_days() -> i32 {
    365
}

fn default_renewal_days() -> i32 {
    30
}

/// Partition movement settings.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RebalanceSpec {
    /// After a scale-up, once the new brokers are Ready, move partitions onto them (a planned,
    /// rack-aware reassignment that balances replicas and leaders). When false, new brokers
    /// only receive partitions of topics created or reassigned later.
    #[serde(default = "default_true")]
    pub on_scale: bool,

    /// Replication throttle, in bytes per second per broker, set
    /// (`leader/follower.replication.throttled.rate`) while the operator moves partitions and
    /// removed when they are in place. No throttle when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub throttle_bytes_per_second: Option<i64>,
}

impl Default for RebalanceSpec {
    fn default() -> Self {
        Self {
            on_scale: true,
            throttle_bytes_per_second: None,
        }
    }
}

fn default_true() -> bool {
    true
}

/// Kubernetes' image pull policies.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ImagePullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl ImagePullPolicy {
    /// The name Kubernetes uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::IfNotPresent => "IfNotPresent",
            Self::Never => "Never",
        }
    }
}

/// A broker's data directory: a PersistentVolumeClaim per broker, or an `emptyDir` that is
/// lost with the pod.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[x_kube(
    validation = Rule::new("self.ephemeral || has(self.size)")
        .message("storage.size is required unless storage.ephemeral is true"),
    validation = Rule::new("!self.ephemeral || (!has(self.size) && !has(self.storageClass))")
        .message("storage.size and storage.storageClass do not apply to ephemeral storage"),
    // Transition rules (checked on update only). A shrink is refused by the operator: comparing
    // quantities in CEL needs Kubernetes 1.29's quantity library, and 1.28 is supported.
    validation = Rule::new("self.ephemeral == oldSelf.ephemeral")
        .message("storage.ephemeral cannot change: the brokers' data would be left behind or lost"),
    validation = Rule::new("has(self.storageClass) == has(oldSelf.storageClass) && (!has(self.storageClass) || self.storageClass == oldSelf.storageClass)")
        .message("storage.storageClass cannot change: a volume keeps the class it was provisioned with")
)]
#[serde(rename_all = "camelCase")]
pub struct Storage {
    /// Size of each broker's volume claim, e.g. `100Gi`. Required unless `ephemeral`. It can
    /// grow where the claims' StorageClass has `allowVolumeExpansion` (the operator asks each
    /// claim for the new size and the brokers keep running); it cannot shrink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Quantity>,

    /// StorageClass of the claims; the cluster's default class when absent. Fixed once the
    /// cluster exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,

    /// Use an `emptyDir` instead of a claim: data does not survive a pod's deletion. For tests
    /// and development only.
    #[serde(default)]
    pub ephemeral: bool,
}

/// Rack awareness: the node label that names a broker's failure domain.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RackAwareness {
    /// Node label whose value is the broker's rack, e.g. `topology.kubernetes.io/zone`.
    /// Brokers are spread over its values; an init container reads it from the broker's Node
    /// (on every Kubernetes version) and the broker takes it as `broker.rack`. A Node without
    /// the label keeps its broker from starting.
    #[schemars(length(min = 1))]
    pub topology_key: String,
}

/// Overrides merged into the broker pod template.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodOverrides {
    /// Extra pod labels. The operator's own selector labels win on a clash.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,

    /// Extra pod annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,

    /// Pod affinity; replaces the operator's default anti-affinity when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,

    /// Pod tolerations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,

    /// Node selector.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,

    /// PriorityClass of the broker pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
}

/// What the operator last observed and did.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaClusterStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`, `Progressing` and `Degraded`, each with a reason and message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// Brokers whose pod is Ready.
    #[serde(default)]
    pub ready_brokers: i32,

    /// Ready brokers out of `spec.replicas`, as `kubectl get` shows it (e.g. `2/3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brokers_ready: Option<String>,

    /// Each broker's readiness, by broker id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub brokers: Vec<BrokerStatus>,

    /// `HOST:PORT` of the bootstrap Service for in-cluster clients, on the first internal
    /// listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_address: Option<String>,

    /// How clients connect to each listener.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<ListenerStatus>,

    /// The Kafka cluster id the brokers report, once reachable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,

    /// Broker ids of the metadata quorum's voters, as the quorum last reported them
    /// (DescribeQuorum); before the brokers answer, the voters the cluster formed with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub voters: Vec<i32>,

    /// The partition movement in progress, or the last one planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebalance: Option<RebalanceStatus>,

    /// The cluster CA: where its certificate is and when it expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_ca: Option<CaStatus>,

    /// The clients CA, where a listener authenticates clients by certificate: where its
    /// certificate bundle is and when it expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients_ca: Option<CaStatus>,

    /// The brokers' volumes: the size they are to have and any growth in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageStatus>,
}

/// How clients connect to one listener.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListenerStatus {
    /// The listener's name in `spec.listeners` (the broker's listener name upper-cased).
    pub name: String,
    /// `internal`, `nodeport` or `loadbalancer`.
    #[serde(rename = "type")]
    pub kind: String,
    /// What a client puts in `bootstrap.servers`: the bootstrap Service for an internal
    /// listener, every broker's advertised address for an external one.
    pub bootstrap_servers: String,
    /// Kafka's `security.protocol` for the listener's clients: `PLAINTEXT`, `SSL`,
    /// `SASL_PLAINTEXT` or `SASL_SSL`.
    pub security_protocol: String,
    /// The SASL mechanism its clients use (`SCRAM-SHA-512`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl_mechanism: Option<String>,
    /// For a TLS listener: the Secret whose `ca.crt` clients trust (`ssl.ca.location`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret: Option<String>,
}

/// The brokers' volume claims as last observed.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageStatus {
    /// The size every broker's claim is to have: `spec.storage.size`, or the size kept when a
    /// change of it was refused.
    pub size: String,
    /// `Ready` when no claim's volume is below what it requests; `Expanding` while a claim
    /// asked to grow has not reached its new size; `Refused` when the spec asks for a change
    /// the volumes cannot make (shrinking, another class, no expansion allowed), with the
    /// reason in the `Degraded` condition.
    pub state: String,
    /// Each broker's claim, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<ClaimStatus>,
}

/// One broker's PersistentVolumeClaim.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimStatus {
    /// The claim's name, `data-<cluster>-<broker id>`.
    pub name: String,
    /// The size the claim requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<String>,
    /// The size of the volume bound to it, as Kubernetes reports it; absent until bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<String>,
}

/// A CA the operator runs, as last issued.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaStatus {
    /// Secret (key `ca.crt`) holding the CA certificates brokers trust, readable by whoever
    /// needs to trust the brokers; the CA's private key is in a separate Secret.
    pub secret_name: String,
    /// The CA certificate's generation: 0 for the first CA, one more at each renewal.
    pub generation: i64,
    /// When the current CA certificate expires (RFC 3339).
    pub not_after: String,
    /// `Ready` once every broker trusts the current CA and holds a certificate it signed;
    /// `Renewing` while a renewal moves the brokers over; `NotInUse` while the brokers serve the
    /// cluster port in plaintext (a cluster made before the operator issued certificates, until
    /// annotated `krait.dev/cluster-tls=enable`).
    pub state: String,
}

/// A partition movement the operator planned: why, its size, and how far it has got.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RebalanceStatus {
    /// `ScaleUp`, `ScaleDown`, `OnDemand` or `DryRun`.
    pub trigger: String,
    /// `Planned` (dry run: nothing was moved), `Moving` or `Complete`.
    pub state: String,
    /// Brokers that hold every replica once the movement is done.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_brokers: Vec<i32>,
    /// Partitions whose replicas move (data is copied).
    pub partitions_total: i32,
    /// Of those, partitions that reached their new replicas.
    pub partitions_moved: i32,
    /// Bytes to copy onto new replicas (partition size times replicas added), from the
    /// brokers' log dirs.
    pub bytes_total: i64,
    /// Of those, bytes of partitions that reached their new replicas.
    pub bytes_moved: i64,
    /// Partitions whose preferred leader (first replica) changes.
    #[serde(default)]
    pub leaders_changed: i32,
    /// Replicas per broker before and after the plan.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub replicas_per_broker_before: BTreeMap<String, i32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub replicas_per_broker_after: BTreeMap<String, i32>,
    /// Preferred leaders per broker before and after the plan.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub leaders_per_broker_before: BTreeMap<String, i32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub leaders_per_broker_after: BTreeMap<String, i32>,
}

/// One broker's observed state.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrokerStatus {
    /// Broker id (= pod ordinal).
    pub id: i32,
    /// Pod name.
    pub pod: String,
    /// Whether the pod's Ready condition is true (its `/readyz` answers).
    pub ready: bool,
}
