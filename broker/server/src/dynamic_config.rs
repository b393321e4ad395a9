//! Dynamic broker configs: the broker configs AlterConfigs and IncrementalAlterConfigs may change
//! at run time, per broker (resource name: its id) or for every broker (resource name: empty),
//! as Kafka's `kafka-configs.sh --entity-type brokers` does. They are replicated through the
//! controller (`SetBrokerConfigs`) and take precedence as in Kafka: a broker's own value, then
//! the cluster-wide default, then the static config (flags, config file), then the built-in.
//!
//! Three kinds, each applied where it acts:
//! - the defaults of topic configs (`log.retention.ms`, `log.cleanup.policy`, `compression.type`,
//!   `min.insync.replicas`, …: Kafka's `DynamicLogConfig`), read by every topic without an
//!   override of its own at its next use;
//! - the replication throttles of reassignments and the log cleaner's I/O rate;
//! - configs Kafka lets a broker change that have no counterpart in Krait (thread pool sizes:
//!   Krait runs on one async runtime; Kerberos: Krait has no GSSAPI). They are validated,
//!   stored and described, so that tools that set them (librdkafka's own admin tests among
//!   them) succeed, and they change nothing; the README says so.
//!
//! Every other broker config is static and refused with INVALID_CONFIG naming it.

use std::collections::BTreeMap;

use crate::topic_config::{ConfigOp, ConfigType, TOPIC_CONFIGS, validate_topic_config};

/// Kafka's dynamic broker configs for replication throttles, in bytes per second.
pub const LEADER_THROTTLE: &str = "leader.replication.throttled.rate";
pub const FOLLOWER_THROTTLE: &str = "follower.replication.throttled.rate";
/// The log cleaner's read rate (0: no limit).
pub const CLEANER_IO_RATE: &str = "log.cleaner.io.max.bytes.per.second";

/// A dynamic broker config that is not the default of a topic config.
#[derive(Debug, Clone, Copy)]
pub struct OwnKey {
    pub name: &'static str,
    /// The value while none is set, when the broker has no static value for it.
    pub default: &'static str,
    /// The smallest value allowed (every one of these is a number).
    min: f64,
    pub integer: bool,
    pub doc: &'static str,
}

const fn own(
    name: &'static str,
    default: &'static str,
    min: f64,
    integer: bool,
    doc: &'static str,
) -> OwnKey {
    OwnKey {
        name,
        default,
        min,
        integer,
        doc,
    }
}

const NO_EFFECT_THREADS: &str = "Accepted for compatibility and described; Krait has no such thread pool (it runs on one async runtime), so it has no effect.";
const NO_EFFECT_KERBEROS: &str = "Accepted for compatibility and described; Krait has no GSSAPI (Kerberos), so it has no effect.";

/// The dynamic broker configs beyond the topic defaults.
pub const OWN_KEYS: &[OwnKey] = &[
    own(
        LEADER_THROTTLE,
        "9223372036854775807",
        0.0,
        true,
        "Replication throttle in bytes/s for partitions being reassigned (leader side).",
    ),
    own(
        FOLLOWER_THROTTLE,
        "9223372036854775807",
        0.0,
        true,
        "Replication throttle in bytes/s for partitions being reassigned (follower side).",
    ),
    own(
        CLEANER_IO_RATE,
        "33554432",
        0.0,
        true,
        "Bytes per second log compaction may read, over every partition (0: no limit).",
    ),
    own("background.threads", "10", 1.0, true, NO_EFFECT_THREADS),
    own("num.io.threads", "8", 1.0, true, NO_EFFECT_THREADS),
    own("num.network.threads", "3", 1.0, true, NO_EFFECT_THREADS),
    own("num.replica.fetchers", "1", 1.0, true, NO_EFFECT_THREADS),
    own(
        "num.recovery.threads.per.data.dir",
        "2",
        1.0,
        true,
        NO_EFFECT_THREADS,
    ),
    own("log.cleaner.threads", "1", 0.0, true, NO_EFFECT_THREADS),
    own(
        "sasl.kerberos.min.time.before.relogin",
        "60000",
        0.0,
        true,
        NO_EFFECT_KERBEROS,
    ),
    own(
        "sasl.kerberos.ticket.renew.jitter",
        "0.05",
        0.0,
        false,
        NO_EFFECT_KERBEROS,
    ),
    own(
        "sasl.kerberos.ticket.renew.window.factor",
        "0.8",
        0.0,
        false,
        NO_EFFECT_KERBEROS,
    ),
];

/// A dynamic broker config.
#[derive(Debug, Clone, Copy)]
pub enum DynamicKey {
    /// The broker default of topic config `topic` (its `broker_name` in `TOPIC_CONFIGS`).
    TopicDefault {
        topic: &'static str,
    },
    Own(&'static OwnKey),
}

/// Looks up a broker config that may change at run time.
pub fn dynamic_key(name: &str) -> Option<DynamicKey> {
    if let Some(k) = OWN_KEYS.iter().find(|k| k.name == name) {
        return Some(DynamicKey::Own(k));
    }
    TOPIC_CONFIGS
        .iter()
        .find(|k| k.broker_name() == Some(name))
        .map(|k| DynamicKey::TopicDefault { topic: k.name })
}

impl DynamicKey {
    pub fn config_type(&self) -> ConfigType {
        match self {
            Self::TopicDefault { topic } => crate::topic_config::topic_config_type(topic),
            Self::Own(k) if k.integer => ConfigType::Long,
            Self::Own(_) => ConfigType::Double,
        }
    }

    fn is_list(&self) -> bool {
        matches!(self, Self::TopicDefault { topic } if crate::topic_config::is_list_config(topic))
    }
}

/// Checks one dynamic broker config value, returning the message INVALID_CONFIG carries.
pub fn validate(name: &str, value: &str) -> Result<(), String> {
    match dynamic_key(name) {
        None => Err(static_refusal(name)),
        Some(DynamicKey::TopicDefault { topic }) => {
            validate_topic_config(topic, value).map_err(|e| {
                e.replace(
                    &format!("configuration {topic}"),
                    &format!("configuration {name}"),
                )
            })
        }
        Some(DynamicKey::Own(k)) => {
            let ok = if k.integer {
                value.parse::<i64>().is_ok_and(|v| v as f64 >= k.min)
            } else {
                value
                    .parse::<f64>()
                    .is_ok_and(|v| v.is_finite() && v >= k.min)
            };
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "Invalid value {value:?} for configuration {name}: must be {} of at least {}",
                    if k.integer {
                        "a whole number"
                    } else {
                        "a number"
                    },
                    k.min
                ))
            }
        }
    }
}

fn static_refusal(name: &str) -> String {
    format!(
        "Broker config {name} is static and cannot be altered at run time (the README's \"Dynamic broker configs\" lists those that can)"
    )
}

/// Applies AlterConfigs-style or incremental changes to the dynamic configs set at one level
/// (`current`). `effective` gives a key's value as the broker sees it now, which APPEND and
/// SUBTRACT start from when this level has none. The result is validated as a whole.
pub fn apply(
    current: &BTreeMap<String, String>,
    replace: bool,
    ops: &[(String, ConfigOp)],
    effective: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>, String> {
    let mut next = if replace {
        BTreeMap::new()
    } else {
        current.clone()
    };
    for (name, op) in ops {
        let Some(key) = dynamic_key(name) else {
            return Err(static_refusal(name));
        };
        let list = |next: &BTreeMap<String, String>| -> Vec<String> {
            next.get(name)
                .cloned()
                .or_else(|| effective(name))
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        };
        match op {
            ConfigOp::Set(v) => {
                next.insert(name.clone(), v.clone());
            }
            ConfigOp::Delete => {
                next.remove(name);
            }
            ConfigOp::Append(_) | ConfigOp::Subtract(_) if !key.is_list() => {
                return Err(format!(
                    "Config {name} is not a list: APPEND and SUBTRACT do not apply"
                ));
            }
            ConfigOp::Append(v) => {
                let mut items = list(&next);
                for item in v.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                    if !items.iter().any(|x| x == item) {
                        items.push(item.to_string());
                    }
                }
                next.insert(name.clone(), items.join(","));
            }
            ConfigOp::Subtract(v) => {
                let remove: Vec<&str> = v.split(',').map(str::trim).collect();
                let items: Vec<String> = list(&next)
                    .into_iter()
                    .filter(|i| !remove.contains(&i.as_str()))
                    .collect();
                next.insert(name.clone(), items.join(","));
            }
        }
    }
    next.iter().try_for_each(|(k, v)| validate(k, v))?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn topic_defaults_throttles_and_compatibility_keys_are_dynamic_the_rest_static() {
        for name in [
            "log.retention.ms",
            "log.cleanup.policy",
            "compression.type",
            "min.insync.replicas",
            "message.max.bytes",
            LEADER_THROTTLE,
            CLEANER_IO_RATE,
            "background.threads",
            "sasl.kerberos.min.time.before.relogin",
        ] {
            assert!(dynamic_key(name).is_some(), "{name} is dynamic");
        }
        for name in ["node.id", "log.dirs", "listeners", "retention.ms"] {
            let e = validate(name, "1").unwrap_err();
            assert!(e.contains(name) && e.contains("static"), "{e}");
        }
    }

    #[test]
    fn values_are_checked_with_the_topic_configs_rules_under_the_broker_name() {
        assert!(validate("log.retention.ms", "-1").is_ok());
        let e = validate("log.cleanup.policy", "sometimes").unwrap_err();
        assert!(e.contains("log.cleanup.policy"), "{e}");
        assert!(validate("compression.type", "zstd").is_ok());
        assert!(validate("background.threads", "0").is_err());
        assert!(validate("background.threads", "9").is_ok());
        assert!(validate("sasl.kerberos.ticket.renew.jitter", "0.1").is_ok());
        assert!(validate(LEADER_THROTTLE, "fast").is_err());
    }

    #[test]
    fn set_append_subtract_and_delete_edit_one_level_from_the_effective_value() {
        let effective = |k: &str| (k == "log.cleanup.policy").then(|| "delete".to_string());
        let set = [
            ("background.threads".to_string(), ConfigOp::Set("9".into())),
            (
                "log.cleanup.policy".to_string(),
                ConfigOp::Append("compact".into()),
            ),
        ];
        let next = apply(&BTreeMap::new(), false, &set, effective).unwrap();
        assert_eq!(
            next,
            map(&[
                ("background.threads", "9"),
                ("log.cleanup.policy", "delete,compact")
            ])
        );
        let undo = [
            ("background.threads".to_string(), ConfigOp::Delete),
            (
                "log.cleanup.policy".to_string(),
                ConfigOp::Subtract("compact".into()),
            ),
        ];
        let next = apply(&next, false, &undo, effective).unwrap();
        assert_eq!(next, map(&[("log.cleanup.policy", "delete")]));
        // AlterConfigs replaces the level's whole set.
        let replace = [("log.retention.ms".to_string(), ConfigOp::Set("1000".into()))];
        assert_eq!(
            apply(&next, true, &replace, effective).unwrap(),
            map(&[("log.retention.ms", "1000")])
        );
        let append_number = [("log.retention.ms".to_string(), ConfigOp::Append("1".into()))];
        assert!(
            apply(&next, false, &append_number, effective)
                .unwrap_err()
                .contains("not a list")
        );
        let bad = [("node.id".to_string(), ConfigOp::Set("3".into()))];
        assert!(apply(&next, false, &bad, effective).is_err());
    }
}
