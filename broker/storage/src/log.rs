//! One partition's log: append validated batches at the next offsets, read from any offset.
//!
//! Layout: `log` holds each batch under (log id, base offset) exactly as the client sent it,
//! except for the base offset and leader epoch the broker assigns; `time_index` holds each
//! batch's max timestamp under the same key; `log_state` holds the log start offset and high
//! watermark, and the leader epoch cache (see `epochs`); `producers` holds idempotent producer
//! state (see `producers`). One append is one atomic RocksDB write of all of them, so after a
//! crash the log, its index, its state, its epochs and its producer sequences always agree.
//!
//! The high watermark trails the log end offset on a replicated partition: the replication
//! runtime advances it as followers catch up. Consumers read below it; followers (see
//! `replica`) read up to the log end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use krait_protocol::batch::{self, BatchHeader, ValidBatch};
use rocksdb::{DB, Direction, IteratorMode, ReadOptions, WriteBatch};

use crate::epochs::{EpochEntry, LeaderEpochCache};
use crate::error::{Result, StorageError};
use crate::keys::{epoch_key, log_end_key, log_key, parse_epoch_key, parse_log_key, state_key};
use crate::producers::{self, BatchMetadata, NO_PRODUCER_ID, ProducerEntry, SequenceCheck};
use crate::retention::{self, BatchSummary, RetentionLimits, RetentionPlan};
use crate::store::{CF_LOG, CF_LOG_STATE, CF_PRODUCERS, CF_TIME_INDEX, StoreOptions};

/// Offsets of a log. Offsets below `log_start_offset` are gone; consumers may read below
/// `high_watermark`; `log_end_offset` is where the next batch goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogOffsets {
    pub log_start_offset: i64,
    pub high_watermark: i64,
    pub log_end_offset: i64,
}

/// Where an append put its batches. For a retried batch of an idempotent producer the offsets
/// are those it got the first time, and `duplicate` is set: nothing was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    pub offsets: LogOffsets,
    pub duplicate: bool,
}

/// How an append stamps its batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOptions {
    pub leader_epoch: i32,
    /// The broker's clock, for topics whose timestamps are the log append time.
    pub log_append_time: Option<i64>,
    /// Move the high watermark to the new log end: true when this broker is the partition's
    /// only in-sync replica, so what it wrote is committed. A replicated leader leaves it to the
    /// replication runtime (`advance_high_watermark`).
    pub advance_high_watermark: bool,
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
    pub(crate) id: u64,
    pub(crate) db: Arc<DB>,
    pub(crate) options: StoreOptions,
    pub(crate) inner: Mutex<LogInner>,
}

/// What appends change, under one lock.
pub(crate) struct LogInner {
    pub(crate) offsets: LogOffsets,
    /// Bytes of all batches in the log, for retention.bytes.
    pub(crate) size_bytes: u64,
    pub(crate) producers: HashMap<i64, ProducerEntry>,
    pub(crate) epochs: LeaderEpochCache,
}

impl std::fmt::Debug for PartitionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionLog")
            .field("id", &self.id)
            .field("offsets", &self.offsets())
            .finish()
    }
}

impl PartitionLog {
    pub(crate) fn open(db: Arc<DB>, id: u64, options: StoreOptions) -> Result<Self> {
        let (log_start_offset, high_watermark) = read_state(&db, id)?;
        let log_end_offset = match last_batch(&db, id)? {
            Some(h) => h.last_offset() + 1,
            None => log_start_offset,
        };
        // The persisted high watermark is written with every append that advances it, so it is
        // never past the log end; the clamp only guards against a log truncated since.
        let offsets = LogOffsets {
            log_start_offset,
            high_watermark: high_watermark.clamp(log_start_offset, log_end_offset),
            log_end_offset,
        };
        let mut epochs = load_epochs(&db, id)?;
        if epochs.latest_epoch().is_none() && log_end_offset > log_start_offset {
            // Written before the log kept an epoch cache: every batch carries the single-broker
            // epoch of the first one. Held in memory only; the next new epoch is persisted.
            if let Some(h) = first_batch(&db, id, log_start_offset)? {
                epochs.assign(h.partition_leader_epoch, log_start_offset);
            }
        }
        let producers = load_producers(&db, id)?;
        let size_bytes = scan_index(&db, id, log_start_offset, i64::MAX)?
            .iter()
            .map(|b| b.size)
            .sum();
        Ok(Self {
            id,
            db,
            options,
            inner: Mutex::new(LogInner {
                offsets,
                size_bytes,
                producers,
                epochs,
            }),
        })
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn offsets(&self) -> LogOffsets {
        self.lock().offsets
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, LogInner> {
        // A panic while holding the lock cannot leave the state half-updated (it is replaced
        // only after the write succeeds), so a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("column family created at open")
    }

    /// Appends `batches` at the log end offset, stamping each with its base offset and
    /// `leader_epoch`, and returns once the write is in RocksDB (and fsynced if configured).
    ///
    /// Batches of idempotent producers are checked against the producer's sequence first: a
    /// retry of one of its last five batches is not written again, and a gap, overlap or stale
    /// epoch refuses the whole request with nothing written.
    pub fn append(&self, batches: &[ValidBatch], leader_epoch: i32) -> Result<AppendInfo> {
        self.append_with(
            batches,
            AppendOptions {
                leader_epoch,
                log_append_time: None,
                advance_high_watermark: true,
            },
        )
    }

    /// `append` with every option: also stamps batches with the broker's time for topics
    /// using `message.timestamp.type=LogAppendTime`.
    pub fn append_with(
        &self,
        batches: &[ValidBatch],
        options: AppendOptions,
    ) -> Result<AppendInfo> {
        let leader_epoch = options.leader_epoch;
        let mut inner = self.lock();
        let mut plan = AppendPlan {
            bytes: 0,
            next: inner.offsets.log_end_offset,
            first: None,
            last: -1,
            producers: HashMap::new(),
            write: WriteBatch::default(),
        };
        let mut buf = BytesMut::new();
        for b in batches {
            let h = &b.header;
            let mut producer = None;
            if h.producer_id != NO_PRODUCER_ID {
                match check_sequence(&inner, &plan, h)? {
                    Verdict::Append(entry) => producer = Some(entry),
                    Verdict::Duplicate(m) => {
                        plan.first.get_or_insert((m.base_offset, true));
                        plan.last = m.last_offset;
                        continue;
                    }
                }
            }
            let (base, last) = (plan.next, plan.next + i64::from(h.last_offset_delta));
            if let Some(mut entry) = producer {
                let meta = BatchMetadata {
                    first_seq: h.base_sequence,
                    last_seq: producers::last_seq(h.base_sequence, h.last_offset_delta),
                    base_offset: base,
                    last_offset: last,
                };
                producers::record(&mut entry, h.producer_epoch, meta);
                plan.producers.insert(h.producer_id, entry);
            }
            buf.clear();
            buf.extend_from_slice(&b.bytes);
            batch::assign(&mut buf, base, leader_epoch);
            let max_timestamp = match options.log_append_time {
                Some(now) => {
                    batch::set_log_append_time(&mut buf, now);
                    now
                }
                None => h.max_timestamp,
            };
            let key = log_key(self.id, base);
            plan.write.put_cf(self.cf(CF_LOG), key, &buf);
            plan.write.put_cf(
                self.cf(CF_TIME_INDEX),
                key,
                encode_index(max_timestamp, b.bytes.len()),
            );
            plan.bytes += b.bytes.len() as u64;
            plan.first.get_or_insert((base, false));
            plan.last = last;
            plan.next += h.offset_count();
        }
        let last_offset = plan.last;
        let Some((base_offset, duplicate)) = plan.first else {
            return Err(StorageError::Corrupt {
                what: "append",
                detail: "no batches".into(),
            });
        };
        if plan.next == inner.offsets.log_end_offset {
            return Ok(AppendInfo {
                base_offset,
                last_offset,
                offsets: inner.offsets,
                duplicate,
            });
        }
        let updated = LogOffsets {
            log_end_offset: plan.next,
            high_watermark: if options.advance_high_watermark {
                plan.next
            } else {
                inner.offsets.high_watermark
            },
            ..inner.offsets
        };
        self.put_state(&mut plan.write, &updated);
        let mut epochs = inner.epochs.clone();
        if let Some(entry) = epochs.assign(leader_epoch, inner.offsets.log_end_offset) {
            self.put_epoch(&mut plan.write, entry);
        }
        for (producer_id, entry) in &plan.producers {
            plan.write.put_cf(
                self.cf(CF_PRODUCERS),
                log_key(self.id, *producer_id),
                producers::encode(entry),
            );
        }
        self.write(plan.write, "append")?;
        inner.offsets = updated;
        inner.size_bytes += plan.bytes;
        inner.producers.extend(plan.producers);
        inner.epochs = epochs;
        Ok(AppendInfo {
            base_offset,
            last_offset,
            offsets: updated,
            duplicate,
        })
    }

    /// Reads whole batches from the one containing `offset`, up to `max_bytes` (the first
    /// batch is returned whole even when larger, so a consumer can always make progress).
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult> {
        let offsets = self.offsets();
        self.read_below(offset, max_bytes, offsets, offsets.high_watermark)
    }

    /// `read` for a follower: up to the log end offset, past the high watermark.
    pub fn read_for_follower(&self, offset: i64, max_bytes: usize) -> Result<ReadResult> {
        let offsets = self.offsets();
        self.read_below(offset, max_bytes, offsets, offsets.log_end_offset)
    }

    fn read_below(
        &self,
        offset: i64,
        max_bytes: usize,
        offsets: LogOffsets,
        limit: i64,
    ) -> Result<ReadResult> {
        // Out of range is judged against the log end, as Kafka does, for consumers too: a new
        // leader's high watermark can trail the one its predecessor served, and a consumer
        // fetching between the two must get an empty answer and retry, not OFFSET_OUT_OF_RANGE
        // (which makes it reset its position and skip records).
        if offset < offsets.log_start_offset || offset > offsets.log_end_offset {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start_offset: offsets.log_start_offset,
                log_end_offset: offsets.log_end_offset,
            });
        }
        let mut records = BytesMut::new();
        if offset >= limit {
            return Ok(ReadResult {
                records: records.freeze(),
                offsets,
            });
        }
        let mut iter = self.batch_iter(self.cf(CF_LOG), limit);
        iter.seek_for_prev(log_key(self.id, offset));
        if !iter.valid() {
            iter.seek(log_key(self.id, offsets.log_start_offset));
        } else if BatchHeader::parse(iter.value().unwrap_or_default())
            .is_ok_and(|h| h.last_offset() < offset)
        {
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
        Ok(ReadResult {
            records: records.freeze(),
            offsets,
        })
    }

    /// The first record whose timestamp is at or after `timestamp`, as (offset, timestamp).
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>> {
        let offsets = self.offsets();
        let index = self.cf(CF_TIME_INDEX);
        let mut opts = ReadOptions::default();
        opts.set_iterate_upper_bound(log_key(self.id, offsets.high_watermark).to_vec());
        let start = log_key(self.id, offsets.log_start_offset);
        let iter =
            self.db
                .iterator_cf_opt(index, opts, IteratorMode::From(&start, Direction::Forward));
        for item in iter {
            let (key, value) = item.map_err(StorageError::db("scan time index"))?;
            let (max_ts, _) = decode_index(&value).ok_or_else(|| corrupt_index(&key))?;
            if max_ts < timestamp {
                continue;
            }
            let Some(bytes) = self
                .db
                .get_cf(self.cf(CF_LOG), &key)
                .map_err(StorageError::db("read batch"))?
            else {
                return Err(corrupt_index(&key));
            };
            let found =
                batch::first_record_at_or_after(&Bytes::from(bytes), timestamp).map_err(|e| {
                    StorageError::Corrupt {
                        what: "record batch",
                        detail: e.to_string(),
                    }
                })?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// Bytes of all batches in the log.
    pub fn size_bytes(&self) -> u64 {
        self.lock().size_bytes
    }

    /// Deletes the batches that retention no longer keeps, advancing the log start offset
    /// durably. The plan is made from a scan without the append lock, so produce and fetch go
    /// on meanwhile; only the final range delete takes it.
    pub fn enforce_retention(
        &self,
        now_ms: i64,
        limits: RetentionLimits,
    ) -> Result<Option<RetentionPlan>> {
        let (offsets, size) = {
            let inner = self.lock();
            (inner.offsets, inner.size_bytes)
        };
        let batches = scan_index(
            &self.db,
            self.id,
            offsets.log_start_offset,
            offsets.high_watermark,
        )?;
        let Some(plan) = retention::plan(batches, size, now_ms, limits) else {
            return Ok(None);
        };
        let mut inner = self.lock();
        let updated = LogOffsets {
            log_start_offset: plan.new_log_start_offset,
            ..inner.offsets
        };
        let mut write = WriteBatch::default();
        let (from, to) = (
            log_key(self.id, offsets.log_start_offset),
            log_key(self.id, plan.new_log_start_offset),
        );
        write.delete_range_cf(self.cf(CF_LOG), from, to);
        write.delete_range_cf(self.cf(CF_TIME_INDEX), from, to);
        self.put_state(&mut write, &updated);
        let mut epochs = inner.epochs.clone();
        let (removed, moved) = epochs.truncate_from_start(plan.new_log_start_offset);
        self.rewrite_epochs(&mut write, &removed, moved);
        self.write(write, "delete by retention")?;
        inner.epochs = epochs;
        inner.offsets.log_start_offset = plan.new_log_start_offset;
        inner.size_bytes = inner.size_bytes.saturating_sub(plan.bytes);
        Ok(Some(plan))
    }

    fn batch_iter<'a>(
        &'a self,
        cf: &'a rocksdb::ColumnFamily,
        upper: i64,
    ) -> rocksdb::DBRawIterator<'a> {
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(log_key(self.id, 0).to_vec());
        opts.set_iterate_upper_bound(log_key(self.id, upper).to_vec());
        self.db.raw_iterator_cf_opt(cf, opts)
    }

    /// Deletes every batch, index entry and the state of this log, as part of `write`.
    pub(crate) fn delete_all(db: &DB, id: u64, write: &mut WriteBatch) {
        for name in [CF_LOG, CF_TIME_INDEX, CF_PRODUCERS] {
            let cf = db.cf_handle(name).expect("column family created at open");
            write.delete_range_cf(cf, log_key(id, 0), log_end_key(id));
        }
        // The state key and the epoch keys of a log share its 8-byte prefix.
        let state = db
            .cf_handle(CF_LOG_STATE)
            .expect("column family created at open");
        write.delete_range_cf(state, state_key(id), state_key(id + 1));
    }

    /// Writes `write` atomically, fsynced when the store is configured to.
    pub(crate) fn write(&self, write: WriteBatch, step: &'static str) -> Result<()> {
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(self.options.sync_writes);
        self.db
            .write_opt(write, &wo)
            .map_err(StorageError::db(step))
    }

    /// Adds the log's offsets (log start, high watermark) to `write`.
    pub(crate) fn put_state(&self, write: &mut WriteBatch, offsets: &LogOffsets) {
        write.put_cf(
            self.cf(CF_LOG_STATE),
            state_key(self.id),
            encode_state(offsets),
        );
    }

    /// Adds a leader epoch cache entry to `write`.
    pub(crate) fn put_epoch(&self, write: &mut WriteBatch, entry: EpochEntry) {
        write.put_cf(
            self.cf(CF_LOG_STATE),
            epoch_key(self.id, entry.epoch),
            entry.start_offset.to_be_bytes(),
        );
    }

    /// Deletes the `removed` epochs and writes `changed` in `write`.
    pub(crate) fn rewrite_epochs(
        &self,
        write: &mut WriteBatch,
        removed: &[i32],
        changed: Option<EpochEntry>,
    ) {
        for epoch in removed {
            write.delete_cf(self.cf(CF_LOG_STATE), epoch_key(self.id, *epoch));
        }
        if let Some(entry) = changed {
            self.put_epoch(write, entry);
        }
    }
}

/// The batches, index entries and producer entries of one append, built before anything is
/// written so that a refused batch leaves no trace.
struct AppendPlan {
    next: i64,
    /// Base offset and duplicate flag of the first batch: what the producer is told.
    first: Option<(i64, bool)>,
    /// Last offset of the last batch.
    last: i64,
    /// Bytes of the batches written.
    bytes: u64,
    producers: HashMap<i64, ProducerEntry>,
    write: WriteBatch,
}

enum Verdict {
    /// Append, then record the batch in this (updated copy of the) producer entry.
    Append(ProducerEntry),
    /// Already in the log here.
    Duplicate(BatchMetadata),
}

/// Checks a batch of an idempotent producer against what this append and the log know.
fn check_sequence(inner: &LogInner, plan: &AppendPlan, h: &BatchHeader) -> Result<Verdict> {
    let entry = plan
        .producers
        .get(&h.producer_id)
        .or_else(|| inner.producers.get(&h.producer_id));
    let last = producers::last_seq(h.base_sequence, h.last_offset_delta);
    match producers::check(entry, h.producer_epoch, h.base_sequence, last) {
        SequenceCheck::Append => Ok(Verdict::Append(entry.cloned().unwrap_or_default())),
        SequenceCheck::Duplicate(m) => Ok(Verdict::Duplicate(m)),
        SequenceCheck::OutOfOrder { expected, got } => Err(StorageError::OutOfOrderSequence {
            producer_id: h.producer_id,
            expected,
            got,
        }),
        SequenceCheck::StaleEpoch { current, got } => Err(StorageError::InvalidProducerEpoch {
            producer_id: h.producer_id,
            current,
            got,
        }),
    }
}

fn load_producers(db: &DB, id: u64) -> Result<HashMap<i64, ProducerEntry>> {
    let cf = db
        .cf_handle(CF_PRODUCERS)
        .expect("column family created at open");
    let mut opts = ReadOptions::default();
    opts.set_iterate_upper_bound(log_end_key(id).to_vec());
    let start = log_key(id, 0);
    let mut producers = HashMap::new();
    for item in db.iterator_cf_opt(cf, opts, IteratorMode::From(&start, Direction::Forward)) {
        let (key, value) = item.map_err(StorageError::db("load producer state"))?;
        let (_, producer_id) = parse_log_key(&key).ok_or_else(|| corrupt_producer(&key))?;
        let entry = producers::decode(&value).ok_or_else(|| corrupt_producer(&key))?;
        producers.insert(producer_id, entry);
    }
    Ok(producers)
}

fn corrupt_producer(key: &[u8]) -> StorageError {
    StorageError::Corrupt {
        what: "producer state",
        detail: format!("entry {key:?}"),
    }
}

/// Time index value: the batch's max timestamp and its size in bytes.
pub(crate) fn encode_index(max_timestamp: i64, size: usize) -> [u8; 12] {
    let mut v = [0u8; 12];
    v[..8].copy_from_slice(&max_timestamp.to_be_bytes());
    v[8..].copy_from_slice(&(size as u32).to_be_bytes());
    v
}

fn decode_index(v: &[u8]) -> Option<(i64, u64)> {
    let v: &[u8; 12] = v.try_into().ok()?;
    Some((
        i64::from_be_bytes(v[..8].try_into().ok()?),
        u64::from(u32::from_be_bytes(v[8..].try_into().ok()?)),
    ))
}

/// Summaries of the batches with base offsets in `[from, to)`, oldest first, from the index
/// alone: 28 bytes a batch instead of the batches themselves.
pub(crate) fn scan_index(db: &DB, id: u64, from: i64, to: i64) -> Result<Vec<BatchSummary>> {
    let cf = db
        .cf_handle(CF_TIME_INDEX)
        .expect("column family created at open");
    let mut opts = ReadOptions::default();
    opts.set_iterate_upper_bound(log_key(id, to.max(from)).to_vec());
    let start = log_key(id, from);
    let mut batches: Vec<BatchSummary> = Vec::new();
    for item in db.iterator_cf_opt(cf, opts, IteratorMode::From(&start, Direction::Forward)) {
        let (key, value) = item.map_err(StorageError::db("scan time index"))?;
        let (_, base_offset) = parse_log_key(&key).ok_or_else(|| corrupt_index(&key))?;
        let (max_timestamp, size) = decode_index(&value).ok_or_else(|| corrupt_index(&key))?;
        if let Some(prev) = batches.last_mut() {
            prev.next_offset = base_offset;
        }
        batches.push(BatchSummary {
            base_offset,
            next_offset: to,
            max_timestamp,
            size,
        });
    }
    Ok(batches)
}

fn corrupt_index(key: &[u8]) -> StorageError {
    StorageError::Corrupt {
        what: "time index",
        detail: format!("entry {:?} has no batch", parse_log_key(key)),
    }
}

/// The leader epoch cache persisted under the log's epoch keys.
fn load_epochs(db: &DB, id: u64) -> Result<LeaderEpochCache> {
    let cf = db
        .cf_handle(CF_LOG_STATE)
        .expect("column family created at open");
    let mut opts = ReadOptions::default();
    opts.set_iterate_upper_bound(state_key(id + 1).to_vec());
    let start = state_key(id);
    let mut entries = Vec::new();
    for item in db.iterator_cf_opt(cf, opts, IteratorMode::From(&start, Direction::Forward)) {
        let (key, value) = item.map_err(StorageError::db("load leader epochs"))?;
        if key.len() == start.len() {
            continue; // the offsets, not an epoch
        }
        let corrupt = || StorageError::Corrupt {
            what: "leader epoch entry",
            detail: format!("log {id}: {key:?}"),
        };
        let (_, epoch) = parse_epoch_key(&key).ok_or_else(corrupt)?;
        let start_offset = i64::from_be_bytes(value.as_ref().try_into().map_err(|_| corrupt())?);
        entries.push(EpochEntry {
            epoch,
            start_offset,
        });
    }
    Ok(LeaderEpochCache::from_entries(entries))
}

fn encode_state(o: &LogOffsets) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&o.log_start_offset.to_be_bytes());
    v[8..].copy_from_slice(&o.high_watermark.to_be_bytes());
    v
}

/// Reads (log start offset, high watermark); a log never written has both at zero.
fn read_state(db: &DB, id: u64) -> Result<(i64, i64)> {
    let cf = db
        .cf_handle(CF_LOG_STATE)
        .expect("column family created at open");
    match db
        .get_cf(cf, state_key(id))
        .map_err(StorageError::db("read log state"))?
    {
        None => Ok((0, 0)),
        Some(v) if v.len() == 16 => Ok((
            i64::from_be_bytes(v[..8].try_into().expect("8 bytes")),
            i64::from_be_bytes(v[8..].try_into().expect("8 bytes")),
        )),
        Some(v) => Err(StorageError::Corrupt {
            what: "log state",
            detail: format!("{} bytes for log {id}", v.len()),
        }),
    }
}

fn first_batch(db: &DB, id: u64, from: i64) -> Result<Option<BatchHeader>> {
    let cf = db.cf_handle(CF_LOG).expect("column family created at open");
    let mut opts = ReadOptions::default();
    opts.set_iterate_upper_bound(log_end_key(id).to_vec());
    let mut iter = db.raw_iterator_cf_opt(cf, opts);
    iter.seek(log_key(id, from));
    iter.status()
        .map_err(StorageError::db("find first batch"))?;
    iter.value()
        .map(BatchHeader::parse)
        .transpose()
        .map_err(|e| StorageError::Corrupt {
            what: "first batch",
            detail: e.to_string(),
        })
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
            .map_err(|e| StorageError::Corrupt {
                what: "last batch",
                detail: e.to_string(),
            }),
    }
}
