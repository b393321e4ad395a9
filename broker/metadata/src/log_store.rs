//! The Raft log, vote, committed log id and purge point, on a [`RaftKv`] (the broker's RocksDB).
//!
//! This module owns the durability rules openraft states for its log storage: the vote is
//! fsynced before `save_vote` returns, appended entries are fsynced before their callback, and
//! every write is done in call order. It must not interpret entries: applying them is the state
//! machine's job.

// openraft's storage traits return its `StorageError` (over 200 bytes) by value; the helpers
// here return the same type so `?` needs no conversion. Errors are rare: no hot-path cost.
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogReader};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::kv::{KvError, KvOp, RaftKv, Space};
use crate::types::{Entry, LogId, StorageError, StorageIOError, TypeConfig, Vote, io_error};

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const LAST_PURGED: &[u8] = b"last_purged";

/// Entries are keyed by their index, big-endian, so key order is log order.
fn log_key(index: u64) -> Vec<u8> {
    index.to_be_bytes().to_vec()
}

/// The metadata quorum's log storage. Cloning shares the store (the log reader is a clone).
#[derive(Clone)]
pub struct LogStore {
    kv: Arc<dyn RaftKv>,
}

impl Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore").finish_non_exhaustive()
    }
}

impl LogStore {
    pub fn new(kv: Arc<dyn RaftKv>) -> Self {
        Self { kv }
    }

    fn read_entries<RB: RangeBounds<u64>>(&self, range: RB) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let mut entries = Vec::new();
        let mut failure = None;
        let scanned = self
            .kv
            .scan_from(Space::Log, &log_key(start), &mut |key, value| {
                let decoded = index_of(key).and_then(|index| {
                    if !range.contains(&index) {
                        return Ok(None);
                    }
                    serde_json::from_slice::<Entry>(value)
                        .map(Some)
                        .map_err(|e| io_error(StorageIOError::read_log_at_index(index, &e)))
                });
                match decoded {
                    Ok(Some(entry)) => {
                        entries.push(entry);
                        true
                    }
                    Ok(None) => false,
                    Err(e) => {
                        failure = Some(e);
                        false
                    }
                }
            });
        scanned.map_err(|e| io_error(StorageIOError::read_logs(&e)))?;
        match failure {
            Some(e) => Err(e),
            None => Ok(entries),
        }
    }

    fn last_entry_log_id(&self) -> Result<Option<LogId>, StorageError> {
        let last = self
            .kv
            .last(Space::Log)
            .map_err(|e| io_error(StorageIOError::read_logs(&e)))?;
        last.map(|(_, value)| {
            serde_json::from_slice::<Entry>(&value)
                .map(|entry| entry.log_id)
                .map_err(|e| io_error(StorageIOError::read_logs(&e)))
        })
        .transpose()
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        self.read_entries(range)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> = read_state(&*self.kv, LAST_PURGED)?;
        let last_log_id = self.last_entry_log_id()?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let op = put_state(VOTE, to_json(vote)?);
        blocking_write(&*self.kv, vec![op], true)
            .map_err(|e| io_error(StorageIOError::write_vote(&e)))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        read_state(&*self.kv, VOTE)
    }

    /// Saved so a restarted node re-applies its committed entries at once, before it hears
    /// from a leader: its image is current as soon as `start` returns.
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let op = put_state(COMMITTED, to_json(&committed)?);
        // Not fsynced: losing it only means re-learning the commit point from the leader.
        blocking_write(&*self.kv, vec![op], false).map_err(|e| io_error(StorageIOError::write(&e)))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(read_state::<Option<LogId>>(&*self.kv, COMMITTED)?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut ops = Vec::new();
        for entry in entries {
            let value = serde_json::to_vec(&entry)
                .map_err(|e| io_error(StorageIOError::write_log_entry(entry.log_id, &e)))?;
            ops.push(KvOp::Put {
                space: Space::Log,
                key: log_key(entry.log_id.index),
                value,
            });
        }
        // One synced write: the entries are readable and durable together, so the callback
        // can be told at once.
        let result = blocking_write(&*self.kv, ops, true);
        let io_result = result
            .as_ref()
            .map(|_| ())
            .map_err(|e| std::io::Error::other(e.to_string()));
        callback.log_io_completed(io_result);
        result.map_err(|e| io_error(StorageIOError::write_logs(&e)))
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(%log_id, "truncating the metadata log");
        let op = KvOp::DeleteRange {
            space: Space::Log,
            from: log_key(log_id.index),
            to: log_key(u64::MAX),
        };
        blocking_write(&*self.kv, vec![op], true)
            .map_err(|e| io_error(StorageIOError::write_logs(&e)))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(%log_id, "purging the metadata log");
        // The purge point and the deletion in one write, so the log state never shows a hole.
        let ops = vec![
            put_state(LAST_PURGED, to_json(&log_id)?),
            KvOp::DeleteRange {
                space: Space::Log,
                from: log_key(0),
                to: log_key(log_id.index + 1),
            },
        ];
        blocking_write(&*self.kv, ops, true).map_err(|e| io_error(StorageIOError::write_logs(&e)))
    }
}

pub(crate) fn put_state(key: &[u8], value: Vec<u8>) -> KvOp {
    KvOp::Put {
        space: Space::State,
        key: key.to_vec(),
        value,
    }
}

/// Reads a JSON value from the state space.
pub(crate) fn read_state<T: DeserializeOwned>(
    kv: &dyn RaftKv,
    key: &[u8],
) -> Result<Option<T>, StorageError> {
    let value = kv
        .get(Space::State, key)
        .map_err(|e| io_error(StorageIOError::read(&e)))?;
    value
        .map(|v| serde_json::from_slice(&v).map_err(|e| io_error(StorageIOError::read(&e))))
        .transpose()
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, StorageError> {
    serde_json::to_vec(value).map_err(|e| io_error(StorageIOError::write(&e)))
}

fn index_of(key: &[u8]) -> Result<u64, StorageError> {
    let bytes: [u8; 8] = key.try_into().map_err(|_| {
        let e = std::io::Error::other(format!("raft log key of {} bytes", key.len()));
        io_error(StorageIOError::read_logs(&e))
    })?;
    Ok(u64::from_be_bytes(bytes))
}

/// A synced write blocks its thread for the fsync: off the async worker that runs the Raft core.
fn blocking_write(kv: &dyn RaftKv, ops: Vec<KvOp>, sync: bool) -> Result<(), KvError> {
    krait_sync::blocking(|| kv.write(ops, sync))
}
