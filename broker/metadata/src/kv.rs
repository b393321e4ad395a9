//! The key-value seam under the Raft log and the state machine's snapshot: two ordered key
//! spaces, atomic multi-key writes, optionally fsynced.
//!
//! This module owns the guarantees an implementation must give; it must not know about Raft.
//! Implementations: the broker's RocksDB [`krait_storage::Store`] (feature `rocksdb`, the
//! default; column families `raft_log` and `raft_state`) and [`MemKv`], in memory, for tests
//! and tools. Both run the same conformance tests.
//!
//! To ensure correctness, an implementation must:
//! - apply the operations of one `write` all or none, in the order given;
//! - with `sync`, have them on stable storage before `write` returns;
//! - make every completed `write` visible to the reads that follow it.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// The two key spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// Raft entries, keyed by log index (u64 big-endian).
    Log,
    /// Vote, committed log id, purge point, snapshot.
    State,
}

/// One operation of an atomic write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvOp {
    Put {
        space: Space,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// Deletes the keys in `[from, to)`.
    DeleteRange {
        space: Space,
        from: Vec<u8>,
        to: Vec<u8>,
    },
}

/// A failure of the underlying store, with the step that failed.
#[derive(Debug, thiserror::Error)]
#[error("metadata store {step} failed: {detail}")]
pub struct KvError {
    pub step: &'static str,
    pub detail: String,
}

impl KvError {
    pub fn new(step: &'static str, detail: impl ToString) -> Self {
        Self {
            step,
            detail: detail.to_string(),
        }
    }
}

/// A key and its value.
pub type KvEntry = (Vec<u8>, Vec<u8>);

/// Where the metadata quorum keeps its log and snapshot.
pub trait RaftKv: Send + Sync + 'static {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, KvError>;

    /// Applies `ops` atomically; with `sync`, durably before returning.
    fn write(&self, ops: Vec<KvOp>, sync: bool) -> Result<(), KvError>;

    /// Visits the entries with keys `>= from` in key order until `visit` returns false.
    fn scan_from(
        &self,
        space: Space,
        from: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), KvError>;

    /// The entry with the greatest key.
    fn last(&self, space: Space) -> Result<Option<KvEntry>, KvError>;
}

/// An in-memory [`RaftKv`]: "durable" as long as the value lives, so a test that keeps it
/// across a node's restart sees what a disk would hold.
#[derive(Debug, Default)]
pub struct MemKv {
    spaces: Mutex<[BTreeMap<Vec<u8>, Vec<u8>>; 2]>,
}

fn index(space: Space) -> usize {
    match space {
        Space::Log => 0,
        Space::State => 1,
    }
}

impl MemKv {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, [BTreeMap<Vec<u8>, Vec<u8>>; 2]> {
        // Every write completes under the lock without panicking: a poisoned lock is consistent.
        self.spaces.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl RaftKv for MemKv {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.lock()[index(space)].get(key).cloned())
    }

    fn write(&self, ops: Vec<KvOp>, _sync: bool) -> Result<(), KvError> {
        let mut spaces = self.lock();
        for op in ops {
            match op {
                KvOp::Put { space, key, value } => {
                    spaces[index(space)].insert(key, value);
                }
                KvOp::DeleteRange { space, from, to } => {
                    let map = &mut spaces[index(space)];
                    let doomed: Vec<Vec<u8>> =
                        map.range(from..to).map(|(k, _)| k.clone()).collect();
                    for key in doomed {
                        map.remove(&key);
                    }
                }
            }
        }
        Ok(())
    }

    fn scan_from(
        &self,
        space: Space,
        from: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), KvError> {
        let spaces = self.lock();
        for (key, value) in spaces[index(space)].range(from.to_vec()..) {
            if !visit(key, value) {
                break;
            }
        }
        Ok(())
    }

    fn last(&self, space: Space) -> Result<Option<KvEntry>, KvError> {
        Ok(self.lock()[index(space)]
            .last_key_value()
            .map(|(k, v)| (k.clone(), v.clone())))
    }
}

#[cfg(feature = "rocksdb")]
mod rocks {
    use krait_storage::{CF_RAFT_LOG, CF_RAFT_STATE, Store};
    use rocksdb::{ColumnFamily, Direction, IteratorMode, WriteBatch, WriteOptions};

    use super::{KvEntry, KvError, KvOp, RaftKv, Space};

    fn cf(store: &Store, space: Space) -> &ColumnFamily {
        let name = match space {
            Space::Log => CF_RAFT_LOG,
            Space::State => CF_RAFT_STATE,
        };
        store
            .db()
            .cf_handle(name)
            .expect("krait-storage creates the raft column families at open")
    }

    /// The broker's own database: one write-ahead log and one data directory lock per broker.
    impl RaftKv for Store {
        fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
            self.db()
                .get_cf(cf(self, space), key)
                .map_err(|e| KvError::new("read", e))
        }

        fn write(&self, ops: Vec<KvOp>, sync: bool) -> Result<(), KvError> {
            let mut batch = WriteBatch::default();
            for op in ops {
                match op {
                    KvOp::Put { space, key, value } => batch.put_cf(cf(self, space), key, value),
                    KvOp::DeleteRange { space, from, to } => {
                        batch.delete_range_cf(cf(self, space), from, to)
                    }
                }
            }
            let mut options = WriteOptions::default();
            options.set_sync(sync);
            self.db()
                .write_opt(batch, &options)
                .map_err(|e| KvError::new("write", e))
        }

        fn scan_from(
            &self,
            space: Space,
            from: &[u8],
            visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
        ) -> Result<(), KvError> {
            let mode = IteratorMode::From(from, Direction::Forward);
            for item in self.db().iterator_cf(cf(self, space), mode) {
                let (key, value) = item.map_err(|e| KvError::new("scan", e))?;
                if !visit(&key[..], &value[..]) {
                    break;
                }
            }
            Ok(())
        }

        fn last(&self, space: Space) -> Result<Option<KvEntry>, KvError> {
            match self
                .db()
                .iterator_cf(cf(self, space), IteratorMode::End)
                .next()
            {
                None => Ok(None),
                Some(item) => {
                    let (key, value) = item.map_err(|e| KvError::new("read last", e))?;
                    Ok(Some((key.to_vec(), value.to_vec())))
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! The conformance suite every [`RaftKv`] runs.

    use super::*;

    fn put(space: Space, key: &[u8], value: &[u8]) -> KvOp {
        KvOp::Put {
            space,
            key: key.to_vec(),
            value: value.to_vec(),
        }
    }

    fn keys(kv: &dyn RaftKv, space: Space, from: &[u8]) -> Vec<Vec<u8>> {
        let mut keys = Vec::new();
        kv.scan_from(space, from, &mut |k, _| {
            keys.push(k.to_vec());
            true
        })
        .unwrap();
        keys
    }

    pub(crate) fn conformance(kv: &dyn RaftKv) {
        let ops = (1u64..=5)
            .map(|i| put(Space::Log, &i.to_be_bytes(), b"e"))
            .chain([put(Space::State, b"vote", b"v")])
            .collect();
        kv.write(ops, true).unwrap();
        assert_eq!(kv.get(Space::State, b"vote").unwrap(), Some(b"v".to_vec()));
        assert_eq!(
            kv.get(Space::Log, b"vote").unwrap(),
            None,
            "spaces are apart"
        );
        assert_eq!(keys(kv, Space::Log, &3u64.to_be_bytes()).len(), 3);
        let (last, _) = kv.last(Space::Log).unwrap().unwrap();
        assert_eq!(last, 5u64.to_be_bytes());

        let mut seen = 0;
        kv.scan_from(Space::Log, &[], &mut |_, _| {
            seen += 1;
            seen < 2
        })
        .unwrap();
        assert_eq!(seen, 2, "the scan stops when told");

        let delete = KvOp::DeleteRange {
            space: Space::Log,
            from: 2u64.to_be_bytes().to_vec(),
            to: 4u64.to_be_bytes().to_vec(),
        };
        kv.write(vec![delete, put(Space::State, b"vote", b"w")], false)
            .unwrap();
        let left: Vec<Vec<u8>> = [1u64, 4, 5]
            .iter()
            .map(|i| i.to_be_bytes().to_vec())
            .collect();
        assert_eq!(keys(kv, Space::Log, &[]), left);
        assert_eq!(kv.get(Space::State, b"vote").unwrap(), Some(b"w".to_vec()));
        assert!(kv.last(Space::State).unwrap().is_some());
    }

    #[test]
    fn mem_kv_conforms() {
        conformance(&MemKv::new());
    }

    #[cfg(feature = "rocksdb")]
    #[test]
    fn rocksdb_store_conforms_and_keeps_data_across_reopen() {
        use krait_storage::{Store, StoreOptions};
        let dir = tempfile::tempdir().unwrap();
        conformance(&Store::open(dir.path(), StoreOptions::default()).unwrap());
        let reopened = Store::open(dir.path(), StoreOptions::default()).unwrap();
        assert_eq!(
            reopened.get(Space::State, b"vote").unwrap(),
            Some(b"w".to_vec())
        );
    }
}
