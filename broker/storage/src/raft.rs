//! The key-value seam under the metadata quorum's Raft log and its state machine's snapshot:
//! two ordered key spaces, atomic multi-key writes, optionally fsynced. `krait-metadata`
//! keeps its Raft log here without seeing the engine or the broker's other key spaces.
//!
//! This module owns the guarantees an implementation must give; it must not know about Raft.
//! The implementation is a broker's [`Store`]: its `raft_log` and `raft_state` spaces, in the
//! same engine and write-ahead log as its partitions, on disk or (`Store::in_memory`) in memory
//! for tests; both run the conformance tests below.
//!
//! To ensure correctness, an implementation must:
//! - apply the operations of one `write` all or none, in the order given;
//! - with `sync`, have them on stable storage before `write` returns;
//! - make every completed `write` visible to the reads that follow it.

use crate::engine::{self, WriteSet};
use crate::store::Store;

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

fn engine_space(space: Space) -> engine::Space {
    match space {
        Space::Log => engine::Space::RaftLog,
        Space::State => engine::Space::RaftState,
    }
}

/// The broker's own store: the Raft spaces of its one engine, behind its data directory lock
/// (so the metadata quorum never writes to a directory another process holds).
impl RaftKv for Store {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        self.engine
            .get(engine_space(space), key)
            .map_err(|e| KvError::new("read", e))
    }

    fn write(&self, ops: Vec<KvOp>, sync: bool) -> Result<(), KvError> {
        let mut write = WriteSet::default();
        for op in ops {
            match op {
                KvOp::Put { space, key, value } => write.put(engine_space(space), key, value),
                KvOp::DeleteRange { space, from, to } => {
                    write.delete_range(engine_space(space), from, to)
                }
            }
        }
        self.engine
            .write(write, sync)
            .map_err(|e| KvError::new("write", e))
    }

    fn scan_from(
        &self,
        space: Space,
        from: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), KvError> {
        self.engine
            .scan(engine_space(space), from, None, visit)
            .map_err(|e| KvError::new("scan", e))
    }

    fn last(&self, space: Space) -> Result<Option<KvEntry>, KvError> {
        self.engine
            .last(engine_space(space), &[], None)
            .map_err(|e| KvError::new("read last", e))
    }
}

#[cfg(test)]
mod tests {
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

    fn conformance(kv: &dyn RaftKv) {
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
    fn a_store_in_memory_conforms() {
        conformance(&Store::in_memory(crate::StoreOptions::default()));
    }

    #[test]
    fn rocksdb_store_conforms_and_keeps_data_across_reopen() {
        use crate::StoreOptions;
        let dir = tempfile::tempdir().unwrap();
        conformance(&Store::open(dir.path(), StoreOptions::default()).unwrap());
        let reopened = Store::open(dir.path(), StoreOptions::default()).unwrap();
        assert_eq!(
            reopened.get(Space::State, b"vote").unwrap(),
            Some(b"w".to_vec())
        );
    }
}
