//! Names and labels of the objects a `KafkaCluster` owns: the single place that knows how they
//! are spelled, so builders, reads and docs agree.

use std::collections::BTreeMap;

/// Field manager of every server-side apply, and value of `app.kubernetes.io/managed-by`.
pub const MANAGER: &str = "krait-operator";
/// Annotation holding the hash of the object as built; equal hash means nothing to apply.
pub const HASH_ANNOTATION: &str = "krait.dev/desired-hash";
/// Pod-template annotation that changes with the broker config, so a config change rolls pods.
pub const CONFIG_HASH_ANNOTATION: &str = "krait.dev/config-hash";
/// On a `KafkaCluster`: a new value restarts every broker, one at a time when safe (the value is
/// copied onto the pod template). On a broker pod: restarts that broker when safe.
pub const RESTART_ANNOTATION: &str = "krait.dev/restart";
/// On a `KafkaCluster`: `execute` rebalances every partition over the brokers now, `dry-run`
/// writes the plan's summary to `status.rebalance`. Removed by the operator once handled.
pub const REBALANCE_ANNOTATION: &str = "krait.dev/rebalance";
/// On a `KafkaCluster` whose brokers serve the cluster port in plaintext (made by an operator
/// that issued no certificates): `enable` switches them to mutual TLS with the issued
/// certificates. Brokers with and without TLS cannot talk, so all of them must then restart
/// together (docs/operator.md).
pub const CLUSTER_TLS_ANNOTATION: &str = "krait.dev/cluster-tls";
/// On a `KafkaCluster`: a new value renews the cluster CA now (a successor, trusted first, then
/// signing), as its renewal window would; the value answered is kept on the CA's Secret.
pub const RENEW_CLUSTER_CA_ANNOTATION: &str = "krait.dev/renew-cluster-ca";
/// The same for the clients CA, which signs `tls` KafkaUsers' certificates.
pub const RENEW_CLIENTS_CA_ANNOTATION: &str = "krait.dev/renew-clients-ca";
/// Label the StatefulSet controller puts on each pod: the revision it was created from.
pub const REVISION_LABEL: &str = "controller-revision-hash";
/// Label Kubernetes (1.28+) puts on StatefulSet pods with their ordinal = broker id.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// Where a broker keeps its data inside the container.
pub const DATA_DIR: &str = "/var/lib/krait";
/// Port of the broker's HTTP endpoint (`/healthz`, `/readyz`, `/metrics`).
pub const HTTP_PORT: i32 = 9644;
/// Where the broker pods mount their cluster-port keystores and the cluster CA bundle.
pub const CLUSTER_TLS_DIR: &str = "/etc/krait/cluster-tls";
/// Where the broker pods' init container writes the rack (an emptyDir shared with the broker,
/// which reads `RACK_DIR/rack` with `--rack-file`).
pub const RACK_DIR: &str = "/var/run/krait";
/// On a cluster-scoped object made for a cluster (its rack ClusterRoleBinding): the cluster's
/// namespace, which `app.kubernetes.io/instance` (its name) does not say.
pub const CLUSTER_NAMESPACE_LABEL: &str = "krait.dev/cluster-namespace";
/// Port of the planned broker-to-broker (Raft and replication) listener.
pub const CLUSTER_PORT: i32 = 9093;

/// Names of one cluster's objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNames {
    pub cluster: String,
    pub namespace: String,
}

impl ClusterNames {
    pub fn new(cluster: &str, namespace: &str) -> Self {
        Self {
            cluster: cluster.to_string(),
            namespace: namespace.to_string(),
        }
    }

    /// StatefulSet, PodDisruptionBudget and ServiceAccount share the cluster's name.
    pub fn statefulset(&self) -> String {
        self.cluster.clone()
    }

    pub fn headless_service(&self) -> String {
        format!("{}-brokers", self.cluster)
    }

    pub fn bootstrap_service(&self) -> String {
        format!("{}-bootstrap", self.cluster)
    }

    pub fn external_service(&self, broker_id: i32) -> String {
        format!("{}-{broker_id}-external", self.cluster)
    }

    /// The Prometheus Operator PodMonitor scraping the brokers (`spec.metrics.podMonitor`).
    pub fn pod_monitor(&self) -> String {
        format!("{}-brokers", self.cluster)
    }

    pub fn config_map(&self) -> String {
        format!("{}-config", self.cluster)
    }

    /// The cluster CA's key and certificate: read by the operator only.
    pub fn cluster_ca_secret(&self) -> String {
        format!("{}-cluster-ca", self.cluster)
    }

    /// The certificates that trust the brokers (`ca.crt`): for brokers and clients.
    pub fn cluster_ca_cert_secret(&self) -> String {
        format!("{}-cluster-ca-cert", self.cluster)
    }

    /// The clients CA (certificate and key: the operator's alone), which signs `tls`
    /// KafkaUsers' certificates.
    pub fn clients_ca_secret(&self) -> String {
        format!("{}-clients-ca", self.cluster)
    }

    /// The clients CA's certificate, which the brokers check client certificates with.
    pub fn clients_ca_cert_secret(&self) -> String {
        format!("{}-clients-ca-cert", self.cluster)
    }

    /// The operator's own SCRAM user and password (`cluster/build/secret.rs`).
    pub fn operator_credentials_secret(&self) -> String {
        format!("{}-operator-credentials", self.cluster)
    }

    /// Every broker's cluster-port keystore, `<pod>.pem`.
    pub fn broker_certs_secret(&self) -> String {
        format!("{}-broker-certs", self.cluster)
    }

    /// The cert-manager `Certificate` of broker `id` (with `spec.clusterCa.issuerRef`): named
    /// after its pod.
    pub fn broker_certificate(&self, broker_id: i32) -> String {
        self.pod(broker_id)
    }

    /// The Secret cert-manager writes broker `id`'s certificate to.
    pub fn broker_certificate_secret(&self, broker_id: i32) -> String {
        format!("{}-tls", self.pod(broker_id))
    }

    /// The ClusterRoleBinding that lets a rack-aware cluster's brokers read their Node's
    /// labels: cluster-scoped, so it names the namespace too.
    pub fn rack_binding(&self) -> String {
        format!("krait-{}-{}-rack", self.namespace, self.cluster)
    }

    pub fn pod(&self, broker_id: i32) -> String {
        format!("{}-{broker_id}", self.cluster)
    }

    /// A broker's stable DNS name through the headless Service.
    pub fn broker_host(&self, broker_id: i32) -> String {
        format!(
            "{}.{}.{}.svc",
            self.pod(broker_id),
            self.headless_service(),
            self.namespace
        )
    }

    /// `HOST:PORT` of the bootstrap Service.
    pub fn bootstrap_address(&self, port: i32) -> String {
        format!("{}.{}.svc:{port}", self.bootstrap_service(), self.namespace)
    }

    /// Labels that select the broker pods; never changed after creation, since a
    /// StatefulSet's selector is immutable.
    pub fn selector_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".into(), "krait".into()),
            ("app.kubernetes.io/instance".into(), self.cluster.clone()),
            ("app.kubernetes.io/component".into(), "broker".into()),
        ])
    }

    /// Labels of every owned object: the selector plus `managed-by`, which reads use to find
    /// what the operator created (and so what may be a leftover).
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.selector_labels();
        labels.insert("app.kubernetes.io/managed-by".into(), MANAGER.into());
        labels
    }

    /// Label selector string of [`Self::selector_labels`]: the broker pods, and the volume
    /// claims the StatefulSet controller makes for them (it copies the selector onto each).
    pub fn broker_selector(&self) -> String {
        self.selector_labels()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Label selector string finding the owned objects of this cluster.
    pub fn owned_selector(&self) -> String {
        format!(
            "app.kubernetes.io/instance={},app.kubernetes.io/managed-by={MANAGER}",
            self.cluster
        )
    }
}

/// FNV-1a 64: stable across builds and Rust versions, unlike `DefaultHasher`, so a new
/// operator version does not see every object as changed.
pub fn stable_hash(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_dns_goes_through_the_headless_service() {
        let n = ClusterNames::new("main", "kafka");
        assert_eq!(n.broker_host(2), "main-2.main-brokers.kafka.svc");
        assert_eq!(n.bootstrap_address(9092), "main-bootstrap.kafka.svc:9092");
    }

    #[test]
    fn stable_hash_is_fnv1a() {
        // Reference values of FNV-1a 64.
        assert_eq!(stable_hash(b""), "cbf29ce484222325");
        assert_eq!(stable_hash(b"a"), "af63dc4c8601ec8c");
    }
}
