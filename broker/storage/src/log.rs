//! One partition's log: append validated batches at the next offsets, read from any offset.
//!
//! Layout: `log` holds each batch under (log id, base offset) exactly as the client sent it,
//! except for the base offset and leader epoch the broker assigns; `time_index` holds each
//! batch's max timestamp under the same key; `log_state` holds the log start offset and high
//! watermark, and the leader epoch cache (see `epochs`); `producers` holds idempotent producer
//! state (see `producers`). One append is one atomic engine write of all of them, so after a
//! crash the log, its index, its state, its epochs and its producer sequences always agree.
//!
//! The high watermark trails the log end offset on a replicated partition: the replication
//! runtime advances it as followers catch up. Consumers read below it; followers (see
//! `replica`) read up to the log end.

use krait_sync::MutexExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use krait_protocol::batch::{self, BatchError, BatchHeader, ValidBatch};

use crate::compaction::CleanerState;
use crate::engine::{Engine, Space, WriteSet};
use crate::epochs::{EpochEntry, LeaderEpochCache};
use crate::error::{Result, StorageError};
use crate::keys::{epoch_key, log_end_key, log_key, parse_epoch_key, parse_log_key, state_key};
use crate::producers::{self, BatchMetadata, NO_PRODUCER_ID, ProducerEntry, SequenceCheck};
use crate::retention::{self, BatchSummary, RetentionLimits, RetentionPlan};
use crate::store::StoreOptions;
use crate::txn::AbortedTxn;

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
    pub(crate) engine: Arc<dyn Engine>,
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
    /// Where log compaction stands (see `cleaner`).
    pub(crate) cleaner: CleanerState,
    /// Transactions aborted on this partition, ordered by last offset (see `txn`).
    pub(crate) aborted: Vec<AbortedTxn>,
    /// The high watermark as the last checkpoint wrote it (or as read at open): other writes
    /// of the log's state carry it too, so the engine may hold a later one.
    pub(crate) checkpointed_high_watermark: i64,
}

impl LogInner {
    /// Drops the aborted transactions that ended below `log_start`.
    pub(crate) fn forget_aborted_before(&mut self, log_start: i64) {
        self.aborted.retain(|a| a.last_offset >= log_start);
    }
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
    pub(crate) fn open(engine: Arc<dyn Engine>, id: u64, options: StoreOptions) -> Result<Self> {
        let db = engine.as_ref();
        let (log_start_offset, high_watermark) = read_state(db, id)?;
        let log_end_offset = match last_batch(db, id)? {
            Some(h) => h.last_offset() + 1,
            None => log_start_offset,
        };
        // The persisted high watermark is written with the log's state, which every write that
        // shortens the log writes too, so it is never past the log end; the clamp only guards
        // against a log truncated since.
        let offsets = LogOffsets {
            log_start_offset,
            high_watermark: high_watermark.clamp(log_start_offset, log_end_offset),
            log_end_offset,
        };
        let mut epochs = load_epochs(db, id)?;
        if epochs.latest_epoch().is_none() && log_end_offset > log_start_offset {
            // Written before the log kept an epoch cache: every batch carries the single-broker
            // epoch of the first one. Held in memory only; the next new epoch is persisted.
            if let Some(h) = first_batch(db, id, log_start_offset)? {
                epochs.assign(h.partition_leader_epoch, log_start_offset);
            }
        }
        let producers = load_producers(db, id)?;
        let aborted = crate::log_txn::load_aborted(db, id)?;
        let size_bytes = scan_index(db, id, log_start_offset, i64::MAX)?
            .iter()
            .map(|b| b.size)
            .sum();
        Ok(Self {
            id,
            engine,
            options,
            inner: Mutex::new(LogInner {
                offsets,
                size_bytes,
                producers,
                epochs,
                cleaner: CleanerState {
                    first_dirty_offset: log_start_offset,
                    ..CleanerState::default()
                },
                aborted,
                checkpointed_high_watermark: offsets.high_watermark,
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
        self.inner.lock_unpoisoned()
    }

    /// Appends `batches` at the log end offset, stamping each with its base offset and
    /// `leader_epoch`, and returns once the write is in the engine (in RocksDB's write-ahead log, fsynced if configured).
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
            aborted: Vec::new(),
            write: WriteSet::default(),
        };
        for b in batches {
            let h = &b.header;
            let mut producer = None;
            if h.is_control() {
                let entry = plan
                    .producers
                    .get(&h.producer_id)
                    .or_else(|| inner.producers.get(&h.producer_id));
                let mut entry = crate::log_txn::check_marker(entry, h)?;
                let aborted = crate::log_txn::apply_marker(&mut entry, b, plan.next)?;
                plan.aborted.extend(aborted);
                plan.producers.insert(h.producer_id, entry);
            } else if h.producer_id != NO_PRODUCER_ID {
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
                if h.is_transactional() {
                    crate::txn::on_transactional_batch(&mut entry, base);
                }
                plan.producers.insert(h.producer_id, entry);
            }
            // The one copy Krait makes of a batch it stores: the request's bytes with this
            // log's offset and epoch; the write takes it as it is.
            let mut stored = b.bytes.to_vec();
            batch::assign(&mut stored, base, leader_epoch);
            let max_timestamp = match options.log_append_time {
                Some(now) => {
                    batch::set_log_append_time(&mut stored, now);
                    now
                }
                None => h.max_timestamp,
            };
            let key = log_key(self.id, base);
            plan.write.put_owned(Space::Log, key.to_vec(), stored);
            plan.write.put(
                Space::TimeIndex,
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
            plan.write.put(
                Space::Producers,
                log_key(self.id, *producer_id),
                producers::encode(entry),
            );
        }
        for a in &plan.aborted {
            plan.write.put(
                Space::TxnIndex,
                log_key(self.id, a.last_offset),
                crate::txn::encode_aborted(a),
            );
        }
        self.write(plan.write, "append")?;
        inner.offsets = updated;
        inner.size_bytes += plan.bytes;
        inner.producers.extend(plan.producers);
        inner.aborted.extend(plan.aborted);
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

    pub(crate) fn read_below(
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
        let start = self.first_batch_for(offset, offsets.log_start_offset)?;
        self.engine
            .scan(
                Space::Log,
                &log_key(self.id, start),
                Some(&log_key(self.id, limit)),
                &mut |_, batch| {
                    if !records.is_empty() && records.len() + batch.len() > max_bytes {
                        return false;
                    }
                    records.extend_from_slice(batch);
                    true
                },
            )
            .map_err(StorageError::db("read"))?;
        Ok(ReadResult {
            records: records.freeze(),
            offsets,
        })
    }

    /// The base offset of the first batch a read from `offset` returns: the batch containing
    /// `offset`, the next one when `offset` falls after a batch's last record, or the log start
    /// when nothing is stored at or below `offset`.
    fn first_batch_for(&self, offset: i64, log_start_offset: i64) -> Result<i64> {
        Ok(match self.batch_at_or_before(offset, "read")? {
            None => log_start_offset,
            Some((base, Ok(h))) if h.last_offset() < offset => base + 1,
            Some((base, _)) => base,
        })
    }

    /// The base offset and header of the last batch starting at or before `offset`: the one
    /// containing it, unless `offset` is past that batch's end.
    pub(crate) fn batch_at_or_before(
        &self,
        offset: i64,
        step: &'static str,
    ) -> Result<Option<(i64, std::result::Result<BatchHeader, BatchError>)>> {
        let mut found = None;
        self.engine
            .floor(
                Space::Log,
                &log_key(self.id, 0),
                &log_key(self.id, offset),
                &mut |key, batch| {
                    found = parse_log_key(key).map(|(_, base)| (base, BatchHeader::parse(batch)));
                },
            )
            .map_err(StorageError::db(step))?;
        Ok(found)
    }

    /// The first record whose timestamp is at or after `timestamp`, as (offset, timestamp).
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>> {
        let offsets = self.offsets();
        let end = log_key(self.id, offsets.high_watermark);
        let mut from = offsets.log_start_offset;
        // The index names the first batch whose newest record reaches the target; that batch
        // is decoded to find the record. A batch whose records all fall short (its header
        // claimed more) sends the search on to the next candidate.
        while let Some(base) = self.first_indexed_at_or_after(from, &end, timestamp)? {
            let found = self.first_record_in_batch_at_or_after(base, timestamp)?;
            if found.is_some() {
                return Ok(found);
            }
            from = base + 1;
        }
        Ok(None)
    }

    /// The offset and timestamp of the record with the largest timestamp below the high
    /// watermark (ListOffsets `MAX_TIMESTAMP`, KIP-734); the first such record when several
    /// share it. It scans the time index: an admin query, not a hot path.
    pub fn offset_of_max_timestamp(&self) -> Result<Option<(i64, i64)>> {
        let offsets = self.offsets();
        let end = log_key(self.id, offsets.high_watermark);
        let mut best: Result<Option<(i64, i64)>> = Ok(None);
        self.engine
            .scan(
                Space::TimeIndex,
                &log_key(self.id, offsets.log_start_offset),
                Some(&end),
                &mut |key, value| match (decode_index(value), parse_log_key(key)) {
                    (Some((max_ts, _)), Some((_, base))) => {
                        if let Ok(b) = &mut best
                            && b.is_none_or(|(ts, _)| max_ts > ts)
                        {
                            *b = Some((max_ts, base));
                        }
                        true
                    }
                    _ => {
                        best = Err(corrupt_index(key));
                        false
                    }
                },
            )
            .map_err(StorageError::db("scan time index"))?;
        let Some((max_ts, base)) = best? else {
            return Ok(None);
        };
        if max_ts < 0 {
            return Ok(None);
        }
        self.first_record_in_batch_at_or_after(base, max_ts)
    }

    /// The first record of the indexed batch at `base` whose timestamp reaches `timestamp`.
    fn first_record_in_batch_at_or_after(
        &self,
        base: i64,
        timestamp: i64,
    ) -> Result<Option<(i64, i64)>> {
        let key = log_key(self.id, base);
        let Some(bytes) = self
            .engine
            .get(Space::Log, &key)
            .map_err(StorageError::db("read batch"))?
        else {
            return Err(corrupt_index(&key));
        };
        batch::first_record_at_or_after(&Bytes::from(bytes), timestamp).map_err(|e| {
            StorageError::Corrupt {
                what: "record batch",
                detail: e.to_string(),
            }
        })
    }

    /// The base offset of the first batch at or after `from` (below `end`) whose indexed max
    /// timestamp reaches `timestamp`.
    fn first_indexed_at_or_after(
        &self,
        from: i64,
        end: &[u8],
        timestamp: i64,
    ) -> Result<Option<i64>> {
        let mut found = Ok(None);
        self.engine
            .scan(
                Space::TimeIndex,
                &log_key(self.id, from),
                Some(end),
                &mut |key, value| match decode_index(value) {
                    Some((max_ts, _)) if max_ts < timestamp => true,
                    Some(_) => {
                        found = parse_log_key(key)
                            .map(|(_, base)| Some(base))
                            .ok_or_else(|| corrupt_index(key));
                        false
                    }
                    None => {
                        found = Err(corrupt_index(key));
                        false
                    }
                },
            )
            .map_err(StorageError::db("scan time index"))?;
        found
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
        // DeleteRecords may have left the log start inside a batch: that batch is the first.
        let first = self.batch_boundary_at_or_before(offsets.log_start_offset)?;
        let batches = scan_index(self.engine.as_ref(), self.id, first, offsets.high_watermark)?;
        let Some(plan) = retention::plan(batches, size, now_ms, limits) else {
            return Ok(None);
        };
        let mut inner = self.lock();
        if plan.new_log_start_offset <= inner.offsets.log_start_offset {
            return Ok(None); // DeleteRecords went further meanwhile
        }
        let updated = LogOffsets {
            log_start_offset: plan.new_log_start_offset,
            ..inner.offsets
        };
        let mut write = WriteSet::default();
        let (from, to) = (
            log_key(self.id, first),
            log_key(self.id, plan.new_log_start_offset),
        );
        write.delete_range(Space::Log, from, to);
        write.delete_range(Space::TimeIndex, from, to);
        self.delete_aborted_before(&inner, &mut write, plan.new_log_start_offset);
        self.put_state(&mut write, &updated);
        let mut epochs = inner.epochs.clone();
        let (removed, moved) = epochs.truncate_from_start(plan.new_log_start_offset);
        self.rewrite_epochs(&mut write, &removed, moved);
        self.write(write, "delete by retention")?;
        inner.forget_aborted_before(plan.new_log_start_offset);
        inner.epochs = epochs;
        inner.offsets.log_start_offset = plan.new_log_start_offset;
        inner.size_bytes = inner.size_bytes.saturating_sub(plan.bytes);
        Ok(Some(plan))
    }

    /// Deletes, as part of `write`, the aborted-index entries of transactions that ended below
    /// `log_start`: their data and markers go with the batches below it. The caller drops them
    /// from memory with `LogInner::forget_aborted_before` once `write` is written.
    pub(crate) fn delete_aborted_before(
        &self,
        inner: &LogInner,
        write: &mut WriteSet,
        log_start: i64,
    ) {
        if inner
            .aborted
            .first()
            .is_some_and(|a| a.last_offset < log_start)
        {
            write.delete_range(
                Space::TxnIndex,
                log_key(self.id, 0),
                log_key(self.id, log_start),
            );
        }
    }

    /// Deletes every batch, index entry and the state of this log, as part of `write`.
    pub(crate) fn delete_all(id: u64, write: &mut WriteSet) {
        for space in [
            Space::Log,
            Space::TimeIndex,
            Space::Producers,
            Space::TxnIndex,
        ] {
            write.delete_range(space, log_key(id, 0), log_end_key(id));
        }
        // The state key and the epoch keys of a log share its 8-byte prefix.
        write.delete_range(Space::LogState, state_key(id), state_key(id + 1));
    }

    /// Writes `write` atomically, fsynced when the store is configured to.
    pub(crate) fn write(&self, write: WriteSet, step: &'static str) -> Result<()> {
        self.engine
            .write(write, self.options.sync_writes)
            .map_err(StorageError::db(step))
    }

    /// Adds the log's offsets (log start, high watermark) to `write`.
    pub(crate) fn put_state(&self, write: &mut WriteSet, offsets: &LogOffsets) {
        write.put(Space::LogState, state_key(self.id), encode_state(offsets));
    }

    /// Adds a leader epoch cache entry to `write`.
    pub(crate) fn put_epoch(&self, write: &mut WriteSet, entry: EpochEntry) {
        write.put(
            Space::LogState,
            epoch_key(self.id, entry.epoch),
            entry.start_offset.to_be_bytes(),
        );
    }

    /// Deletes the `removed` epochs and writes `changed` in `write`.
    pub(crate) fn rewrite_epochs(
        &self,
        write: &mut WriteSet,
        removed: &[i32],
        changed: Option<EpochEntry>,
    ) {
        for epoch in removed {
            write.delete(Space::LogState, epoch_key(self.id, *epoch));
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
    /// Transactions this append's ABORT markers end.
    aborted: Vec<AbortedTxn>,
    write: WriteSet,
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

fn load_producers(db: &dyn Engine, id: u64) -> Result<HashMap<i64, ProducerEntry>> {
    let mut producers = HashMap::new();
    let mut corrupt = None;
    db.scan(
        Space::Producers,
        &log_key(id, 0),
        Some(&log_end_key(id)),
        &mut |key, value| {
            match parse_log_key(key).zip(producers::decode(value)) {
                Some(((_, producer_id), entry)) => {
                    producers.insert(producer_id, entry);
                }
                None => corrupt = Some(corrupt_producer(key)),
            }
            corrupt.is_none()
        },
    )
    .map_err(StorageError::db("load producer state"))?;
    corrupt.map_or(Ok(producers), Err)
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

impl PartitionLog {
    /// The max timestamp of the batch at `base_offset`, from the time index; `None` when no
    /// batch starts there (any more).
    pub(crate) fn batch_max_timestamp(&self, base_offset: i64) -> Result<Option<i64>> {
        let key = log_key(self.id, base_offset);
        let value = self
            .engine
            .get(Space::TimeIndex, &key)
            .map_err(StorageError::db("read time index"))?;
        match value {
            None => Ok(None),
            Some(v) => decode_index(&v)
                .map(|(ts, _)| Some(ts))
                .ok_or_else(|| corrupt_index(&key)),
        }
    }
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
pub(crate) fn scan_index(
    db: &dyn Engine,
    id: u64,
    from: i64,
    to: i64,
) -> Result<Vec<BatchSummary>> {
    let mut batches: Vec<BatchSummary> = Vec::new();
    let mut corrupt = None;
    db.scan(
        Space::TimeIndex,
        &log_key(id, from),
        Some(&log_key(id, to.max(from))),
        &mut |key, value| {
            let Some(((_, base_offset), (max_timestamp, size))) =
                parse_log_key(key).zip(decode_index(value))
            else {
                corrupt = Some(corrupt_index(key));
                return false;
            };
            if let Some(prev) = batches.last_mut() {
                prev.next_offset = base_offset;
            }
            batches.push(BatchSummary {
                base_offset,
                next_offset: to,
                max_timestamp,
                size,
            });
            true
        },
    )
    .map_err(StorageError::db("scan time index"))?;
    corrupt.map_or(Ok(batches), Err)
}

fn corrupt_index(key: &[u8]) -> StorageError {
    StorageError::Corrupt {
        what: "time index",
        detail: format!("entry {:?} has no batch", parse_log_key(key)),
    }
}

/// The leader epoch cache persisted under the log's epoch keys.
fn load_epochs(db: &dyn Engine, id: u64) -> Result<LeaderEpochCache> {
    let start = state_key(id);
    let mut entries = Vec::new();
    let mut corrupt = None;
    db.scan(
        Space::LogState,
        &start,
        Some(&state_key(id + 1)),
        &mut |key, value| {
            if key.len() == start.len() {
                return true; // the offsets, not an epoch
            }
            let entry = parse_epoch_key(key).zip(<[u8; 8]>::try_from(value).ok());
            match entry {
                Some(((_, epoch), offset)) => entries.push(EpochEntry {
                    epoch,
                    start_offset: i64::from_be_bytes(offset),
                }),
                None => {
                    corrupt = Some(StorageError::Corrupt {
                        what: "leader epoch entry",
                        detail: format!("log {id}: {key:?}"),
                    })
                }
            }
            corrupt.is_none()
        },
    )
    .map_err(StorageError::db("load leader epochs"))?;
    match corrupt {
        Some(e) => Err(e),
        None => Ok(LeaderEpochCache::from_entries(entries)),
    }
}

fn encode_state(o: &LogOffsets) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&o.log_start_offset.to_be_bytes());
    v[8..].copy_from_slice(&o.high_watermark.to_be_bytes());
    v
}

/// Reads (log start offset, high watermark); a log never written has both at zero.
fn read_state(db: &dyn Engine, id: u64) -> Result<(i64, i64)> {
    match db
        .get(Space::LogState, &state_key(id))
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

fn first_batch(db: &dyn Engine, id: u64, from: i64) -> Result<Option<BatchHeader>> {
    let mut first = None;
    db.scan(
        Space::Log,
        &log_key(id, from),
        Some(&log_end_key(id)),
        &mut |_, batch| {
            first = Some(BatchHeader::parse(batch));
            false
        },
    )
    .map_err(StorageError::db("find first batch"))?;
    first.transpose().map_err(|e| StorageError::Corrupt {
        what: "first batch",
        detail: e.to_string(),
    })
}

fn last_batch(db: &dyn Engine, id: u64) -> Result<Option<BatchHeader>> {
    let last = db
        .last(Space::Log, &log_key(id, 0), Some(&log_end_key(id)))
        .map_err(StorageError::db("find last batch"))?;
    last.map(|(_, batch)| BatchHeader::parse(&batch))
        .transpose()
        .map_err(|e| StorageError::Corrupt {
            what: "last batch",
            detail: e.to_string(),
        })
}
