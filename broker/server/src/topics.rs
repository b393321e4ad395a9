//! The live topic registry: this broker's local copy of every topic in the cluster image, each
//! partition with its log and its replica (leader, follower or offline).
//!
//! The cluster image (the metadata log) says which topics exist; [`Topics::sync`] makes the
//! local catalog match it: a log for every partition of every topic (empty where this broker
//! holds no replica), data deleted with its topic. Which role each replica plays is
//! `crate::cluster`'s business.
//!
//! Topics are immutable values behind `Arc`; a change (new partitions) swaps in a new value,
//! so a request holds a consistent view without locks.

use krait_sync::{MutexExt, RwLockExt};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use krait_image::{BrokerId, ClusterImage, TopicImage};
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_replication::{PartitionReplica, ReplicaManager};
use krait_storage::{PartitionLog, PartitionRecord, StorageError, Store, TopicRecord};
use tokio::sync::watch;
use uuid::Uuid;

/// One partition of a live topic.
#[derive(Debug)]
pub struct Partition {
    pub index: i32,
    pub replica: Arc<PartitionReplica>,
}

impl Partition {
    fn open(
        store: &Store,
        broker_id: BrokerId,
        record: &PartitionRecord,
    ) -> Result<Self, StorageError> {
        let log = store.open_log(record.log_id)?;
        Ok(Self {
            index: record.index,
            replica: Arc::new(PartitionReplica::new(broker_id, log)),
        })
    }

    pub fn log(&self) -> &PartitionLog {
        self.replica.log()
    }

    /// The leader epoch, when this broker leads the partition at the epoch a client asks for
    /// (`requested` -1: any): else NOT_LEADER_OR_FOLLOWER, or the epoch check's error.
    pub fn lead_epoch(&self, requested: i32) -> Result<i32, ResponseError> {
        let krait_replication::Role::Leader { epoch } = self.replica.role() else {
            return Err(ResponseError::NotLeaderOrFollower);
        };
        match crate::broker::check_leader_epoch(requested, epoch) {
            Some(error) => Err(error),
            None => Ok(epoch),
        }
    }

    /// For a consumer's read (KIP-392: a follower serves consumers too, below its own high
    /// watermark): whether this broker leads, when it leads or follows the partition at the
    /// epoch asked (`requested` -1: any); else NOT_LEADER_OR_FOLLOWER or the epoch check's error.
    pub fn read_role(&self, requested: i32) -> Result<bool, ResponseError> {
        let (epoch, leads) = match self.replica.role() {
            krait_replication::Role::Leader { epoch } => (epoch, true),
            krait_replication::Role::Follower { epoch, .. } => (epoch, false),
            krait_replication::Role::Offline => return Err(ResponseError::NotLeaderOrFollower),
        };
        match crate::broker::check_leader_epoch(requested, epoch) {
            Some(error) => Err(error),
            None => Ok(leads),
        }
    }

    /// A receiver that wakes on the next high watermark or role change.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.replica.subscribe()
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
                    log_id: p.log().id(),
                })
                .collect(),
            configs: self.configs.clone(),
            replication_factor: self.replication_factor,
        }
    }
}

/// The replication factor a topic image shows: its partitions' target replica count.
fn replication_factor(image: &TopicImage) -> i16 {
    image
        .partitions
        .first()
        .map_or(0, |p| p.target_replicas().len() as i16)
}

/// Every live topic, by name and by id.
#[derive(Debug)]
pub struct Topics {
    store: Arc<Store>,
    broker_id: BrokerId,
    replicas: Arc<ReplicaManager>,
    by_name: RwLock<HashMap<String, Arc<Topic>>>,
    /// Serialises catalog changes.
    changes: Mutex<()>,
}

impl Topics {
    /// Loads the local catalog and opens every partition log; every replica starts offline
    /// until the cluster image gives it a role.
    pub fn load(
        store: Arc<Store>,
        broker_id: BrokerId,
        replicas: Arc<ReplicaManager>,
    ) -> Result<Self, StorageError> {
        let mut by_name = HashMap::new();
        for record in store.load_topics()? {
            let partitions = record
                .partitions
                .iter()
                .map(|p| Partition::open(&store, broker_id, p).map(Arc::new))
                .collect::<Result<Vec<_>, _>>()?;
            for p in &partitions {
                replicas.insert(&record.name, p.index, p.replica.clone());
            }
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
            broker_id,
            replicas,
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
        self.by_name.read_unpoisoned()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Topic>>> {
        self.by_name.write_unpoisoned()
    }

    fn lock_changes(&self) -> std::sync::MutexGuard<'_, ()> {
        self.changes.lock_unpoisoned()
    }

    /// Makes the local catalog match `image`: topics it lacks are deleted with their data (a
    /// topic re-created under the same name has a new id and starts empty), new topics and
    /// partitions get empty logs, config overrides are copied. Durable before it returns.
    pub fn sync(&self, image: &ClusterImage) -> Result<(), StorageError> {
        let _guard = self.lock_changes();
        let stale: Vec<Arc<Topic>> = self
            .read()
            .values()
            .filter(|t| image.topics.get(&t.name).is_none_or(|i| i.id != t.id))
            .cloned()
            .collect();
        for topic in stale {
            self.store.delete_topic(&topic.record())?;
            for p in &topic.partitions {
                self.replicas.remove(&topic.name, p.index);
                p.replica.go_offline();
            }
            self.write().remove(&topic.name);
            tracing::info!(topic = %topic.name, "deleted topic");
        }
        for (name, wanted) in &image.topics {
            let current = self.get(name);
            let rf = replication_factor(wanted);
            let unchanged = current.as_ref().is_some_and(|t| {
                t.partitions.len() == wanted.partitions.len()
                    && t.configs == wanted.configs
                    && t.replication_factor == rf
            });
            if unchanged {
                continue;
            }
            let mut partitions = current
                .as_ref()
                .map(|t| t.partitions.clone())
                .unwrap_or_default();
            let have = partitions.len() as i32;
            let new = self.open_new_partitions(have, wanted.partitions.len() as i32)?;
            for p in &new {
                self.replicas.insert(name, p.index, p.replica.clone());
            }
            partitions.extend(new);
            let topic = Topic {
                name: name.clone(),
                id: wanted.id,
                replication_factor: rf,
                configs: wanted.configs.clone(),
                partitions,
            };
            self.store.put_topic(&topic.record())?;
            match &current {
                None => {
                    tracing::info!(topic = %name, partitions = topic.partitions.len(), "created topic")
                }
                Some(old) if old.partitions.len() != topic.partitions.len() => {
                    tracing::info!(topic = %name, partitions = topic.partitions.len(), "grew topic")
                }
                Some(_) => tracing::info!(topic = %name, configs = ?topic.configs, "altered topic"),
            }
            self.write().insert(name.clone(), Arc::new(topic));
        }
        Ok(())
    }

    fn open_new_partitions(&self, from: i32, to: i32) -> Result<Vec<Arc<Partition>>, StorageError> {
        let count = (to - from).max(0) as u64;
        let first_log = self.store.allocate_log_ids(count);
        (from..to)
            .zip(first_log..)
            .map(|(index, log_id)| {
                Partition::open(
                    &self.store,
                    self.broker_id,
                    &PartitionRecord { index, log_id },
                )
                .map(Arc::new)
            })
            .collect()
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

    #[test]
    fn topic_names_follow_kafka_rules() {
        for good in ["a", "orders.v1", "A_b-c", &"x".repeat(249)] {
            assert!(validate_topic_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a b", "caf\u{e9}", "a/b", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
    }

    #[cfg(feature = "rocksdb")]
    fn image_with(topics: &[(&str, Uuid, usize)]) -> ClusterImage {
        let mut image = ClusterImage::default();
        for (name, id, partitions) in topics {
            image.topics.insert(
                name.to_string(),
                TopicImage {
                    id: *id,
                    partitions: (0..*partitions)
                        .map(|_| krait_image::PartitionState::new(vec![1]))
                        .collect(),
                    configs: BTreeMap::new(),
                },
            );
        }
        image
    }

    #[cfg(feature = "rocksdb")]
    fn manager() -> Arc<ReplicaManager> {
        ReplicaManager::new(1, Arc::new(|| 0), Default::default())
    }

    // A reload needs a store on disk: RocksDB.
    #[cfg(feature = "rocksdb")]
    #[test]
    fn sync_creates_grows_deletes_and_survives_reload() {
        let dir = tempfile::tempdir().unwrap();
        let options = krait_storage::StoreOptions::default();
        let store = Arc::new(Store::open(dir.path(), options).unwrap());
        let topics = Topics::load(store.clone(), 1, manager()).unwrap();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        topics
            .sync(&image_with(&[("a", a, 2), ("b", b, 1)]))
            .unwrap();
        assert_eq!(topics.all().len(), 2);
        topics
            .sync(&image_with(&[("a", a, 5), ("b", b, 1)]))
            .unwrap();
        let log_b = topics.get("b").unwrap().partitions[0].log().id();
        // b deleted and re-created under its name: a new id, a new (empty) log.
        let b2 = Uuid::new_v4();
        topics
            .sync(&image_with(&[("a", a, 5), ("b", b2, 1)]))
            .unwrap();
        assert_ne!(topics.get("b").unwrap().partitions[0].log().id(), log_b);
        topics.sync(&image_with(&[("a", a, 5)])).unwrap();
        drop(topics);
        let replicas = manager();
        let reloaded = Topics::load(store, 1, replicas.clone()).unwrap();
        let names: Vec<_> = reloaded.all().iter().map(|t| t.name.clone()).collect();
        assert_eq!(names, vec!["a"]);
        let topic = reloaded.get_by_id(a).unwrap();
        assert_eq!(
            topic.partitions.iter().map(|p| p.index).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4]
        );
        assert!(replicas.get("a", 4).is_some());
    }
}
