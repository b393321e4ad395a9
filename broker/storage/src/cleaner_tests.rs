//! Specifications of log compaction on a partition log: random keyed logs compacted keep
//! exactly the latest record of each key at its original offset, tombstones last
//! `delete.retention.ms`, and a follower replicating across compacted ranges gets the same log.

use bytes::Bytes;
use krait_protocol::batch::validate_batches;
use krait_protocol::kafka_protocol::records::{Compression, RecordBatchDecoder};
use krait_protocol::testing::{encode, record};
use proptest::prelude::*;

use crate::compaction::CompactionConfig;
use crate::log_tests::{Disk, Kind, marker, on_both_engines, open};
use crate::*;
use krait_protocol::batch::MarkerKind::{Abort, Commit};

/// One record of a test log: key (none for `None`), value (a tombstone for `None`), timestamp.
type Spec = (Option<u8>, Option<u16>, i64);

fn keyed_batch(records: &[Spec], compression: Compression) -> krait_protocol::batch::ValidBatch {
    let records: Vec<_> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value, ts))| {
            let mut r = record(i as i64, *ts, "");
            r.key = key.map(|k| Bytes::from(format!("key-{k}")));
            r.value = value.map(|v| Bytes::from(format!("value-{v}")));
            r
        })
        .collect();
    validate_batches(&encode(&records, compression))
        .unwrap()
        .remove(0)
}

/// A transactional batch of producer `producer_id` (epoch 0, from sequence 0) with keys `keys`.
fn txn_keyed(keys: &[u8], producer_id: i64) -> krait_protocol::batch::ValidBatch {
    let mut records = krait_protocol::testing::TestBatch::numbered(keys.len())
        .transactional(producer_id, 0, 0)
        .records();
    for (r, k) in records.iter_mut().zip(keys) {
        r.key = Some(Bytes::from(format!("key-{k}")));
    }
    validate_batches(&encode(&records, Compression::None))
        .unwrap()
        .remove(0)
}

/// The base offsets of the log's batches.
fn bases(log: &PartitionLog) -> Vec<i64> {
    crate::log_tests::headers(&log.read_for_follower(0, usize::MAX).unwrap().records)
        .iter()
        .map(|h| h.base_offset)
        .collect()
}

/// Every record the log serves from its start: (offset, key, value).
type Read = Vec<(i64, Option<Bytes>, Option<Bytes>)>;

fn read_all(log: &PartitionLog) -> Read {
    let mut buf = log.read(0, usize::MAX).unwrap().records;
    let mut out = Vec::new();
    while !buf.is_empty() {
        let set = RecordBatchDecoder::decode(&mut buf).unwrap();
        out.extend(set.records.into_iter().map(|r| (r.offset, r.key, r.value)));
    }
    out
}

fn config(delete_retention_ms: i64) -> CompactionConfig {
    CompactionConfig {
        delete_retention_ms,
        min_cleanable_dirty_ratio: 0.0,
        ..CompactionConfig::default()
    }
}

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// What compaction must leave of `batches` (all but the last one cleanable) at `now_ms`.
fn expected(batches: &[Vec<Spec>], now_ms: i64, delete_retention_ms: i64) -> Read {
    let mut all = Vec::new();
    let mut offset = 0i64;
    for (i, b) in batches.iter().enumerate() {
        for r in b {
            all.push((offset, i + 1 == batches.len(), *r));
            offset += 1;
        }
    }
    let latest = |key: u8| {
        all.iter()
            .filter(|(_, last, (k, _, _))| !*last && *k == Some(key))
            .map(|(o, _, _)| *o)
            .max()
    };
    all.iter()
        .filter(|(offset, last, (key, value, ts))| match key {
            _ if *last => true,
            None => true,
            Some(k) => {
                latest(*k) == Some(*offset)
                    && (value.is_some() || ts + delete_retention_ms > now_ms)
            }
        })
        .map(|(offset, _, (key, value, _))| {
            (
                *offset,
                key.map(|k| Bytes::from(format!("key-{k}"))),
                value.map(|v| Bytes::from(format!("value-{v}"))),
            )
        })
        .collect()
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        proptest::option::weighted(0.95, 0u8..12),
        proptest::option::weighted(0.8, 0u16..1000),
        0i64..2000,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn compaction_keeps_the_latest_record_of_each_key_at_its_offset(
        batches in proptest::collection::vec(proptest::collection::vec(spec(), 1..8), 1..12),
        codecs in proptest::collection::vec(0usize..5, 12),
        delete_retention_ms in 0i64..3000,
    ) {
        let dir = Disk::new(Kind::Memory);
        let store = open(&dir);
        let log = store.open_log(1).unwrap();
        for (b, codec) in batches.iter().zip(&codecs) {
            log.append(&[keyed_batch(b, CODECS[*codec])], 0).unwrap();
        }
        let before = log.offsets();
        let now_ms = 2500;
        log.compact(now_ms, &config(delete_retention_ms), &mut |_| {}).unwrap();
        prop_assert_eq!(log.offsets(), before, "offsets never change");
        prop_assert_eq!(read_all(&log), expected(&batches, now_ms, delete_retention_ms));
        // Nothing is dirty any more: a second pass changes nothing.
        let after = read_all(&log);
        log.compact(now_ms, &config(delete_retention_ms), &mut |_| {}).unwrap();
        prop_assert_eq!(read_all(&log), after);
        let size: usize = log.read(0, usize::MAX).unwrap().records.len();
        prop_assert_eq!(log.size_bytes(), size as u64);
    }
}

on_both_engines! {
    fn tombstones_stay_for_delete_retention_then_go_without_new_writes(kind: Kind) {
        let dir = Disk::new(kind);
        let log = open(&dir).open_log(1).unwrap();
        log.append(&[keyed_batch(&[(Some(1), Some(1), 100), (Some(2), Some(2), 100)], Compression::None)], 0).unwrap();
        log.append(&[keyed_batch(&[(Some(1), None, 200)], Compression::Lz4)], 0).unwrap();
        log.append(&[keyed_batch(&[(Some(3), Some(3), 300)], Compression::None)], 0).unwrap();
        let c = config(1000);
        let stats = log.compact(500, &c, &mut |_| {}).unwrap().unwrap();
        assert_eq!((stats.end, stats.records_removed), (3, 1));
        let keys = |log: &PartitionLog| -> Vec<i64> { read_all(log).iter().map(|r| r.0).collect() };
        assert_eq!(keys(&log), vec![1, 2, 3], "the tombstone at 2 is kept for now");
        assert!(log.compact(1199, &c, &mut |_| {}).unwrap().is_none(), "nothing due yet");
        let stats = log.compact(1200, &c, &mut |_| {}).unwrap().unwrap();
        assert_eq!((stats.records_removed, stats.batches_removed), (1, 1));
        assert_eq!(keys(&log), vec![1, 3]);
        assert_eq!(log.offsets().log_end_offset, 4);
        // A fetch from inside the removed batch gets the next one.
        let from_two = log.read(2, usize::MAX).unwrap().records;
        assert_eq!(krait_protocol::batch::BatchHeader::parse(&from_two).unwrap().base_offset, 3);
    }

    fn an_unchanged_log_found_not_due_is_looked_at_again_only_after_the_quiet_recheck(kind: Kind) {
        let dir = Disk::new(kind);
        let log = open(&dir).open_log(1).unwrap();
        for v in 0..3 {
            log.append(&[keyed_batch(&[(Some(1), Some(v), 100)], Compression::None)], 0).unwrap();
        }
        // Not due by ratio (it is above 1) but due once the oldest dirty batch is 1000 ms old.
        let c = CompactionConfig {
            min_cleanable_dirty_ratio: 1.5,
            max_compaction_lag_ms: 1000,
            quiet_recheck_ms: 5000,
            ..CompactionConfig::default()
        };
        assert!(log.compact(500, &c, &mut |_| {}).unwrap().is_none(), "young: not due");
        assert!(
            log.compact(2000, &c, &mut |_| {}).unwrap().is_none(),
            "due by max.compaction.lag.ms, but the log has not moved since the last look"
        );
        let stats = log.compact(5500, &c, &mut |_| {}).unwrap().expect("re-examined after 5000 ms");
        assert_eq!(stats.records_removed, 1);
        // After a pass, any write makes the log worth a look again at once.
        assert!(log.compact(5600, &c, &mut |_| {}).unwrap().is_none());
        log.append(&[keyed_batch(&[(Some(1), Some(9), 100)], Compression::None)], 0).unwrap();
        let stats = log.compact(5700, &c, &mut |_| {}).unwrap().expect("the log moved");
        assert_eq!(stats.records_removed, 1);
    }

    fn nothing_at_or_above_the_high_watermark_or_in_the_last_batch_is_compacted(kind: Kind) {
        let dir = Disk::new(kind);
        let log = open(&dir).open_log(1).unwrap();
        let append = |specs: &[Spec], advance| {
            log.append_with(
                &[keyed_batch(specs, Compression::None)],
                AppendOptions { leader_epoch: 0, log_append_time: None, advance_high_watermark: advance },
            )
            .unwrap()
        };
        append(&[(Some(1), Some(1), 0)], true);
        append(&[(Some(1), Some(2), 0)], true);
        append(&[(Some(1), Some(3), 0)], false);
        append(&[(Some(1), Some(4), 0)], false);
        assert_eq!(log.offsets().high_watermark, 2);
        log.compact(10, &config(0), &mut |_| {}).unwrap();
        let offsets: Vec<i64> = log.read_for_follower(0, usize::MAX).map(|r| {
            let mut buf = r.records;
            let mut out = Vec::new();
            while !buf.is_empty() {
                out.extend(RecordBatchDecoder::decode(&mut buf).unwrap().records.iter().map(|r| r.offset));
            }
            out
        }).unwrap();
        assert_eq!(offsets, vec![1, 2, 3], "only offsets below the high watermark (2) are cleaned");
        log.advance_high_watermark(4).unwrap();
        log.compact(10, &config(0), &mut |_| {}).unwrap();
        assert_eq!(read_all(&log).iter().map(|r| r.0).collect::<Vec<_>>(), vec![2, 3], "the last batch stays");
    }

    fn a_follower_replicates_across_compacted_ranges_and_holds_the_same_log(kind: Kind) {
        let (a, b) = (Disk::new(kind), Disk::new(kind));
        let (leader_store, follower_store) = (open(&a), open(&b));
        let leader = leader_store.open_log(1).unwrap();
        let follower = follower_store.open_log(1).unwrap();
        for i in 0..20u16 {
            let specs = [(Some((i % 3) as u8), Some(i), 0), (Some(7), Some(i), 0)];
            leader.append(&[keyed_batch(&specs, CODECS[usize::from(i) % 5])], 0).unwrap();
        }
        leader.compact(10, &config(0), &mut |_| {}).unwrap().unwrap();
        loop {
            let end = follower.offsets().log_end_offset;
            let fetched = leader.read_for_follower(end, 100).unwrap().records;
            if fetched.is_empty() {
                break;
            }
            follower.append_replicated(&fetched).unwrap();
        }
        follower.advance_high_watermark(leader.offsets().high_watermark).unwrap();
        assert_eq!(follower.offsets(), leader.offsets());
        assert_eq!(read_all(&follower), read_all(&leader));
        let survivors: Vec<i64> = read_all(&leader).iter().map(|r| r.0).collect();
        assert_eq!(survivors, vec![32, 34, 36, 37, 38, 39]);
        // ListOffsets by timestamp reads a batch with gaps in its offset deltas.
        assert_eq!(leader.offset_for_timestamp(0).unwrap(), Some((32, 0)));
    }

    fn aborted_data_goes_first_then_its_marker_and_index_entry(kind: Kind) {
        let dir = Disk::new(kind);
        {
            let log = open(&dir).open_log(1).unwrap();
            log.append(&[txn_keyed(&[1, 2], 5)], 0).unwrap(); // 0-1, aborted
            log.append(&[txn_keyed(&[1, 3], 6)], 0).unwrap(); // 2-3, committed
            log.append(&[marker(Abort, 5, 0)], 0).unwrap(); // 4
            log.append(&[marker(Commit, 6, 0)], 0).unwrap(); // 5
            log.append(&[keyed_batch(&[(Some(9), Some(9), 0)], Compression::None)], 0).unwrap(); // 6
            let offsets = log.offsets();
            log.compact(1_000, &config(10_000), &mut |_| {}).unwrap().unwrap();
            assert_eq!(bases(&log), vec![2, 4, 5, 6], "the aborted batch goes, both markers stay");
            assert_eq!(log.offsets(), offsets);
            let read = log.read_committed(0, usize::MAX).unwrap();
            assert_eq!(read.aborted.len(), 1, "its index entry stays with the marker");
            // The committed key 1 (offset 2) survived: the aborted key 1 never entered the map.
            assert_eq!(read_all(&log)[0].0, 2);

            // A follower fetching the cleaned range holds no open or aborted transaction.
            let follower_dir = Disk::new(kind);
            let follower = open(&follower_dir).open_log(1).unwrap();
            follower.append_replicated(&log.read_for_follower(0, usize::MAX).unwrap().records).unwrap();
            follower.advance_high_watermark(7).unwrap();
            assert_eq!(follower.last_stable_offset(), 7);
            assert!(follower.aborted_transactions(0, 7).is_empty());

            // Past the marker's delete.retention.ms, with no data of its transaction left.
            log.compact(20_000, &config(10_000), &mut |_| {}).unwrap().unwrap();
            assert_eq!(bases(&log), vec![2, 5, 6], "the ABORT marker goes; the COMMIT has data");
            assert!(log.aborted_transactions(0, 7).is_empty());
            assert_eq!(log.size_bytes(), log.read(0, usize::MAX).unwrap().records.len() as u64);
        }
        let log = open(&dir).open_log(1).unwrap();
        assert!(log.aborted_transactions(0, 7).is_empty(), "the index entry is gone on disk");
        assert_eq!(bases(&log), vec![2, 5, 6]);

        // Newer values of keys 1 and 3 empty the committed transaction, then its marker goes.
        log.append(&[keyed_batch(&[(Some(1), Some(10), 0), (Some(3), Some(11), 0)], Compression::None)], 0).unwrap(); // 7-8
        log.append(&[keyed_batch(&[(Some(9), Some(12), 0)], Compression::None)], 0).unwrap(); // 9
        log.compact(20_000, &config(10_000), &mut |_| {}).unwrap().unwrap();
        assert_eq!(bases(&log), vec![5, 6, 7, 9], "the data goes in one pass, the marker stays");
        let last = log.compact(20_001, &config(10_000), &mut |_| {}).unwrap();
        assert!(last.is_some(), "the pass that removed the data brings the cleaner back");
        assert_eq!(bases(&log), vec![6, 7, 9]);
    }

    fn retention_and_delete_records_drop_the_aborted_transactions_below_the_log_start(kind: Kind) {
        let dir = Disk::new(kind);
        {
            let log = open(&dir).open_log(1).unwrap();
            log.append(&[txn_keyed(&[1], 5)], 0).unwrap(); // 0
            log.append(&[marker(Abort, 5, 0)], 0).unwrap(); // 1
            log.append(&[txn_keyed(&[2], 6)], 0).unwrap(); // 2
            log.append(&[marker(Abort, 6, 0)], 0).unwrap(); // 3
            log.append(&[crate::log_tests::batch(1, 0)], 0).unwrap(); // 4
            assert_eq!(log.aborted_transactions(0, 5).len(), 2);
            log.delete_records_before(2).unwrap();
            assert_eq!(log.aborted_transactions(0, 5).len(), 1, "5's ended at 1, below the log start");
        }
        let log = open(&dir).open_log(1).unwrap();
        assert_eq!(log.aborted_transactions(0, 5).len(), 1, "and on disk");
    }

    fn delete_records_moves_the_log_start_and_keeps_the_batch_it_falls_in(kind: Kind) {
        let dir = Disk::new(kind);
        {
            let log = open(&dir).open_log(1).unwrap();
            for _ in 0..4 {
                log.append(&[crate::log_tests::batch(5, 0)], 0).unwrap();
            }
            let before = log.size_bytes();
            let offsets = log.delete_records_before(7).unwrap();
            assert_eq!((offsets.log_start_offset, offsets.log_end_offset), (7, 20));
            assert_eq!(log.size_bytes(), before * 3 / 4, "only the batch wholly below 7 goes");
            let first = log.read(7, 1).unwrap().records;
            assert_eq!(krait_protocol::batch::BatchHeader::parse(&first).unwrap().base_offset, 5);
            assert!(matches!(log.read(4, 1), Err(StorageError::OffsetOutOfRange { .. })));
            assert_eq!(log.delete_records_before(3).unwrap().log_start_offset, 7, "never backwards");
            assert_eq!(log.delete_records_before(99).unwrap().log_start_offset, 20, "at most the high watermark");
        }
        let log = open(&dir).open_log(1).unwrap();
        assert_eq!(log.offsets().log_start_offset, 20, "durable");
    }

    fn a_follower_behind_its_leaders_log_start_starts_over_there(kind: Kind) {
        let dir = Disk::new(kind);
        let offsets = {
            let log = open(&dir).open_log(1).unwrap();
            log.append(&[crate::log_tests::batch(5, 0)], 0).unwrap();
            let offsets = log.truncate_fully_and_start_at(40).unwrap();
            assert_eq!((offsets.log_start_offset, offsets.high_watermark, offsets.log_end_offset), (40, 40, 40));
            assert_eq!(log.size_bytes(), 0);
            offsets
        };
        let reopened = open(&dir).open_log(1).unwrap();
        assert_eq!(reopened.offsets(), offsets);
    }
}

/// Not a test: prints how fast a pass cleans (`cargo test --release -p krait-storage --lib
/// compaction_throughput -- --ignored --nocapture`).
#[test]
#[ignore = "benchmark: prints compaction throughput"]
fn compaction_throughput() {
    for (name, codec) in [
        ("uncompressed", Compression::None),
        ("lz4", Compression::Lz4),
    ] {
        let dir = Disk::new(Kind::RocksDb);
        let log = open(&dir).open_log(1).unwrap();
        let value = "x".repeat(100);
        let (batches, per_batch, keys) = (2_000u32, 100u32, 10_000u32);
        for b in 0..batches {
            let records: Vec<_> = (0..per_batch)
                .map(|i| {
                    let mut r = record(i64::from(i), 0, value.clone());
                    let n = (b * per_batch + i).wrapping_mul(2_654_435_761) % keys;
                    r.key = Some(Bytes::from(format!("key-{n}")));
                    r
                })
                .collect();
            let batch = validate_batches(&encode(&records, codec))
                .unwrap()
                .remove(0);
            log.append(&[batch], 0).unwrap();
        }
        let started = std::time::Instant::now();
        let stats = log.compact(1, &config(0), &mut |_| {}).unwrap().unwrap();
        let secs = started.elapsed().as_secs_f64();
        println!(
            "compaction {name}: {} records in {batches} batches over {keys} keys: cleaned {:.1} MB (read {:.1} MB) to {:.1} MB in {secs:.2} s = {:.1} MB/s of log cleaned, {} records removed",
            batches * per_batch,
            stats.bytes_before as f64 / 1e6,
            stats.bytes_read as f64 / 1e6,
            stats.bytes_after as f64 / 1e6,
            stats.bytes_before as f64 / 1e6 / secs,
            stats.records_removed,
        );
    }
}
