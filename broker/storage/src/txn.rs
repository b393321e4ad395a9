//! Transactions as one partition sees them: which producers have a transaction open here and
//! from which offset, the last stable offset (LSO) read-committed consumers stop at, and the
//! aborted-transaction index they skip aborted records with.
//!
//! Pure: no engine, no clock. The log applies these rules under its append lock (leader and
//! follower alike) and persists the results with the batches they come from.

use crate::producers::ProducerEntry;
use krait_protocol::batch::MarkerKind;

/// A transaction aborted on this partition: its producer and the offsets from its first batch
/// to its ABORT marker (Kafka's `AbortedTxn`, which Fetch returns to read-committed consumers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// The last stable offset: the high watermark, or the first offset of the earliest transaction
/// still open on the partition when that comes first. Nothing at or above it is decided.
pub fn last_stable_offset(
    high_watermark: i64,
    open_first_offsets: impl Iterator<Item = i64>,
) -> i64 {
    open_first_offsets.fold(high_watermark, i64::min)
}

/// The LSO of a partition whose producers are `producers`.
pub fn last_stable_offset_of<'a>(
    high_watermark: i64,
    producers: impl Iterator<Item = &'a ProducerEntry>,
) -> i64 {
    last_stable_offset(high_watermark, producers.filter_map(|p| p.txn_first_offset))
}

/// A transactional data batch at `base_offset`: the producer's transaction here starts at the
/// first such batch and keeps that start until its marker.
pub fn on_transactional_batch(entry: &mut ProducerEntry, base_offset: i64) {
    entry.txn_first_offset.get_or_insert(base_offset);
}

/// A marker of `kind` at `offset` from producer `producer_id` at `epoch` (already checked not
/// to be stale): the transaction here ends, and a newer epoch becomes the producer's (a marker
/// written after fencing a zombie carries the bumped epoch, so the zombie's batches are refused
/// from then on). Returns the aborted transaction to index, when it had records here.
pub fn on_marker(
    entry: &mut ProducerEntry,
    producer_id: i64,
    epoch: i16,
    kind: MarkerKind,
    offset: i64,
) -> Option<AbortedTxn> {
    if epoch > entry.epoch {
        entry.epoch = epoch;
        entry.batches.clear();
    }
    let first = entry.txn_first_offset.take()?;
    (kind == MarkerKind::Abort).then_some(AbortedTxn {
        producer_id,
        first_offset: first,
        last_offset: offset,
    })
}

/// The aborted transactions a read of `[from, to)` must list: those with records in it.
/// `index` is ordered by last offset.
pub fn aborted_overlapping(index: &[AbortedTxn], from: i64, to: i64) -> Vec<AbortedTxn> {
    let start = index.partition_point(|a| a.last_offset < from);
    index[start..]
        .iter()
        .filter(|a| a.first_offset < to)
        .copied()
        .collect()
}

/// Stored value of an index entry (keyed by log id and last offset): producer id, first offset.
pub fn encode_aborted(a: &AbortedTxn) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&a.producer_id.to_be_bytes());
    v[8..].copy_from_slice(&a.first_offset.to_be_bytes());
    v
}

/// Inverse of `encode_aborted`, given the entry's last offset.
pub fn decode_aborted(last_offset: i64, v: &[u8]) -> Option<AbortedTxn> {
    let v: &[u8; 16] = v.try_into().ok()?;
    Some(AbortedTxn {
        producer_id: i64::from_be_bytes(v[..8].try_into().ok()?),
        first_offset: i64::from_be_bytes(v[8..].try_into().ok()?),
        last_offset,
    })
}

#[cfg(test)]
#[path = "txn_tests.rs"]
mod tests;
