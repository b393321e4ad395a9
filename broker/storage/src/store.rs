//! A broker's store: the data directory lock, the engine under it (RocksDB on disk, or memory
//! for tests and tools), and the broker-wide counters kept in its `meta` space.

use krait_sync::MutexExt;
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
#[cfg(feature = "rocksdb")]
use std::{fs::OpenOptions, path::Path};

#[cfg(feature = "rocksdb")]
use crate::engine::RocksEngine;
use crate::engine::{Engine, Failure, Latched, MemoryEngine, Space, WriteSet};
use crate::error::{Result, StorageError};
use crate::log::PartitionLog;

#[cfg(feature = "rocksdb")]
const LOCK_FILE: &str = "krait.lock";
#[cfg(feature = "rocksdb")]
const DB_DIR: &str = "rocksdb";
pub(crate) const NEXT_LOG_ID: &[u8] = b"next_log_id";
const NEXT_PRODUCER_ID: &[u8] = b"next_producer_id";
const CLUSTER_ID: &[u8] = b"cluster_id";

/// What RocksDB may keep in memory by default, memtables and cached blocks together, in a store
/// opened without a budget (tools, tests); the broker gives it its share of `memory.mb`.
pub const DEFAULT_MEMORY_BUDGET: usize = 64 << 20;

/// How the store writes, and what it may keep in memory.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// fsync the write-ahead log before an append returns. Without it an acknowledged append
    /// survives the process being killed (the data is in the OS page cache) but not the
    /// machine losing power; replication is what covers that, as with Kafka's defaults.
    pub sync_writes: bool,
    /// Bytes of memtables and block cache together, on disk only (at least 16 MiB). The
    /// operating system's page cache, outside it, still serves recent reads.
    pub memory_budget: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            sync_writes: false,
            memory_budget: DEFAULT_MEMORY_BUDGET,
        }
    }
}

/// One broker's store. Dropping it releases the data directory lock.
pub struct Store {
    pub(crate) engine: Arc<dyn Engine>,
    pub(crate) options: StoreOptions,
    next_log_id: AtomicU64,
    /// Serialises producer id allocation so the persisted counter only grows.
    next_producer_id: Mutex<u64>,
    /// The data directory and its lock; `None` in memory.
    _lock: Option<File>,
    /// Set by the first failed write, after which the store writes nothing more.
    failure: Arc<Failure>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, failing at once if another process holds it.
    #[cfg(feature = "rocksdb")]
    pub fn open(dir: &Path, options: StoreOptions) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| StorageError::CreateDir {
            path: dir.into(),
            source,
        })?;
        let lock = lock_data_dir(dir)?;
        let path = dir.join(DB_DIR);
        let engine = RocksEngine::open(&path, options.memory_budget)
            .map_err(|source| StorageError::Open { path, source })?;
        Self::new(Arc::new(engine), options, Some(lock))
    }

    /// A store that keeps everything in memory and nothing after it is dropped: for tests
    /// and tools that need a broker's state without a data directory.
    pub fn in_memory(options: StoreOptions) -> Self {
        Self::new(Arc::new(MemoryEngine::new()), options, None)
            .expect("an empty memory engine has no counters to misread")
    }

    /// A store on an engine someone else keeps (no data directory lock): a test's memory
    /// engine reopened after a simulated restart, say.
    pub fn on_engine(engine: Arc<dyn Engine>, options: StoreOptions) -> Result<Self> {
        Self::new(engine, options, None)
    }

    fn new(engine: Arc<dyn Engine>, options: StoreOptions, lock: Option<File>) -> Result<Self> {
        let failure = Arc::new(Failure::default());
        let engine: Arc<dyn Engine> = Arc::new(Latched {
            inner: engine,
            failure: failure.clone(),
        });
        let next = read_u64(engine.as_ref(), NEXT_LOG_ID)?.unwrap_or(1);
        let next_producer = read_u64(engine.as_ref(), NEXT_PRODUCER_ID)?.unwrap_or(0);
        Ok(Self {
            engine,
            options,
            next_log_id: AtomicU64::new(next),
            next_producer_id: Mutex::new(next_producer),
            _lock: lock,
            failure,
        })
    }

    /// The engine's figures for monitoring (`None` on the memory engine).
    pub fn engine_stats(&self) -> Option<crate::engine::EngineStats> {
        self.engine.stats()
    }

    /// Gives back the disk space of deleted batches still held in files shared with live
    /// ones, once it is half of those files and at least `min_bytes` (see
    /// [`crate::engine::Engine::reclaim`]). Slow: run it on a blocking thread.
    pub fn reclaim(&self, min_bytes: u64) -> Result<Option<crate::engine::Reclaimed>> {
        self.engine
            .reclaim(min_bytes)
            .map_err(StorageError::db("reclaim"))
    }

    /// Why the store stopped writing: its first failed write (a full or failing disk), after
    /// which every write fails. A broker whose store failed must stop, as Kafka does when its
    /// only log directory goes offline.
    pub fn failure(&self) -> Option<&str> {
        self.failure.reason()
    }

    /// The cluster id stored on first start, created now if this is that start.
    pub fn cluster_id(&self, generate: impl FnOnce() -> String) -> Result<String> {
        if let Some(id) = self.stored_cluster_id()? {
            return Ok(id);
        }
        let id = generate();
        self.set_cluster_id(&id)?;
        Ok(id)
    }

    /// The id of the cluster this data directory belongs to, if it has joined one.
    pub fn stored_cluster_id(&self) -> Result<Option<String>> {
        let Some(v) = self
            .engine
            .get(Space::Meta, CLUSTER_ID)
            .map_err(StorageError::db("read cluster id"))?
        else {
            return Ok(None);
        };
        String::from_utf8(v)
            .map(Some)
            .map_err(|e| StorageError::Corrupt {
                what: "cluster id",
                detail: e.to_string(),
            })
    }

    /// Records the cluster this data directory belongs to, durably.
    pub fn set_cluster_id(&self, id: &str) -> Result<()> {
        let mut write = WriteSet::default();
        write.put(Space::Meta, CLUSTER_ID, id.as_bytes());
        self.write_synced(write, "write cluster id")
    }

    /// Opens the log with `log_id`, recovering its offsets from disk.
    pub fn open_log(&self, log_id: u64) -> Result<PartitionLog> {
        PartitionLog::open(self.engine.clone(), log_id, self.options)
    }

    /// Reserves `count` consecutive log ids. The reservation becomes durable with the catalog
    /// write that uses it (see `TopicRecord`), so an id is never handed out twice.
    pub fn allocate_log_ids(&self, count: u64) -> u64 {
        self.next_log_id.fetch_add(count, Ordering::SeqCst)
    }

    /// A producer id never handed out before, durably: ids must stay unique across restarts,
    /// or a new producer could be taken for the retry of an old one.
    pub fn allocate_producer_id(&self) -> Result<i64> {
        let mut next = self.next_producer_id.lock_unpoisoned();
        let id = *next;
        let mut write = WriteSet::default();
        write.put(Space::Meta, NEXT_PRODUCER_ID, (id + 1).to_be_bytes());
        self.write_synced(write, "allocate producer id")?;
        *next = id + 1;
        Ok(id as i64)
    }

    pub(crate) fn next_log_id(&self) -> u64 {
        self.next_log_id.load(Ordering::SeqCst)
    }

    /// Catalog and metadata changes are rare and must survive power loss: always fsync.
    pub(crate) fn write_synced(&self, write: WriteSet, step: &'static str) -> Result<()> {
        self.engine
            .write(write, true)
            .map_err(StorageError::db(step))
    }
}

#[cfg(feature = "rocksdb")]
fn lock_data_dir(dir: &Path) -> Result<File> {
    let lock_path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| StorageError::Lock {
            path: dir.into(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StorageError::InUse {
            path: dir.into(),
            lock: lock_path,
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(StorageError::Lock {
            path: dir.into(),
            source,
        }),
    }
}

fn read_u64(engine: &dyn Engine, key: &[u8]) -> Result<Option<u64>> {
    match engine
        .get(Space::Meta, key)
        .map_err(StorageError::db("read meta"))?
    {
        None => Ok(None),
        Some(v) => {
            let bytes: [u8; 8] = v.as_slice().try_into().map_err(|_| StorageError::Corrupt {
                what: "meta value",
                detail: format!("{} bytes under {:?}", v.len(), String::from_utf8_lossy(key)),
            })?;
            Ok(Some(u64::from_be_bytes(bytes)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_open_of_a_data_dir_fails_with_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let err = Store::open(dir.path(), StoreOptions::default()).unwrap_err();
        assert!(matches!(err, StorageError::InUse { .. }), "{err}");
        assert!(err.to_string().contains("in use"));
    }

    #[test]
    fn lock_is_released_when_the_store_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path(), StoreOptions::default()).unwrap());
        Store::open(dir.path(), StoreOptions::default()).unwrap();
    }

    #[test]
    fn cluster_id_is_generated_once_and_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let first = Store::open(dir.path(), StoreOptions::default())
            .unwrap()
            .cluster_id(|| "abc".into())
            .unwrap();
        let again = Store::open(dir.path(), StoreOptions::default())
            .unwrap()
            .cluster_id(|| "other".into())
            .unwrap();
        assert_eq!((first.as_str(), again.as_str()), ("abc", "abc"));
    }
}
