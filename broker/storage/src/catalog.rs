//! The topic catalog: which topics exist, their ids, partitions (each backed by a log id) and
//! topic-level configs. Catalog writes are rare and always fsynced.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::engine::{Space, WriteSet};
use crate::error::{Result, StorageError};
use crate::log::PartitionLog;
use crate::store::{NEXT_LOG_ID, Store};

/// One partition of a topic and the log that stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    pub index: i32,
    pub log_id: u64,
}

/// A topic as persisted in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    pub name: String,
    pub id: Uuid,
    pub partitions: Vec<PartitionRecord>,
    /// Topic-level overrides only; defaults come from the broker configuration.
    pub configs: BTreeMap<String, String>,
    pub replication_factor: i16,
}

impl Store {
    /// Every topic in the catalog.
    pub fn load_topics(&self) -> Result<Vec<TopicRecord>> {
        let mut topics = Vec::new();
        let mut corrupt = None;
        self.engine
            .scan(Space::Topics, &[], None, &mut |key, value| {
                match serde_json::from_slice::<TopicRecord>(value) {
                    Ok(topic) => topics.push(topic),
                    Err(e) => {
                        corrupt = Some(StorageError::Corrupt {
                            what: "topic record",
                            detail: format!("{}: {e}", String::from_utf8_lossy(key)),
                        })
                    }
                }
                corrupt.is_none()
            })
            .map_err(StorageError::db("scan topics"))?;
        corrupt.map_or(Ok(topics), Err)
    }

    /// Creates or replaces a topic record, persisting the log id allocator with it so that the
    /// ids its partitions use are never allocated again after a restart.
    pub fn put_topic(&self, topic: &TopicRecord) -> Result<()> {
        let value = serde_json::to_vec(topic).expect("topic record serialises");
        let mut write = WriteSet::default();
        write.put(Space::Topics, topic.name.as_bytes(), value);
        write.put(Space::Meta, NEXT_LOG_ID, self.next_log_id().to_be_bytes());
        self.write_synced(write, "write topic")
    }

    /// Removes a topic and every batch of its partitions in one atomic write.
    pub fn delete_topic(&self, topic: &TopicRecord) -> Result<()> {
        let mut write = WriteSet::default();
        write.delete(Space::Topics, topic.name.as_bytes());
        for p in &topic.partitions {
            PartitionLog::delete_all(p.log_id, &mut write);
        }
        self.write_synced(write, "delete topic")
    }
}
