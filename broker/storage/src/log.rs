//! One partition's log: append validated batches at the next offsets, read from any offset.
//!
//! Layout: `log` holds each batch under (log id, base offset) exactly as the client sent it,
//! except for the base offset and leader epoch the broker assigns; `time_index` holds each
//! batch's max timestamp under the same key; `log_state` holds the log start offset and high
//! watermark. One append is one atomic RocksDB write of all three, so after a crash the log,
//! its index and its state always agree.

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use krait_protocol::batch::{self, BatchHeader, ValidBatch};
use rocksdb::{DB, Direction, IteratorMode, ReadOptions, WriteBatch};

use crate::error::{Result, StorageError};
use crate::keys::{log_end_key, log_key, parse_log_key, state_key};
use crate::store::{CF_LOG, CF_LOG_STATE, CF_TIME_INDEX, StoreOptions};

/// Offsets of a log. Offsets below `log_start_offset` are gone; consumers may read below
/// `high_watermark`; `log_end_offset` is where the next batch goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogOffsets {
    pub log_start_offset: i64,
    pub high_watermark: i64,
    pub log_end_offset: i64,
}

/// Where an append put its batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    pub offsets: LogOffsets,
}

/// Batches read from a log, concatenated as a Fetch response carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    pub records: Bytes,
    pub offsets: LogOffsets,
}

/// A partition log. Appends are serialised by an internal lock; reads take no lock beyond a
/// copy of the offsets, and see only batches below the high watermark.
pub struct PartitionLog {
    id: u64,
    db: Arc<DB>,
    options: StoreOptions,
    offsets: Mutex<LogOffsets>,
}

impl std::fmt::Debug for PartitionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionLog").field("id", &self.id).field("offsets", &self.offsets()).finish()
    }
}

impl PartitionLog {
    pub(crate) fn open(db: Arc<DB>, id: u64, options: StoreOptions) -> Result<Self> {
        let (log_start_offset, _) = read_state(&db, id)?;
        let log_end_offset = match last_batch(&db, id)? {
            Some(h) => h.last_offset() + 1,
            None => log_start_offset,
        };
        // A single broker acknowledges only what it has written, so everything on disk is
        // committed: the high watermark is the log end offset.
        let offsets = LogOffsets { log_start_offset, high_watermark: log_end_offset, log_end_offset };
        Ok(Self { id, db, options, offsets: Mutex::new(offsets) })
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn offsets(&self) -> LogOffsets {
        *self.lock()
    }

    fn lock(&self) -> MutexGuard<'_, LogOffsets> {
        // A panic while holding the lock cannot leave the offsets half-updated (they are
        // replaced as a whole after the write), so a poisoned lock is still consistent.
        self.offsets.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db.cf_handle(name).expect("column family created at open")
    }

    /// Appends `batches` at the log end offset, stamping each with its base offset and
    /// `leader_epoch`, and returns once the write is in RocksDB (and fsynced if configured).
    pub fn append(&self, batches: &[ValidBatch], leader_epoch: i32) -> Result<AppendInfo> {
        let mut offsets = self.lock();
        let base_offset = offsets.log_end_offset;
        let mut next = base_offset;
        let mut write = WriteBatch::default();
        let mut buf = BytesMut::new();
        for b in batches {
            buf.clear();
            buf.extend_from_slice(&b.bytes);
            batch::assign(&mut buf, next, leader_epoch);
            let key = log_key(self.id, next);
            write.put_cf(self.cf(CF_LOG), key, &buf);
            write.put_cf(self.cf(CF_TIME_INDEX), key, b.header.max_timestamp.to_be_bytes());
            next += b.header.offset_count();
        }
        let updated = LogOffsets { log_end_offset: next, high_watermark: next, ..*offsets };
        write.put_cf(self.cf(CF_LOG_STATE), state_key(self.id), encode_state(&updated));
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(self.options.sync_writes);
        self.db.write_opt(write, &wo).map_err(StorageError::db("append"))?;
        *offsets = updated;
        Ok(AppendInfo { base_offset, last_offset: next - 1, offsets: updated })
    }

    /// Reads whole batches from the one containing `offset`, up to `max_bytes` (the first
    /// batch is returned whole even when larger, so a consumer can always make progress).
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult> {
        let offsets = self.offsets();
        if offset < offsets.log_start_offset || offset > offsets.high_watermark {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start_offset: offsets.log_start_offset,
                high_watermark: offsets.high_watermark,
            });
        }
        let mut records = BytesMut::new();
        if offset == offsets.high_watermark {
            return Ok(ReadResult { records: records.freeze(), offsets });
        }
        let mut iter = self.batch_iter(self.cf(CF_LOG), offsets.high_watermark);
        iter.seek_for_prev(log_key(self.id, offset));
        if !iter.valid() {
            iter.seek(log_key(self.id, offsets.log_start_offset));
        } else if BatchHeader::parse(iter.value().unwrap_or_default()).is_ok_and(|h| h.last_offset() < offset) {
            iter.next();
        }
        while let Some(value) = iter.value() {
            if !records.is_empty() && records.len() + value.len() > max_bytes {
                break;
            }
            records.extend_from_slice(value);
            iter.next();
        }
        iter.status().map_err(StorageError::db("read"))?;
        Ok(ReadResult { records: records.freeze(), offsets })
    }

    /// The first record whose timestamp is at or after `timestamp`, as (offset, timestamp).
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>> {
        let offsets = self.offsets();
        let index = self.cf(CF_TIME_INDEX);
        let mut opts = ReadOptions::default();
        opts.set_iterate_upper_bound(log_key(self.id, offsets.high_watermark).to_vec());
        let start = log_key(self.id, offsets.log_start_offset);
        let iter = self.db.iterator_cf_opt(index, opts, IteratorMode::From(&start, Direction::Forward));
        for item in iter {
            let (key, value) = item.map_err(StorageError::db("scan time index"))?;
            let max_ts = i64::from_be_bytes(value.as_ref().try_into().map_err(|_| corrupt_index(&key))?);
            if max_ts < timestamp {
                continue;
            }
            let Some(bytes) = self.db.get_cf(self.cf(CF_LOG), &key).map_err(StorageError::db("read batch"))? else {
                return Err(corrupt_index(&key));
            };
            let found = batch::first_record_at_or_after(&Bytes::from(bytes), timestamp)
                .map_err(|e| StorageError::Corrupt { what: "record batch", detail: e.to_string() })?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    fn batch_iter<'a>(&'a self, cf: &'a rocksdb::ColumnFamily, upper: i64) -> rocksdb::DBRawIterator<'a> {
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(log_key(self.id, 0).to_vec());
        opts.set_iterate_upper_bound(log_key(self.id, upper).to_vec());
        self.db.raw_iterator_cf_opt(cf, opts)
    }

    /// Deletes every batch, index entry and the state of this log, as part of `write`.
    pub(crate) fn delete_all(db: &DB, id: u64, write: &mut WriteBatch) {
        for name in [CF_LOG, CF_TIME_INDEX] {
            let cf = db.cf_handle(name).expect("column family created at open");
            write.delete_range_cf(cf, log_key(id, 0), log_end_key(id));
        }
        let state = db.cf_handle(CF_LOG_STATE).expect("column family created at open");
        write.delete_cf(state, state_key(id));
    }
}

fn corrupt_index(key: &[u8]) -> StorageError {
    StorageError::Corrupt { what: "time index", detail: format!("entry {:?} has no batch", parse_log_key(key)) }
}

fn encode_state(o: &LogOffsets) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&o.log_start_offset.to_be_bytes());
    v[8..].copy_from_slice(&o.high_watermark.to_be_bytes());
    v
}

/// Reads (log start offset, high watermark); a log never written has both at zero.
fn read_state(db: &DB, id: u64) -> Result<(i64, i64)> {
    let cf = db.cf_handle(CF_LOG_STATE).expect("column family created at open");
    match db.get_cf(cf, state_key(id)).map_err(StorageError::db("read log state"))? {
        None => Ok((0, 0)),
        Some(v) if v.len() == 16 => Ok((
            i64::from_be_bytes(v[..8].try_into().expect("8 bytes")),
            i64::from_be_bytes(v[8..].try_into().expect("8 bytes")),
        )),
        Some(v) => Err(StorageError::Corrupt { what: "log state", detail: format!("{} bytes for log {id}", v.len()) }),
    }
}

fn last_batch(db: &DB, id: u64) -> Result<Option<BatchHeader>> {
    let cf = db.cf_handle(CF_LOG).expect("column family created at open");
    let mut opts = ReadOptions::default();
    opts.set_iterate_lower_bound(log_key(id, 0).to_vec());
    opts.set_iterate_upper_bound(log_end_key(id).to_vec());
    let mut iter = db.raw_iterator_cf_opt(cf, opts);
    iter.seek_to_last();
    iter.status().map_err(StorageError::db("find last batch"))?;
    match iter.value() {
        None => Ok(None),
        Some(v) => BatchHeader::parse(v)
            .map(Some)
            .map_err(|e| StorageError::Corrupt { what: "last batch", detail: e.to_string() }),
    }
}
