//! Opening the database: the data directory lock, column families and their tuning.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType, Options, WriteOptions};

use crate::error::{Result, StorageError};
use crate::log::PartitionLog;

/// Record batches, keyed by (log id, base offset).
pub(crate) const CF_LOG: &str = "log";
/// Per-log state: log start offset and high watermark.
pub(crate) const CF_LOG_STATE: &str = "log_state";
/// Per-batch max timestamp, keyed like `log`, for ListOffsets by time without reading batches.
pub(crate) const CF_TIME_INDEX: &str = "time_index";
/// Idempotent producer state, keyed by (log id, producer id).
pub(crate) const CF_PRODUCERS: &str = "producers";
/// Committed offsets of single-broker releases. No longer written (offsets are records of the
/// metadata log); still opened, because RocksDB must open every column family a database has.
pub(crate) const CF_GROUP_OFFSETS: &str = "group_offsets";
/// Consumer group metadata, keyed by group id.
pub(crate) const CF_GROUPS: &str = "groups";
/// Topic catalog, keyed by topic name.
pub(crate) const CF_TOPICS: &str = "topics";
/// Broker-wide values: cluster id, next log id.
pub(crate) const CF_META: &str = "meta";
/// The metadata quorum's Raft log, keyed by log index (u64 BE). Owned by `krait-metadata`.
pub const CF_RAFT_LOG: &str = "raft_log";
/// The metadata quorum's vote, committed log id, purge point and snapshot. Owned by
/// `krait-metadata`.
pub const CF_RAFT_STATE: &str = "raft_state";

const COLUMN_FAMILIES: &[&str] = &[
    CF_LOG,
    CF_LOG_STATE,
    CF_TIME_INDEX,
    CF_PRODUCERS,
    CF_GROUP_OFFSETS,
    CF_GROUPS,
    CF_TOPICS,
    CF_META,
    CF_RAFT_LOG,
    CF_RAFT_STATE,
];
const LOCK_FILE: &str = "krait.lock";
const DB_DIR: &str = "rocksdb";
pub(crate) const NEXT_LOG_ID: &[u8] = b"next_log_id";
const NEXT_PRODUCER_ID: &[u8] = b"next_producer_id";
const CLUSTER_ID: &[u8] = b"cluster_id";

/// How the store writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreOptions {
    /// fsync the write-ahead log before an append returns. Without it an acknowledged append
    /// survives the process being killed (the data is in the OS page cache) but not the
    /// machine losing power; replication is what covers that, as with Kafka's defaults.
    pub sync_writes: bool,
}

/// One broker's database. Dropping it releases the data directory lock.
pub struct Store {
    pub(crate) db: Arc<DB>,
    pub(crate) options: StoreOptions,
    next_log_id: AtomicU64,
    /// Serialises producer id allocation so the persisted counter only grows.
    next_producer_id: Mutex<u64>,
    path: PathBuf,
    _lock: File,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, failing at once if another process holds it.
    pub fn open(dir: &Path, options: StoreOptions) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| StorageError::CreateDir {
            path: dir.into(),
            source,
        })?;
        let lock = lock_data_dir(dir)?;
        let path = dir.join(DB_DIR);
        let cfs = COLUMN_FAMILIES
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, cf_options(name)));
        let db = DB::open_cf_descriptors(&db_options(), &path, cfs).map_err(|source| {
            StorageError::Open {
                path: path.clone(),
                source,
            }
        })?;
        let next = read_u64(&db, NEXT_LOG_ID)?.unwrap_or(1);
        let next_producer = read_u64(&db, NEXT_PRODUCER_ID)?.unwrap_or(0);
        Ok(Self {
            db: Arc::new(db),
            options,
            next_log_id: AtomicU64::new(next),
            next_producer_id: Mutex::new(next_producer),
            path,
            _lock: lock,
        })
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
            .db
            .get_cf(self.cf(CF_META), CLUSTER_ID)
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
        self.db
            .put_cf_opt(
                self.cf(CF_META),
                CLUSTER_ID,
                id.as_bytes(),
                &self.sync_write_options(),
            )
            .map_err(StorageError::db("write cluster id"))
    }

    /// Opens the log with `log_id`, recovering its offsets from disk.
    pub fn open_log(&self, log_id: u64) -> Result<PartitionLog> {
        PartitionLog::open(self.db.clone(), log_id, self.options)
    }

    /// Reserves `count` consecutive log ids. The reservation becomes durable with the catalog
    /// write that uses it (see `TopicRecord`), so an id is never handed out twice.
    pub fn allocate_log_ids(&self, count: u64) -> u64 {
        self.next_log_id.fetch_add(count, Ordering::SeqCst)
    }

    /// A producer id never handed out before, durably: ids must stay unique across restarts,
    /// or a new producer could be taken for the retry of an old one.
    pub fn allocate_producer_id(&self) -> Result<i64> {
        let mut next = self
            .next_producer_id
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let id = *next;
        self.db
            .put_cf_opt(
                self.cf(CF_META),
                NEXT_PRODUCER_ID,
                (id + 1).to_be_bytes(),
                &self.sync_write_options(),
            )
            .map_err(StorageError::db("allocate producer id"))?;
        *next = id + 1;
        Ok(id as i64)
    }

    /// The database itself, for crates that own their own column families in it (the metadata
    /// quorum's `raft_log` and `raft_state`): one database per broker, one write-ahead log.
    pub fn db(&self) -> &Arc<DB> {
        &self.db
    }

    pub(crate) fn next_log_id(&self) -> u64 {
        self.next_log_id.load(Ordering::SeqCst)
    }

    pub(crate) fn cf(&self, name: &str) -> &ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("column family created at open")
    }

    /// Catalog and metadata changes are rare and must survive power loss: always fsync.
    pub(crate) fn sync_write_options(&self) -> WriteOptions {
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        wo
    }
}

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

fn db_options() -> Options {
    let mut o = Options::default();
    o.create_if_missing(true);
    o.create_missing_column_families(true);
    o.set_max_background_jobs(2);
    // Appends of one batch per request: a larger WAL buffer keeps small writes from flushing
    // one by one, and a bounded total keeps memory (and the idle RSS) predictable.
    o.set_db_write_buffer_size(128 << 20);
    o.set_max_total_wal_size(256 << 20);
    o.set_keep_log_file_num(4);
    o
}

fn cf_options(name: &str) -> Options {
    let mut o = Options::default();
    if name == CF_LOG {
        // Batches arrive compressed by the client when the client wants compression.
        o.set_compression_type(DBCompressionType::None);
        o.set_write_buffer_size(64 << 20);
        o.set_target_file_size_base(64 << 20);
        o.set_level_compaction_dynamic_level_bytes(true);
    } else {
        o.set_compression_type(DBCompressionType::Lz4);
        o.set_write_buffer_size(4 << 20);
    }
    o
}

fn read_u64(db: &DB, key: &[u8]) -> Result<Option<u64>> {
    let meta = db
        .cf_handle(CF_META)
        .expect("column family created at open");
    match db
        .get_cf(meta, key)
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
