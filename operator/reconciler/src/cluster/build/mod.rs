//! Step 3 of a cluster reconcile: turns a [`ValidatedCluster`] into the Kubernetes objects it
//! should own, one file per object. Pure: the same cluster always gives byte-identical objects,
//! each stamped with a hash of itself so the apply step can skip objects that did not change.

pub mod certificate;
mod clusterrolebinding;
mod configmap;
mod pdb;
pub mod podmonitor;
pub mod secret;
mod service;
mod serviceaccount;
mod statefulset;

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use krait_crd::cluster::KafkaClusterSpec;
use kube::Resource;
use kube::api::DynamicObject;
use serde::Serialize;

use super::listeners;
use super::pki::{Ca, ClusterPki};
use super::validate::ValidatedCluster;
use crate::names::{HASH_ANNOTATION, stable_hash};
use krait_crd::KafkaCluster;

pub use certificate::broker_certificates;
pub use clusterrolebinding::rack_binding;
pub use configmap::config_map;
pub use pdb::pod_disruption_budget;
pub use podmonitor::pod_monitor;
pub use secret::{
    broker_certs_secret, clients_ca_cert_secret, clients_ca_secret, cluster_ca_cert_secret,
    cluster_ca_secret, operator_credentials_secret,
};
pub use service::{bootstrap_service, external_services, headless_service};
pub use serviceaccount::service_account;
pub use statefulset::{default_listener_of, plaintext_cluster_of, statefulset, voters_of};

/// Voters a cluster's metadata quorum keeps unless `spec.controllers` says otherwise: three
/// tolerate one lost voter, and more only slow every metadata commit down.
pub const DEFAULT_VOTERS: i32 = 3;

/// What the built objects take from the world rather than from the spec: the StatefulSet's
/// size right now (scaling moves it one safe step at a time, `cluster/scale.rs`), the metadata
/// quorum's voters (fixed when the cluster formed), the cluster's restart token, and the
/// cluster CA's key material (`cluster/pki`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub replicas: i32,
    pub voters: BTreeSet<i32>,
    /// The `krait.dev/restart` annotation of the cluster; a new value rolls every broker.
    pub restart: Option<String>,
    /// The CA, trust bundle and keystores to store; no Secrets are built without one.
    pub pki: Option<ClusterPki>,
    /// The operator's SCRAM password, stored in its credentials Secret; built only where a
    /// listener uses SCRAM.
    pub operator_password: Option<String>,
    /// The clients CA (`pki/clients.rs`, renewed as `pki/rotation.rs` says), stored in its
    /// Secrets; built only where a listener takes client certificates.
    pub clients_ca: Option<Ca>,
    /// The brokers' cluster port speaks mutual TLS with the issued certificates. False only for
    /// a cluster whose running brokers serve it in plaintext (made by an operator that issued
    /// no certificates) until it is switched over ([`crate::names::CLUSTER_TLS_ANNOTATION`]).
    pub cluster_tls: bool,
    /// The rack init container's image and the ClusterRole its binding names.
    pub rack: RackInit,
}

impl Shape {
    /// A cluster that does not exist yet: `spec.replicas` brokers, the first
    /// [`voter_count`] of them voters.
    pub fn initial(cluster: &ValidatedCluster) -> Self {
        Self {
            replicas: cluster.spec.replicas,
            voters: default_voters(&cluster.spec),
            restart: None,
            pki: None,
            operator_password: None,
            clients_ca: None,
            cluster_tls: true,
            rack: RackInit::default(),
        }
    }
}

/// How rack-aware broker pods find their rack: an init container running the operator's own
/// image (`krait-operator rack`), whose ServiceAccount the cluster's ClusterRoleBinding binds
/// to the ClusterRole the chart installs for it. Set from the operator's flags (the chart
/// passes its image and the ClusterRole's name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RackInit {
    /// The operator's image, which holds `krait-operator`.
    pub image: String,
    /// The ClusterRole allowing `get` on nodes.
    pub cluster_role: String,
}

/// The chart's operator image, at this operator's version.
pub const DEFAULT_OPERATOR_IMAGE: &str = concat!(
    "ghcr.io/krait-dev/krait-operator:",
    env!("CARGO_PKG_VERSION")
);
/// The chart's broker-rack ClusterRole when installed as release `krait-operator`.
pub const DEFAULT_RACK_CLUSTER_ROLE: &str = "krait-operator-broker-rack";

impl Default for RackInit {
    fn default() -> Self {
        Self {
            image: DEFAULT_OPERATOR_IMAGE.into(),
            cluster_role: DEFAULT_RACK_CLUSTER_ROLE.into(),
        }
    }
}

/// The voters a new cluster forms with: the first [`voter_count`] brokers.
pub fn default_voters(spec: &KafkaClusterSpec) -> BTreeSet<i32> {
    (0..voter_count(spec)).collect()
}

/// How many voters the metadata quorum should have: `spec.controllers` ([`DEFAULT_VOTERS`]
/// when absent), at most one per broker.
pub fn voter_count(spec: &KafkaClusterSpec) -> i32 {
    spec.controllers
        .unwrap_or(DEFAULT_VOTERS)
        .clamp(1, spec.replicas.max(1))
}

/// Everything a cluster owns, in apply order: identity (and what it may read), certificates and
/// config before the pods that use them, the disruption budget, then what only observes the
/// brokers (the PodMonitor).
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredObjects {
    pub service_account: ServiceAccount,
    /// Lets the brokers read their Node's labels; only with `spec.rack`.
    pub rack_binding: Option<ClusterRoleBinding>,
    /// The PKI's Secrets: the CA's, the CA bundle's and the brokers' keystores'.
    pub secrets: Vec<Secret>,
    pub config_map: ConfigMap,
    pub services: Vec<Service>,
    pub statefulset: StatefulSet,
    pub pdb: PodDisruptionBudget,
    /// The Prometheus Operator's PodMonitor; only with `spec.metrics.podMonitor.enabled`, and
    /// applied only where the API server serves its kind.
    pub pod_monitor: Option<DynamicObject>,
    /// cert-manager's Certificates, one per broker; only with `spec.clusterCa.issuerRef`, and
    /// applied only where the API server serves their kind.
    pub certificates: Vec<DynamicObject>,
}

/// Builds every object of a cluster.
pub fn build(cluster: &ValidatedCluster, shape: &Shape) -> DesiredObjects {
    let config_map = stamped(config_map(cluster));
    let config_hash = config_map
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(HASH_ANNOTATION))
        .cloned()
        .unwrap_or_default();
    let mut services = vec![
        stamped(headless_service(cluster)),
        stamped(bootstrap_service(cluster)),
    ];
    services.extend(
        external_services(cluster, shape.replicas)
            .into_iter()
            .map(stamped),
    );
    let mut secrets = shape.pki.as_ref().map_or_else(Vec::new, |pki| {
        let mut secrets = Vec::new();
        if let ClusterPki::Operator(own) = pki {
            secrets.push(stamped(cluster_ca_secret(cluster, own)));
        }
        secrets.push(stamped(cluster_ca_cert_secret(cluster, pki)));
        secrets.push(stamped(broker_certs_secret(cluster, pki)));
        secrets
    });
    if let Some(password) = &shape.operator_password
        && listeners::uses_scram(&cluster.listeners)
    {
        secrets.push(stamped(operator_credentials_secret(cluster, password)));
    }
    if let Some(ca) = &shape.clients_ca
        && listeners::uses_mtls(&cluster.listeners)
    {
        secrets.push(stamped(clients_ca_secret(cluster, ca)));
        secrets.push(stamped(clients_ca_cert_secret(cluster, ca)));
    }
    DesiredObjects {
        service_account: stamped(service_account(cluster)),
        rack_binding: rack_binding(cluster, &shape.rack).map(stamped),
        secrets,
        config_map,
        services,
        statefulset: stamped(statefulset(cluster, &config_hash, shape)),
        pdb: stamped(pod_disruption_budget(cluster)),
        pod_monitor: pod_monitor(cluster).map(stamped),
        certificates: broker_certificates(
            cluster,
            &(0..shape.replicas.max(cluster.spec.replicas)).collect(),
        )
        .into_iter()
        .map(stamped)
        .collect(),
    }
}

/// Metadata of an owned object: the cluster's labels and a controller owner reference, so
/// Kubernetes garbage-collects it with the cluster.
pub(crate) fn owned_meta(cluster: &ValidatedCluster, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(cluster.names.namespace.clone()),
        labels: Some(cluster.names.labels()),
        owner_references: Some(vec![owner_reference(cluster)]),
        ..ObjectMeta::default()
    }
}

fn owner_reference(cluster: &ValidatedCluster) -> OwnerReference {
    OwnerReference {
        api_version: KafkaCluster::api_version(&()).into_owned(),
        kind: KafkaCluster::kind(&()).into_owned(),
        name: cluster.names.cluster.clone(),
        uid: cluster.uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Adds the hash annotation, computed over the object without it.
fn stamped<K: Resource + Serialize>(mut object: K) -> K {
    let bytes = serde_json::to_vec(&object).unwrap_or_default();
    object
        .meta_mut()
        .annotations
        .get_or_insert_with(Default::default)
        .insert(HASH_ANNOTATION.to_string(), stable_hash(&bytes));
    object
}

/// The hash annotation of an object, as built or as read back.
pub fn hash_of<K: Resource>(object: &K) -> Option<&str> {
    object
        .meta()
        .annotations
        .as_ref()?
        .get(HASH_ANNOTATION)
        .map(String::as_str)
}
