//! The RocksDB engine: one database per broker, one column family per key space, tuned for
//! the partition log (large uncompressed batches) and small compressed metadata elsewhere.

use std::path::Path;
use std::sync::Mutex;

use krait_sync::MutexExt;

use rocksdb::{
    BlockBasedOptions, BottommostLevelCompaction, Cache, ColumnFamily, ColumnFamilyDescriptor,
    CompactOptions, DB, DBCompressionType, Direction, IteratorMode, Options, ReadOptions,
    WriteBatch, WriteBufferManager, WriteOptions,
};

use super::{Engine, EngineError, EngineStats, Entry, Op, Reclaimed, Space, WriteSet};

pub struct RocksEngine {
    db: DB,
    /// Ranges of the partition log deleted since the last [`Engine::reclaim`], which compacts
    /// them: RocksDB drops deleted keys (and counts their blobs as garbage) only when a
    /// compaction passes them, and a log no longer written may see none for a long time.
    deleted: Mutex<Vec<KeyRange>>,
}

/// A range of keys, `[from, to)`.
type KeyRange = (Vec<u8>, Vec<u8>);

/// Deleted ranges remembered for compaction at most; past it they are merged into one.
const DELETED_RANGES: usize = 4096;

impl std::fmt::Debug for RocksEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksEngine")
            .field("path", &self.db.path())
            .finish()
    }
}

/// The smallest memory budget RocksDB is given: a memtable of each key space and a few blocks.
pub const MIN_MEMORY_BUDGET: usize = 16 << 20;

impl RocksEngine {
    /// Opens (creating if needed) the database at `path` with every key space, holding its
    /// memtables and cached blocks within `memory_budget` bytes together (see [`Memory`]).
    pub fn open(path: &Path, memory_budget: usize) -> Result<Self, rocksdb::Error> {
        let memory = Memory::new(memory_budget);
        let cfs = Space::ALL
            .iter()
            .map(|s| ColumnFamilyDescriptor::new(s.name(), memory.cf_options(*s)));
        let db = DB::open_cf_descriptors(&memory.db_options(), path, cfs)?;
        Ok(Self {
            db,
            deleted: Mutex::new(Vec::new()),
        })
    }

    fn cf(&self, space: Space) -> &ColumnFamily {
        self.db
            .cf_handle(space.name())
            .expect("every key space is opened with the database")
    }

    fn bounded(&self, from: &[u8], to: Option<&[u8]>) -> ReadOptions {
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(from.to_vec());
        if let Some(to) = to {
            opts.set_iterate_upper_bound(to.to_vec());
        }
        opts
    }
}

/// How many memtables of the partition log may exist at once: one filling and the rest
/// waiting for or in a flush. With two (RocksDB's default), a producer writing faster than
/// one flush finishes found both full and every write stopped until the flush ended: 7-17
/// stops per 300 MB of 1 KB or 10 KB records on two cores, each holding every produce for the
/// rest of a flush. With four, of half the size, the same memory absorbs a flush that lags:
/// no stops (`bench/record_sizes.py`), and 600 k records of 1 KB produced 7 % faster (318 k
/// against 296 k rec/s, medians of three alternating runs; within the noise in another).
const LOG_MEMTABLES: usize = 4;

/// Batches of at least this size are kept out of the partition log's tree, in blob files
/// (RocksDB's key-value separation): a flush writes them once, sequentially, and compaction
/// moves only their keys and file references. In the tree itself every flush holds keys of
/// every partition written since the last, so its file overlaps the newest of all of them,
/// and while the tree is small (one level under L0) each compaction rewrote every batch stored
/// so far: 26, 52, then 77 MB for one broker of three, and writes stalled on memtables waiting
/// for those flushes. With blob files, `bench/cluster_bench.py --only throughput --records
/// 2000000` went from 204-228 k to 465-494 k rec/s on three brokers (RF=3) and from 731-753 k
/// to 1,018-1,052 k on one, with a third less broker CPU per record. Smaller batches (a
/// producer sending one record at a time) stay in the tree, where a blob would cost a second
/// read for little to move.
const LOG_BLOB_MIN_BYTES: u64 = 4 << 10;

/// The size of one blob file. A blob file is deleted once every batch in it is deleted
/// (retention, DeleteRecords, a deleted topic, the cleaner's rewrites): smaller files give
/// space back sooner. Blob garbage collection, which copies the live batches out of the oldest
/// files as compaction passes their keys, stays off: the index is compacted often, so it
/// copied old batches again and again, and three brokers produced at 308 k rec/s with it
/// against 433 k without (4 M records). A compacted topic's file that still holds a batch the
/// cleaner kept stays until that batch goes too.
const LOG_BLOB_FILE_BYTES: u64 = 32 << 20;

/// Blob garbage collection, run by [`Engine::reclaim`] rather than by every compaction. A blob
/// file is deleted only when every batch in it is, and a file holds the batches of every
/// partition written while it filled: a topic kept for a week pins the files it shares with
/// one kept for an hour, and a deleted topic's batches stay on disk beside any live one. So
/// once the deleted batches (RocksDB's "garbage", counted as compaction drops their keys) are
/// half of the blob files' bytes, one compaction of the whole log with collection on moves the
/// live batches to new files and the old ones go. Its cost is one more write of each live
/// byte, no more than the bytes it frees: the disk holds at most twice the live batches (and
/// the least the caller asks for). With collection on at every compaction instead, the oldest
/// files' batches were copied again at each one (see LOG_BLOB_FILE_BYTES).
const RECLAIM_GARBAGE_SHARE: f64 = 0.5;

/// Write-ahead log files kept for reuse. With this, 1 KB records were produced at 365 k rec/s
/// against 325 k (medians of three alternating pairs of 600 k records); kill -9 while logs are
/// reused loses nothing (the engine tests).
const RECYCLED_WAL_FILES: usize = 4;

/// One budget for what RocksDB keeps in memory: a block cache shared by every key space, which
/// the memtables are charged to as well (a write buffer manager on the cache), so blocks read
/// plus data not yet flushed stay within the budget together, whatever the load. Index and
/// filter blocks live in that cache too rather than beside it. When the memtables reach half
/// the budget, RocksDB flushes the largest; reads then get what the memtables leave.
struct Memory {
    cache: Cache,
    write_buffers: WriteBufferManager,
    budget: usize,
}

impl Memory {
    fn new(budget: usize) -> Self {
        let budget = budget.max(MIN_MEMORY_BUDGET);
        let cache = Cache::new_lru_cache(budget);
        let write_buffers = WriteBufferManager::new_write_buffer_manager_with_cache(
            budget / 2,
            false,
            cache.clone(),
        );
        Self {
            cache,
            write_buffers,
            budget,
        }
    }

    /// One memtable of the partition log, the key space that takes nearly every byte written:
    /// LOG_MEMTABLES of them fit in the memtables' half of the budget.
    fn log_memtable(&self) -> usize {
        (self.budget / 2 / LOG_MEMTABLES).min(64 << 20)
    }

    fn db_options(&self) -> Options {
        let mut o = Options::default();
        o.create_if_missing(true);
        o.create_missing_column_families(true);
        o.set_max_background_jobs(2);
        o.set_write_buffer_manager(&self.write_buffers);
        // The write-ahead log is on disk, not in memory: bounded so old log files go once
        // every key space has flushed past them.
        o.set_max_total_wal_size(256 << 20);
        o.set_keep_log_file_num(4);
        // A write-ahead log file that every key space has flushed past is kept and written
        // over, not deleted: its pages are still in the page cache, so the next log's writes
        // need no fresh ones (on a virtual machine each fresh page can cost a fault in the
        // host). Each record carries its log's number, so recovery stops at the old data.
        o.set_recycle_log_file_num(RECYCLED_WAL_FILES);
        o
    }

    fn cf_options(&self, space: Space) -> Options {
        let mut o = Options::default();
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&self.cache);
        table.set_cache_index_and_filter_blocks(true);
        table.set_pin_l0_filter_and_index_blocks_in_cache(true);
        o.set_block_based_table_factory(&table);
        if space == Space::Log {
            // Batches arrive compressed by the client when the client wants compression.
            o.set_compression_type(DBCompressionType::None);
            o.set_write_buffer_size(self.log_memtable());
            o.set_max_write_buffer_number(LOG_MEMTABLES as i32);
            o.set_target_file_size_base(64 << 20);
            o.set_level_compaction_dynamic_level_bytes(true);
            // Batches live in blob files, the index of them in the tree (see LOG_BLOB_MIN_BYTES).
            o.set_enable_blob_files(true);
            o.set_min_blob_size(LOG_BLOB_MIN_BYTES);
            o.set_blob_file_size(LOG_BLOB_FILE_BYTES);
            o.set_enable_blob_gc(false);
        } else {
            o.set_compression_type(DBCompressionType::Lz4);
            o.set_write_buffer_size((self.budget / 16).min(4 << 20));
        }
        o
    }
}

impl RocksEngine {
    /// Flushes every key space and compacts it whole: tests that check what compaction
    /// gives back.
    #[cfg(test)]
    pub(crate) fn compact_all(&self) {
        for space in Space::ALL {
            let cf = self.cf(space);
            self.db.flush_cf(cf).unwrap();
            self.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
        }
    }

    /// The partition log's blob files: their bytes and the bytes of deleted batches in them.
    fn blob_files(&self) -> (u64, u64) {
        let log = |name| self.cf_property(Space::Log, name).unwrap_or(0);
        (
            log("rocksdb.live-blob-file-size"),
            log("rocksdb.live-blob-file-garbage-size"),
        )
    }

    /// Compacts the whole partition log, bottom level included, with blob garbage collection
    /// on for every blob file (RocksDB's age cutoff at 1.0), then turns collection off again.
    fn collect_blob_garbage(&self) -> Result<(), rocksdb::Error> {
        let log = self.cf(Space::Log);
        self.db.set_options_cf(
            log,
            &[
                ("enable_blob_garbage_collection", "true"),
                ("blob_garbage_collection_age_cutoff", "1.0"),
            ],
        )?;
        let mut whole = CompactOptions::default();
        whole.set_bottommost_level_compaction(BottommostLevelCompaction::Force);
        self.db
            .compact_range_cf_opt(log, None::<&[u8]>, None::<&[u8]>, &whole);
        self.db
            .set_options_cf(log, &[("enable_blob_garbage_collection", "false")])
    }

    /// The RocksDB write batch of `ops`, and the partition log ranges they delete.
    fn write_batch(&self, ops: Vec<Op>) -> (WriteBatch, Vec<KeyRange>) {
        // The batch's buffer sized once: grown from empty, it was copied at every doubling and
        // each larger copy faulted in fresh pages, 8 % of the brokers' CPU under acks=all on
        // three brokers (perf, `bench/cluster_bench.py --only throughput`).
        let mut batch = WriteBatch::with_capacity_bytes(
            WRITE_BATCH_HEADER + ops.iter().map(Op::encoded_len_bound).sum::<usize>(),
        );
        let mut log_deletes = Vec::new();
        for op in ops {
            match op {
                Op::Put { space, key, value } => batch.put_cf(self.cf(space), key, value),
                Op::Delete { space, key } => batch.delete_cf(self.cf(space), key),
                // An empty or inverted range deletes nothing, as in memory; RocksDB would
                // refuse the whole write for it.
                Op::DeleteRange { space, from, to } if from < to => {
                    batch.delete_range_cf(self.cf(space), &from, &to);
                    if space == Space::Log {
                        log_deletes.push((from, to));
                    }
                }
                Op::DeleteRange { .. } => {}
            }
        }
        (batch, log_deletes)
    }

    /// A database-wide integer property (0 when RocksDB does not answer it).
    fn property(&self, name: &str) -> u64 {
        self.db.property_int_value(name).ok().flatten().unwrap_or(0)
    }

    /// A per-column-family integer property of one key space (`None` when RocksDB does not
    /// answer it).
    fn cf_property(&self, space: Space, name: &str) -> Option<u64> {
        self.db
            .property_int_value_cf(self.cf(space), name)
            .ok()
            .flatten()
    }

    /// A per-column-family integer property, summed over the key spaces.
    fn summed(&self, name: &str) -> u64 {
        Space::ALL
            .iter()
            .filter_map(|s| self.cf_property(*s, name))
            .sum()
    }
}

/// A RocksDB write batch's header: its sequence number and count.
const WRITE_BATCH_HEADER: usize = 12;

impl Op {
    /// At most the bytes this operation takes in a RocksDB write batch: a tag, the column
    /// family's id and each slice's length as varints, then the slices.
    fn encoded_len_bound(&self) -> usize {
        match self {
            Op::Put { key, value, .. } => 1 + 5 + 5 + key.len() + 5 + value.len(),
            Op::Delete { key, .. } => 1 + 5 + 5 + key.len(),
            Op::DeleteRange { from, to, .. } => 1 + 5 + 5 + from.len() + 5 + to.len(),
        }
    }
}

impl Engine for RocksEngine {
    fn stats(&self) -> Option<EngineStats> {
        Some(EngineStats {
            write_stopped: self.property("rocksdb.is-write-stopped"),
            delayed_write_rate: self.property("rocksdb.actual-delayed-write-rate"),
            running_compactions: self.property("rocksdb.num-running-compactions"),
            running_flushes: self.property("rocksdb.num-running-flushes"),
            compactions_pending: self.summed("rocksdb.compaction-pending"),
            pending_compaction_bytes: self.summed("rocksdb.estimate-pending-compaction-bytes"),
            sst_files_bytes: self.summed("rocksdb.total-sst-files-size"),
            blob_files_bytes: self.summed("rocksdb.total-blob-file-size"),
            blob_garbage_bytes: self.blob_files().1,
            memtables_bytes: self.summed("rocksdb.cur-size-all-mem-tables"),
            // One cache shared by every key space: each reports the same figure.
            block_cache_bytes: self.property("rocksdb.block-cache-usage"),
        })
    }

    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.db
            .get_cf(self.cf(space), key)
            .map_err(EngineError::new)
    }

    fn reclaim(&self, min_bytes: u64) -> Result<Option<Reclaimed>, EngineError> {
        let deleted = std::mem::take(&mut *self.deleted.lock_unpoisoned());
        for (from, to) in deleted {
            self.db
                .compact_range_cf(self.cf(Space::Log), Some(from), Some(to));
        }
        let (files_before, garbage_before) = self.blob_files();
        let due = garbage_before >= min_bytes
            && garbage_before as f64 >= files_before as f64 * RECLAIM_GARBAGE_SHARE;
        if !due || garbage_before == 0 {
            return Ok(None);
        }
        self.collect_blob_garbage().map_err(EngineError::new)?;
        let (files_after, garbage_after) = self.blob_files();
        Ok(Some(Reclaimed {
            files_before,
            garbage_before,
            files_after,
            garbage_after,
        }))
    }

    fn write(&self, write: WriteSet, sync: bool) -> Result<(), EngineError> {
        let (batch, log_deletes) = self.write_batch(write.into_ops());
        let mut options = WriteOptions::default();
        options.set_sync(sync);
        self.db
            .write_opt(batch, &options)
            .map_err(EngineError::new)?;
        if !log_deletes.is_empty() {
            let mut deleted = self.deleted.lock_unpoisoned();
            deleted.extend(log_deletes);
            if deleted.len() > DELETED_RANGES {
                let from = deleted.iter().map(|r| r.0.clone()).min();
                let to = deleted.iter().map(|r| r.1.clone()).max();
                *deleted = from.into_iter().zip(to).collect();
            }
        }
        Ok(())
    }

    fn scan(
        &self,
        space: Space,
        from: &[u8],
        to: Option<&[u8]>,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), EngineError> {
        if to.is_some_and(|to| from >= to) {
            return Ok(());
        }
        let mode = IteratorMode::From(from, Direction::Forward);
        let iter = self
            .db
            .iterator_cf_opt(self.cf(space), self.bounded(from, to), mode);
        for item in iter {
            let (key, value) = item.map_err(EngineError::new)?;
            if !visit(&key, &value) {
                break;
            }
        }
        Ok(())
    }

    fn last(
        &self,
        space: Space,
        from: &[u8],
        to: Option<&[u8]>,
    ) -> Result<Option<Entry>, EngineError> {
        if to.is_some_and(|to| from >= to) {
            return Ok(None);
        }
        let mut iter = self
            .db
            .raw_iterator_cf_opt(self.cf(space), self.bounded(from, to));
        iter.seek_to_last();
        iter.status().map_err(EngineError::new)?;
        Ok(iter.item().map(|(k, v)| (k.to_vec(), v.to_vec())))
    }

    fn floor(
        &self,
        space: Space,
        lower: &[u8],
        key: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<(), EngineError> {
        if lower > key {
            return Ok(());
        }
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(lower.to_vec());
        let mut iter = self.db.raw_iterator_cf_opt(self.cf(space), opts);
        iter.seek_for_prev(key);
        iter.status().map_err(EngineError::new)?;
        if let Some((k, v)) = iter.item() {
            visit(k, v);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_batch_is_sized_for_its_operations_before_they_are_added() {
        let ops = vec![
            Op::Put {
                space: Space::Log,
                key: vec![1; 16],
                value: vec![2; 300_000],
            },
            Op::Put {
                space: Space::TimeIndex,
                key: vec![3; 16],
                value: vec![4; 12],
            },
            Op::Delete {
                space: Space::Producers,
                key: vec![5; 16],
            },
            Op::DeleteRange {
                space: Space::Log,
                from: vec![6; 16],
                to: vec![7; 16],
            },
        ];
        let bound = WRITE_BATCH_HEADER + ops.iter().map(Op::encoded_len_bound).sum::<usize>();
        let dir = tempfile::tempdir().unwrap();
        let engine = RocksEngine::open(dir.path(), MIN_MEMORY_BUDGET).unwrap();
        let (batch, log_deletes) = engine.write_batch(ops);
        assert_eq!(log_deletes, vec![(vec![6; 16], vec![7; 16])]);
        assert!(
            batch.size_in_bytes() <= bound && bound - batch.size_in_bytes() < 64,
            "{} bytes written, {bound} reserved",
            batch.size_in_bytes()
        );
    }
}
