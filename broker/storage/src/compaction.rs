//! Log compaction's decisions. Pure: which part of a log is cleanable and due, the map of each
//! key's latest offset, and whether a record survives.
//!
//! Kafka's rules, applied to batches instead of segments:
//! - The active segment's equivalent is the log's last batch and everything at or above the
//!   high watermark: never cleaned, so the log end offset and what followers have not yet
//!   acknowledged never change under compaction.
//! - A batch whose newest record is younger than `min.compaction.lag.ms` is not cleanable, nor
//!   any batch after it.
//! - The cleaner remembers where its last pass ended (the first dirty offset). A log is cleaned
//!   when its dirty share of bytes reaches `min.cleanable.dirty.ratio`, when its oldest dirty
//!   batch is older than `max.compaction.lag.ms`, or when a tombstone it kept has reached
//!   `delete.retention.ms`.
//! - A keyed record survives unless a later record with its key exists in the dirty section; a
//!   surviving tombstone (null value) is dropped once its timestamp is `delete.retention.ms`
//!   old. Kafka 2.8+ stamps a "delete horizon" into a batch when it first cleans it; Krait
//!   counts from the record's own timestamp instead (the batch's max timestamp when the record
//!   has none), which is what Kafka's older cleaner did with a segment's modification time.
//!   A tombstone with no timestamp at all is kept.
//! - Records without a key are kept (Kafka refuses them in compacted topics at produce).
//! - Transactions, as Kafka's cleaner treats them: a batch of an aborted transaction goes
//!   whole, and never enters the offset map. A marker (a COMMIT or ABORT control batch) stays
//!   while any data batch of its transaction is still in the log, so data and marker always go
//!   in different passes; once none is left it is kept like a tombstone, `delete.retention.ms`
//!   from its timestamp, so a read-committed consumer that saw the data also sees the marker
//!   that ends it. An ABORT marker's entry in the aborted-transaction index goes with it.

use std::collections::HashMap;

use crate::retention::BatchSummary;

/// A topic's compaction settings (Kafka's names), plus the broker's bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompactionConfig {
    pub delete_retention_ms: i64,
    pub min_compaction_lag_ms: i64,
    pub max_compaction_lag_ms: i64,
    pub min_cleanable_dirty_ratio: f64,
    /// Bytes of keys the offset map may hold (`log.cleaner.dedupe.buffer.size`); a pass that
    /// would need more ends earlier and the next pass goes on from there.
    pub offset_map_bytes: usize,
    /// The decompression bound of one batch.
    pub max_uncompressed: usize,
    /// How long a log that has not changed since a check found nothing due goes unchecked
    /// (the time-driven triggers, `max.compaction.lag.ms` and `min.compaction.lag.ms`, are
    /// noticed this late at most; a kept tombstone's expiry is not).
    pub quiet_recheck_ms: i64,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        Self {
            delete_retention_ms: 86_400_000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_dirty_ratio: 0.5,
            offset_map_bytes: 128 * 1024 * 1024,
            max_uncompressed: krait_protocol::batch::MAX_UNCOMPRESSED_BATCH_BYTES,
            quiet_recheck_ms: 300_000,
        }
    }
}

/// What the cleaner remembers of a log between passes (in memory: after a restart the whole
/// log counts as dirty, which costs one pass, never a record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanerState {
    /// Offsets below this have been cleaned against every key seen up to it.
    pub first_dirty_offset: i64,
    /// When the earliest tombstone the last pass kept may go (`i64::MAX`: none kept).
    pub next_tombstone_expiry_ms: i64,
    /// The last check that found nothing due, so that an unchanged log is not scanned again
    /// at every check (the cleaner looks every `log.cleaner.backoff.ms`).
    pub quiet: Option<QuietCheck>,
}

impl Default for CleanerState {
    fn default() -> Self {
        Self {
            first_dirty_offset: 0,
            next_tombstone_expiry_ms: i64::MAX,
            quiet: None,
        }
    }
}

/// A check that found no pass due: the log as it was then, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietCheck {
    /// Log start, log end and last stable offset at the check: any change makes the log due
    /// for a new look.
    pub offsets: (i64, i64, i64),
    pub at_ms: i64,
}

impl CleanerState {
    /// Whether a check at `now_ms` can be skipped: nothing moved since a check found nothing
    /// due, that was less than `quiet_recheck_ms` ago, and no kept tombstone has expired.
    pub fn is_quiet(&self, offsets: (i64, i64, i64), now_ms: i64, quiet_recheck_ms: i64) -> bool {
        self.quiet.is_some_and(|q| {
            q.offsets == offsets
                && now_ms < q.at_ms.saturating_add(quiet_recheck_ms)
                && now_ms < self.next_tombstone_expiry_ms
        })
    }
}

/// The range a pass cleans: batches with base offsets in `[log start, end)`, whose keys in
/// `[first_dirty_offset, end)` build the offset map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanPlan {
    pub first_dirty_offset: i64,
    pub end: i64,
    pub dirty_bytes: u64,
    pub clean_bytes: u64,
}

/// Decides whether a pass is due and over which range. `batches` are the log's batches below
/// the high watermark and the last batch, oldest first; `end_limit` is where they stop.
pub fn plan(
    batches: &[BatchSummary],
    end_limit: i64,
    state: CleanerState,
    now_ms: i64,
    config: &CompactionConfig,
) -> Option<CleanPlan> {
    let lag_cut = now_ms.saturating_sub(config.min_compaction_lag_ms.max(0));
    let cleanable: Vec<&BatchSummary> = batches
        .iter()
        .take_while(|b| config.min_compaction_lag_ms <= 0 || b.max_timestamp <= lag_cut)
        .collect();
    let end = match batches.get(cleanable.len()) {
        Some(young) => young.base_offset,
        None => end_limit,
    };
    let first_dirty = state.first_dirty_offset.min(end);
    let (mut dirty, mut clean, mut oldest_dirty) = (0u64, 0u64, None);
    for b in &cleanable {
        if b.base_offset >= first_dirty {
            dirty += b.size;
            oldest_dirty.get_or_insert(b.max_timestamp);
        } else {
            clean += b.size;
        }
    }
    let ratio_due =
        dirty > 0 && dirty as f64 / (dirty + clean) as f64 >= config.min_cleanable_dirty_ratio;
    let lag_due = oldest_dirty.is_some_and(|ts| {
        config.max_compaction_lag_ms >= 0
            && ts >= 0
            && ts < now_ms.saturating_sub(config.max_compaction_lag_ms)
    });
    let tombstones_due = clean > 0 && now_ms >= state.next_tombstone_expiry_ms;
    (ratio_due || lag_due || tombstones_due).then_some(CleanPlan {
        first_dirty_offset: first_dirty,
        end,
        dirty_bytes: dirty,
        clean_bytes: clean,
    })
}

/// The latest offset of each key in the dirty section, within a bound on the keys' bytes.
#[derive(Debug, Default)]
pub struct OffsetMap {
    latest: HashMap<Vec<u8>, i64>,
    bytes: usize,
    limit: usize,
}

/// What a map entry costs beyond its key bytes (hash table slot, vector header, offset).
const ENTRY_OVERHEAD: usize = 48;

impl OffsetMap {
    pub fn with_limit(limit: usize) -> Self {
        Self {
            limit,
            ..Self::default()
        }
    }

    /// Whether `keys` more keys of `bytes` total would still fit.
    pub fn fits(&self, keys: usize, bytes: usize) -> bool {
        self.bytes + bytes + keys * ENTRY_OVERHEAD <= self.limit
    }

    /// Records that `key` occurs at `offset` (offsets arrive in increasing order).
    pub fn put(&mut self, key: &[u8], offset: i64) {
        match self.latest.get_mut(key) {
            Some(latest) => *latest = offset,
            None => {
                self.bytes += key.len() + ENTRY_OVERHEAD;
                self.latest.insert(key.to_vec(), offset);
            }
        }
    }

    pub fn latest(&self, key: &[u8]) -> Option<i64> {
        self.latest.get(key).copied()
    }

    pub fn len(&self) -> usize {
        self.latest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }
}

/// One record as the retention decision sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordFacts<'a> {
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub null_value: bool,
    /// The record's timestamp, or its batch's max timestamp when it has none (-1 if neither).
    pub timestamp: i64,
}

/// What the cleaner does with one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    /// A tombstone kept until this time (ms).
    KeepTombstoneUntil(i64),
    Remove,
}

/// Whether a record survives a pass whose dirty keys are in `map`, at `now_ms`.
pub fn verdict(
    record: RecordFacts<'_>,
    map: &OffsetMap,
    now_ms: i64,
    delete_retention_ms: i64,
) -> Verdict {
    let Some(key) = record.key else {
        return Verdict::Keep;
    };
    if map.latest(key).is_some_and(|latest| record.offset < latest) {
        return Verdict::Remove;
    }
    if !record.null_value {
        return Verdict::Keep;
    }
    if record.timestamp < 0 {
        return Verdict::KeepTombstoneUntil(i64::MAX);
    }
    let expiry = record.timestamp.saturating_add(delete_retention_ms.max(0));
    if now_ms >= expiry {
        Verdict::Remove
    } else {
        Verdict::KeepTombstoneUntil(expiry)
    }
}

/// What a pass has seen of each producer's transaction since that producer's last marker, in
/// offset order from the log start: for each producer with data batches, whether the pass
/// keeps any of them.
#[derive(Debug, Default)]
pub struct TransactionsSeen {
    with_data: HashMap<i64, bool>,
}

impl TransactionsSeen {
    /// A data batch of `producer_id`'s transaction was read; `kept` if any of it survives.
    pub fn data_batch(&mut self, producer_id: i64, kept: bool) {
        *self.with_data.entry(producer_id).or_default() |= kept;
    }

    /// Whether the marker of `producer_id` with timestamp `timestamp` survives: it ends the
    /// transaction, so the producer's next batches belong to another one.
    pub fn marker(
        &mut self,
        producer_id: i64,
        timestamp: i64,
        now_ms: i64,
        delete_retention_ms: i64,
    ) -> Verdict {
        let expiry = if timestamp < 0 {
            i64::MAX
        } else {
            timestamp.saturating_add(delete_retention_ms.max(0))
        };
        match self.with_data.remove(&producer_id) {
            Some(true) => Verdict::Keep,
            // This pass removes the last of its data: the next pass may take the marker.
            Some(false) => Verdict::KeepTombstoneUntil(expiry.max(now_ms)),
            None if now_ms >= expiry => Verdict::Remove,
            None => Verdict::KeepTombstoneUntil(expiry),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summaries(specs: &[(i64, u64)]) -> Vec<BatchSummary> {
        // (max timestamp, size), 10 offsets each
        specs
            .iter()
            .enumerate()
            .map(|(i, (ts, size))| BatchSummary {
                base_offset: i as i64 * 10,
                next_offset: (i as i64 + 1) * 10,
                max_timestamp: *ts,
                size: *size,
            })
            .collect()
    }

    fn state(first_dirty: i64) -> CleanerState {
        CleanerState {
            first_dirty_offset: first_dirty,
            ..CleanerState::default()
        }
    }

    #[test]
    fn clean_log_below_the_dirty_ratio_is_left_alone() {
        let b = summaries(&[(0, 100), (0, 100), (0, 100), (0, 50)]);
        let config = CompactionConfig::default();
        assert_eq!(plan(&b, 40, state(30), 1000, &config), None);
        assert_eq!(
            plan(&b, 40, state(20), 1000, &config),
            None,
            "150 of 350 bytes dirty"
        );
        let p = plan(&b, 40, state(10), 1000, &config).unwrap();
        assert_eq!(
            (p.first_dirty_offset, p.end, p.dirty_bytes, p.clean_bytes),
            (10, 40, 250, 100)
        );
    }

    #[test]
    fn young_batches_and_everything_after_them_wait_for_the_min_lag() {
        let b = summaries(&[(100, 10), (950, 10), (100, 10)]);
        let config = CompactionConfig {
            min_compaction_lag_ms: 100,
            ..CompactionConfig::default()
        };
        let p = plan(&b, 30, state(0), 1000, &config).unwrap();
        assert_eq!(p.end, 10, "the batch at 10 is 50 ms old");
    }

    #[test]
    fn max_lag_forces_a_pass_below_the_ratio() {
        let b = summaries(&[(0, 1000), (500, 10)]);
        let mut config = CompactionConfig::default();
        assert_eq!(plan(&b, 20, state(10), 1000, &config), None);
        config.max_compaction_lag_ms = 400;
        assert!(plan(&b, 20, state(10), 1000, &config).is_some());
    }

    #[test]
    fn kept_tombstones_bring_the_cleaner_back_when_they_expire() {
        let b = summaries(&[(0, 1000)]);
        let config = CompactionConfig::default();
        let kept = CleanerState {
            first_dirty_offset: 10,
            next_tombstone_expiry_ms: 2000,
            quiet: None,
        };
        assert_eq!(plan(&b, 10, kept, 1999, &config), None);
        assert!(plan(&b, 10, kept, 2000, &config).is_some());
    }

    #[test]
    fn superseded_records_go_and_tombstones_wait_for_delete_retention() {
        let mut map = OffsetMap::with_limit(1 << 20);
        map.put(b"a", 5);
        let r = |offset, null_value, timestamp| RecordFacts {
            offset,
            key: Some(&b"a"[..]),
            null_value,
            timestamp,
        };
        assert_eq!(verdict(r(3, false, 0), &map, 100, 50), Verdict::Remove);
        assert_eq!(verdict(r(5, false, 0), &map, 100, 50), Verdict::Keep);
        assert_eq!(
            verdict(r(5, true, 60), &map, 100, 50),
            Verdict::KeepTombstoneUntil(110)
        );
        assert_eq!(verdict(r(5, true, 50), &map, 100, 50), Verdict::Remove);
        assert_eq!(
            verdict(r(5, true, -1), &map, 100, 50),
            Verdict::KeepTombstoneUntil(i64::MAX)
        );
        let unkeyed = RecordFacts {
            key: None,
            ..r(1, true, 0)
        };
        assert_eq!(verdict(unkeyed, &map, 100, 50), Verdict::Keep);
    }

    #[test]
    fn a_marker_stays_while_its_transaction_has_data_then_for_delete_retention() {
        let mut seen = TransactionsSeen::default();
        seen.data_batch(7, false);
        seen.data_batch(7, true);
        assert_eq!(
            seen.marker(7, 0, 1000, 50),
            Verdict::Keep,
            "data of 7 before it"
        );
        seen.data_batch(7, false);
        assert_eq!(
            seen.marker(7, 0, 1000, 50),
            Verdict::KeepTombstoneUntil(1000),
            "its last data goes in this pass: the next may take it"
        );
        // The next transaction of 7 has no data left: its marker is a tombstone.
        assert_eq!(
            seen.marker(7, 980, 1000, 50),
            Verdict::KeepTombstoneUntil(1030)
        );
        assert_eq!(seen.marker(7, 900, 1000, 50), Verdict::Remove);
        seen.data_batch(8, true);
        assert_eq!(seen.marker(9, 900, 1000, 50), Verdict::Remove, "8's data");
        assert_eq!(
            seen.marker(9, -1, 1000, 50),
            Verdict::KeepTombstoneUntil(i64::MAX)
        );
    }

    #[test]
    fn offset_map_counts_each_key_once() {
        let mut map = OffsetMap::with_limit(200);
        map.put(b"k", 1);
        map.put(b"k", 2);
        assert_eq!((map.len(), map.latest(b"k")), (1, Some(2)));
        assert!(map.fits(1, 10));
        assert!(!map.fits(4, 10));
    }
}
