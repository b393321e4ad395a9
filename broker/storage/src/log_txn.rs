//! The partition log's side of transactions: appending markers, the last stable offset and
//! read-committed reads with the aborted transactions they overlap, and loading the aborted
//! index. The rules are `txn`'s (pure); this module applies and persists them, and must not
//! decide when a transaction ends (the coordinator does, by writing markers).

use krait_protocol::batch::{self, BatchHeader, ValidBatch};

use crate::engine::{Engine, Space};
use crate::error::{Result, StorageError};
use crate::keys::{log_end_key, log_key, parse_log_key};
use crate::log::{PartitionLog, ReadResult};
use crate::producers::{self, ProducerEntry, SequenceCheck};
use crate::txn::{self, AbortedTxn};

/// A read-committed read: records below the last stable offset, and the aborted transactions
/// with records among them (the consumer drops those records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedRead {
    pub read: ReadResult,
    pub last_stable_offset: i64,
    pub aborted: Vec<AbortedTxn>,
}

/// One producer as DescribeProducers reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveProducer {
    pub producer_id: i64,
    pub entry: ProducerEntry,
    pub last_timestamp: i64,
}

impl ActiveProducer {
    /// The last sequence number the partition has from it, -1 for none.
    pub fn last_sequence(&self) -> i32 {
        self.entry.batches.back().map_or(-1, |b| b.last_seq)
    }
}

impl PartitionLog {
    /// The last stable offset: below it every transaction is decided.
    pub fn last_stable_offset(&self) -> i64 {
        let inner = self.lock();
        txn::last_stable_offset_of(inner.offsets.high_watermark, inner.producers.values())
    }

    /// `read` for a read-committed consumer: only below the last stable offset.
    pub fn read_committed(&self, offset: i64, max_bytes: usize) -> Result<CommittedRead> {
        let (offsets, lso) = {
            let inner = self.lock();
            let lso =
                txn::last_stable_offset_of(inner.offsets.high_watermark, inner.producers.values());
            (inner.offsets, lso)
        };
        let read = self.read_below(offset, max_bytes, offsets, lso)?;
        let end = end_of(&read.records).unwrap_or(offset);
        let aborted = if end > offset {
            txn::aborted_overlapping(&self.lock().aborted, offset, end)
        } else {
            Vec::new()
        };
        Ok(CommittedRead {
            read,
            last_stable_offset: lso,
            aborted,
        })
    }

    /// The producers this partition keeps state for, by producer id (DescribeProducers), each
    /// with the max timestamp of its last batch still in the log (-1 when it was removed).
    /// The timestamp comes from the time index, so the producer entry need not carry it.
    pub fn active_producers(&self) -> Result<Vec<ActiveProducer>> {
        let mut producers: Vec<(i64, ProducerEntry)> = {
            let inner = self.lock();
            inner
                .producers
                .iter()
                .map(|(id, e)| (*id, e.clone()))
                .collect()
        };
        producers.sort_by_key(|(id, _)| *id);
        producers
            .into_iter()
            .map(|(producer_id, entry)| {
                let last_timestamp = match entry.batches.back() {
                    Some(b) => self.batch_max_timestamp(b.base_offset)?.unwrap_or(-1),
                    None => -1,
                };
                Ok(ActiveProducer {
                    producer_id,
                    entry,
                    last_timestamp,
                })
            })
            .collect()
    }

    /// The aborted transactions with records in `[from, to)` (for tests and tools).
    pub fn aborted_transactions(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        txn::aborted_overlapping(&self.lock().aborted, from, to)
    }
}

/// The offset after the last record of the concatenated batches in `records`.
fn end_of(records: &[u8]) -> Option<i64> {
    let mut at = 0;
    let mut end = None;
    while let Ok(h) = BatchHeader::parse(&records[at..]) {
        end = Some(h.last_offset() + 1);
        at += h.total_size();
        if at >= records.len() {
            break;
        }
    }
    end
}

/// A copy of the producer entry a marker of header `h` may update, or the refusal of a marker
/// from an epoch older than the partition's.
pub(crate) fn check_marker(
    entry: Option<&ProducerEntry>,
    h: &BatchHeader,
) -> Result<ProducerEntry> {
    match producers::check_marker(entry, h.producer_epoch) {
        Ok(()) => Ok(entry.cloned().unwrap_or_default()),
        Err(SequenceCheck::StaleEpoch { current, got }) => {
            Err(StorageError::InvalidProducerEpoch {
                producer_id: h.producer_id,
                current,
                got,
            })
        }
        Err(other) => Err(StorageError::Corrupt {
            what: "transaction marker",
            detail: format!("unexpected check {other:?}"),
        }),
    }
}

/// Applies the marker `b`, placed at `offset`, to its producer's entry.
pub(crate) fn apply_marker(
    entry: &mut ProducerEntry,
    b: &ValidBatch,
    offset: i64,
) -> Result<Option<AbortedTxn>> {
    let h = &b.header;
    let kind = batch::marker_kind(h, &b.bytes).map_err(|e| StorageError::Corrupt {
        what: "transaction marker",
        detail: e.to_string(),
    })?;
    Ok(txn::on_marker(
        entry,
        h.producer_id,
        h.producer_epoch,
        kind,
        offset,
    ))
}

/// The aborted-transaction index of log `id`, ordered by last offset.
pub(crate) fn load_aborted(db: &dyn Engine, id: u64) -> Result<Vec<AbortedTxn>> {
    let mut aborted = Vec::new();
    let mut corrupt = None;
    db.scan(
        Space::TxnIndex,
        &log_key(id, 0),
        Some(&log_end_key(id)),
        &mut |key, value| {
            match parse_log_key(key).and_then(|(_, last)| txn::decode_aborted(last, value)) {
                Some(a) => aborted.push(a),
                None => {
                    corrupt = Some(StorageError::Corrupt {
                        what: "aborted transaction index",
                        detail: format!("entry {key:?}"),
                    })
                }
            }
            corrupt.is_none()
        },
    )
    .map_err(StorageError::db("load aborted transactions"))?;
    corrupt.map_or(Ok(aborted), Err)
}
