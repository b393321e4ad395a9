//! The brokers' StatefulSet: broker id = pod ordinal, each broker advertising its
//! headless-service DNS name, probes on the broker's own `/readyz` and `/healthz`.
//!
//! The cluster flags (`--cluster-listen`, `--voters`, `--rack-file`, the cluster TLS files, and the
//! external listener's `--external-listen` / `--external-advertised-addresses`) are spelled
//! here only, in `broker_args`; `tests/integration/test_operator_args.py` starts brokers with
//! the same ones.
//!
//! Cluster TLS: one projected volume holds every broker's keystore (`<pod>.pem`, from the
//! broker-certs Secret) and the CA bundle (`ca.crt`); each broker reads its own keystore by
//! its pod name. A template shared by all pods cannot give each its own Secret, so a broker
//! pod can read its peers' keys too (as with Strimzi's StatefulSet-based brokers).
//!
//! Rack awareness: an init container (`krait-operator rack`, the operator's image) reads the
//! topology label of the pod's Node and writes it to an emptyDir the broker reads with
//! `--rack-file`. Only that container gets an API token (a projected one, as the kubelet would
//! mount it), so the broker itself still cannot talk to the Kubernetes API.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec, StatefulSetUpdateStrategy};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMapEnvSource, ConfigMapProjection, Container, ContainerPort,
    DownwardAPIProjection, DownwardAPIVolumeFile, EmptyDirVolumeSource, EnvFromSource, EnvVar,
    EnvVarSource, HTTPGetAction, KeyToPath, ObjectFieldSelector, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PodAffinityTerm, PodAntiAffinity, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ProjectedVolumeSource, ResourceRequirements, SeccompProfile,
    SecretKeySelector, SecretProjection, SecurityContext, ServiceAccountTokenProjection,
    TopologySpreadConstraint, Volume, VolumeMount, VolumeProjection, VolumeResourceRequirements,
    WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::secret::{ADD_SCRAM_KEY, CA_CERT_KEY};
use super::{Shape, owned_meta};
use crate::cluster::listeners;
use crate::cluster::pki::{CLIENTS_TRUST_ANNOTATION, TRUST_ANNOTATION};
use crate::cluster::validate::ValidatedCluster;
use crate::names::{
    CLUSTER_PORT, CLUSTER_TLS_DIR, CONFIG_HASH_ANNOTATION, DATA_DIR, HTTP_PORT, POD_INDEX_LABEL,
    RACK_DIR, RESTART_ANNOTATION,
};
use krait_crd::cluster::ListenerType;

const DATA_VOLUME: &str = "data";
const CLUSTER_TLS_VOLUME: &str = "cluster-tls";
/// The emptyDir the rack init container writes the rack into.
const RACK_VOLUME: &str = "rack";
/// The rack init container's API credentials: what the kubelet mounts as `kube-api-access-*`
/// when a pod automounts its token, projected into that container only.
const API_ACCESS_VOLUME: &str = "kube-api-access";
/// Where in-cluster clients (kube's `Config::incluster`) look for the token, CA and namespace.
const API_ACCESS_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The token's lifetime: the kubelet's own choice for the volume it mounts; the init container
/// needs it for seconds.
const API_TOKEN_SECONDS: i64 = 3607;
/// The file the broker reads its rack from.
const RACK_FILE: &str = "rack";
/// Owner read, group read (the broker runs in the `fsGroup`), nobody else.
const CLUSTER_TLS_MODE: i32 = 0o440;
/// The broker flag of a plaintext cluster port, read back by [`plaintext_cluster_of`].
const PLAINTEXT_CLUSTER_FLAG: &str = "--allow-plaintext-cluster";
/// Where the broker container writes why it stopped (Kubernetes' default path).
pub const TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";

/// The broker flag naming the metadata quorum's voters, read back by [`voters_of`].
const VOTERS_FLAG: &str = "--voters=";
/// A Kafka key given on the broker's command line (`--override=KEY=VALUE`).
const OVERRIDE_FLAG: &str = "--override=";
/// UID/GID the broker image runs as; `fsGroup` makes the data volume writable for it.
const BROKER_UID: i64 = 10001;
/// What a broker requests when `spec.resources` names neither a request nor a limit for it:
/// enough to schedule it somewhere it can run, never a limit (Kafka's page cache wants the
/// node's spare memory).
const DEFAULT_REQUESTS: [(&str, &str); 2] = [("cpu", "500m"), ("memory", "1Gi")];

/// The StatefulSet; `config_hash` (the ConfigMap's hash) goes on the pod template so a
/// config change rolls the brokers, which read their config only at start.
///
/// Its update strategy is `OnDelete`: a changed template restarts no pod by itself; the
/// operator evicts one pod at a time when that is safe (`cluster/roll.rs`), and the
/// StatefulSet controller recreates it from the new template.
pub fn statefulset(cluster: &ValidatedCluster, config_hash: &str, shape: &Shape) -> StatefulSet {
    let spec = &cluster.spec;
    let selector = cluster.names.selector_labels();
    let claim = (!spec.storage.ephemeral).then(|| data_claim(cluster));
    StatefulSet {
        metadata: owned_meta(cluster, cluster.names.statefulset()),
        spec: StatefulSetSpec {
            replicas: Some(shape.replicas),
            service_name: Some(cluster.names.headless_service()),
            // Brokers start together: a Raft quorum cannot form if each pod waits for the
            // previous one to be Ready.
            pod_management_policy: Some("Parallel".into()),
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                rolling_update: None,
            }),
            selector: LabelSelector {
                match_labels: Some(selector),
                ..LabelSelector::default()
            },
            template: pod_template(cluster, config_hash, shape),
            volume_claim_templates: claim.map(|c| vec![c]),
            ..StatefulSetSpec::default()
        },
        status: None,
    }
}

fn data_claim(cluster: &ValidatedCluster) -> PersistentVolumeClaim {
    let storage = &cluster.spec.storage;
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(DATA_VOLUME.into()),
            labels: Some(cluster.names.selector_labels()),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: storage.storage_class.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: storage
                    .size
                    .clone()
                    .map(|size| BTreeMap::from([("storage".to_string(), size)])),
                limits: None,
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        status: None,
    }
}

fn pod_template(cluster: &ValidatedCluster, config_hash: &str, shape: &Shape) -> PodTemplateSpec {
    let overrides = &cluster.spec.pod_template;
    // The operator's selector labels win: a user label must not detach pods from the set.
    let mut labels = overrides.labels.clone();
    labels.extend(cluster.names.labels());
    let annotations = template_annotations(cluster, config_hash, shape);
    let mut volumes = Vec::new();
    if mounts_keystores(cluster, shape) {
        volumes.push(cluster_tls_volume(cluster));
    }
    if cluster.spec.storage.ephemeral {
        volumes.push(Volume {
            name: DATA_VOLUME.into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        });
    }
    if cluster.spec.rack.is_some() {
        volumes.push(Volume {
            name: RACK_VOLUME.into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        });
        volumes.push(api_access_volume());
    }
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            service_account_name: Some(cluster.names.statefulset()),
            automount_service_account_token: Some(false),
            init_containers: rack_init_container(cluster, shape).map(|c| vec![c]),
            containers: vec![broker_container(cluster, shape)],
            volumes: non_empty(volumes),
            image_pull_secrets: non_empty(cluster.spec.image_pull_secrets.clone()),
            affinity: Some(
                overrides
                    .affinity
                    .clone()
                    .unwrap_or_else(|| spread_over_nodes(cluster)),
            ),
            tolerations: non_empty(overrides.tolerations.clone()),
            node_selector: (!overrides.node_selector.is_empty())
                .then(|| overrides.node_selector.clone()),
            priority_class_name: overrides.priority_class_name.clone(),
            topology_spread_constraints: spread_over_racks(cluster),
            // The "restricted" Pod Security Standard, with the container's context below.
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(BROKER_UID),
                run_as_group: Some(BROKER_UID),
                fs_group: Some(BROKER_UID),
                // A large data volume is not re-chowned on every start, only when its root
                // does not already belong to the broker's group.
                fs_group_change_policy: Some("OnRootMismatch".into()),
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    ..SeccompProfile::default()
                }),
                ..PodSecurityContext::default()
            }),
            // Lets a broker flush and close RocksDB cleanly on SIGTERM.
            termination_grace_period_seconds: Some(60),
            ..PodSpec::default()
        }),
    }
}

/// The user's pod annotations plus the operator's: each one that changes rolls the brokers.
fn template_annotations(
    cluster: &ValidatedCluster,
    config_hash: &str,
    shape: &Shape,
) -> BTreeMap<String, String> {
    let mut annotations = cluster.spec.pod_template.annotations.clone();
    annotations.insert(CONFIG_HASH_ANNOTATION.into(), config_hash.into());
    if let Some(token) = &shape.restart {
        annotations.insert(RESTART_ANNOTATION.into(), token.clone());
    }
    // A pod started with a trust bundle holding this CA generation says so; a new generation
    // rolls the brokers (`cluster/pki`).
    if shape.cluster_tls {
        let trust = shape.pki.as_ref().map_or(0, |p| p.trust_generation());
        annotations.insert(TRUST_ANNOTATION.into(), trust.to_string());
    }
    // The same for the clients CA once it has been renewed: pods without it trust the first.
    if let Some(ca) = shape
        .clients_ca
        .as_ref()
        .filter(|ca| ca.trust_generation > 0)
    {
        annotations.insert(
            CLIENTS_TRUST_ANNOTATION.into(),
            ca.trust_generation.to_string(),
        );
    }
    annotations
}

/// With rack awareness, brokers spread evenly over the topology key's values (zones).
fn spread_over_racks(cluster: &ValidatedCluster) -> Option<Vec<TopologySpreadConstraint>> {
    let rack = cluster.spec.rack.as_ref()?;
    Some(vec![TopologySpreadConstraint {
        max_skew: 1,
        topology_key: rack.topology_key.clone(),
        when_unsatisfiable: "DoNotSchedule".into(),
        label_selector: Some(LabelSelector {
            match_labels: Some(cluster.names.selector_labels()),
            ..LabelSelector::default()
        }),
        ..TopologySpreadConstraint::default()
    }])
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

/// Default affinity: prefer one broker per node, so one node failure takes one broker.
fn spread_over_nodes(cluster: &ValidatedCluster) -> Affinity {
    Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: PodAffinityTerm {
                        topology_key: "kubernetes.io/hostname".into(),
                        label_selector: Some(LabelSelector {
                            match_labels: Some(cluster.names.selector_labels()),
                            ..LabelSelector::default()
                        }),
                        ..PodAffinityTerm::default()
                    },
                },
            ]),
            ..PodAntiAffinity::default()
        }),
        ..Affinity::default()
    }
}

fn broker_container(cluster: &ValidatedCluster, shape: &Shape) -> Container {
    let spec = &cluster.spec;
    let primary = listeners::primary(&cluster.listeners);
    let mut ports = vec![
        container_port("kafka", primary.port),
        container_port("cluster", CLUSTER_PORT),
        container_port("http", HTTP_PORT),
    ];
    for l in cluster.listeners.iter().filter(|l| l.name != primary.name) {
        let name = match l.kind {
            ListenerType::Internal => l.name.as_str(),
            _ => "external",
        };
        ports.push(container_port(name, l.port));
    }
    Container {
        name: "broker".into(),
        image: Some(spec.image.clone()),
        image_pull_policy: spec.image_pull_policy.map(|p| p.as_str().to_string()),
        command: Some(vec!["krait-broker".into()]),
        args: Some(broker_args(cluster, shape)),
        env: Some(broker_env(cluster)),
        env_from: Some(vec![EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: cluster.names.config_map(),
                optional: Some(false),
            }),
            ..EnvFromSource::default()
        }]),
        ports: Some(ports),
        resources: Some(with_default_requests(
            spec.resources.clone().unwrap_or_default(),
        )),
        volume_mounts: Some(volume_mounts(cluster, shape)),
        readiness_probe: Some(http_probe("/readyz", 5, 3)),
        liveness_probe: Some(http_probe("/healthz", 10, 6)),
        // Opening a large RocksDB can take minutes; liveness must not kill it meanwhile.
        startup_probe: Some(http_probe("/healthz", 5, 120)),
        security_context: Some(restricted_container_context()),
        // Why a broker stopped, for `kubectl describe pod` and for the operator (a voter whose
        // volume was lost says so there: `cluster/lost_voter.rs`); the log's tail when a
        // broker died without writing it.
        termination_message_path: Some(TERMINATION_MESSAGE_PATH.into()),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Container::default()
    }
}

/// The "restricted" Pod Security Standard's container settings (the pod's context sets the
/// user and seccomp), for every container of the pod.
fn restricted_container_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Capabilities::default()
        }),
        ..SecurityContext::default()
    }
}

/// With `spec.rack`: the init container that writes the Node's topology label to the rack
/// volume (`krait-operator rack`), and fails, keeping the broker from starting, when the Node
/// has no such label or may not be read.
fn rack_init_container(cluster: &ValidatedCluster, shape: &Shape) -> Option<Container> {
    let rack = cluster.spec.rack.as_ref()?;
    let small = |cpu: &str, memory: &str| {
        BTreeMap::from([
            ("cpu".to_string(), Quantity(cpu.into())),
            ("memory".to_string(), Quantity(memory.into())),
        ])
    };
    Some(Container {
        name: "rack".into(),
        image: Some(shape.rack.image.clone()),
        command: Some(vec!["krait-operator".into()]),
        args: Some(vec![
            "rack".into(),
            "--node=$(NODE_NAME)".into(),
            format!("--topology-key={}", rack.topology_key),
            format!("--out={RACK_DIR}/{RACK_FILE}"),
        ]),
        env: Some(vec![field_env("NODE_NAME", "spec.nodeName")]),
        resources: Some(ResourceRequirements {
            requests: Some(small("10m", "32Mi")),
            limits: Some(BTreeMap::from([(
                "memory".to_string(),
                Quantity("64Mi".into()),
            )])),
            ..ResourceRequirements::default()
        }),
        volume_mounts: Some(vec![
            VolumeMount {
                name: RACK_VOLUME.into(),
                mount_path: RACK_DIR.into(),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: API_ACCESS_VOLUME.into(),
                mount_path: API_ACCESS_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
        ]),
        security_context: Some(restricted_container_context()),
        ..Container::default()
    })
}

/// The ServiceAccount token, the cluster's CA (`kube-root-ca.crt`, which Kubernetes puts in
/// every namespace) and the namespace, laid out as the kubelet's automounted volume.
fn api_access_volume() -> Volume {
    let namespace = DownwardAPIVolumeFile {
        path: "namespace".into(),
        field_ref: Some(ObjectFieldSelector {
            api_version: Some("v1".into()),
            field_path: "metadata.namespace".into(),
        }),
        ..DownwardAPIVolumeFile::default()
    };
    let sources = vec![
        VolumeProjection {
            service_account_token: Some(ServiceAccountTokenProjection {
                path: "token".into(),
                expiration_seconds: Some(API_TOKEN_SECONDS),
                ..ServiceAccountTokenProjection::default()
            }),
            ..VolumeProjection::default()
        },
        VolumeProjection {
            config_map: Some(ConfigMapProjection {
                name: "kube-root-ca.crt".into(),
                items: Some(vec![KeyToPath {
                    key: "ca.crt".into(),
                    path: "ca.crt".into(),
                    ..KeyToPath::default()
                }]),
                optional: None,
            }),
            ..VolumeProjection::default()
        },
        VolumeProjection {
            downward_api: Some(DownwardAPIProjection {
                items: Some(vec![namespace]),
            }),
            ..VolumeProjection::default()
        },
    ];
    Volume {
        name: API_ACCESS_VOLUME.into(),
        projected: Some(ProjectedVolumeSource {
            default_mode: Some(0o444),
            sources: Some(sources),
            ..ProjectedVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// The container's resources with a request for cpu and memory where the spec sets neither a
/// request nor a limit (with only a limit, Kubernetes requests the limit).
fn with_default_requests(mut resources: ResourceRequirements) -> ResourceRequirements {
    let limits = resources.limits.clone().unwrap_or_default();
    let requests = resources.requests.get_or_insert_with(BTreeMap::new);
    for (name, quantity) in DEFAULT_REQUESTS {
        if !limits.contains_key(name) {
            requests
                .entry(name.into())
                .or_insert_with(|| Quantity(quantity.into()));
        }
    }
    resources
}

/// The broker's command line. `$(VAR)` is expanded by the kubelet from the container's env.
///
/// `--voters` names only the quorum's voters, the same on every broker; the others join as
/// observers, which reach the voters through `--cluster-advertise`.
fn broker_args(cluster: &ValidatedCluster, shape: &Shape) -> Vec<String> {
    let spec = &cluster.spec;
    let names = &cluster.names;
    let port = listeners::primary(&cluster.listeners).port;
    let voters: Vec<String> = shape
        .voters
        .iter()
        .map(|id| format!("{id}@{}:{CLUSTER_PORT}", names.broker_host(*id)))
        .collect();
    let own_host = format!(
        "$(POD_NAME).{}.{}.svc",
        names.headless_service(),
        names.namespace
    );
    let mut args = vec![
        format!("--data-dir={DATA_DIR}"),
        format!("--listen=0.0.0.0:{port}"),
        format!("--advertise={own_host}:{port}"),
        format!("--http-listen=0.0.0.0:{HTTP_PORT}"),
        format!("--cluster-listen=0.0.0.0:{CLUSTER_PORT}"),
    ];
    args.extend(cluster_tls_args(shape));
    args.push(format!("--cluster-advertise={own_host}:{CLUSTER_PORT}"));
    args.push(format!("{VOTERS_FLAG}{}", voters.join(",")));
    args.push(format!(
        "--termination-message-path={TERMINATION_MESSAGE_PATH}"
    ));
    if spec.rack.is_some() {
        args.push(format!("--rack-file={RACK_DIR}/{RACK_FILE}"));
    }
    if let Some(external) = cluster
        .listeners
        .iter()
        .find(|l| l.kind != ListenerType::Internal)
    {
        args.push(format!("--external-listen=0.0.0.0:{}", external.port));
        args.push(format!(
            "--external-advertised-addresses={}",
            external.advertised_addresses.join(",")
        ));
    }
    let overrides =
        listeners::broker_overrides(&cluster.listeners, spec.authorization.as_ref(), &own_host);
    args.extend(
        overrides
            .into_iter()
            .map(|(key, value)| format!("{OVERRIDE_FLAG}{key}={value}")),
    );
    args
}

/// Whether a running StatefulSet's brokers serve the one plaintext listener that clusters made
/// before listeners were configurable have (no Kafka keys given with `--override`).
pub fn default_listener_of(sts: &StatefulSet) -> bool {
    sts.spec
        .template
        .spec
        .as_ref()
        .and_then(|pod| pod.containers.iter().find(|c| c.name == "broker"))
        .and_then(|c| c.args.as_ref())
        .is_some_and(|args| !args.iter().any(|a| a.starts_with(OVERRIDE_FLAG)))
}

/// Whether the brokers need their keystores: for the cluster port, or for a TLS listener.
fn mounts_keystores(cluster: &ValidatedCluster, shape: &Shape) -> bool {
    shape.cluster_tls || listeners::uses_tls(&cluster.listeners)
}

/// Mutual TLS with the operator's certificates (the broker re-reads them when they change), or
/// the plaintext flag a cluster made before them keeps, in the place it had then so that the
/// template, and so the pods, do not change.
fn cluster_tls_args(shape: &Shape) -> Vec<String> {
    if shape.cluster_tls {
        vec![
            format!("--cluster-tls-keystore={CLUSTER_TLS_DIR}/$(POD_NAME).pem"),
            format!("--cluster-tls-truststore={CLUSTER_TLS_DIR}/{CA_CERT_KEY}"),
        ]
    } else {
        vec![PLAINTEXT_CLUSTER_FLAG.into()]
    }
}

fn volume_mounts(cluster: &ValidatedCluster, shape: &Shape) -> Vec<VolumeMount> {
    let mut mounts = vec![VolumeMount {
        name: DATA_VOLUME.into(),
        mount_path: DATA_DIR.into(),
        ..VolumeMount::default()
    }];
    if mounts_keystores(cluster, shape) {
        mounts.push(VolumeMount {
            name: CLUSTER_TLS_VOLUME.into(),
            mount_path: CLUSTER_TLS_DIR.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
    }
    if cluster.spec.rack.is_some() {
        mounts.push(VolumeMount {
            name: RACK_VOLUME.into(),
            mount_path: RACK_DIR.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
    }
    mounts
}

/// The brokers' keystores and the CA bundle (and the clients CA where a listener takes client
/// certificates) in one read-only directory. Kubernetes updates the
/// files in place when the Secrets change (not when mounted with `subPath`, so none is).
fn cluster_tls_volume(cluster: &ValidatedCluster) -> Volume {
    let secret = |name: String, items: Option<Vec<KeyToPath>>| VolumeProjection {
        secret: Some(SecretProjection {
            name,
            items,
            optional: Some(false),
        }),
        ..VolumeProjection::default()
    };
    let ca_only = vec![KeyToPath {
        key: CA_CERT_KEY.into(),
        path: CA_CERT_KEY.into(),
        ..KeyToPath::default()
    }];
    let mut sources = vec![
        secret(cluster.names.broker_certs_secret(), None),
        secret(cluster.names.cluster_ca_cert_secret(), Some(ca_only)),
    ];
    if listeners::uses_mtls(&cluster.listeners) {
        let clients_ca = vec![KeyToPath {
            key: CA_CERT_KEY.into(),
            path: listeners::CLIENTS_CA_FILE.into(),
            ..KeyToPath::default()
        }];
        sources.push(secret(
            cluster.names.clients_ca_cert_secret(),
            Some(clients_ca),
        ));
    }
    Volume {
        name: CLUSTER_TLS_VOLUME.into(),
        projected: Some(ProjectedVolumeSource {
            default_mode: Some(CLUSTER_TLS_MODE),
            sources: Some(sources),
            ..ProjectedVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// Environment from the downward API: the node id is the pod's ordinal label, so it is fixed
/// by the pod's identity and survives rescheduling.
fn broker_env(cluster: &ValidatedCluster) -> Vec<EnvVar> {
    let mut env = vec![
        field_env("POD_NAME", "metadata.name"),
        field_env(
            "KRAIT_NODE_ID",
            &format!("metadata.labels['{POD_INDEX_LABEL}']"),
        ),
    ];
    if listeners::uses_scram(&cluster.listeners) {
        // The operator's SCRAM user, created by the first broker to start (`--add-scram`),
        // from a Secret so the password is in neither the template nor the command line.
        env.push(EnvVar {
            name: "KRAIT_ADD_SCRAM".into(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: cluster.names.operator_credentials_secret(),
                    key: ADD_SCRAM_KEY.into(),
                    optional: Some(false),
                }),
                ..EnvVarSource::default()
            }),
            value: None,
        });
    }
    env
}

/// Whether a running StatefulSet serves the cluster port in plaintext (an operator that issued
/// no certificates made it).
pub fn plaintext_cluster_of(sts: &StatefulSet) -> bool {
    sts.spec
        .template
        .spec
        .as_ref()
        .and_then(|pod| pod.containers.iter().find(|c| c.name == "broker"))
        .and_then(|c| c.args.as_ref())
        .is_some_and(|args| args.iter().any(|a| a == PLAINTEXT_CLUSTER_FLAG))
}

/// The voters a running StatefulSet gives its brokers: they are fixed once the cluster has
/// formed, whatever `spec.replicas` says later. `None` when its broker has no `--voters`.
pub fn voters_of(sts: &StatefulSet) -> Option<std::collections::BTreeSet<i32>> {
    let containers = &sts.spec.template.spec.as_ref()?.containers;
    let args = containers
        .iter()
        .find(|c| c.name == "broker")?
        .args
        .as_ref()?;
    let list = args.iter().find_map(|a| a.strip_prefix(VOTERS_FLAG))?;
    let voters: Option<std::collections::BTreeSet<i32>> = list
        .split(',')
        .map(|v| v.split_once('@').and_then(|(id, _)| id.parse().ok()))
        .collect();
    voters.filter(|v| !v.is_empty())
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                api_version: None,
            }),
            ..EnvVarSource::default()
        }),
        value: None,
    }
}

fn container_port(name: &str, port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: port,
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    }
}

fn http_probe(path: &str, period_seconds: i32, failure_threshold: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("http".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period_seconds),
        failure_threshold: Some(failure_threshold),
        timeout_seconds: Some(2),
        ..Probe::default()
    }
}
