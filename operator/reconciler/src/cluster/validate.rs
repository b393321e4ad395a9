//! Step 2 of a cluster reconcile: checks a `KafkaCluster` spec for what its schema cannot
//! express (cross-field rules, known broker config keys) and returns a [`ValidatedCluster`] that
//! the builders trust. Pure: no client, no I/O.

use std::collections::BTreeMap;

use krait_crd::KafkaCluster;
use krait_crd::cluster::{GenericListener, KafkaClusterSpec};

use super::listeners::validate_listeners;
use crate::names::ClusterNames;

/// Kafka broker config names the broker understands, with the environment variable of the
/// `krait-broker` flag each one sets. `default.replication.factor` and `min.insync.replicas`
/// are for the planned replication flags.
pub const BROKER_CONFIG_ENV: &[(&str, &str)] = &[
    ("auto.create.topics.enable", "KRAIT_AUTO_CREATE_TOPICS"),
    ("num.partitions", "KRAIT_DEFAULT_PARTITIONS"),
    ("socket.request.max.bytes", "KRAIT_MAX_REQUEST_BYTES"),
    ("message.max.bytes", "KRAIT_MAX_MESSAGE_BYTES"),
    ("log.retention.ms", "KRAIT_RETENTION_MS"),
    ("log.retention.bytes", "KRAIT_RETENTION_BYTES"),
    (
        "log.retention.check.interval.ms",
        "KRAIT_RETENTION_CHECK_INTERVAL_MS",
    ),
    (
        "group.initial.rebalance.delay.ms",
        "KRAIT_GROUP_INITIAL_REBALANCE_DELAY_MS",
    ),
    (
        "group.min.session.timeout.ms",
        "KRAIT_GROUP_MIN_SESSION_TIMEOUT_MS",
    ),
    (
        "group.max.session.timeout.ms",
        "KRAIT_GROUP_MAX_SESSION_TIMEOUT_MS",
    ),
    (
        "offsets.retention.minutes",
        "KRAIT_OFFSETS_RETENTION_MINUTES",
    ),
    (
        "default.replication.factor",
        "KRAIT_DEFAULT_REPLICATION_FACTOR",
    ),
    ("min.insync.replicas", "KRAIT_MIN_INSYNC_REPLICAS"),
    ("memory.mb", "KRAIT_MEMORY_MB"),
    ("queued.max.request.bytes", "KRAIT_QUEUED_MAX_REQUEST_BYTES"),
    ("fetch.memory.max.bytes", "KRAIT_FETCH_MEMORY_MAX_BYTES"),
    (
        "replica.fetch.response.max.bytes",
        "KRAIT_REPLICA_FETCH_RESPONSE_MAX_BYTES",
    ),
    ("storage.memory.mb", "KRAIT_STORAGE_MEMORY_MB"),
    ("storage.reclaim.min.mb", "KRAIT_STORAGE_RECLAIM_MIN_MB"),
];

/// The smallest RocksDB memory budget a broker accepts (`storage.memory.mb`).
const MIN_STORAGE_MEMORY_MB: u64 = 16;
/// The smallest memory budget a broker accepts (`memory.mb`).
const MIN_MEMORY_MB: u64 = 64;

/// Why a spec cannot be built. Each variant becomes the `InvalidSpec` condition's message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidSpec {
    #[error("metadata.name and metadata.namespace are required")]
    MissingIdentity,
    #[error("replicas must be at least 1, got {0}")]
    Replicas(i32),
    #[error("image must not be empty")]
    EmptyImage,
    #[error("storage.size is required unless storage.ephemeral is true")]
    StorageSizeMissing,
    #[error("storage.size and storage.storageClass do not apply to ephemeral storage")]
    EphemeralWithClaim,
    #[error("config key {0:?} is not a broker config Krait supports (known: {1})")]
    UnknownConfig(String, String),
    #[error("config {key}={value:?} is not {expected}")]
    BadConfigValue {
        key: String,
        value: String,
        expected: &'static str,
    },
    #[error("{0} is set both as a field and in config; set it once")]
    ConfigDuplicatesField(&'static str),
    #[error("defaultReplicationFactor {factor} exceeds replicas {replicas}")]
    ReplicationFactorAboveReplicas { factor: i32, replicas: i32 },
    #[error("minInsyncReplicas {min_isr} exceeds the default replication factor {factor}")]
    MinIsrAboveReplicationFactor { min_isr: i32, factor: i32 },
    #[error("listener port {0} clashes with another port of the broker")]
    PortClash(i32),
    #[error(
        "the external listener's advertisedAddresses has {got} entries, need one per broker ({replicas})"
    )]
    AdvertisedAddressCount { got: usize, replicas: i32 },
    #[error("the external listener's advertisedAddresses[{0}] {1:?} is not HOST:PORT")]
    BadAdvertisedAddress(usize, String),
    #[error("the external listener's nodePortBase {base} + {replicas} brokers passes 65535")]
    NodePortRange { base: i32, replicas: i32 },
    #[error("listeners has no internal listener: the bootstrap Service and the operator need one")]
    NoInternalListener,
    #[error(
        "listener name {0:?} must be lower-case letters and digits (at most 15, starting with a letter), and not cluster, http, kafka or (for an internal listener) external"
    )]
    ListenerName(String),
    #[error("listener {0:?} is listed twice")]
    DuplicateListener(String),
    #[error("listener {0:?} is a second nodeport or loadbalancer listener; at most one is served")]
    SecondExternalListener(String),
    #[error("listener {0:?} is internal: advertisedAddresses and nodePortBase do not apply")]
    InternalWithExternalFields(String),
    #[error(
        "authorization needs an internal listener with authentication scram-sha-512: the operator logs in there as its super user"
    )]
    AuthorizationWithoutScram,
    #[error("authorization.superUsers entry {0:?} is not a principal")]
    BadSuperUser(String),
    #[error(
        "clusterCa.renewalDays {renewal} must be at least 1 and less than clusterCa.validityDays {validity}"
    )]
    CaRenewal { validity: i32, renewal: i32 },
    #[error("metrics.podMonitor.interval {0:?} is not a Prometheus duration (e.g. 30s, 1m, 1m30s)")]
    ScrapeInterval(String),
}

/// A cluster whose spec the builders can turn into objects without further checks.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedCluster {
    pub names: ClusterNames,
    pub uid: String,
    pub spec: KafkaClusterSpec,
    /// The listeners to serve: the spec's, or the default (`cluster/listeners.rs`).
    pub listeners: Vec<GenericListener>,
    /// Broker config as `KRAIT_*` environment variables, the ConfigMap's data.
    pub broker_env: BTreeMap<String, String>,
}

/// Validates a cluster spec.
pub fn validate(cluster: &KafkaCluster) -> Result<ValidatedCluster, InvalidSpec> {
    let meta = &cluster.metadata;
    let (Some(name), Some(namespace)) = (&meta.name, &meta.namespace) else {
        return Err(InvalidSpec::MissingIdentity);
    };
    let spec = &cluster.spec;
    if spec.replicas < 1 {
        return Err(InvalidSpec::Replicas(spec.replicas));
    }
    if spec.image.trim().is_empty() {
        return Err(InvalidSpec::EmptyImage);
    }
    validate_storage(spec)?;
    let listeners = validate_listeners(spec)?;
    let ca = &spec.cluster_ca;
    // Renewing inside the whole validity would issue certificates on every reconcile.
    if ca.renewal_days < 1 || ca.renewal_days >= ca.validity_days {
        return Err(InvalidSpec::CaRenewal {
            validity: ca.validity_days,
            renewal: ca.renewal_days,
        });
    }
    if let Some(metrics) = &spec.metrics
        && !is_prometheus_duration(&metrics.pod_monitor.interval)
    {
        return Err(InvalidSpec::ScrapeInterval(
            metrics.pod_monitor.interval.clone(),
        ));
    }
    let broker_env = broker_env(spec)?;
    Ok(ValidatedCluster {
        names: ClusterNames::new(name, namespace),
        uid: meta.uid.clone().unwrap_or_default(),
        spec: spec.clone(),
        listeners,
        broker_env,
    })
}

/// Whether `s` is a duration the Prometheus Operator takes (the schema's
/// `PROMETHEUS_DURATION_PATTERN`, checked here too for clusters stored before it existed):
/// one or more whole numbers each followed by a unit, units largest first, none twice.
pub fn is_prometheus_duration(s: &str) -> bool {
    const UNITS: [&str; 7] = ["y", "w", "d", "h", "m", "s", "ms"];
    let mut rest = s;
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let unit = if rest.starts_with("ms") {
            "ms"
        } else {
            rest.get(..1).unwrap_or_default()
        };
        match UNITS[next_unit..].iter().position(|u| *u == unit) {
            Some(i) => next_unit += i + 1,
            None => return false,
        }
        rest = &rest[unit.len()..];
    }
    next_unit > 0
}

fn validate_storage(spec: &KafkaClusterSpec) -> Result<(), InvalidSpec> {
    let s = &spec.storage;
    match (s.ephemeral, &s.size, &s.storage_class) {
        (true, None, None) => Ok(()),
        (true, _, _) => Err(InvalidSpec::EphemeralWithClaim),
        (false, None, _) => Err(InvalidSpec::StorageSizeMissing),
        (false, Some(_), _) => Ok(()),
    }
}

/// Maps the spec's Kafka config names onto the broker's environment variables, checking
/// values the broker would otherwise refuse at start (a crash loop is a worse error message).
fn broker_env(spec: &KafkaClusterSpec) -> Result<BTreeMap<String, String>, InvalidSpec> {
    let mut env = BTreeMap::new();
    for (key, value) in &spec.config {
        let Some((_, var)) = BROKER_CONFIG_ENV.iter().find(|(k, _)| k == key) else {
            let known: Vec<&str> = BROKER_CONFIG_ENV.iter().map(|(k, _)| *k).collect();
            return Err(InvalidSpec::UnknownConfig(key.clone(), known.join(", ")));
        };
        check_value(key, value)?;
        env.insert(var.to_string(), value.clone());
    }
    let rf = field_or_config(
        spec,
        spec.default_replication_factor,
        "default.replication.factor",
        "defaultReplicationFactor",
    )?;
    let min_isr = field_or_config(
        spec,
        spec.min_insync_replicas,
        "min.insync.replicas",
        "minInsyncReplicas",
    )?;
    let factor = rf.unwrap_or(1);
    if factor > spec.replicas {
        return Err(InvalidSpec::ReplicationFactorAboveReplicas {
            factor,
            replicas: spec.replicas,
        });
    }
    if let Some(min_isr) = min_isr
        && min_isr > factor
    {
        return Err(InvalidSpec::MinIsrAboveReplicationFactor { min_isr, factor });
    }
    if let Some(rf) = spec.default_replication_factor {
        env.insert("KRAIT_DEFAULT_REPLICATION_FACTOR".into(), rf.to_string());
    }
    if let Some(min_isr) = spec.min_insync_replicas {
        env.insert("KRAIT_MIN_INSYNC_REPLICAS".into(), min_isr.to_string());
    }
    if let Some(mb) = memory_mb(spec)
        && !spec.config.contains_key("memory.mb")
    {
        env.insert("KRAIT_MEMORY_MB".into(), mb.to_string());
    }
    Ok(env)
}

/// The broker's memory budget from its container's memory limit, when it has one: half of it,
/// leaving the other half to the page cache that the container's memory also counts (recent
/// records are read from it). RocksDB gets half the budget, a quarter of the limit, unless
/// `storage.memory.mb` is set. Without a limit the broker's default holds.
fn memory_mb(spec: &KafkaClusterSpec) -> Option<u64> {
    let limit = spec
        .resources
        .as_ref()?
        .limits
        .as_ref()?
        .get("memory")
        .and_then(|q| super::drift::quantity(&q.0))?;
    Some(((limit / 2.0 / 1_048_576.0) as u64).max(MIN_MEMORY_MB))
}

/// The value of a setting that has both a spec field and a config key; refusing both at once
/// avoids guessing which one the user meant.
fn field_or_config(
    spec: &KafkaClusterSpec,
    field: Option<i32>,
    key: &str,
    field_name: &'static str,
) -> Result<Option<i32>, InvalidSpec> {
    match (field, spec.config.get(key)) {
        (Some(_), Some(_)) => Err(InvalidSpec::ConfigDuplicatesField(field_name)),
        (Some(v), None) => Ok(Some(v)),
        // check_value already proved it parses.
        (None, Some(v)) => Ok(v.parse().ok()),
        (None, None) => Ok(None),
    }
}

fn check_value(key: &str, value: &str) -> Result<(), InvalidSpec> {
    let bad = |expected| InvalidSpec::BadConfigValue {
        key: key.to_string(),
        value: value.to_string(),
        expected,
    };
    match key {
        "auto.create.topics.enable" => match value {
            "true" | "false" => Ok(()),
            _ => Err(bad("true or false")),
        },
        "log.retention.ms" | "log.retention.bytes" => match value.parse::<i64>() {
            Ok(v) if v >= -1 => Ok(()),
            _ => Err(bad("an integer of at least -1")),
        },
        "message.max.bytes" => match value.parse::<i32>() {
            Ok(v) if v >= 0 => Ok(()),
            _ => Err(bad("a non-negative 32-bit integer")),
        },
        "memory.mb" => match value.parse::<u64>() {
            Ok(v) if v >= MIN_MEMORY_MB => Ok(()),
            _ => Err(bad("a number of MiB, at least 64")),
        },
        "storage.memory.mb" => match value.parse::<u64>() {
            Ok(v) if v >= MIN_STORAGE_MEMORY_MB => Ok(()),
            _ => Err(bad("a number of MiB, at least 16")),
        },
        "num.partitions" | "default.replication.factor" | "min.insync.replicas" => {
            match value.parse::<i32>() {
                Ok(v) if v >= 1 => Ok(()),
                _ => Err(bad("a positive 32-bit integer")),
            }
        }
        _ => match value.parse::<u64>() {
            Ok(_) => Ok(()),
            Err(_) => Err(bad("a non-negative integer")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::is_prometheus_duration;

    #[test]
    fn prometheus_durations_have_units_largest_first() {
        for good in [
            "30s",
            "1m",
            "1m30s",
            "500ms",
            "1h1m1s1ms",
            "2w3d",
            "1y",
            "0s",
        ] {
            assert!(is_prometheus_duration(good), "{good}");
        }
        for bad in [
            "", "0", "30", "s", "30 s", "1s1m", "1m1m", "1.5s", "30sec", "-1s", "1M",
        ] {
            assert!(!is_prometheus_duration(bad), "{bad}");
        }
    }
}
