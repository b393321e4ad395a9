//! The live topic registry: the catalog from storage plus each partition's open log and a
//! channel that wakes long-polling fetches when the partition's high watermark moves.
//!
//! Topics are immutable values behind `Arc`; a change (new partitions) swaps in a new value,
//! so a request holds a consistent view without locks.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use krait_storage::{PartitionLog, PartitionRecord, StorageError, Store, TopicRecord};
use tokio::sync::watch;
use uuid::Uuid;

/// One partition of a live topic.
#[derive(Debug)]
pub struct Partition {
    pub index: i32,
    pub log: PartitionLog,
    /// Carries the high watermark; fetches waiting for data subscribe to it.
    high_watermark: watch::Sender<i64>,
}

impl Partition {
    fn open(store: &Store, record: &PartitionRecord) -> Result<Self, StorageError> {
        let log = store.open_log(record.log_id)?;
        // This broker leads every partition it has, always at the same epoch.
        log.become_leader(crate::broker::LEADER_EPOCH)?;
        let (high_watermark, _) = watch::channel(log.offsets().high_watermark);
        Ok(Self {
            index: record.index,
            log,
            high_watermark,
        })
    }

    /// Announces a new high watermark to waiting fetches.
    pub fn publish_high_watermark(&self, hw: i64) {
        self.high_watermark.send_replace(hw);
    }

    /// A receiver that wakes on the next high watermark change.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }
}

/// A live topic.
#[derive(Debug)]
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
    pub partitions: Vec<Arc<Partition>>,
}

impl Topic {
    pub fn partition(&self, index: i32) -> Option<&Arc<Partition>> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.get(i))
    }

    fn record(&self) -> TopicRecord {
        TopicRecord {
            name: self.name.clone(),
            id: self.id,
            partitions: self
                .partitions
                .iter()
                .map(|p| PartitionRecord {
                    index: p.index,
                    log_id: p.log.id(),
                })
                .collect(),
            configs: self.configs.clone(),
            replication_factor: self.replication_factor,
        }
    }
}

/// Why a topic change was refused.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("Topic '{0}' already exists.")]
    AlreadyExists(String),
    #[error("Topic '{0}' does not exist.")]
    Unknown(String),
    #[error(
        "Topic currently has {current} partitions, which is higher than or equal to the requested {requested}."
    )]
    CannotShrink { current: usize, requested: i32 },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Every live topic, by name and by id.
#[derive(Debug)]
pub struct Topics {
    store: Arc<Store>,
    by_name: RwLock<HashMap<String, Arc<Topic>>>,
    /// Serialises catalog changes so that two creates of one name cannot both succeed.
    changes: Mutex<()>,
}

impl Topics {
    /// Loads the catalog and opens every partition log.
    pub fn load(store: Arc<Store>) -> Result<Self, StorageError> {
        let mut by_name = HashMap::new();
        for record in store.load_topics()? {
            let partitions = record
                .partitions
                .iter()
                .map(|p| Partition::open(&store, p).map(Arc::new))
                .collect::<Result<Vec<_>, _>>()?;
            let topic = Topic {
                name: record.name.clone(),
                id: record.id,
                replication_factor: record.replication_factor,
                configs: record.configs,
                partitions,
            };
            by_name.insert(record.name, Arc::new(topic));
        }
        Ok(Self {
            store,
            by_name: RwLock::new(by_name),
            changes: Mutex::new(()),
        })
    }

    /// The store behind the registry, for broker-wide state such as producer ids.
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.read().get(name).cloned()
    }

    pub fn get_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        self.read().values().find(|t| t.id == id).cloned()
    }

    /// Every topic, sorted by name.
    pub fn all(&self) -> Vec<Arc<Topic>> {
        let mut all: Vec<_> = self.read().values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Topic>>> {
        self.by_name.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Topic>>> {
        self.by_name.write().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_changes(&self) -> std::sync::MutexGuard<'_, ()> {
        self.changes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates a topic, durably, and returns it. Arguments are assumed validated.
    pub fn create(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<Topic>, TopicError> {
        let _guard = self.lock_changes();
        if self.get(name).is_some() {
            return Err(TopicError::AlreadyExists(name.to_string()));
        }
        let topic = Topic {
            name: name.to_string(),
            id: Uuid::new_v4(),
            replication_factor,
            configs,
            partitions: self.open_new_partitions(0, partitions)?,
        };
        self.store.put_topic(&topic.record())?;
        let topic = Arc::new(topic);
        self.write().insert(name.to_string(), topic.clone());
        tracing::info!(topic = name, partitions, "created topic");
        Ok(topic)
    }

    fn open_new_partitions(&self, from: i32, to: i32) -> Result<Vec<Arc<Partition>>, StorageError> {
        let count = (to - from).max(0) as u64;
        let first_log = self.store.allocate_log_ids(count);
        (from..to)
            .zip(first_log..)
            .map(|(index, log_id)| {
                Partition::open(&self.store, &PartitionRecord { index, log_id }).map(Arc::new)
            })
            .collect()
    }

    /// Grows a topic to `total` partitions.
    pub fn grow(&self, name: &str, total: i32) -> Result<Arc<Topic>, TopicError> {
        let _guard = self.lock_changes();
        let old = self
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        let current = old.partitions.len();
        if total <= current as i32 {
            return Err(TopicError::CannotShrink {
                current,
                requested: total,
            });
        }
        let mut partitions = old.partitions.clone();
        partitions.extend(self.open_new_partitions(current as i32, total)?);
        let topic = Topic {
            partitions,
            configs: old.configs.clone(),
            name: old.name.clone(),
            ..*old
        };
        self.store.put_topic(&topic.record())?;
        let topic = Arc::new(topic);
        self.write().insert(name.to_string(), topic.clone());
        tracing::info!(topic = name, partitions = total, "grew topic");
        Ok(topic)
    }

    /// Replaces a topic's config overrides (already validated), durably.
    pub fn set_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<Topic>, TopicError> {
        let _guard = self.lock_changes();
        let old = self
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        let topic = Topic {
            configs,
            partitions: old.partitions.clone(),
            name: old.name.clone(),
            ..*old
        };
        self.store.put_topic(&topic.record())?;
        let topic = Arc::new(topic);
        self.write().insert(name.to_string(), topic.clone());
        tracing::info!(topic = name, configs = ?topic.configs, "altered topic configs");
        Ok(topic)
    }

    /// Deletes a topic and all its data.
    pub fn delete(&self, name: &str) -> Result<Arc<Topic>, TopicError> {
        let _guard = self.lock_changes();
        let topic = self
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        self.store.delete_topic(&topic.record())?;
        self.write().remove(name);
        tracing::info!(topic = name, "deleted topic");
        Ok(topic)
    }
}

/// Kafka's rule for topic names: 1 to 249 of `[a-zA-Z0-9._-]`, and not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is empty".into());
    }
    if name == "." || name == ".." {
        return Err(format!("Topic name cannot be {name:?}"));
    }
    if name.len() > 249 {
        return Err(format!(
            "Topic name is {} characters long, the limit is 249",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "Topic name {name:?} contains {c:?}; legal characters are ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use krait_storage::StoreOptions;

    #[test]
    fn topic_names_follow_kafka_rules() {
        for good in ["a", "orders.v1", "A_b-c", &"x".repeat(249)] {
            assert!(validate_topic_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a b", "caf\u{e9}", "a/b", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn create_grow_delete_survive_reload() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path(), StoreOptions::default()).unwrap());
        let topics = Topics::load(store.clone()).unwrap();
        topics.create("a", 2, 1, BTreeMap::new()).unwrap();
        topics.create("b", 1, 1, BTreeMap::new()).unwrap();
        assert!(matches!(
            topics.create("a", 1, 1, BTreeMap::new()),
            Err(TopicError::AlreadyExists(_))
        ));
        topics.grow("a", 5).unwrap();
        assert!(matches!(
            topics.grow("a", 5),
            Err(TopicError::CannotShrink {
                current: 5,
                requested: 5
            })
        ));
        topics.delete("b").unwrap();
        let id = topics.get("a").unwrap().id;
        drop(topics);
        let reloaded = Topics::load(store).unwrap();
        let names: Vec<_> = reloaded.all().iter().map(|t| t.name.clone()).collect();
        assert_eq!(names, vec!["a"]);
        let a = reloaded.get_by_id(id).unwrap();
        assert_eq!(
            a.partitions.iter().map(|p| p.index).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4]
        );
    }
}
