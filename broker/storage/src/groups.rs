//! Consumer group metadata on disk: each group's generation and protocol type, so a restarted
//! coordinator continues a group's generations instead of starting over.
//!
//! Committed offsets are not here: they are records of the cluster metadata log (the
//! `offsets` of `krait_image::ClusterImage`), replicated to every broker.

use serde::{Deserialize, Serialize};

use crate::engine::{Space, WriteSet};
use crate::error::{Result, StorageError};
use crate::store::Store;

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
        let mut write = WriteSet::default();
        write.delete(Space::Groups, group.as_bytes());
        self.write_synced(write, "delete group")
    }

    pub fn put_group(&self, group: &StoredGroup) -> Result<()> {
        let value = serde_json::to_vec(group).expect("group record serialises");
        let mut write = WriteSet::default();
        write.put(Space::Groups, group.group_id.as_bytes(), value);
        self.engine
            .write(write, self.options.sync_writes)
            .map_err(StorageError::db("write group"))
    }

    pub fn load_groups(&self) -> Result<Vec<StoredGroup>> {
        let mut out = Vec::new();
        let mut corrupt = None;
        self.engine
            .scan(Space::Groups, &[], None, &mut |key, value| {
                match serde_json::from_slice(value) {
                    Ok(group) => out.push(group),
                    Err(e) => {
                        corrupt = Some(StorageError::Corrupt {
                            what: "group record",
                            detail: format!("{}: {e}", String::from_utf8_lossy(key)),
                        })
                    }
                }
                corrupt.is_none()
            })
            .map_err(StorageError::db("scan groups"))?;
        corrupt.map_or(Ok(out), Err)
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
