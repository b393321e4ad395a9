//! The state every request handler shares: configuration, storage and the topic registry.

use std::sync::Arc;

use krait_coordinator::{Coordinator, GroupRecord, Settings};
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_storage::{Store, StoreOptions, StoredGroup};

use crate::config::{Advertised, BrokerConfig};
use crate::metrics::Metrics;
use crate::topic_config::BrokerDefaults;
use crate::topics::Topics;

/// One running broker.
#[derive(Debug)]
pub struct Broker {
    pub config: BrokerConfig,
    pub advertised: Advertised,
    pub cluster_id: String,
    pub defaults: BrokerDefaults,
    pub topics: Topics,
    pub metrics: Metrics,
    pub coordinator: Arc<Coordinator>,
    pub store: Arc<Store>,
}

/// The leader epoch of every partition on a single broker, which never changes leader.
pub const LEADER_EPOCH: i32 = 0;

/// Kafka's check of a request's `current_leader_epoch` against the partition's: a client
/// ahead of the broker gets UNKNOWN_LEADER_EPOCH (retry after metadata catches up), one behind
/// gets FENCED_LEADER_EPOCH (refresh metadata); -1 skips the check.
pub fn check_leader_epoch(requested: i32, current: i32) -> Option<ResponseError> {
    match requested {
        r if r < 0 || r == current => None,
        r if r > current => Some(ResponseError::UnknownLeaderEpoch),
        _ => Some(ResponseError::FencedLeaderEpoch),
    }
}

impl Broker {
    /// Opens (and locks) the data directory of `config`.
    pub fn open_store(config: &BrokerConfig) -> anyhow::Result<Store> {
        Ok(Store::open(
            &config.data_dir,
            StoreOptions {
                sync_writes: config.fsync,
            },
        )?)
    }

    /// Opens the data directory and loads every topic.
    pub fn open(config: BrokerConfig, advertised: Advertised) -> anyhow::Result<Self> {
        let store = Self::open_store(&config)?;
        Self::with_store(config, advertised, store)
    }

    /// Loads every topic from an opened store.
    pub fn with_store(
        config: BrokerConfig,
        advertised: Advertised,
        store: Store,
    ) -> anyhow::Result<Self> {
        let cluster_id = store.cluster_id(new_cluster_id)?;
        let store = Arc::new(store);
        let topics = Topics::load(store.clone())?;
        let coordinator = Arc::new(coordinator(&config, &store)?);
        let defaults = BrokerDefaults::from_config(
            &config,
            &format!("{}:{}", advertised.host, advertised.port),
        );
        Ok(Self {
            config,
            advertised,
            cluster_id,
            defaults,
            topics,
            metrics: Metrics::default(),
            coordinator,
            store,
        })
    }

    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }

    /// Brokers that are alive: this one.
    pub fn live_brokers(&self) -> usize {
        1
    }
}

/// The group coordinator, with the groups stored on disk, persisting group metadata on change.
fn coordinator(config: &BrokerConfig, store: &Arc<Store>) -> anyhow::Result<Coordinator> {
    let settings = Settings {
        initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
        min_session_timeout_ms: config.group_min_session_timeout_ms,
        max_session_timeout_ms: config.group_max_session_timeout_ms,
    };
    let restored = store
        .load_groups()?
        .into_iter()
        .map(|g| GroupRecord {
            group_id: g.group_id,
            generation_id: g.generation_id,
            protocol_type: g.protocol_type,
        })
        .collect();
    let store = store.clone();
    let persist = move |group_id: &str, record: Option<&GroupRecord>| {
        let result = match record {
            Some(r) => store.put_group(&StoredGroup {
                group_id: r.group_id.clone(),
                generation_id: r.generation_id,
                protocol_type: r.protocol_type.clone(),
            }),
            None => store.delete_group(group_id),
        };
        if let Err(e) = result {
            tracing::warn!(group = group_id, error = %e, "cannot persist group metadata");
        }
    };
    Ok(Coordinator::new(settings, restored, Box::new(persist)))
}

/// Kafka cluster ids are 16 random bytes in URL-safe base64 without padding (22 characters);
/// like Kafka, never one starting with '-', which command lines would take for a flag.
fn new_cluster_id() -> String {
    loop {
        let id = random_base64_id();
        if !id.starts_with('-') {
            return id;
        }
    }
}

fn random_base64_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut bits: u128 = u128::from_be_bytes(bytes);
    let mut out = String::with_capacity(22);
    for _ in 0..22 {
        out.push(ALPHABET[(bits >> 122) as usize] as char);
        bits <<= 6;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_epoch_check_follows_kafka() {
        assert_eq!(check_leader_epoch(-1, 5), None);
        assert_eq!(check_leader_epoch(5, 5), None);
        assert_eq!(
            check_leader_epoch(6, 5),
            Some(ResponseError::UnknownLeaderEpoch)
        );
        assert_eq!(
            check_leader_epoch(4, 5),
            Some(ResponseError::FencedLeaderEpoch)
        );
    }

    #[test]
    fn cluster_ids_look_like_kafkas() {
        let id = super::new_cluster_id();
        assert_eq!(id.len(), 22);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert!((0..200).all(|_| !super::new_cluster_id().starts_with('-')));
        assert_ne!(id, super::new_cluster_id());
    }
}
