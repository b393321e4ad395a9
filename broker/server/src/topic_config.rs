//! Topic-level configs: which keys exist, their broker-wide defaults, how values are checked,
//! and the view DescribeConfigs reports, with the dynamic broker configs of the applied image
//! overlaid. No I/O.

use std::collections::BTreeMap;
use std::sync::Arc;

use krait_image::ClusterImage;
use tokio::sync::watch;

use crate::config::{
    BrokerConfig, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MIN_INSYNC_REPLICAS, DEFAULT_RETENTION_BYTES,
    DEFAULT_RETENTION_MS,
};
use crate::dynamic_config::{self, DynamicKey};

/// Where a config value comes from, with Kafka's DescribeConfigs source codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    TopicOverride = 1,
    DynamicBroker = 2,
    DynamicDefaultBroker = 3,
    StaticBroker = 4,
    Default = 5,
}

/// Kafka's config types, as DescribeConfigs v3+ reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
    Double = 6,
    List = 7,
}

#[derive(Debug, Clone, Copy)]
enum Rule {
    Long {
        min: i64,
    },
    Int {
        min: i64,
    },
    OneOf(&'static [&'static str]),
    /// A comma-separated list of distinct items from the set, at least one.
    ListOf(&'static [&'static str]),
    Double {
        min: f64,
        max: f64,
    },
    Boolean,
}

/// One topic config key.
#[derive(Debug, Clone, Copy)]
pub struct TopicConfigKey {
    pub name: &'static str,
    pub doc: &'static str,
    rule: Rule,
    /// The broker config that provides the default, when there is one.
    broker_name: Option<&'static str>,
}

const fn key(
    name: &'static str,
    rule: Rule,
    broker_name: Option<&'static str>,
    doc: &'static str,
) -> TopicConfigKey {
    TopicConfigKey {
        name,
        doc,
        rule,
        broker_name,
    }
}

pub const MAX_MESSAGE_BYTES: &str = "max.message.bytes";
pub const MESSAGE_TIMESTAMP_TYPE: &str = "message.timestamp.type";
pub const COMPRESSION_TYPE: &str = "compression.type";
pub const TIMESTAMP_BEFORE_MAX_MS: &str = "message.timestamp.before.max.ms";
pub const TIMESTAMP_AFTER_MAX_MS: &str = "message.timestamp.after.max.ms";
pub const CLEANUP_POLICY: &str = "cleanup.policy";
pub const DELETE_RETENTION_MS: &str = "delete.retention.ms";
pub const MIN_COMPACTION_LAG_MS: &str = "min.compaction.lag.ms";
pub const MAX_COMPACTION_LAG_MS: &str = "max.compaction.lag.ms";
pub const MIN_CLEANABLE_DIRTY_RATIO: &str = "min.cleanable.dirty.ratio";

/// Every topic config the broker accepts. Values outside these rules are refused with
/// INVALID_CONFIG rather than stored and ignored.
pub const TOPIC_CONFIGS: &[TopicConfigKey] = &[
    key(
        CLEANUP_POLICY,
        Rule::ListOf(&["compact", "delete"]),
        Some("log.cleanup.policy"),
        "\"delete\" removes old batches by retention.ms / retention.bytes; \"compact\" keeps the latest record of each key; both may be given.",
    ),
    key(
        COMPRESSION_TYPE,
        Rule::OneOf(&["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]),
        Some("compression.type"),
        "Codec batches are stored with: \"producer\" keeps what the producer sent; any other is applied on append, recompressing a batch the producer compressed otherwise.",
    ),
    key(
        DELETE_RETENTION_MS,
        Rule::Long { min: 0 },
        Some("log.cleaner.delete.retention.ms"),
        "How long compaction keeps a tombstone (a record with a null value) after its timestamp.",
    ),
    key(
        "file.delete.delay.ms",
        Rule::Long { min: 0 },
        Some("log.segment.delete.delay.ms"),
        "Accepted for compatibility; RocksDB manages files itself.",
    ),
    key(
        "flush.messages",
        Rule::Long { min: 1 },
        Some("log.flush.interval.messages"),
        "Accepted for compatibility; --fsync decides when appends reach the disk.",
    ),
    key(
        "flush.ms",
        Rule::Long { min: 0 },
        Some("log.flush.interval.ms"),
        "Accepted for compatibility; --fsync decides when appends reach the disk.",
    ),
    key(
        MAX_COMPACTION_LAG_MS,
        Rule::Long { min: 1 },
        Some("log.cleaner.max.compaction.lag.ms"),
        "Longest a record stays uncompacted, whatever the dirty ratio.",
    ),
    key(
        MAX_MESSAGE_BYTES,
        Rule::Int { min: 0 },
        Some("message.max.bytes"),
        "Largest record batch accepted, in bytes.",
    ),
    key(
        MESSAGE_TIMESTAMP_TYPE,
        Rule::OneOf(&["CreateTime", "LogAppendTime"]),
        Some("log.message.timestamp.type"),
        "CreateTime keeps the producer's timestamps; LogAppendTime stamps batches with the broker's clock.",
    ),
    key(
        TIMESTAMP_BEFORE_MAX_MS,
        Rule::Long { min: 0 },
        Some("log.message.timestamp.before.max.ms"),
        "With CreateTime, how far in the past a record's timestamp may be; older ones are refused with INVALID_TIMESTAMP.",
    ),
    key(
        TIMESTAMP_AFTER_MAX_MS,
        Rule::Long { min: 0 },
        Some("log.message.timestamp.after.max.ms"),
        "With CreateTime, how far in the future a record's timestamp may be; later ones are refused with INVALID_TIMESTAMP.",
    ),
    key(
        MIN_CLEANABLE_DIRTY_RATIO,
        Rule::Double { min: 0.0, max: 1.0 },
        Some("log.cleaner.min.cleanable.ratio"),
        "Share of a log's cleanable bytes written since the last compaction that triggers the next.",
    ),
    key(
        MIN_COMPACTION_LAG_MS,
        Rule::Long { min: 0 },
        Some("log.cleaner.min.compaction.lag.ms"),
        "Youngest a record may be and be compacted.",
    ),
    key(
        "min.insync.replicas",
        Rule::Int { min: 1 },
        Some("min.insync.replicas"),
        "Replicas that must acknowledge a produce with acks=all.",
    ),
    key(
        "retention.bytes",
        Rule::Long { min: -1 },
        Some("log.retention.bytes"),
        "Largest size of a partition before old batches are deleted; -1 for no limit.",
    ),
    key(
        "retention.ms",
        Rule::Long { min: -1 },
        Some("log.retention.ms"),
        "Age after which batches are deleted; -1 keeps them forever.",
    ),
    key(
        "segment.bytes",
        Rule::Int { min: 14 },
        Some("log.segment.bytes"),
        "Accepted for compatibility; RocksDB manages files itself.",
    ),
    key(
        "segment.ms",
        Rule::Long { min: 1 },
        Some("log.roll.ms"),
        "Accepted for compatibility; RocksDB manages files itself.",
    ),
    key(
        "unclean.leader.election.enable",
        Rule::Boolean,
        Some("unclean.leader.election.enable"),
        "Allow an out-of-sync replica to become leader (data loss).",
    ),
];

impl TopicConfigKey {
    /// The broker config that provides the default, when there is one.
    pub fn broker_name(&self) -> Option<&'static str> {
        self.broker_name
    }
}

/// The type DescribeConfigs reports for topic config `name` (String for an unknown one).
pub fn topic_config_type(name: &str) -> ConfigType {
    topic_key(name).map_or(ConfigType::String, |k| config_type(k.rule))
}

/// Whether topic config `name` is a list (APPEND and SUBTRACT apply).
pub fn is_list_config(name: &str) -> bool {
    LIST_CONFIGS.contains(&name)
}

/// Looks up a topic config key.
pub fn topic_key(name: &str) -> Option<&'static TopicConfigKey> {
    TOPIC_CONFIGS.iter().find(|k| k.name == name)
}

/// Checks one topic config value, returning the message INVALID_CONFIG carries.
pub fn validate_topic_config(name: &str, value: &str) -> Result<(), String> {
    let Some(key) = topic_key(name) else {
        return Err(format!("Unknown topic config name: {name}"));
    };
    let ok = match key.rule {
        Rule::Long { min } => value.parse::<i64>().is_ok_and(|v| v >= min),
        Rule::Int { min } => value.parse::<i32>().is_ok_and(|v| i64::from(v) >= min),
        Rule::OneOf(allowed) => allowed.contains(&value),
        Rule::ListOf(allowed) => {
            let items: Vec<&str> = value.split(',').map(str::trim).collect();
            items.iter().all(|i| allowed.contains(i))
                && items
                    .iter()
                    .enumerate()
                    .all(|(n, i)| !items[..n].contains(i))
        }
        Rule::Double { min, max } => value.parse::<f64>().is_ok_and(|v| (min..=max).contains(&v)),
        Rule::Boolean => matches!(value, "true" | "false"),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "Invalid value {value:?} for configuration {name}: {}",
            describe_rule(key.rule)
        ))
    }
}

fn describe_rule(rule: Rule) -> String {
    match rule {
        Rule::Long { min } => format!("must be a long of at least {min}"),
        Rule::Int { min } => format!("must be an int of at least {min}"),
        Rule::OneOf(allowed) => format!("supported values are {}", allowed.join(", ")),
        Rule::ListOf(allowed) => format!(
            "must be a comma-separated list of distinct values among {}",
            allowed.join(", ")
        ),
        Rule::Double { min, max } => format!("must be a number from {min} to {max}"),
        Rule::Boolean => "must be true or false".into(),
    }
}

/// One change of an IncrementalAlterConfigs request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOp {
    Set(String),
    Delete,
    Append(String),
    Subtract(String),
}

impl ConfigOp {
    /// Decodes Kafka's operation code (0 set, 1 delete, 2 append, 3 subtract).
    pub fn from_kafka(op: i8, value: Option<String>) -> Result<Self, String> {
        match (op, value) {
            (0, Some(v)) => Ok(Self::Set(v)),
            (1, _) => Ok(Self::Delete),
            (2, Some(v)) => Ok(Self::Append(v)),
            (3, Some(v)) => Ok(Self::Subtract(v)),
            (0 | 2 | 3, None) => Err("a value is required for this operation".into()),
            (other, _) => Err(format!("unknown config operation {other}")),
        }
    }
}

/// Configs whose value is a comma-separated list, the only ones APPEND and SUBTRACT apply to.
const LIST_CONFIGS: &[&str] = &["cleanup.policy"];

/// Applies incremental changes to a topic's overrides, returning the new overrides. `effective`
/// gives the current value of a key (override or default), which APPEND and SUBTRACT start from.
pub fn apply_changes(
    overrides: &BTreeMap<String, String>,
    changes: &[(String, ConfigOp)],
    effective: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>, String> {
    let mut next = overrides.clone();
    for (name, op) in changes {
        if topic_key(name).is_none() {
            return Err(format!("Unknown topic config name: {name}"));
        }
        let list = || -> Vec<String> {
            next.get(name)
                .cloned()
                .or_else(|| effective(name))
                .unwrap_or_default()
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        };
        let is_list = LIST_CONFIGS.contains(&name.as_str());
        match op {
            ConfigOp::Set(v) => {
                next.insert(name.clone(), v.clone());
            }
            ConfigOp::Delete => {
                next.remove(name);
            }
            ConfigOp::Append(_) | ConfigOp::Subtract(_) if !is_list => {
                return Err(format!(
                    "Config {name} is not a list: APPEND and SUBTRACT do not apply"
                ));
            }
            ConfigOp::Append(v) => {
                let mut items = list();
                for item in v.split(',').filter(|i| !i.is_empty()) {
                    if !items.iter().any(|x| x == item) {
                        items.push(item.to_string());
                    }
                }
                next.insert(name.clone(), items.join(","));
            }
            ConfigOp::Subtract(v) => {
                let remove: Vec<&str> = v.split(',').collect();
                let items: Vec<String> = list()
                    .into_iter()
                    .filter(|i| !remove.contains(&i.as_str()))
                    .collect();
                next.insert(name.clone(), items.join(","));
            }
        }
    }
    validate_topic_configs(&next)?;
    Ok(next)
}

/// Validates every entry of a topic config map.
pub fn validate_topic_configs(configs: &BTreeMap<String, String>) -> Result<(), String> {
    configs
        .iter()
        .try_for_each(|(k, v)| validate_topic_config(k, v))
}

fn config_type(rule: Rule) -> ConfigType {
    match rule {
        Rule::Long { .. } => ConfigType::Long,
        Rule::Int { .. } => ConfigType::Int,
        Rule::OneOf(_) => ConfigType::String,
        Rule::ListOf(_) => ConfigType::List,
        Rule::Double { .. } => ConfigType::Double,
        Rule::Boolean => ConfigType::Boolean,
    }
}

/// One config entry as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: String,
    pub source: ConfigSource,
    pub read_only: bool,
    pub config_type: ConfigType,
    pub doc: &'static str,
}

/// Broker-wide defaults of topic configs and the broker's own configs: static ones from its
/// flags, overlaid with the dynamic ones of the cluster image (`dynamic_config`).
#[derive(Debug, Clone)]
pub struct BrokerDefaults {
    entries: Vec<ConfigEntry>,
    /// This broker's id, as the resource name of its own dynamic configs.
    node_id: String,
    /// The image this broker has applied, for its dynamic configs; none in unit tests.
    image: Option<watch::Receiver<Arc<ClusterImage>>>,
}

impl BrokerDefaults {
    pub fn from_config(c: &BrokerConfig, advertised: &str) -> Self {
        // A setting with no built-in value of its own (addresses, ids, paths).
        let e = |name: &str, value: std::string::String, config_type, doc| ConfigEntry {
            name: name.into(),
            value,
            source: ConfigSource::StaticBroker,
            read_only: true,
            config_type,
            doc,
        };
        // A setting with a built-in value: Kafka's DEFAULT_CONFIG while it has that value,
        // STATIC_BROKER_CONFIG once the operator set another.
        let d = |name: &str,
                 value: std::string::String,
                 builtin: std::string::String,
                 config_type,
                 doc| {
            let source = if value == builtin {
                ConfigSource::Default
            } else {
                ConfigSource::StaticBroker
            };
            ConfigEntry {
                source,
                ..e(name, value, config_type, doc)
            }
        };
        // A setting whose default is a share of memory.mb: DEFAULT_CONFIG while not set itself.
        let share = |name: &str, value: std::string::String, set: bool, config_type, doc| {
            let builtin = if set {
                std::string::String::new()
            } else {
                value.clone()
            };
            d(name, value, builtin, config_type, doc)
        };
        // A setting Krait does not change: always its built-in value.
        let fixed = |name: &str, value: &str, config_type, doc| {
            d(name, value.into(), value.into(), config_type, doc)
        };
        use ConfigType::*;
        let entries = vec![
            e("node.id", c.node_id.to_string(), Int, "This broker's id."),
            e("broker.id", c.node_id.to_string(), Int, "This broker's id."),
            e(
                "listeners",
                format!("PLAINTEXT://{}", c.listen),
                String,
                "Address the listener binds.",
            ),
            e(
                "advertised.listeners",
                format!("PLAINTEXT://{advertised}"),
                String,
                "Address given to clients.",
            ),
            e(
                "log.dirs",
                c.data_dir.display().to_string(),
                String,
                "Data directory (one RocksDB database).",
            ),
            e(
                "auto.create.topics.enable",
                c.auto_create_topics.to_string(),
                Boolean,
                "Create unknown topics on request.",
            ),
            e(
                "num.partitions",
                c.default_partitions.to_string(),
                Int,
                "Partitions of auto-created topics.",
            ),
            e(
                "default.replication.factor",
                c.default_replication_factor.to_string(),
                Int,
                "Replication factor of auto-created topics.",
            ),
            share(
                "socket.request.max.bytes",
                c.max_request_bytes().to_string(),
                c.max_request_bytes.is_some(),
                Int,
                "Largest request accepted.",
            ),
            share(
                "queued.max.request.bytes",
                c.queued_max_request_bytes().to_string(),
                c.queued_max_request_bytes.is_some(),
                Long,
                "Bytes of requests being read or handled at once.",
            ),
            d(
                "connections.max.reauth.ms",
                c.connections_max_reauth_ms.to_string(),
                "0".into(),
                Long,
                "How long a SASL login lasts before the client must log in again; 0: forever.",
            ),
            d(
                "message.max.bytes",
                c.max_message_bytes.to_string(),
                DEFAULT_MAX_MESSAGE_BYTES.to_string(),
                Int,
                "Default max.message.bytes of topics.",
            ),
            d(
                "log.retention.ms",
                c.retention_ms.to_string(),
                DEFAULT_RETENTION_MS.to_string(),
                Long,
                "Default retention.ms of topics.",
            ),
            d(
                "log.retention.bytes",
                c.retention_bytes.to_string(),
                DEFAULT_RETENTION_BYTES.to_string(),
                Long,
                "Default retention.bytes of topics.",
            ),
            e(
                "log.retention.check.interval.ms",
                c.retention_check_interval_ms.to_string(),
                Long,
                "How often retention runs.",
            ),
            fixed(
                "log.cleanup.policy",
                "delete",
                String,
                "Default cleanup.policy of topics.",
            ),
            fixed(
                "log.cleaner.delete.retention.ms",
                "86400000",
                Long,
                "Default delete.retention.ms of topics.",
            ),
            fixed(
                "log.cleaner.min.compaction.lag.ms",
                "0",
                Long,
                "Default min.compaction.lag.ms of topics.",
            ),
            fixed(
                "log.cleaner.max.compaction.lag.ms",
                &i64::MAX.to_string(),
                Long,
                "Default max.compaction.lag.ms of topics.",
            ),
            fixed(
                "log.cleaner.min.cleanable.ratio",
                "0.5",
                Double,
                "Default min.cleanable.dirty.ratio of topics.",
            ),
            e(
                "log.cleaner.io.max.bytes.per.second",
                c.log_cleaner_io_max_bytes_per_second.to_string(),
                Long,
                "Bytes per second log compaction may read.",
            ),
            d(
                "log.cleaner.backoff.ms",
                c.log_cleaner_backoff_ms.to_string(),
                "15000".into(),
                Long,
                "How often the log cleaner looks for partitions due for compaction.",
            ),
            fixed(
                "compression.type",
                "producer",
                String,
                "Default compression.type of topics.",
            ),
            fixed(
                "log.message.timestamp.type",
                "CreateTime",
                String,
                "Default timestamp type of topics.",
            ),
            d(
                "min.insync.replicas",
                c.min_insync_replicas.to_string(),
                DEFAULT_MIN_INSYNC_REPLICAS.to_string(),
                Int,
                "Default min.insync.replicas of topics.",
            ),
            fixed(
                "log.message.timestamp.before.max.ms",
                &i64::MAX.to_string(),
                Long,
                "Default message.timestamp.before.max.ms of topics.",
            ),
            fixed(
                "log.message.timestamp.after.max.ms",
                "3600000",
                Long,
                "Default message.timestamp.after.max.ms of topics (Kafka 4.0's: one hour).",
            ),
            fixed(
                "log.segment.bytes",
                "1073741824",
                Int,
                "Default segment.bytes of topics.",
            ),
            fixed(
                "log.flush.interval.messages",
                &i64::MAX.to_string(),
                Long,
                "Default flush.messages of topics.",
            ),
            fixed(
                "log.flush.interval.ms",
                &i64::MAX.to_string(),
                Long,
                "Default flush.ms of topics.",
            ),
            fixed(
                "log.segment.delete.delay.ms",
                "60000",
                Long,
                "Default file.delete.delay.ms of topics.",
            ),
            fixed(
                "log.roll.ms",
                "604800000",
                Long,
                "Default segment.ms of topics.",
            ),
            fixed(
                "unclean.leader.election.enable",
                "false",
                Boolean,
                "Default unclean election policy.",
            ),
            e(
                "log.flush.on.append",
                c.fsync.to_string(),
                Boolean,
                "fsync before acknowledging a produce.",
            ),
            d(
                "memory.mb",
                c.memory_mb.to_string(),
                crate::memory_budget::DEFAULT_MEMORY_MB.to_string(),
                Long,
                "MiB the broker's memory stays within; the budgets below default to shares of it.",
            ),
            share(
                "storage.memory.mb",
                c.storage_memory_mb().to_string(),
                c.storage_memory_mb.is_some(),
                Long,
                "MiB of RocksDB memtables and block cache together.",
            ),
            share(
                "fetch.memory.max.bytes",
                c.fetch_memory_max_bytes().to_string(),
                c.fetch_memory_max_bytes.is_some(),
                Long,
                "Bytes of records all Fetch responses hold at once, until written.",
            ),
            share(
                "replica.fetch.response.max.bytes",
                c.replica_fetch_response_max_bytes().to_string(),
                c.replica_fetch_response_max_bytes.is_some(),
                Int,
                "Most records one replica fetch response carries.",
            ),
        ];
        let mut entries = entries;
        if let Some(rack) = c.rack.as_ref().filter(|r| !r.is_empty()) {
            entries.push(e(
                "broker.rack",
                rack.clone(),
                String,
                "This broker's failure domain.",
            ));
        }
        let selector = |s| match s {
            crate::config::ReplicaSelector::Leader => {
                "org.apache.kafka.common.replica.LeaderSelector"
            }
            crate::config::ReplicaSelector::RackAware => {
                "org.apache.kafka.common.replica.RackAwareReplicaSelector"
            }
        };
        entries.push(d(
            "replica.selector.class",
            selector(c.replica_selector).into(),
            selector(crate::config::ReplicaSelector::Leader).into(),
            String,
            "Which replica a consumer with a client.rack reads from (KIP-392).",
        ));
        Self {
            entries,
            node_id: c.node_id.to_string(),
            image: None,
        }
    }

    /// Takes dynamic broker configs from the images this broker applies.
    pub fn with_dynamic(mut self, image: watch::Receiver<Arc<ClusterImage>>) -> Self {
        self.image = Some(image);
        self
    }

    /// Dynamic config `key` of broker `resource` (an id; empty for the cluster-wide level):
    /// the broker's own value, else the cluster-wide default, with its source.
    fn dynamic_value(&self, resource: &str, key: &str) -> Option<(String, ConfigSource)> {
        let image = self.image.as_ref()?.borrow();
        let level = |name: &str| image.broker_configs.get(name).and_then(|c| c.get(key));
        if !resource.is_empty()
            && let Some(v) = level(resource)
        {
            return Some((v.clone(), ConfigSource::DynamicBroker));
        }
        level("").map(|v| (v.clone(), ConfigSource::DynamicDefaultBroker))
    }

    /// Config `name` of this broker as it applies now, with its source.
    fn broker_entry(&self, name: &str) -> Option<ConfigEntry> {
        let mut entry = match self.entries.iter().find(|e| e.name == name) {
            Some(e) => e.clone(),
            None => match dynamic_config::dynamic_key(name)? {
                DynamicKey::Own(k) => own_key_entry(k),
                DynamicKey::TopicDefault { .. } => return None,
            },
        };
        if let Some((value, source)) = self.dynamic_value(&self.node_id, name) {
            (entry.value, entry.source) = (value, source);
        }
        Some(entry)
    }

    /// The configs of broker resource `resource` (this broker's id, another's, or empty for the
    /// cluster-wide level), for DescribeConfigs: for this broker and the cluster-wide level,
    /// every static config with the dynamic ones overlaid; for another broker, which serves its
    /// own static configs, only the dynamic ones.
    pub fn broker_entries(&self, resource: &str) -> Vec<ConfigEntry> {
        let mine = resource.is_empty() || resource == self.node_id;
        let mut out: Vec<ConfigEntry> = if mine {
            self.entries.clone()
        } else {
            Vec::new()
        };
        for k in dynamic_config::OWN_KEYS {
            if !out.iter().any(|e| e.name == k.name) {
                out.push(own_key_entry(k));
            }
        }
        if !mine {
            for k in TOPIC_CONFIGS {
                if let Some(name) = k.broker_name
                    && self.dynamic_value(resource, name).is_some()
                {
                    out.push(ConfigEntry {
                        name: name.into(),
                        value: String::new(),
                        source: ConfigSource::Default,
                        read_only: false,
                        config_type: config_type(k.rule),
                        doc: k.doc,
                    });
                }
            }
        }
        for e in &mut out {
            if dynamic_config::dynamic_key(&e.name).is_some() {
                e.read_only = false;
            }
            if let Some((value, source)) = self.dynamic_value(resource, &e.name) {
                (e.value, e.source) = (value, source);
            }
        }
        out
    }

    /// `broker_entry`'s value without building the entry: topic configs look their defaults
    /// up here on every produce and fetch.
    fn broker_value(&self, name: &str) -> Option<String> {
        if let Some((value, _)) = self.dynamic_value(&self.node_id, name) {
            return Some(value);
        }
        match self.entries.iter().find(|e| e.name == name) {
            Some(e) => Some(e.value.clone()),
            None => match dynamic_config::dynamic_key(name)? {
                DynamicKey::Own(k) => Some(k.default.to_string()),
                DynamicKey::TopicDefault { .. } => None,
            },
        }
    }

    /// This broker's current value of a broker config (dynamic, else static, else built-in).
    pub fn broker_config(&self, name: &str) -> Option<String> {
        self.broker_value(name)
    }

    /// Effective value of a topic config: the topic's override, else the broker default.
    pub fn topic_value(&self, overrides: &BTreeMap<String, String>, name: &str) -> Option<String> {
        if let Some(v) = overrides.get(name) {
            return Some(v.clone());
        }
        topic_key(name)?
            .broker_name
            .and_then(|b| self.broker_value(b))
    }

    /// Every topic config with its effective value and where that value comes from.
    pub fn topic_entries(&self, overrides: &BTreeMap<String, String>) -> Vec<ConfigEntry> {
        TOPIC_CONFIGS
            .iter()
            .map(|k| {
                let (value, source) = match overrides.get(k.name) {
                    Some(v) => (v.clone(), ConfigSource::TopicOverride),
                    None => {
                        let broker = k.broker_name.and_then(|b| self.broker_entry(b));
                        broker.map_or((String::new(), ConfigSource::Default), |b| {
                            (b.value, b.source)
                        })
                    }
                };
                ConfigEntry {
                    name: k.name.into(),
                    value,
                    source,
                    read_only: false,
                    config_type: config_type(k.rule),
                    doc: k.doc,
                }
            })
            .collect()
    }

    /// Whether a topic's records take the broker's clock as their timestamp.
    pub fn uses_log_append_time(&self, overrides: &BTreeMap<String, String>) -> bool {
        self.topic_value(overrides, MESSAGE_TIMESTAMP_TYPE)
            .as_deref()
            == Some("LogAppendTime")
    }

    /// The record timestamps a topic accepts at `now_ms`, or `None` when it stamps records with
    /// the broker's clock (`LogAppendTime`) and so accepts any.
    pub fn timestamp_window(
        &self,
        overrides: &BTreeMap<String, String>,
        now_ms: i64,
    ) -> Option<krait_protocol::batch::TimestampWindow> {
        if self.uses_log_append_time(overrides) {
            return None;
        }
        let ms = |name| {
            self.topic_value(overrides, name)
                .and_then(|v| v.parse().ok())
                .unwrap_or(i64::MAX)
        };
        Some(krait_protocol::batch::TimestampWindow {
            now_ms,
            before_max_ms: ms(TIMESTAMP_BEFORE_MAX_MS),
            after_max_ms: ms(TIMESTAMP_AFTER_MAX_MS),
        })
    }

    /// The codec a topic stores its batches with (an attribute id, 0 for none), or `None` to
    /// keep the producer's (`compression.type=producer`).
    pub fn compression_codec(&self, overrides: &BTreeMap<String, String>) -> Option<i16> {
        self.topic_value(overrides, COMPRESSION_TYPE)
            .and_then(|v| krait_protocol::batch::parse_compression_type(&v))
            .flatten()
    }

    /// Whether a topic's `cleanup.policy` names `policy` ("compact" or "delete").
    pub fn has_cleanup_policy(&self, overrides: &BTreeMap<String, String>, policy: &str) -> bool {
        self.topic_value(overrides, CLEANUP_POLICY)
            .is_some_and(|v| v.split(',').any(|p| p.trim() == policy))
    }

    /// A compacted topic's settings for the log cleaner.
    pub fn compaction_config(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> krait_storage::compaction::CompactionConfig {
        let defaults = krait_storage::compaction::CompactionConfig::default();
        let ms = |name, default| {
            self.topic_value(overrides, name)
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        krait_storage::compaction::CompactionConfig {
            delete_retention_ms: ms(DELETE_RETENTION_MS, defaults.delete_retention_ms),
            min_compaction_lag_ms: ms(MIN_COMPACTION_LAG_MS, defaults.min_compaction_lag_ms),
            max_compaction_lag_ms: ms(MAX_COMPACTION_LAG_MS, defaults.max_compaction_lag_ms),
            min_cleanable_dirty_ratio: self
                .topic_value(overrides, MIN_CLEANABLE_DIRTY_RATIO)
                .and_then(|v| v.parse().ok())
                .unwrap_or(defaults.min_cleanable_dirty_ratio),
            quiet_recheck_ms: self
                .broker_value("log.retention.check.interval.ms")
                .and_then(|v| v.parse().ok())
                .unwrap_or(defaults.quiet_recheck_ms),
            ..defaults
        }
    }

    /// The effective min.insync.replicas of a topic.
    pub fn min_insync_replicas(&self, overrides: &BTreeMap<String, String>) -> usize {
        self.topic_value(overrides, "min.insync.replicas")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1)
    }

    /// Whether a topic may elect a leader from outside its ISR.
    pub fn unclean_election(&self, overrides: &BTreeMap<String, String>) -> bool {
        self.topic_value(overrides, "unclean.leader.election.enable")
            .as_deref()
            == Some("true")
    }

    /// The effective max.message.bytes of a topic.
    pub fn max_message_bytes(&self, overrides: &BTreeMap<String, String>) -> usize {
        self.topic_value(overrides, MAX_MESSAGE_BYTES)
            .and_then(|v| v.parse().ok())
            .unwrap_or(usize::MAX)
    }
}

/// A dynamic-only broker config at its built-in value.
fn own_key_entry(k: &dynamic_config::OwnKey) -> ConfigEntry {
    ConfigEntry {
        name: k.name.into(),
        value: k.default.into(),
        source: ConfigSource::Default,
        read_only: false,
        config_type: if k.integer {
            ConfigType::Long
        } else {
            ConfigType::Double
        },
        doc: k.doc,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn defaults() -> BrokerDefaults {
        BrokerDefaults::from_config(
            &BrokerConfig::parse_from(["krait-broker"]),
            "127.0.0.1:9092",
        )
    }

    #[test]
    fn dynamic_broker_configs_overlay_the_static_ones_own_level_first() {
        let mut image = ClusterImage::default();
        let level = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        image.broker_configs.insert(
            String::new(),
            level(&[("log.retention.ms", "1000"), ("message.max.bytes", "2000")]),
        );
        image
            .broker_configs
            .insert("1".into(), level(&[("message.max.bytes", "3000")]));
        image
            .broker_configs
            .insert("2".into(), level(&[("background.threads", "4")]));
        let (_tx, rx) = watch::channel(Arc::new(image));
        let d = defaults().with_dynamic(rx);
        let none = BTreeMap::new();
        assert_eq!(
            d.topic_value(&none, "retention.ms").as_deref(),
            Some("1000")
        );
        assert_eq!(
            d.max_message_bytes(&none),
            3000,
            "broker 1's own value wins"
        );
        let topic = d.topic_entries(&none);
        let source = |name: &str| topic.iter().find(|e| e.name == name).unwrap().source;
        assert_eq!(source("retention.ms"), ConfigSource::DynamicDefaultBroker);
        assert_eq!(source("max.message.bytes"), ConfigSource::DynamicBroker);
        assert_eq!(source("retention.bytes"), ConfigSource::Default);

        let mine = d.broker_entries("1");
        let entry = |entries: &[ConfigEntry], name: &str| {
            entries.iter().find(|e| e.name == name).cloned().unwrap()
        };
        let e = entry(&mine, "message.max.bytes");
        assert_eq!(
            (e.value.as_str(), e.source, e.read_only),
            ("3000", ConfigSource::DynamicBroker, false)
        );
        assert!(
            entry(&mine, "log.dirs").read_only,
            "static configs are read-only"
        );
        let e = entry(&d.broker_entries(""), "message.max.bytes");
        assert_eq!(
            (e.value.as_str(), e.source),
            ("2000", ConfigSource::DynamicDefaultBroker)
        );
        // Another broker: only dynamic configs, its own and the cluster-wide ones.
        let other = d.broker_entries("2");
        assert!(other.iter().all(|e| e.name != "log.dirs"));
        assert_eq!(entry(&other, "background.threads").value, "4");
        assert_eq!(entry(&other, "message.max.bytes").value, "2000");
    }

    #[test]
    fn unknown_and_invalid_values_name_the_key() {
        assert!(
            validate_topic_config("nope.ms", "1")
                .unwrap_err()
                .contains("nope.ms")
        );
        assert!(
            validate_topic_config("retention.ms", "-2")
                .unwrap_err()
                .contains("retention.ms")
        );
        assert!(validate_topic_config("retention.ms", "abc").is_err());
        assert!(validate_topic_config("max.message.bytes", "99999999999").is_err());
        for policy in ["compact", "delete", "compact,delete", "delete,compact"] {
            assert!(
                validate_topic_config("cleanup.policy", policy).is_ok(),
                "{policy}"
            );
        }
        for policy in ["", "compact,compact", "remove"] {
            assert!(
                validate_topic_config("cleanup.policy", policy).is_err(),
                "{policy}"
            );
        }
        assert!(validate_topic_config("min.cleanable.dirty.ratio", "0.1").is_ok());
        assert!(validate_topic_config("min.cleanable.dirty.ratio", "1.5").is_err());
        assert!(validate_topic_config("retention.ms", "-1").is_ok());
        assert!(validate_topic_config("unclean.leader.election.enable", "true").is_ok());
    }

    #[test]
    fn incremental_changes_set_delete_and_refuse_bad_ones() {
        let current = BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]);
        let effective = |_: &str| Some("delete".to_string());
        let set = |k: &str, v: &str| (k.to_string(), ConfigOp::Set(v.to_string()));
        let next = apply_changes(
            &current,
            &[
                set("retention.bytes", "5"),
                ("retention.ms".into(), ConfigOp::Delete),
            ],
            effective,
        )
        .unwrap();
        assert_eq!(
            next,
            BTreeMap::from([("retention.bytes".to_string(), "5".to_string())])
        );
        assert!(
            apply_changes(&current, &[set("nope", "1")], effective)
                .unwrap_err()
                .contains("nope")
        );
        assert!(
            apply_changes(&current, &[set("retention.ms", "x")], effective)
                .unwrap_err()
                .contains("retention.ms")
        );
        let append = ("retention.ms".to_string(), ConfigOp::Append("1".into()));
        assert!(
            apply_changes(&current, &[append], effective)
                .unwrap_err()
                .contains("not a list")
        );
        let same = (
            "cleanup.policy".to_string(),
            ConfigOp::Append("delete".into()),
        );
        assert_eq!(
            apply_changes(&current, &[same], effective).unwrap()["cleanup.policy"],
            "delete"
        );
        let compact = (
            "cleanup.policy".to_string(),
            ConfigOp::Append("compact".into()),
        );
        assert_eq!(
            apply_changes(&current, std::slice::from_ref(&compact), effective).unwrap()["cleanup.policy"],
            "delete,compact"
        );
        let twice = [compact.clone(), compact];
        assert_eq!(
            apply_changes(&current, &twice, effective).unwrap()["cleanup.policy"],
            "delete,compact",
            "APPEND adds an item once"
        );
    }

    #[test]
    fn topic_values_fall_back_to_broker_defaults() {
        let d = defaults();
        let none = BTreeMap::new();
        assert_eq!(
            d.topic_value(&none, "retention.ms").as_deref(),
            Some("604800000")
        );
        assert_eq!(d.max_message_bytes(&none), 1_048_588);
        let some = BTreeMap::from([(MAX_MESSAGE_BYTES.to_string(), "2000".to_string())]);
        assert_eq!(d.max_message_bytes(&some), 2000);
    }

    #[test]
    fn topic_defaults_set_by_a_broker_flag_report_the_broker_as_source() {
        let c = BrokerConfig::parse_from(["krait-broker", "--retention-ms", "1000"]);
        let d = BrokerDefaults::from_config(&c, "127.0.0.1:9092");
        let entries = d.topic_entries(&BTreeMap::new());
        let find = |n: &str| entries.iter().find(|e| e.name == n).unwrap().clone();
        assert_eq!(
            (
                find("retention.ms").value.as_str(),
                find("retention.ms").source
            ),
            ("1000", ConfigSource::StaticBroker)
        );
        assert_eq!(find("retention.bytes").source, ConfigSource::Default);
    }

    #[test]
    fn described_topic_configs_report_their_source() {
        let d = defaults();
        let overrides = BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]);
        let entries = d.topic_entries(&overrides);
        assert_eq!(entries.len(), TOPIC_CONFIGS.len());
        let retention = entries.iter().find(|e| e.name == "retention.ms").unwrap();
        assert_eq!(
            (retention.value.as_str(), retention.source),
            ("1000", ConfigSource::TopicOverride)
        );
        let cleanup = entries.iter().find(|e| e.name == "cleanup.policy").unwrap();
        assert_eq!(
            (cleanup.value.as_str(), cleanup.source),
            ("delete", ConfigSource::Default)
        );
        assert!(
            entries.iter().all(|e| !e.value.is_empty()),
            "every topic config has a default"
        );
    }
}
