//! Log compaction of one partition log: carries out `compaction`'s decisions on stored batches.
//!
//! A pass reads without the append lock (batches below the high watermark and the last batch
//! never change except by retention, DeleteRecords or a follower's truncation, all of which
//! move the log's offsets), builds the offset map from the dirty section, then rewrites the
//! batches from the log start to the end of the pass. Each rewritten batch keeps its base
//! offset and offset range; one whose records are all gone is deleted. Writes go in chunks,
//! each under the append lock after checking that the log still holds the range (a batch below
//! a log start that moved meanwhile is not written back). Offsets never change.
//!
//! Transactions: the pass ends at the last stable offset, deletes the batches of aborted
//! transactions whole, and deletes a marker once its transaction has no data left and its
//! retention has passed, with the marker's aborted-index entry (`compaction` has the rules).

use bytes::Bytes;
use krait_protocol::batch::{BatchHeader, BatchRecords};

use crate::compaction::{
    self, CleanPlan, CompactionConfig, OffsetMap, QuietCheck, RecordFacts, TransactionsSeen,
    Verdict,
};
use crate::engine::{Space, WriteSet};
use crate::error::{Result, StorageError};
use crate::keys::{log_end_key, log_key, parse_log_key};
use crate::log::{PartitionLog, encode_index, scan_index};
use crate::retention::BatchSummary;
use crate::txn::AbortedTxn;

/// Bytes of batches read between two writes of a pass.
const CHUNK_BYTES: u64 = 4 * 1024 * 1024;

/// What one pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CompactionStats {
    /// The offsets the pass covered: `[log start, end)`.
    pub end: i64,
    /// Bytes of batches read (the map's and the rewrite's).
    pub bytes_read: u64,
    /// Bytes of the cleaned range before and after.
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub records_removed: u64,
    pub batches_removed: u64,
}

/// The change a pass makes to one batch.
enum Rewrite {
    Replace(Bytes, i64),
    Delete,
    /// A marker, with its entry in the aborted-transaction index if it has one.
    DeleteMarker,
}

impl PartitionLog {
    /// Runs one compaction pass if one is due at `now_ms`; `throttle` is called with the bytes
    /// read after each batch (the caller bounds the pass's I/O rate by sleeping in it).
    pub fn compact(
        &self,
        now_ms: i64,
        config: &CompactionConfig,
        throttle: &mut dyn FnMut(u64),
    ) -> Result<Option<CompactionStats>> {
        let (offsets, mut state, lso, aborted) = {
            let inner = self.lock();
            let lso = crate::txn::last_stable_offset_of(
                inner.offsets.high_watermark,
                inner.producers.values(),
            );
            (inner.offsets, inner.cleaner, lso, inner.aborted.clone())
        };
        let seen = (offsets.log_start_offset, offsets.log_end_offset, lso);
        if state.is_quiet(seen, now_ms, config.quiet_recheck_ms) {
            return Ok(None);
        }
        state.first_dirty_offset = state.first_dirty_offset.max(offsets.log_start_offset);
        let Some(last_base) = self.last_batch_base()? else {
            return Ok(None);
        };
        // Never past the last stable offset: an open transaction's records may still abort.
        let end_limit = lso.min(last_base);
        let batches = scan_index(
            self.engine.as_ref(),
            self.id,
            offsets.log_start_offset,
            end_limit,
        )?;
        let Some(mut plan) = compaction::plan(&batches, end_limit, state, now_ms, config) else {
            self.lock().cleaner.quiet = Some(QuietCheck {
                offsets: seen,
                at_ms: now_ms,
            });
            return Ok(None);
        };
        let mut stats = CompactionStats::default();
        let map =
            self.build_offset_map(&batches, &aborted, &mut plan, config, &mut stats, throttle)?;
        let mut pass = Pass {
            stats,
            next_tombstone_expiry_ms: i64::MAX,
            pending: Vec::new(),
            pending_bytes: 0,
            aborted,
            transactions: TransactionsSeen::default(),
        };
        for b in batches.iter().take_while(|b| b.base_offset < plan.end) {
            let Some(bytes) = self.stored_batch(b.base_offset)? else {
                continue; // deleted meanwhile by retention or DeleteRecords
            };
            pass.stats.bytes_read += bytes.len() as u64;
            pass.stats.bytes_before += bytes.len() as u64;
            let change = pass.clean_batch(&bytes, &map, now_ms, config)?;
            pass.stats.bytes_after += match &change {
                Some(Rewrite::Replace(new, _)) => new.len() as u64,
                Some(Rewrite::Delete | Rewrite::DeleteMarker) => 0,
                None => bytes.len() as u64,
            };
            if let Some(change) = change {
                pass.pending.push(Pending {
                    base_offset: b.base_offset,
                    original: bytes.clone(),
                    change,
                });
            }
            pass.pending_bytes += bytes.len() as u64;
            throttle(bytes.len() as u64);
            if pass.pending_bytes >= CHUNK_BYTES && !self.flush(&mut pass, plan.end)? {
                return Ok(None);
            }
        }
        if !self.flush(&mut pass, plan.end)? {
            return Ok(None);
        }
        let mut inner = self.lock();
        inner.cleaner.first_dirty_offset = plan.end;
        inner.cleaner.next_tombstone_expiry_ms = pass.next_tombstone_expiry_ms;
        pass.stats.end = plan.end;
        Ok(Some(pass.stats))
    }

    /// The latest offset of each key in `[plan.first_dirty_offset, plan.end)`; the plan's end
    /// moves back to the first batch whose keys would not fit.
    fn build_offset_map(
        &self,
        batches: &[BatchSummary],
        aborted: &[AbortedTxn],
        plan: &mut CleanPlan,
        config: &CompactionConfig,
        stats: &mut CompactionStats,
        throttle: &mut dyn FnMut(u64),
    ) -> Result<OffsetMap> {
        let mut map = OffsetMap::with_limit(config.offset_map_bytes);
        let dirty = batches
            .iter()
            .skip_while(|b| b.base_offset < plan.first_dirty_offset)
            .take_while(|b| b.base_offset < plan.end);
        for b in dirty {
            let Some(bytes) = self.stored_batch(b.base_offset)? else {
                continue;
            };
            stats.bytes_read += bytes.len() as u64;
            throttle(bytes.len() as u64);
            let records = decode(&bytes, config)?;
            // Markers carry no key, and an aborted transaction's records must not displace a
            // committed record of the same key (read-committed consumers skip them).
            if records.header.is_control() || is_aborted(aborted, &records.header) {
                continue;
            }
            let keys: Vec<&[u8]> = records
                .records
                .iter()
                .filter_map(|r| records.key(r))
                .collect();
            let key_bytes = keys.iter().map(|k| k.len()).sum();
            if !map.is_empty() && !map.fits(keys.len(), key_bytes) {
                plan.end = b.base_offset;
                break;
            }
            for r in &records.records {
                if let Some(key) = records.key(r) {
                    map.put(key, b.base_offset + i64::from(r.offset_delta));
                }
            }
        }
        Ok(map)
    }

    /// Writes the pending rewrites under the append lock. False when the log no longer holds
    /// the pass's range (a follower truncated it): the pass stops, and the next starts over.
    fn flush(&self, pass: &mut Pass, end: i64) -> Result<bool> {
        let pending = std::mem::take(&mut pass.pending);
        pass.pending_bytes = 0;
        if pending.is_empty() {
            return Ok(true);
        }
        let mut inner = self.lock();
        if inner.offsets.log_end_offset < end {
            return Ok(false);
        }
        let mut write = WriteSet::default();
        let mut freed = 0u64;
        let mut markers = Vec::new();
        for Pending {
            base_offset,
            original,
            change,
        } in pending
        {
            // Only a batch still stored as it was read is replaced: not one that retention or
            // DeleteRecords removed meanwhile, nor one a follower truncated and fetched again.
            if base_offset < inner.offsets.log_start_offset
                || self.stored_batch(base_offset)?.as_ref() != Some(&original)
            {
                continue;
            }
            let size = original.len() as u64;
            let key = log_key(self.id, base_offset);
            match change {
                Rewrite::Replace(bytes, max_timestamp) => {
                    freed += size.saturating_sub(bytes.len() as u64);
                    write.put(
                        Space::TimeIndex,
                        key,
                        encode_index(max_timestamp, bytes.len()),
                    );
                    write.put(Space::Log, key, &bytes);
                }
                Rewrite::Delete => {
                    freed += size;
                    write.delete(Space::Log, key);
                    write.delete(Space::TimeIndex, key);
                }
                Rewrite::DeleteMarker => {
                    freed += size;
                    write.delete(Space::Log, key);
                    write.delete(Space::TimeIndex, key);
                    // An ABORT marker's index entry is keyed by the marker's offset.
                    write.delete(Space::TxnIndex, key);
                    markers.push(base_offset);
                }
            }
        }
        self.write(write, "compact")?;
        inner.aborted.retain(|a| !markers.contains(&a.last_offset));
        inner.size_bytes = inner.size_bytes.saturating_sub(freed);
        Ok(true)
    }

    fn stored_batch(&self, base_offset: i64) -> Result<Option<Bytes>> {
        Ok(self
            .engine
            .get(Space::Log, &log_key(self.id, base_offset))
            .map_err(StorageError::db("read batch to compact"))?
            .map(Bytes::from))
    }

    /// The base offset of the log's last batch.
    fn last_batch_base(&self) -> Result<Option<i64>> {
        let last = self
            .engine
            .last(
                Space::Log,
                &log_key(self.id, 0),
                Some(&log_end_key(self.id)),
            )
            .map_err(StorageError::db("find last batch"))?;
        Ok(last.and_then(|(key, _)| parse_log_key(&key).map(|(_, base)| base)))
    }
}

/// A pass in progress: its figures and the rewrites not yet written.
struct Pass {
    stats: CompactionStats,
    next_tombstone_expiry_ms: i64,
    pending: Vec<Pending>,
    pending_bytes: u64,
    /// The aborted-transaction index as the pass began.
    aborted: Vec<AbortedTxn>,
    transactions: TransactionsSeen,
}

/// A rewrite waiting for the next write, with the batch as it was read.
struct Pending {
    base_offset: i64,
    original: Bytes,
    change: Rewrite,
}

impl Pass {
    /// The rewrite of one batch, `None` when it keeps every record.
    fn clean_batch(
        &mut self,
        bytes: &Bytes,
        map: &OffsetMap,
        now_ms: i64,
        config: &CompactionConfig,
    ) -> Result<Option<Rewrite>> {
        let h = BatchHeader::parse(bytes).map_err(corrupt)?;
        if h.is_control() {
            let verdict = self.transactions.marker(
                h.producer_id,
                h.max_timestamp,
                now_ms,
                config.delete_retention_ms,
            );
            return Ok(self.removed_whole(&h, verdict, Rewrite::DeleteMarker));
        }
        if is_aborted(&self.aborted, &h) {
            self.transactions.data_batch(h.producer_id, false);
            return Ok(self.removed_whole(&h, Verdict::Remove, Rewrite::Delete));
        }
        let change = self.clean_records(bytes, h, map, now_ms, config)?;
        if h.is_transactional() {
            let kept = !matches!(change, Some(Rewrite::Delete));
            self.transactions.data_batch(h.producer_id, kept);
        }
        Ok(change)
    }

    /// The rewrite of a data batch by its records' verdicts.
    fn clean_records(
        &mut self,
        bytes: &Bytes,
        h: BatchHeader,
        map: &OffsetMap,
        now_ms: i64,
        config: &CompactionConfig,
    ) -> Result<Option<Rewrite>> {
        let records = decode(bytes, config)?;
        let keep: Vec<bool> = records
            .records
            .iter()
            .map(|r| {
                let facts = RecordFacts {
                    offset: h.base_offset + i64::from(r.offset_delta),
                    key: records.key(r),
                    null_value: r.null_value,
                    timestamp: if r.timestamp >= 0 {
                        r.timestamp
                    } else {
                        h.max_timestamp
                    },
                };
                match compaction::verdict(facts, map, now_ms, config.delete_retention_ms) {
                    Verdict::Keep => true,
                    Verdict::KeepTombstoneUntil(t) => {
                        self.next_tombstone_expiry_ms = self.next_tombstone_expiry_ms.min(t);
                        true
                    }
                    Verdict::Remove => false,
                }
            })
            .collect();
        let removed = keep.iter().filter(|k| !**k).count() as u64;
        if removed == 0 {
            return Ok(None);
        }
        self.stats.records_removed += removed;
        let rebuilt = records.retain(bytes, &keep).map_err(corrupt)?;
        Ok(Some(match rebuilt {
            Some(new) => {
                let max_timestamp = BatchHeader::parse(&new).map_err(corrupt)?.max_timestamp;
                Rewrite::Replace(new, max_timestamp)
            }
            None => {
                self.stats.batches_removed += 1;
                Rewrite::Delete
            }
        }))
    }

    /// The rewrite of a batch that is kept or removed whole by `verdict`.
    fn removed_whole(
        &mut self,
        h: &BatchHeader,
        verdict: Verdict,
        delete: Rewrite,
    ) -> Option<Rewrite> {
        match verdict {
            Verdict::Keep => None,
            Verdict::KeepTombstoneUntil(t) => {
                self.next_tombstone_expiry_ms = self.next_tombstone_expiry_ms.min(t);
                None
            }
            Verdict::Remove => {
                self.stats.records_removed += h.records_count.max(0) as u64;
                self.stats.batches_removed += 1;
                Some(delete)
            }
        }
    }
}

/// Whether the batch with header `h` belongs to a transaction aborted on this partition.
fn is_aborted(index: &[AbortedTxn], h: &BatchHeader) -> bool {
    h.is_transactional()
        && !h.is_control()
        && index.iter().any(|a| {
            a.producer_id == h.producer_id
                && (a.first_offset..=a.last_offset).contains(&h.base_offset)
        })
}

fn decode(bytes: &[u8], config: &CompactionConfig) -> Result<BatchRecords> {
    BatchRecords::decode(bytes, config.max_uncompressed).map_err(corrupt)
}

fn corrupt(e: krait_protocol::batch::BatchError) -> StorageError {
    StorageError::Corrupt {
        what: "record batch to compact",
        detail: e.to_string(),
    }
}
