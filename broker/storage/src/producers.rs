//! Idempotent producer state of one partition: for each producer id, its epoch and the last
//! five batches appended, and the rule that decides whether a new batch is appended,
//! acknowledged as a duplicate of one already in the log, or refused.
//!
//! Pure: no RocksDB, no clock. The log applies these decisions under its append lock and
//! persists the entries in the same write as the batches they describe.

use std::collections::VecDeque;

/// Batches remembered per producer: Kafka clients keep at most five requests in flight, so a
/// retry is always of one of the last five.
pub const BATCHES_KEPT: usize = 5;
/// A batch not from an idempotent producer.
pub const NO_PRODUCER_ID: i64 = -1;

/// Where one batch of a producer landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: i64,
    pub last_offset: i64,
}

/// What the partition knows of one producer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProducerEntry {
    pub epoch: i16,
    /// Oldest first, at most `BATCHES_KEPT`.
    pub batches: VecDeque<BatchMetadata>,
    /// The offset of this producer's first batch in its ongoing transaction on this partition:
    /// set by its first transactional batch, cleared by the transaction's marker. Read-committed
    /// consumers stop before the earliest of these (the last stable offset).
    pub txn_first_offset: Option<i64>,
}

/// The verdict on a batch from an idempotent producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    Append,
    /// A retry of a batch already in the log: answer with where it landed, append nothing.
    Duplicate(BatchMetadata),
    OutOfOrder {
        expected: i32,
        got: i32,
    },
    /// The producer was re-initialised with a newer epoch; this one is a zombie.
    StaleEpoch {
        current: i16,
        got: i16,
    },
}

/// The sequence number after `seq`; sequences wrap from i32::MAX to 0, as in Kafka.
pub fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX { 0 } else { seq + 1 }
}

/// The last sequence of a batch of `count_delta + 1` records starting at `first`.
pub fn last_seq(first: i32, last_offset_delta: i32) -> i32 {
    if first > i32::MAX - last_offset_delta {
        last_offset_delta - (i32::MAX - first) - 1
    } else {
        first + last_offset_delta
    }
}

/// Decides what to do with a batch `first_seq..=last_seq` of `epoch`.
///
/// A producer the partition has never seen is accepted at any sequence, as Kafka does since
/// KIP-360: its state may have been removed with the data it described.
pub fn check(
    entry: Option<&ProducerEntry>,
    epoch: i16,
    first_seq: i32,
    last_seq: i32,
) -> SequenceCheck {
    let Some(entry) = entry else {
        return SequenceCheck::Append;
    };
    if epoch < entry.epoch {
        return SequenceCheck::StaleEpoch {
            current: entry.epoch,
            got: epoch,
        };
    }
    if epoch > entry.epoch {
        return if first_seq == 0 {
            SequenceCheck::Append
        } else {
            SequenceCheck::OutOfOrder {
                expected: 0,
                got: first_seq,
            }
        };
    }
    if let Some(b) = entry
        .batches
        .iter()
        .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
    {
        return SequenceCheck::Duplicate(*b);
    }
    match entry.batches.back() {
        Some(last) if first_seq != next_seq(last.last_seq) => SequenceCheck::OutOfOrder {
            expected: next_seq(last.last_seq),
            got: first_seq,
        },
        _ => SequenceCheck::Append,
    }
}

/// Records an appended batch, forgetting the batches of an older epoch.
pub fn record(entry: &mut ProducerEntry, epoch: i16, batch: BatchMetadata) {
    if epoch != entry.epoch {
        entry.epoch = epoch;
        entry.batches.clear();
    }
    entry.batches.push_back(batch);
    while entry.batches.len() > BATCHES_KEPT {
        entry.batches.pop_front();
    }
}

const BATCH_LEN: usize = 24;

/// Decides whether a transaction marker of `epoch` may be written for this producer: a marker
/// from an older epoch than the partition knows comes from a fenced coordinator's view.
pub fn check_marker(entry: Option<&ProducerEntry>, epoch: i16) -> Result<(), SequenceCheck> {
    match entry {
        Some(e) if epoch < e.epoch => Err(SequenceCheck::StaleEpoch {
            current: e.epoch,
            got: epoch,
        }),
        _ => Ok(()),
    }
}

/// Stored form: epoch (i16 BE), then each batch as first seq, last seq, base offset, last offset,
/// then (only while a transaction is ongoing) its first offset (i64 BE). The trailer's 8 bytes
/// never make a whole batch's 24, so entries written before transactions still decode.
pub fn encode(entry: &ProducerEntry) -> Vec<u8> {
    let mut v = Vec::with_capacity(2 + entry.batches.len() * BATCH_LEN + 8);
    v.extend_from_slice(&entry.epoch.to_be_bytes());
    for b in &entry.batches {
        v.extend_from_slice(&b.first_seq.to_be_bytes());
        v.extend_from_slice(&b.last_seq.to_be_bytes());
        v.extend_from_slice(&b.base_offset.to_be_bytes());
        v.extend_from_slice(&b.last_offset.to_be_bytes());
    }
    if let Some(first) = entry.txn_first_offset {
        v.extend_from_slice(&first.to_be_bytes());
    }
    v
}

/// Inverse of `encode`; `None` for bytes it did not produce.
pub fn decode(v: &[u8]) -> Option<ProducerEntry> {
    if v.len() < 2 {
        return None;
    }
    let (v, txn_first_offset) = match (v.len() - 2) % BATCH_LEN {
        0 => (v, None),
        8 => {
            let (batches, trailer) = v.split_at(v.len() - 8);
            (batches, Some(i64::from_be_bytes(trailer.try_into().ok()?)))
        }
        _ => return None,
    };
    let epoch = i16::from_be_bytes([v[0], v[1]]);
    let batches = v[2..]
        .chunks_exact(BATCH_LEN)
        .map(|c| BatchMetadata {
            first_seq: i32::from_be_bytes(c[0..4].try_into().expect("4 bytes")),
            last_seq: i32::from_be_bytes(c[4..8].try_into().expect("4 bytes")),
            base_offset: i64::from_be_bytes(c[8..16].try_into().expect("8 bytes")),
            last_offset: i64::from_be_bytes(c[16..24].try_into().expect("8 bytes")),
        })
        .collect();
    Some(ProducerEntry {
        epoch,
        batches,
        txn_first_offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn batch(first_seq: i32, last_seq: i32, base_offset: i64) -> BatchMetadata {
        BatchMetadata {
            first_seq,
            last_seq,
            base_offset,
            last_offset: base_offset + i64::from(last_seq - first_seq),
        }
    }

    fn entry(epoch: i16, batches: &[BatchMetadata]) -> ProducerEntry {
        ProducerEntry {
            epoch,
            batches: batches.iter().copied().collect(),
            txn_first_offset: None,
        }
    }

    #[test]
    fn unknown_producer_is_appended_at_any_sequence() {
        assert_eq!(check(None, 0, 0, 4), SequenceCheck::Append);
        assert_eq!(check(None, 3, 17, 20), SequenceCheck::Append);
    }

    #[test]
    fn next_batch_in_sequence_is_appended() {
        let e = entry(0, &[batch(0, 4, 100)]);
        assert_eq!(check(Some(&e), 0, 5, 9), SequenceCheck::Append);
    }

    #[test]
    fn retry_of_any_of_the_last_five_is_a_duplicate_with_its_original_offsets() {
        let e = entry(0, &[batch(0, 4, 100), batch(5, 9, 105), batch(10, 10, 110)]);
        assert_eq!(
            check(Some(&e), 0, 5, 9),
            SequenceCheck::Duplicate(batch(5, 9, 105))
        );
        assert_eq!(
            check(Some(&e), 0, 10, 10),
            SequenceCheck::Duplicate(batch(10, 10, 110))
        );
    }

    #[test]
    fn gap_or_overlap_is_out_of_order() {
        let e = entry(0, &[batch(0, 4, 100)]);
        assert_eq!(
            check(Some(&e), 0, 7, 9),
            SequenceCheck::OutOfOrder {
                expected: 5,
                got: 7
            }
        );
        assert_eq!(
            check(Some(&e), 0, 3, 6),
            SequenceCheck::OutOfOrder {
                expected: 5,
                got: 3
            }
        );
    }

    #[test]
    fn older_epoch_is_stale_and_newer_epoch_must_restart_at_zero() {
        let e = entry(2, &[batch(0, 4, 100)]);
        assert_eq!(
            check(Some(&e), 1, 5, 9),
            SequenceCheck::StaleEpoch { current: 2, got: 1 }
        );
        assert_eq!(check(Some(&e), 3, 0, 2), SequenceCheck::Append);
        assert_eq!(
            check(Some(&e), 3, 5, 9),
            SequenceCheck::OutOfOrder {
                expected: 0,
                got: 5
            }
        );
    }

    #[test]
    fn sequences_wrap_after_i32_max() {
        assert_eq!(next_seq(i32::MAX), 0);
        assert_eq!(last_seq(i32::MAX - 1, 3), 1);
        assert_eq!(last_seq(10, 3), 13);
        let e = entry(0, &[batch(i32::MAX - 4, i32::MAX, 0)]);
        assert_eq!(check(Some(&e), 0, 0, 3), SequenceCheck::Append);
    }

    #[test]
    fn a_marker_from_an_older_epoch_is_stale_and_any_other_is_accepted() {
        let e = entry(2, &[batch(0, 4, 100)]);
        assert!(check_marker(Some(&e), 1).is_err());
        assert_eq!(check_marker(Some(&e), 2), Ok(()));
        assert_eq!(check_marker(Some(&e), 3), Ok(()));
        assert_eq!(check_marker(None, 0), Ok(()));
    }

    #[test]
    fn entries_stored_before_transactions_still_decode() {
        let e = entry(1, &[batch(0, 4, 100)]);
        let mut old = encode(&e);
        assert_eq!(decode(&old), Some(e.clone()));
        old.extend_from_slice(&[0; 3]);
        assert_eq!(decode(&old), None);
    }

    #[test]
    fn record_keeps_the_last_five_and_resets_on_new_epoch() {
        let mut e = ProducerEntry::default();
        for i in 0..7 {
            record(&mut e, 0, batch(i, i, i64::from(i)));
        }
        assert_eq!(
            e.batches.iter().map(|b| b.first_seq).collect::<Vec<_>>(),
            vec![2, 3, 4, 5, 6]
        );
        record(&mut e, 1, batch(0, 0, 50));
        assert_eq!((e.epoch, e.batches.len()), (1, 1));
    }

    proptest! {
        #[test]
        fn encoding_round_trips(epoch in any::<i16>(), seqs in proptest::collection::vec((any::<i32>(), any::<i32>(), any::<i64>(), any::<i64>()), 0..=5), txn_first_offset in proptest::option::of(any::<i64>())) {
            let e = ProducerEntry {
                epoch,
                batches: seqs.into_iter().map(|(a, b, c, d)| BatchMetadata { first_seq: a, last_seq: b, base_offset: c, last_offset: d }).collect(),
                txn_first_offset,
            };
            prop_assert_eq!(decode(&encode(&e)), Some(e));
        }

        #[test]
        fn a_producer_retrying_in_order_never_appends_twice(sizes in proptest::collection::vec(1i32..50, 1..30), retry_lag in 0usize..5) {
            // Appends batches in order, retrying the batch `retry_lag` back after each: every
            // retry is a duplicate, every new batch is appended exactly once.
            let mut e = ProducerEntry::default();
            let mut seq = 0;
            let mut offset = 0i64;
            let mut appended = Vec::new();
            for size in sizes {
                let last = seq + size - 1;
                prop_assert_eq!(check(Some(&e).filter(|e| !e.batches.is_empty()), 0, seq, last), SequenceCheck::Append);
                let b = BatchMetadata { first_seq: seq, last_seq: last, base_offset: offset, last_offset: offset + i64::from(size) - 1 };
                record(&mut e, 0, b);
                appended.push(b);
                offset += i64::from(size);
                seq = last + 1;
                if let Some(old) = appended.iter().rev().nth(retry_lag) {
                    prop_assert_eq!(check(Some(&e), 0, old.first_seq, old.last_seq), SequenceCheck::Duplicate(*old));
                }
            }
        }
    }
}
