//! The seam under every byte a broker keeps: named, ordered key spaces with atomic multi-key
//! writes. The partition log, the topic catalog, group metadata and the metadata quorum's Raft
//! log are written once, against this trait; the engines are RocksDB (`rocks`, what a broker
//! runs on) and an in-memory map (`memory`, for handler tests, tools and fuzzing). Both run the
//! same conformance suite (`tests`), and the storage crate's log tests run on both.
//!
//! To ensure correctness, an engine must:
//! - apply the operations of one `write` all or none, in the order given;
//! - with `sync`, have them on stable storage before `write` returns (the memory engine has
//!   no stable storage: it promises nothing across a process's end);
//! - make every completed `write` visible to the reads that follow it, and never show a read
//!   part of a write;
//! - order keys bytewise, as RocksDB's default comparator does.

mod latch;
mod memory;
#[cfg(feature = "rocksdb")]
mod rocks;

use std::fmt;

pub use latch::Failure;
pub(crate) use latch::Latched;
pub use memory::MemoryEngine;
#[cfg(feature = "rocksdb")]
pub use rocks::RocksEngine;

/// The key spaces (RocksDB column families).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Space {
    /// Record batches, keyed by (log id, base offset).
    Log,
    /// Per-log state (log start offset, high watermark) and leader epoch cache entries.
    LogState,
    /// Per-batch max timestamp and size, keyed like `Log`.
    TimeIndex,
    /// Idempotent producer state, keyed by (log id, producer id).
    Producers,
    /// Committed offsets of single-broker releases; no longer written, still opened.
    GroupOffsets,
    /// Consumer group metadata, keyed by group id.
    Groups,
    /// The topic catalog, keyed by topic name.
    Topics,
    /// Broker-wide values: cluster id, next log id, next producer id.
    Meta,
    /// The metadata quorum's Raft log, keyed by log index (u64 BE).
    RaftLog,
    /// The metadata quorum's vote, committed log id, purge point and snapshot.
    RaftState,
    /// Aborted transactions per partition, keyed by (log id, offset of the ABORT marker).
    TxnIndex,
}

impl Space {
    pub const ALL: [Space; 11] = [
        Space::Log,
        Space::LogState,
        Space::TimeIndex,
        Space::Producers,
        Space::GroupOffsets,
        Space::Groups,
        Space::Topics,
        Space::Meta,
        Space::RaftLog,
        Space::RaftState,
        Space::TxnIndex,
    ];

    /// The column family's name on disk; never change one, or existing data disappears.
    pub const fn name(self) -> &'static str {
        match self {
            Space::Log => "log",
            Space::LogState => "log_state",
            Space::TimeIndex => "time_index",
            Space::Producers => "producers",
            Space::GroupOffsets => "group_offsets",
            Space::Groups => "groups",
            Space::Topics => "topics",
            Space::Meta => "meta",
            Space::RaftLog => "raft_log",
            Space::RaftState => "raft_state",
            Space::TxnIndex => "txn_index",
        }
    }
}

/// One operation of an atomic write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put {
        space: Space,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        space: Space,
        key: Vec<u8>,
    },
    /// Deletes the keys in `[from, to)`.
    DeleteRange {
        space: Space,
        from: Vec<u8>,
        to: Vec<u8>,
    },
}

/// Operations applied all or none by [`Engine::write`], in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteSet {
    ops: Vec<Op>,
}

impl WriteSet {
    pub fn put(&mut self, space: Space, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.ops.push(Op::Put {
            space,
            key: key.as_ref().to_vec(),
            value: value.as_ref().to_vec(),
        });
    }

    /// `put` of buffers the caller no longer needs: moved in, not copied (a stored batch).
    pub fn put_owned(&mut self, space: Space, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push(Op::Put { space, key, value });
    }

    pub fn delete(&mut self, space: Space, key: impl AsRef<[u8]>) {
        self.ops.push(Op::Delete {
            space,
            key: key.as_ref().to_vec(),
        });
    }

    pub fn delete_range(&mut self, space: Space, from: impl AsRef<[u8]>, to: impl AsRef<[u8]>) {
        self.ops.push(Op::DeleteRange {
            space,
            from: from.as_ref().to_vec(),
            to: to.as_ref().to_vec(),
        });
    }

    pub fn push(&mut self, op: Op) {
        self.ops.push(op);
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn into_ops(self) -> Vec<Op> {
        self.ops
    }
}

/// A key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// An engine's own failure (I/O, corruption it detected), as text: callers add the step.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EngineError(pub String);

impl EngineError {
    pub fn new(e: impl fmt::Display) -> Self {
        Self(e.to_string())
    }
}

/// An engine's own figures, for the broker's metrics: what RocksDB reports about write stalls,
/// compaction and memory, summed over the key spaces where it keeps them per column family.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// 1 while writes are stopped (too many memtables or level-0 files, or pending compaction
    /// past its hard limit).
    pub write_stopped: u64,
    /// The rate writes are slowed to while they are delayed; 0 when they are not.
    pub delayed_write_rate: u64,
    pub running_compactions: u64,
    pub running_flushes: u64,
    /// Key spaces with a compaction pending.
    pub compactions_pending: u64,
    /// Bytes compaction must rewrite to bring every level to its target size.
    pub pending_compaction_bytes: u64,
    pub sst_files_bytes: u64,
    /// Bytes of blob files on disk: the partition log's batches (see `rocks`).
    pub blob_files_bytes: u64,
    /// Bytes of those files that hold batches already deleted (retention, a deleted topic,
    /// the cleaner's rewrites) while other batches in the same files live on.
    pub blob_garbage_bytes: u64,
    pub memtables_bytes: u64,
    pub block_cache_bytes: u64,
}

/// What [`Engine::reclaim`] did: the blob files' bytes and their garbage before and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reclaimed {
    pub files_before: u64,
    pub garbage_before: u64,
    pub files_after: u64,
    pub garbage_after: u64,
}

/// Ordered key spaces with atomic writes. Object safe: stores hold an `Arc<dyn Engine>`.
pub trait Engine: Send + Sync + fmt::Debug + 'static {
    /// The engine's figures for monitoring; `None` for one that keeps none (memory).
    fn stats(&self) -> Option<EngineStats> {
        None
    }

    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError>;

    /// Gives back the disk space of deleted batches: compacts the partition log's ranges
    /// deleted since the last call, then, once the deleted batches that live ones still keep
    /// on disk (sharing their files) are at least half of those files and `min_bytes`,
    /// rewrites the live batches so the files can go. Returns what the rewrite freed, or
    /// `None` when none was due (or the engine keeps no files). Slow: call it off the request
    /// path.
    fn reclaim(&self, min_bytes: u64) -> Result<Option<Reclaimed>, EngineError> {
        let _ = min_bytes;
        Ok(None)
    }

    /// Applies `write` atomically; with `sync`, durably before returning.
    fn write(&self, write: WriteSet, sync: bool) -> Result<(), EngineError>;

    /// Visits the entries with `from <= key < to` (to the end of the space when `to` is
    /// `None`) in key order until `visit` returns false. `visit` must not call the engine.
    fn scan(
        &self,
        space: Space,
        from: &[u8],
        to: Option<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), EngineError>;

    /// The entry with the greatest key in `[from, to)` (to the end of the space when `to` is
    /// `None`).
    fn last(
        &self,
        space: Space,
        from: &[u8],
        to: Option<&[u8]>,
    ) -> Result<Option<Entry>, EngineError>;

    /// Visits the entry with the greatest key in `[lower, key]`, if there is one (the record
    /// batch containing an offset, when keys are base offsets), without copying it.
    fn floor(
        &self,
        space: Space,
        lower: &[u8],
        key: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<(), EngineError>;
}

#[cfg(test)]
pub(crate) mod tests;
