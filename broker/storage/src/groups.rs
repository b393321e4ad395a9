//! Consumer group state on disk: committed offsets, and each group's durable metadata.
//!
//! Offsets are keyed by (group, topic, partition) with length-prefixed strings, so one group's
//! offsets are a contiguous range and no group or topic name can run into another. They are
//! written like produce data (WAL, fsync only with `--fsync`): a commit acknowledged before a
//! `kill -9` is there after it.

use rocksdb::{Direction, IteratorMode, WriteBatch};
use serde::{Deserialize, Serialize};

use crate::error::{Result, StorageError};
use crate::store::{CF_GROUP_OFFSETS, CF_GROUPS, Store};

/// A committed offset and what came with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    /// Wall-clock milliseconds of the commit, for offset expiry.
    pub commit_timestamp: i64,
}

/// A group's durable metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredGroup {
    pub group_id: String,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
}

fn push_str(key: &mut Vec<u8>, s: &str) {
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(&s.as_bytes()[..usize::from(len)]);
}

fn group_prefix(group: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(2 + group.len());
    push_str(&mut key, group);
    key
}

fn offset_key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut key = group_prefix(group);
    push_str(&mut key, topic);
    key.extend_from_slice(&partition.to_be_bytes());
    key
}

fn parse_offset_key(key: &[u8]) -> Option<(String, String, i32)> {
    let take = |at: usize| -> Option<(String, usize)> {
        let len = usize::from(u16::from_be_bytes(key.get(at..at + 2)?.try_into().ok()?));
        let s = String::from_utf8(key.get(at + 2..at + 2 + len)?.to_vec()).ok()?;
        Some((s, at + 2 + len))
    };
    let (group, at) = take(0)?;
    let (topic, at) = take(at)?;
    let partition = i32::from_be_bytes(key.get(at..at + 4)?.try_into().ok()?);
    Some((group, topic, partition))
}

fn encode_offset(o: &CommittedOffset) -> Vec<u8> {
    let mut v = Vec::with_capacity(21 + o.metadata.as_ref().map_or(0, String::len));
    v.extend_from_slice(&o.offset.to_be_bytes());
    v.extend_from_slice(&o.leader_epoch.to_be_bytes());
    v.extend_from_slice(&o.commit_timestamp.to_be_bytes());
    match &o.metadata {
        None => v.push(0),
        Some(m) => {
            v.push(1);
            v.extend_from_slice(m.as_bytes());
        }
    }
    v
}

fn decode_offset(v: &[u8]) -> Option<CommittedOffset> {
    Some(CommittedOffset {
        offset: i64::from_be_bytes(v.get(0..8)?.try_into().ok()?),
        leader_epoch: i32::from_be_bytes(v.get(8..12)?.try_into().ok()?),
        commit_timestamp: i64::from_be_bytes(v.get(12..20)?.try_into().ok()?),
        metadata: match v.get(20)? {
            0 => None,
            _ => Some(String::from_utf8_lossy(v.get(21..)?).into_owned()),
        },
    })
}

/// Everything a group has committed: (topic, partition, offset).
pub type GroupOffsets = Vec<(String, i32, CommittedOffset)>;

impl Store {
    /// Stores a group's commits in one atomic write.
    pub fn commit_offsets(
        &self,
        group: &str,
        offsets: &[(String, i32, CommittedOffset)],
    ) -> Result<()> {
        let mut write = WriteBatch::default();
        for (topic, partition, o) in offsets {
            write.put_cf(
                self.cf(CF_GROUP_OFFSETS),
                offset_key(group, topic, *partition),
                encode_offset(o),
            );
        }
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(self.options.sync_writes);
        self.db
            .write_opt(write, &wo)
            .map_err(StorageError::db("commit offsets"))
    }

    /// Every offset the group has committed.
    pub fn fetch_offsets(&self, group: &str) -> Result<GroupOffsets> {
        let prefix = group_prefix(group);
        let mut out = Vec::new();
        let iter = self.db.iterator_cf(
            self.cf(CF_GROUP_OFFSETS),
            IteratorMode::From(&prefix, Direction::Forward),
        );
        for item in iter {
            let (key, value) = item.map_err(StorageError::db("fetch offsets"))?;
            if !key.starts_with(&prefix) {
                break;
            }
            let corrupt = || StorageError::Corrupt {
                what: "committed offset",
                detail: format!("{key:?}"),
            };
            let (g, topic, partition) = parse_offset_key(&key).ok_or_else(corrupt)?;
            if g != group {
                break;
            }
            out.push((topic, partition, decode_offset(&value).ok_or_else(corrupt)?));
        }
        Ok(out)
    }

    /// Groups that have committed offsets.
    pub fn groups_with_offsets(&self) -> Result<Vec<String>> {
        let mut groups: Vec<String> = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(CF_GROUP_OFFSETS), IteratorMode::Start)
        {
            let (key, _) = item.map_err(StorageError::db("scan offsets"))?;
            let group = parse_offset_key(&key).map(|(g, _, _)| g);
            if let Some(g) = group.filter(|g| groups.last() != Some(g)) {
                groups.push(g);
            }
        }
        Ok(groups)
    }

    /// Deletes the group's offsets committed before `before_ms`; returns how many.
    pub fn expire_offsets(&self, group: &str, before_ms: i64) -> Result<usize> {
        let expired: Vec<_> = self
            .fetch_offsets(group)?
            .into_iter()
            .filter(|(_, _, o)| o.commit_timestamp < before_ms)
            .collect();
        let mut write = WriteBatch::default();
        for (topic, partition, _) in &expired {
            write.delete_cf(
                self.cf(CF_GROUP_OFFSETS),
                offset_key(group, topic, *partition),
            );
        }
        self.db
            .write(write)
            .map_err(StorageError::db("expire offsets"))?;
        Ok(expired.len())
    }

    /// Deletes a group's metadata and every offset it committed.
    pub fn delete_group(&self, group: &str) -> Result<()> {
        let mut write = WriteBatch::default();
        for (topic, partition, _) in self.fetch_offsets(group)? {
            write.delete_cf(
                self.cf(CF_GROUP_OFFSETS),
                offset_key(group, &topic, partition),
            );
        }
        write.delete_cf(self.cf(CF_GROUPS), group.as_bytes());
        self.db
            .write_opt(write, &self.sync_write_options())
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

    fn offset(o: i64, ts: i64) -> CommittedOffset {
        CommittedOffset {
            offset: o,
            leader_epoch: 0,
            metadata: Some("m".into()),
            commit_timestamp: ts,
        }
    }

    #[test]
    fn offsets_survive_reopen_and_groups_do_not_see_each_other() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
            store
                .commit_offsets(
                    "g",
                    &[("t".into(), 0, offset(5, 1)), ("t".into(), 1, offset(7, 1))],
                )
                .unwrap();
            store
                .commit_offsets("g2", &[("t".into(), 0, offset(99, 1))])
                .unwrap();
            store
                .commit_offsets("g", &[("t".into(), 0, offset(6, 2))])
                .unwrap();
            store
                .put_group(&StoredGroup {
                    group_id: "g".into(),
                    generation_id: 3,
                    protocol_type: Some("consumer".into()),
                })
                .unwrap();
        }
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let got: Vec<(String, i32, i64)> = store
            .fetch_offsets("g")
            .unwrap()
            .into_iter()
            .map(|(t, p, o)| (t, p, o.offset))
            .collect();
        assert_eq!(got, vec![("t".into(), 0, 6), ("t".into(), 1, 7)]);
        assert_eq!(
            store.groups_with_offsets().unwrap(),
            vec!["g".to_string(), "g2".to_string()]
        );
        assert_eq!(store.load_groups().unwrap()[0].generation_id, 3);
    }

    #[test]
    fn a_group_named_like_a_prefix_of_another_is_separate() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        store
            .commit_offsets("ab", &[("t".into(), 0, offset(1, 0))])
            .unwrap();
        store
            .commit_offsets("a", &[("bt".into(), 0, offset(2, 0))])
            .unwrap();
        assert_eq!(store.fetch_offsets("a").unwrap().len(), 1);
        assert_eq!(store.fetch_offsets("ab").unwrap()[0].2.offset, 1);
    }

    #[test]
    fn expiry_and_deletion_remove_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        store
            .commit_offsets(
                "g",
                &[
                    ("t".into(), 0, offset(1, 100)),
                    ("t".into(), 1, offset(2, 300)),
                ],
            )
            .unwrap();
        assert_eq!(store.expire_offsets("g", 200).unwrap(), 1);
        assert_eq!(store.fetch_offsets("g").unwrap().len(), 1);
        store.delete_group("g").unwrap();
        assert!(store.fetch_offsets("g").unwrap().is_empty());
    }
}
