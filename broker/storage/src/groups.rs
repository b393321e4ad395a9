//! Consumer group metadata on disk: each group's generation and protocol type, so a restarted
//! coordinator continues a group's generations instead of starting over.
//!
//! Committed offsets are not here: they are records of the cluster metadata log (the
//! `offsets` of `krait_controller::ClusterImage`), replicated to every broker.

use rocksdb::IteratorMode;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StorageError};
use crate::store::{CF_GROUPS, Store};

/// A group's durable metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredGroup {
    pub group_id: String,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
}

impl Store {
    /// Deletes a group's metadata.
    pub fn delete_group(&self, group: &str) -> Result<()> {
        self.db
            .delete_cf_opt(
                self.cf(CF_GROUPS),
                group.as_bytes(),
                &self.sync_write_options(),
            )
            .map_err(StorageError::db("delete group"))
    }

    pub fn put_group(&self, group: &StoredGroup) -> Result<()> {
        let value = serde_json::to_vec(group).expect("group record serialises");
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(self.options.sync_writes);
        self.db
            .put_cf_opt(self.cf(CF_GROUPS), group.group_id.as_bytes(), value, &wo)
            .map_err(StorageError::db("write group"))
    }

    pub fn load_groups(&self) -> Result<Vec<StoredGroup>> {
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(CF_GROUPS), IteratorMode::Start) {
            let (key, value) = item.map_err(StorageError::db("scan groups"))?;
            out.push(
                serde_json::from_slice(&value).map_err(|e| StorageError::Corrupt {
                    what: "group record",
                    detail: format!("{}: {e}", String::from_utf8_lossy(&key)),
                })?,
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreOptions;

    fn group(id: &str, generation_id: i32) -> StoredGroup {
        StoredGroup {
            group_id: id.into(),
            generation_id,
            protocol_type: Some("consumer".into()),
        }
    }

    #[test]
    fn group_metadata_survives_reopen_and_is_deleted_per_group() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
            store.put_group(&group("g", 2)).unwrap();
            store.put_group(&group("g", 3)).unwrap();
            store.put_group(&group("g2", 1)).unwrap();
        }
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        assert_eq!(
            store.load_groups().unwrap(),
            vec![group("g", 3), group("g2", 1)]
        );
        store.delete_group("g").unwrap();
        assert_eq!(store.load_groups().unwrap(), vec![group("g2", 1)]);
    }
}
