//! Specifications of the partition log and catalog: the conformance suite every engine runs,
//! each test once on RocksDB in a temp dir and once in memory.

use std::collections::BTreeMap;

use bytes::Bytes;
use krait_protocol::batch::{BatchHeader, ValidBatch, validate_batches};
use krait_protocol::kafka_protocol::records::RecordBatchDecoder;

use krait_protocol::testing::TestBatch;

use crate::*;

pub(crate) fn batch(n: usize, first_ts: i64) -> ValidBatch {
    producer_batch(n, first_ts, -1, -1, -1)
}

pub(crate) fn idempotent(n: usize, producer_id: i64, epoch: i16, first_seq: i32) -> ValidBatch {
    producer_batch(n, 0, producer_id, epoch, first_seq)
}

fn producer_batch(
    n: usize,
    first_ts: i64,
    producer_id: i64,
    producer_epoch: i16,
    first_seq: i32,
) -> ValidBatch {
    let mut batch = TestBatch::numbered(n).first_timestamp(first_ts);
    if producer_id >= 0 {
        batch = batch.idempotent(producer_id, producer_epoch, first_seq);
    }
    validate_batches(&batch.encode()).unwrap().remove(0)
}

pub(crate) fn headers(records: &Bytes) -> Vec<BatchHeader> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < records.len() {
        let h = BatchHeader::parse(&records[at..]).unwrap();
        at += h.total_size();
        out.push(h);
    }
    out
}

/// Which engine a test runs on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    RocksDb,
    Memory,
}

/// Where a test's store lives; opening it again sees what the last store wrote, as a broker
/// restarting on its data directory does.
pub(crate) enum Disk {
    RocksDb(tempfile::TempDir),
    Memory(std::sync::Arc<MemoryEngine>),
}

impl Disk {
    pub(crate) fn new(kind: Kind) -> Self {
        match kind {
            Kind::RocksDb => Disk::RocksDb(tempfile::tempdir().unwrap()),
            Kind::Memory => Disk::Memory(Default::default()),
        }
    }
}

pub(crate) fn open(disk: &Disk) -> Store {
    match disk {
        Disk::RocksDb(dir) => Store::open(dir.path(), StoreOptions::default()).unwrap(),
        Disk::Memory(engine) => Store::on_engine(engine.clone(), StoreOptions::default()).unwrap(),
    }
}

/// Defines each `fn name(kind: Kind)` and runs it as two tests, `rocksdb::name` and
/// `memory::name`.
macro_rules! on_both_engines {
    ($(fn $name:ident($kind:ident: Kind) $body:block)*) => {
        $(fn $name($kind: Kind) $body)*

        mod rocksdb {
            $(#[test]
            fn $name() {
                super::$name(super::Kind::RocksDb)
            })*
        }

        mod memory {
            $(#[test]
            fn $name() {
                super::$name(super::Kind::Memory)
            })*
        }
    };
}
pub(crate) use on_both_engines;

on_both_engines! {
    fn appends_get_contiguous_offsets(kind: Kind) {
        let dir = Disk::new(kind);
        let log = open(&dir).open_log(1).unwrap();
        let a = log.append(&[batch(3, 0)], 0).unwrap();
        let b = log.append(&[batch(2, 0), batch(1, 0)], 0).unwrap();
        assert_eq!((a.base_offset, a.last_offset), (0, 2));
        assert_eq!((b.base_offset, b.last_offset), (3, 5));
        assert_eq!(
            log.offsets(),
            LogOffsets {
                log_start_offset: 0,
                high_watermark: 6,
                log_end_offset: 6
            }
        );
        let read = log.read(0, usize::MAX).unwrap();
        let bases: Vec<i64> = headers(&read.records)
            .iter()
            .map(|h| h.base_offset)
            .collect();
        assert_eq!(bases, vec![0, 3, 5]);
    }

    fn stored_batches_decode_with_assigned_offsets_and_intact_crc(kind: Kind) {
        let dir = Disk::new(kind);
        let log = open(&dir).open_log(1).unwrap();
        log.append(&[batch(3, 0)], 4).unwrap();
        log.append(&[batch(2, 0)], 4).unwrap();
        let read = log.read(0, usize::MAX).unwrap();
        validate_batches(&read.records).unwrap();
        let mut buf = read.records.clone();
        let offsets: Vec<i64> = RecordBatchDecoder::decode_all(&mut buf)
            .unwrap()
            .into_iter()
            .flat_map(|set| set.records.into_iter().map(|r| r.offset))
            .collect();
        assert_eq!(offsets, vec![0, 1, 2, 3, 4]);
        assert_eq!(headers(&read.records)[0].partition_leader_epoch, 4);
    }

    fn fetch_from_mid_batch_offset_returns_whole_batch(kind: Kind) {
        let dir = Disk::new(kind);
        let log = open(&dir).open_log(1).unwrap();
        log.append(&[batch(5, 0)], 0).unwrap();
        log.append(&[batch(5, 0)], 0).unwrap();
        for (offset, first_base) in [(0, 0), (3, 0), (4, 0), (5, 5), (7, 5), (9, 5)] {
            let read = log.read(offset, usize::MAX).unwrap();
            assert_eq!(
                headers(&read.records)[0].base_offset,
                first_base,
                "fetch at {offset}"
            );
        }
        assert!(log.read(10, usize::MAX).unwrap().records.is_empty());
    }

    fn fetch_outside_the_log_is_out_of_range(kind: Kind) {
        let dir = Disk::new(kind);
        let log = open(&dir).open_log(1).unwrap();
        log.append(&[batch(2, 0)], 0).unwrap();
        assert!(matches!(
            log.read(3, 100),
            Err(StorageError::OffsetOutOfRange { offset: 3, .. })
        ));
        assert!(matches!(
            log.read(-1, 100),
            Err(StorageError::OffsetOutOfRange { .. })
        ));
    }

    fn max_bytes_limits_whole_batches_but_always_returns_the_first(kind: Kind) {
        let dir = Disk::new(kind);
        let log = open(&dir).open_log(1).unwrap();
        for _ in 0..4 {
            log.append(&[batch(10, 0)], 0).unwrap();
        }
        let one = log.read(0, 1).unwrap();
        assert_eq!(headers(&one.records).len(), 1);
        let size = one.records.len();
        let two = log.read(0, 2 * size + size / 2).unwrap();
        assert_eq!(headers(&two.records).len(), 2);
        assert_eq!(headers(&log.read(0, usize::MAX).unwrap().records).len(), 4);
    }

    fn logs_with_different_ids_do_not_see_each_other(kind: Kind) {
        let dir = Disk::new(kind);
        let store = open(&dir);
        let (a, b) = (store.open_log(1).unwrap(), store.open_log(2).unwrap());
        a.append(&[batch(3, 0)], 0).unwrap();
        b.append(&[batch(1, 0)], 0).unwrap();
        assert_eq!(headers(&a.read(0, usize::MAX).unwrap().records).len(), 1);
        assert_eq!(b.offsets().log_end_offset, 1);
    }

    fn reopened_log_continues_at_the_next_offset(kind: Kind) {
        let dir = Disk::new(kind);
        {
            let log = open(&dir).open_log(7).unwrap();
            log.append(&[batch(3, 0)], 0).unwrap();
            log.append(&[batch(4, 0)], 0).unwrap();
        }
        let log = open(&dir).open_log(7).unwrap();
        assert_eq!(log.offsets().log_end_offset, 7);
        assert_eq!(log.offsets().high_watermark, 7);
        assert_eq!(log.append(&[batch(1, 0)], 0).unwrap().base_offset, 7);
    }

    fn offset_for_timestamp_finds_the_first_record_at_or_after(kind: Kind) {
        let dir = Disk::new(kind);
        let log = open(&dir).open_log(1).unwrap();
        log.append(&[batch(3, 100)], 0).unwrap(); // offsets 0..2, ts 100..102
        log.append(&[batch(3, 200)], 0).unwrap(); // offsets 3..5, ts 200..202
        assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 100)));
        assert_eq!(log.offset_for_timestamp(101).unwrap(), Some((1, 101)));
        assert_eq!(log.offset_for_timestamp(150).unwrap(), Some((3, 200)));
        assert_eq!(log.offset_for_timestamp(202).unwrap(), Some((5, 202)));
        assert_eq!(log.offset_for_timestamp(203).unwrap(), None);
    }

    fn topics_persist_and_deleting_one_removes_its_batches(kind: Kind) {
        let dir = Disk::new(kind);
        let topic = |name: &str, log_id| TopicRecord {
            name: name.into(),
            id: uuid::Uuid::new_v4(),
            partitions: vec![PartitionRecord { index: 0, log_id }],
            configs: BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]),
            replication_factor: 1,
        };
        let (keep, gone) = (topic("keep", 1), topic("gone", 2));
        {
            let store = open(&dir);
            assert_eq!(store.allocate_log_ids(2), 1);
            store.put_topic(&keep).unwrap();
            store.put_topic(&gone).unwrap();
            store
                .open_log(1)
                .unwrap()
                .append(&[batch(2, 0)], 0)
                .unwrap();
            store
                .open_log(2)
                .unwrap()
                .append(&[batch(2, 0)], 0)
                .unwrap();
            store.delete_topic(&gone).unwrap();
        }
        let store = open(&dir);
        assert_eq!(store.load_topics().unwrap(), vec![keep]);
        assert_eq!(store.open_log(2).unwrap().offsets().log_end_offset, 0);
        assert_eq!(store.open_log(1).unwrap().offsets().log_end_offset, 2);
        assert_eq!(
            store.allocate_log_ids(1),
            3,
            "log ids are never reused after restart"
        );
    }

    fn retried_idempotent_batch_is_acknowledged_with_its_original_offset_and_not_appended(kind: Kind) {
        let dir = Disk::new(kind);
        let log = open(&dir).open_log(1).unwrap();
        log.append(&[batch(2, 0)], 0).unwrap();
        let first = log.append(&[idempotent(3, 7, 0, 0)], 0).unwrap();
        let second = log.append(&[idempotent(2, 7, 0, 3)], 0).unwrap();
        let retry = log.append(&[idempotent(3, 7, 0, 0)], 0).unwrap();
        assert_eq!((first.base_offset, first.duplicate), (2, false));
        assert_eq!((second.base_offset, second.duplicate), (5, false));
        assert_eq!(
            (retry.base_offset, retry.last_offset, retry.duplicate),
            (2, 4, true)
        );
        assert_eq!(
            log.offsets().log_end_offset,
            7,
            "the retry appended nothing"
        );
    }

    fn sequence_gap_and_stale_epoch_are_refused_with_nothing_written(kind: Kind) {
        let dir = Disk::new(kind);
        let log = open(&dir).open_log(1).unwrap();
        log.append(&[idempotent(3, 7, 1, 0)], 0).unwrap();
        let gap = log.append(&[idempotent(1, 7, 1, 5)], 0).unwrap_err();
        assert!(
            matches!(
                gap,
                StorageError::OutOfOrderSequence {
                    expected: 3,
                    got: 5,
                    ..
                }
            ),
            "{gap}"
        );
        let stale = log.append(&[idempotent(1, 7, 0, 3)], 0).unwrap_err();
        assert!(
            matches!(
                stale,
                StorageError::InvalidProducerEpoch {
                    current: 1,
                    got: 0,
                    ..
                }
            ),
            "{stale}"
        );
        // A refused batch in a request refuses the whole request.
        let mixed = log.append(&[batch(1, 0), idempotent(1, 7, 1, 9)], 0);
        assert!(mixed.is_err());
        assert_eq!(log.offsets().log_end_offset, 3);
    }

    fn producer_state_survives_reopen_so_retries_after_a_crash_are_still_deduplicated(kind: Kind) {
        let dir = Disk::new(kind);
        {
            let log = open(&dir).open_log(3).unwrap();
            log.append(&[idempotent(4, 11, 0, 0)], 0).unwrap();
        }
        let log = open(&dir).open_log(3).unwrap();
        let retry = log.append(&[idempotent(4, 11, 0, 0)], 0).unwrap();
        assert_eq!((retry.base_offset, retry.duplicate), (0, true));
        assert_eq!(
            log.append(&[idempotent(1, 11, 0, 4)], 0)
                .unwrap()
                .base_offset,
            4
        );
    }

    fn producer_ids_are_unique_across_restarts(kind: Kind) {
        let dir = Disk::new(kind);
        let first: Vec<i64> = {
            let store = open(&dir);
            (0..3)
                .map(|_| store.allocate_producer_id().unwrap())
                .collect()
        };
        let next = open(&dir).allocate_producer_id().unwrap();
        assert_eq!(first, vec![0, 1, 2]);
        assert_eq!(next, 3);
    }

    fn retention_by_time_deletes_old_batches_and_advances_the_log_start_durably(kind: Kind) {
        let dir = Disk::new(kind);
        {
            let log = open(&dir).open_log(1).unwrap();
            log.append(&[batch(3, 1_000)], 0).unwrap(); // offsets 0..2
            log.append(&[batch(2, 2_000)], 0).unwrap(); // offsets 3..4
            log.append(&[batch(2, 9_000)], 0).unwrap(); // offsets 5..6
            let limits = crate::retention::RetentionLimits {
                retention_ms: 5_000,
                retention_bytes: -1,
            };
            let plan = log.enforce_retention(10_000, limits).unwrap().unwrap();
            assert_eq!((plan.new_log_start_offset, plan.batches), (5, 2));
            assert_eq!(
                log.enforce_retention(10_000, limits).unwrap(),
                None,
                "nothing more is due"
            );
            assert!(matches!(
                log.read(4, usize::MAX),
                Err(StorageError::OffsetOutOfRange {
                    log_start_offset: 5,
                    ..
                })
            ));
            assert_eq!(
                headers(&log.read(5, usize::MAX).unwrap().records)[0].base_offset,
                5
            );
        }
        let log = open(&dir).open_log(1).unwrap();
        assert_eq!(
            log.offsets(),
            LogOffsets {
                log_start_offset: 5,
                high_watermark: 7,
                log_end_offset: 7
            }
        );
        assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((5, 9_000)));
        assert_eq!(log.append(&[batch(1, 0)], 0).unwrap().base_offset, 7);
    }

    fn retention_by_size_keeps_at_least_the_limit_and_tracks_the_size(kind: Kind) {
        let dir = Disk::new(kind);
        let log = open(&dir).open_log(1).unwrap();
        for _ in 0..5 {
            log.append(&[batch(10, 0)], 0).unwrap();
        }
        let total = log.size_bytes();
        let one = total / 5;
        let limits = crate::retention::RetentionLimits {
            retention_ms: -1,
            retention_bytes: (2 * one + one / 2) as i64,
        };
        let plan = log.enforce_retention(0, limits).unwrap().unwrap();
        assert_eq!((plan.new_log_start_offset, plan.bytes), (20, 2 * one));
        assert_eq!(log.size_bytes(), 3 * one);
        drop(log);
        assert_eq!(
            open(&dir).open_log(1).unwrap().size_bytes(),
            3 * one,
            "size is recomputed from the index at open"
        );
    }

    fn retention_deleting_everything_leaves_an_empty_log_that_continues(kind: Kind) {
        let dir = Disk::new(kind);
        let log = open(&dir).open_log(1).unwrap();
        log.append(&[batch(4, 0)], 0).unwrap();
        let limits = crate::retention::RetentionLimits {
            retention_ms: 1,
            retention_bytes: -1,
        };
        log.enforce_retention(1_000, limits).unwrap().unwrap();
        assert_eq!(
            log.offsets(),
            LogOffsets {
                log_start_offset: 4,
                high_watermark: 4,
                log_end_offset: 4
            }
        );
        assert!(log.read(4, usize::MAX).unwrap().records.is_empty());
        assert_eq!(log.append(&[batch(1, 0)], 0).unwrap().base_offset, 4);
    }
}

pub(crate) fn transactional(n: usize, producer_id: i64, epoch: i16, first_seq: i32) -> ValidBatch {
    let batch = TestBatch::numbered(n).transactional(producer_id, epoch, first_seq);
    validate_batches(&batch.encode()).unwrap().remove(0)
}

pub(crate) fn marker(
    kind: krait_protocol::batch::MarkerKind,
    producer_id: i64,
    epoch: i16,
) -> ValidBatch {
    let bytes = krait_protocol::batch::encode_marker(&krait_protocol::batch::Marker {
        kind,
        producer_id,
        producer_epoch: epoch,
        coordinator_epoch: 0,
        timestamp: 0,
    });
    validate_batches(&bytes).unwrap().remove(0)
}

mod transactions {
    use super::*;
    use krait_protocol::batch::MarkerKind::{Abort, Commit};

    on_both_engines! {
        fn an_open_transaction_holds_the_last_stable_offset_at_its_first_batch(kind: Kind) {
            let dir = Disk::new(kind);
            let log = open(&dir).open_log(1).unwrap();
            log.append(&[batch(2, 0)], 0).unwrap();
            log.append(&[transactional(3, 5, 0, 0)], 0).unwrap();
            log.append(&[batch(1, 0)], 0).unwrap();
            assert_eq!(log.last_stable_offset(), 2);
            let read = log.read_committed(0, usize::MAX).unwrap();
            assert_eq!(read.last_stable_offset, 2);
            assert_eq!(headers(&read.read.records).len(), 1);
            log.append(&[marker(Commit, 5, 0)], 0).unwrap();
            assert_eq!(log.last_stable_offset(), 7);
            assert!(log.read_committed(0, usize::MAX).unwrap().aborted.is_empty());
        }

        fn an_abort_marker_indexes_the_transaction_and_the_index_survives_reopen(kind: Kind) {
            let dir = Disk::new(kind);
            {
                let log = open(&dir).open_log(1).unwrap();
                log.append(&[transactional(3, 5, 0, 0)], 0).unwrap();
                log.append(&[transactional(2, 6, 0, 0)], 0).unwrap();
                log.append(&[marker(Abort, 5, 0)], 0).unwrap();
            }
            let log = open(&dir).open_log(1).unwrap();
            // Producer 6 is still open after the restart: its start is persisted too.
            assert_eq!(log.last_stable_offset(), 3);
            log.append(&[marker(Commit, 6, 0)], 0).unwrap();
            let read = log.read_committed(0, usize::MAX).unwrap();
            assert_eq!(read.last_stable_offset, 7);
            assert_eq!(
                read.aborted,
                vec![txn::AbortedTxn { producer_id: 5, first_offset: 0, last_offset: 5 }]
            );
            assert!(log.read_committed(6, usize::MAX).unwrap().aborted.is_empty());
        }

        fn a_marker_with_a_bumped_epoch_fences_the_older_epoch(kind: Kind) {
            let dir = Disk::new(kind);
            let log = open(&dir).open_log(1).unwrap();
            log.append(&[transactional(3, 5, 0, 0)], 0).unwrap();
            log.append(&[marker(Abort, 5, 1)], 0).unwrap();
            let zombie = log.append(&[transactional(1, 5, 0, 3)], 0).unwrap_err();
            assert!(matches!(zombie, StorageError::InvalidProducerEpoch { current: 1, got: 0, .. }));
            let stale_marker = log.append(&[marker(Commit, 5, 0)], 0).unwrap_err();
            assert!(matches!(stale_marker, StorageError::InvalidProducerEpoch { .. }));
            assert_eq!(log.append(&[transactional(1, 5, 2, 0)], 0).unwrap().base_offset, 4);
        }

        fn active_producers_show_each_last_batch_timestamp_and_open_transaction(kind: Kind) {
            let dir = Disk::new(kind);
            let log = open(&dir).open_log(1).unwrap();
            log.append(&[producer_batch(2, 100, 7, 0, 0)], 0).unwrap();
            log.append(&[transactional(3, 5, 0, 0)], 0).unwrap();
            let listed: Vec<_> = log
                .active_producers()
                .unwrap()
                .into_iter()
                .map(|p| (p.producer_id, p.last_sequence(), p.last_timestamp, p.entry.txn_first_offset))
                .collect();
            // TestBatch stamps records first_timestamp, +1, ...: the max is the last one's.
            assert_eq!(listed, vec![(5, 2, 2, Some(2)), (7, 1, 101, None)]);
            log.append(&[marker(Commit, 5, 0)], 0).unwrap();
            let closed = log.active_producers().unwrap();
            assert_eq!(closed[0].entry.txn_first_offset, None);
            assert_eq!(closed[0].last_sequence(), 2, "a marker is not a batch of the producer");
        }

        fn a_follower_keeps_the_leaders_transaction_state(kind: Kind) {
            let leader_dir = Disk::new(kind);
            let leader = open(&leader_dir).open_log(1).unwrap();
            leader.append(&[transactional(3, 5, 0, 0)], 0).unwrap();
            leader.append(&[marker(Abort, 5, 0)], 0).unwrap();
            leader.append(&[transactional(2, 5, 0, 3)], 0).unwrap();
            let follower_dir = Disk::new(kind);
            let follower = open(&follower_dir).open_log(1).unwrap();
            follower.append_replicated(&leader.read_for_follower(0, usize::MAX).unwrap().records).unwrap();
            follower.advance_high_watermark(6).unwrap();
            assert_eq!(follower.last_stable_offset(), 4);
            assert_eq!(follower.aborted_transactions(0, 4).len(), 1);
            follower.truncate_to(3).unwrap();
            assert!(follower.aborted_transactions(0, 4).is_empty());
        }
    }
}
