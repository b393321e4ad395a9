//! What replication needs of a partition log beyond produce and fetch: appending a leader's
//! batches verbatim (a follower), truncating to the point where a follower's log diverges from
//! its new leader's, advancing the high watermark, and answering OffsetForLeaderEpoch.
//!
//! Each operation is one atomic engine write under the log's append lock, like an append.
//! The decisions (where to truncate, how far the high watermark may go) are the replication
//! runtime's; this module only carries them out durably.

use std::collections::HashMap;

use bytes::Bytes;
use krait_protocol::batch::{self, BatchHeader};

use crate::engine::{Space, WriteSet};
use crate::error::{Result, StorageError};
use crate::keys::{log_end_key, log_key};
use crate::log::{LogOffsets, PartitionLog, encode_index, scan_index};
use crate::producers::{self, BatchMetadata, NO_PRODUCER_ID, ProducerEntry};

impl PartitionLog {
    /// Appends batches exactly as the leader stored them — offsets, leader epochs and all — at
    /// this log's end. They must continue the log: each batch starts at or after the offset
    /// where the previous one (or the log) ended. After it only where the leader's compaction
    /// removed every record of the batches between, as Kafka's followers accept. The high watermark does not move (the leader
    /// says where it is). Producer state and the epoch cache follow the batches, so this replica
    /// can lead later with the same duplicate detection and truncation answers.
    pub fn append_replicated(&self, records: &Bytes) -> Result<LogOffsets> {
        if records.is_empty() {
            return Ok(self.offsets());
        }
        let batches = batch::validate_batches(records).map_err(|e| StorageError::Corrupt {
            what: "replicated batch",
            detail: e.to_string(),
        })?;
        let mut inner = self.lock();
        let mut write = WriteSet::default();
        let mut epochs = inner.epochs.clone();
        let mut updated_producers: HashMap<i64, ProducerEntry> = HashMap::new();
        let mut aborted = Vec::new();
        let (mut next, mut bytes) = (inner.offsets.log_end_offset, 0u64);
        for b in &batches {
            let h = &b.header;
            if h.base_offset < next {
                return Err(StorageError::NotContiguous {
                    expected: next,
                    got: h.base_offset,
                });
            }
            let key = log_key(self.id, h.base_offset);
            write.put(Space::Log, key, &b.bytes);
            write.put(
                Space::TimeIndex,
                key,
                encode_index(h.max_timestamp, b.bytes.len()),
            );
            if let Some(entry) = epochs.assign(h.partition_leader_epoch, h.base_offset) {
                self.put_epoch(&mut write, entry);
            }
            if h.producer_id != NO_PRODUCER_ID {
                let entry = updated_producers.entry(h.producer_id).or_insert_with(|| {
                    inner
                        .producers
                        .get(&h.producer_id)
                        .cloned()
                        .unwrap_or_default()
                });
                if h.is_control() {
                    // The leader checked the marker's epoch; a follower follows it.
                    aborted.extend(crate::log_txn::apply_marker(entry, b, h.base_offset)?);
                } else {
                    producers::record(entry, h.producer_epoch, metadata(h));
                    if h.is_transactional() {
                        crate::txn::on_transactional_batch(entry, h.base_offset);
                    }
                }
            }
            next = h.last_offset() + 1;
            bytes += b.bytes.len() as u64;
        }
        let updated = LogOffsets {
            log_end_offset: next,
            ..inner.offsets
        };
        self.put_state(&mut write, &updated);
        for (producer_id, entry) in &updated_producers {
            write.put(
                Space::Producers,
                log_key(self.id, *producer_id),
                producers::encode(entry),
            );
        }
        for a in &aborted {
            write.put(
                Space::TxnIndex,
                log_key(self.id, a.last_offset),
                crate::txn::encode_aborted(a),
            );
        }
        self.write(write, "append replicated")?;
        inner.offsets = updated;
        inner.size_bytes += bytes;
        inner.producers.extend(updated_producers);
        inner.aborted.extend(aborted);
        inner.epochs = epochs;
        Ok(updated)
    }

    /// Removes every record at or after `offset` (a whole batch if `offset` falls inside one),
    /// with the epochs that began there and the producer batches stored there. The high
    /// watermark never stays above the new log end. Returns the new offsets.
    pub fn truncate_to(&self, offset: i64) -> Result<LogOffsets> {
        let mut inner = self.lock();
        if offset >= inner.offsets.log_end_offset {
            // Nothing to cut, but an epoch begun at the log end holds no records: forget it, or
            // a follower keeps announcing an epoch its new leader never had.
            let end = inner.offsets.log_end_offset;
            let mut epochs = inner.epochs.clone();
            let removed = epochs.truncate_from_end(end);
            if !removed.is_empty() {
                let mut write = WriteSet::default();
                self.rewrite_epochs(&mut write, &removed, None);
                self.write(write, "truncate empty epochs")?;
                inner.epochs = epochs;
            }
            return Ok(inner.offsets);
        }
        let cut = self.batch_boundary_at_or_before(offset.max(inner.offsets.log_start_offset))?;
        let removed_bytes: u64 = scan_index(self.engine.as_ref(), self.id, cut, i64::MAX)?
            .iter()
            .map(|b| b.size)
            .sum();
        let mut write = WriteSet::default();
        let (from, to) = (log_key(self.id, cut), log_end_key(self.id));
        write.delete_range(Space::Log, from, to);
        write.delete_range(Space::TimeIndex, from, to);
        let mut epochs = inner.epochs.clone();
        let removed_epochs = epochs.truncate_from_end(cut);
        self.rewrite_epochs(&mut write, &removed_epochs, None);
        write.delete_range(Space::TxnIndex, from, to);
        let mut producers = inner.producers.clone();
        for (producer_id, entry) in producers.iter_mut() {
            let before = (entry.batches.len(), entry.txn_first_offset);
            entry.batches.retain(|b| b.base_offset < cut);
            // A transaction whose first batch is cut starts again with the leader's batches.
            entry.txn_first_offset = entry.txn_first_offset.filter(|first| *first < cut);
            if (entry.batches.len(), entry.txn_first_offset) != before {
                write.put(
                    Space::Producers,
                    log_key(self.id, *producer_id),
                    producers::encode(entry),
                );
            }
        }
        let updated = LogOffsets {
            log_end_offset: cut,
            high_watermark: inner.offsets.high_watermark.min(cut),
            ..inner.offsets
        };
        self.put_state(&mut write, &updated);
        self.write(write, "truncate")?;
        inner.offsets = updated;
        inner.size_bytes = inner.size_bytes.saturating_sub(removed_bytes);
        inner.epochs = epochs;
        inner.producers = producers;
        inner.aborted.retain(|a| a.last_offset < cut);
        Ok(updated)
    }

    /// Moves the high watermark forward to `high_watermark`, never backwards and never past the
    /// log end. Returns the offsets after the move.
    ///
    /// In memory only: the high watermark reaches the engine with this log's next write (every
    /// write of the log's state carries it) or at [`Self::checkpoint_high_watermark`], as
    /// Kafka checkpoints it every `replica.high.watermark.checkpoint.interval.ms`. A leader
    /// moves it at every follower fetch and a follower at every fetch it applies; written each
    /// time, that was one more write-ahead log entry per fetch on every replica. One found
    /// lower after a crash is recomputed from the replicas, never a lost record.
    pub fn advance_high_watermark(&self, high_watermark: i64) -> Result<LogOffsets> {
        let mut inner = self.lock();
        let target = high_watermark.min(inner.offsets.log_end_offset);
        if target > inner.offsets.high_watermark {
            inner.offsets.high_watermark = target;
        }
        Ok(inner.offsets)
    }

    /// Writes the log's state if its high watermark moved since it was last checkpointed here
    /// (or read at open): whether it wrote. Not fsynced even with --fsync, for the reason
    /// [`Self::advance_high_watermark`] gives.
    pub fn checkpoint_high_watermark(&self) -> Result<bool> {
        let mut inner = self.lock();
        if inner.offsets.high_watermark == inner.checkpointed_high_watermark {
            return Ok(false);
        }
        let mut write = WriteSet::default();
        self.put_state(&mut write, &inner.offsets);
        self.engine
            .write(write, false)
            .map_err(StorageError::db("checkpoint high watermark"))?;
        inner.checkpointed_high_watermark = inner.offsets.high_watermark;
        Ok(true)
    }

    /// Moves the log start offset forward to `offset` (DeleteRecords on a leader; a follower
    /// taking its leader's log start), never past the high watermark. Batches wholly below it
    /// are deleted; a batch it falls inside stays whole, and a read from the new log start
    /// returns it (consumers skip the records before the offset they asked for, as Kafka's
    /// clients do for a batch that starts before it). Returns the offsets after the move.
    pub fn delete_records_before(&self, offset: i64) -> Result<LogOffsets> {
        let mut inner = self.lock();
        let target = offset.min(inner.offsets.high_watermark);
        if target <= inner.offsets.log_start_offset {
            return Ok(inner.offsets);
        }
        let from = self.batch_boundary_at_or_before(inner.offsets.log_start_offset)?;
        let cut = self.batch_boundary_at_or_before(target)?;
        let removed_bytes: u64 = scan_index(self.engine.as_ref(), self.id, from, cut)?
            .iter()
            .map(|b| b.size)
            .sum();
        let mut write = WriteSet::default();
        let (from_key, to_key) = (log_key(self.id, from), log_key(self.id, cut));
        write.delete_range(Space::Log, from_key, to_key);
        write.delete_range(Space::TimeIndex, from_key, to_key);
        self.delete_aborted_before(&inner, &mut write, target);
        let updated = LogOffsets {
            log_start_offset: target,
            ..inner.offsets
        };
        self.put_state(&mut write, &updated);
        let mut epochs = inner.epochs.clone();
        let (removed, moved) = epochs.truncate_from_start(target);
        self.rewrite_epochs(&mut write, &removed, moved);
        self.write(write, "delete records")?;
        inner.forget_aborted_before(target);
        inner.epochs = epochs;
        inner.offsets = updated;
        inner.size_bytes = inner.size_bytes.saturating_sub(removed_bytes);
        Ok(updated)
    }

    /// Empties the log and starts it again at `offset`: a follower whose log ends before its
    /// leader's log start (retention or DeleteRecords removed what it would fetch next) can only
    /// continue from there, as Kafka's `truncateFullyAndStartAt`. Batches, epochs and producer
    /// state go; log start, high watermark and log end become `offset`.
    pub fn truncate_fully_and_start_at(&self, offset: i64) -> Result<LogOffsets> {
        let mut inner = self.lock();
        let mut write = WriteSet::default();
        for space in [Space::Log, Space::TimeIndex, Space::Producers] {
            write.delete_range(space, log_key(self.id, 0), log_end_key(self.id));
        }
        let mut epochs = inner.epochs.clone();
        let removed = epochs.truncate_from_end(i64::MIN);
        self.rewrite_epochs(&mut write, &removed, None);
        let updated = LogOffsets {
            log_start_offset: offset,
            high_watermark: offset,
            log_end_offset: offset,
        };
        self.put_state(&mut write, &updated);
        self.write(write, "truncate fully")?;
        inner.offsets = updated;
        inner.size_bytes = 0;
        inner.epochs = epochs;
        inner.producers.clear();
        inner.cleaner.first_dirty_offset = offset;
        Ok(updated)
    }

    /// Where `epoch` ends in this log (OffsetForLeaderEpoch): the largest epoch known not above
    /// it and the offset where the next one starts, or the log end.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        let inner = self.lock();
        inner
            .epochs
            .end_offset_for(epoch, inner.offsets.log_end_offset)
    }

    /// Starts leader epoch `epoch` at the log end offset, as a new leader does before its first
    /// append (Kafka's rule), so OffsetForLeaderEpoch answers for the epoch at once, even for an
    /// empty log. Nothing happens if the log already knows that epoch or a newer one.
    pub fn become_leader(&self, epoch: i32) -> Result<()> {
        let mut inner = self.lock();
        let mut epochs = inner.epochs.clone();
        let Some(entry) = epochs.assign(epoch, inner.offsets.log_end_offset) else {
            return Ok(());
        };
        let mut write = WriteSet::default();
        self.put_epoch(&mut write, entry);
        self.write(write, "start leader epoch")?;
        inner.epochs = epochs;
        Ok(())
    }

    /// The newest leader epoch among the batches in this log.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.lock().epochs.latest_epoch()
    }

    /// The base offset of the batch containing `offset`, or `offset` if no batch does.
    pub(crate) fn batch_boundary_at_or_before(&self, offset: i64) -> Result<i64> {
        match self.batch_at_or_before(offset, "find truncation point")? {
            Some((base, Ok(h))) if h.last_offset() >= offset => Ok(base),
            Some((_, Err(e))) => Err(StorageError::Corrupt {
                what: "record batch",
                detail: e.to_string(),
            }),
            _ => Ok(offset),
        }
    }
}

fn metadata(h: &BatchHeader) -> BatchMetadata {
    BatchMetadata {
        first_seq: h.base_sequence,
        last_seq: producers::last_seq(h.base_sequence, h.last_offset_delta),
        base_offset: h.base_offset,
        last_offset: h.last_offset(),
    }
}
