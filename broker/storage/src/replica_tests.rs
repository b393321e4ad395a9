//! Specifications of the replication operations of the partition log (follower append,
//! truncation, high watermark, leader epochs), run on both engines like `tests`.

use crate::engine::WriteSet;
use crate::epochs::{UNDEFINED_EPOCH, UNDEFINED_OFFSET};
use crate::log_tests::{Disk, Kind, batch, headers, idempotent, on_both_engines, open};
use crate::*;

/// Appends as a replicated leader would: stamped with `epoch`, high watermark left alone.
fn lead(log: &PartitionLog, n: usize, epoch: i32) -> AppendInfo {
    log.append_with(
        &[batch(n, 0)],
        AppendOptions {
            leader_epoch: epoch,
            log_append_time: None,
            advance_high_watermark: false,
        },
    )
    .unwrap()
}

on_both_engines! {
    fn a_follower_copies_the_leaders_batches_byte_exact_with_their_offsets_and_epochs(kind: Kind) {
        let (a, b) = (Disk::new(kind), Disk::new(kind));
        let (leader_store, follower_store) = (open(&a), open(&b));
        let leader = leader_store.open_log(1).unwrap();
        let follower = follower_store.open_log(7).unwrap();
        lead(&leader, 3, 0);
        lead(&leader, 2, 4);
        let fetched = leader.read_for_follower(0, usize::MAX).unwrap().records;
        let offsets = follower.append_replicated(&fetched).unwrap();
        assert_eq!((offsets.log_end_offset, offsets.high_watermark), (5, 0));
        assert_eq!(
            follower.read_for_follower(0, usize::MAX).unwrap().records,
            fetched
        );
        let epochs: Vec<i32> = headers(&fetched)
            .iter()
            .map(|h| h.partition_leader_epoch)
            .collect();
        assert_eq!(epochs, vec![0, 4]);
        for epoch in 0..6 {
            assert_eq!(
                follower.end_offset_for_epoch(epoch),
                leader.end_offset_for_epoch(epoch)
            );
        }
        assert_eq!(follower.end_offset_for_epoch(0), (0, 3));
        assert_eq!(follower.latest_epoch(), Some(4));
    }

    fn a_replicated_append_must_not_overlap_the_log_and_an_overlap_changes_nothing(kind: Kind) {
        let (a, b) = (Disk::new(kind), Disk::new(kind));
        let (leader_store, follower_store) = (open(&a), open(&b));
        let leader = leader_store.open_log(1).unwrap();
        let follower = follower_store.open_log(1).unwrap();
        lead(&leader, 3, 0);
        lead(&leader, 3, 0);
        let first = leader.read_for_follower(0, 1).unwrap().records;
        follower.append_replicated(&first).unwrap();
        assert!(matches!(
            follower.append_replicated(&first),
            Err(StorageError::NotContiguous {
                expected: 3,
                got: 0
            })
        ));
        assert_eq!(follower.offsets().log_end_offset, 3);
        assert!(
            follower
                .append_replicated(&bytes::Bytes::from_static(b"junk"))
                .is_err()
        );
    }

    fn a_replicated_append_may_skip_offsets_the_leader_compacted_away(kind: Kind) {
        let (a, b) = (Disk::new(kind), Disk::new(kind));
        let (leader_store, follower_store) = (open(&a), open(&b));
        let leader = leader_store.open_log(1).unwrap();
        let follower = follower_store.open_log(1).unwrap();
        lead(&leader, 3, 0);
        lead(&leader, 3, 0);
        let second = leader.read_for_follower(3, usize::MAX).unwrap().records;
        let offsets = follower.append_replicated(&second).unwrap();
        assert_eq!(offsets.log_end_offset, 6);
        assert_eq!(headers(&follower.read_for_follower(0, usize::MAX).unwrap().records)[0].base_offset, 3);
    }

    fn consumers_read_below_the_high_watermark_and_followers_up_to_the_log_end(kind: Kind) {
        let dir = Disk::new(kind);
        let store = open(&dir);
        let log = store.open_log(1).unwrap();
        lead(&log, 4, 0);
        assert!(log.read(0, usize::MAX).unwrap().records.is_empty());
        assert!(
            !log.read_for_follower(0, usize::MAX)
                .unwrap()
                .records
                .is_empty()
        );
        // Between the high watermark and the log end a consumer waits (a new leader's high
        // watermark can trail its predecessor's); only past the log end is out of range.
        assert!(log.read(4, 100).unwrap().records.is_empty());
        assert!(matches!(
            log.read(5, 100),
            Err(StorageError::OffsetOutOfRange {
                log_end_offset: 4,
                ..
            })
        ));
        assert_eq!(log.advance_high_watermark(2).unwrap().high_watermark, 2);
        assert_eq!(
            log.advance_high_watermark(1).unwrap().high_watermark,
            2,
            "never backwards"
        );
        assert_eq!(
            log.advance_high_watermark(99).unwrap().high_watermark,
            4,
            "never past the end"
        );
        assert_eq!(headers(&log.read(0, usize::MAX).unwrap().records).len(), 1);
    }

    fn truncation_removes_records_epochs_and_producer_batches_from_the_cut(kind: Kind) {
        let dir = Disk::new(kind);
        let store = open(&dir);
        let log = store.open_log(1).unwrap();
        lead(&log, 5, 0);
        let options = AppendOptions {
            leader_epoch: 1,
            log_append_time: None,
            advance_high_watermark: false,
        };
        log.append_with(&[idempotent(5, 42, 0, 0)], options)
            .unwrap();
        log.advance_high_watermark(7).unwrap();
        let offsets = log.truncate_to(5).unwrap();
        assert_eq!((offsets.log_end_offset, offsets.high_watermark), (5, 5));
        assert_eq!(log.latest_epoch(), Some(0));
        assert_eq!(log.end_offset_for_epoch(1), (0, 5));
        // The producer's batch went with the cut: sending it again is a new append, not a duplicate.
        let again = log
            .append_with(&[idempotent(5, 42, 0, 0)], options)
            .unwrap();
        assert!(!again.duplicate);
        assert_eq!(again.base_offset, 5);
    }

    fn truncating_inside_a_batch_removes_the_whole_batch(kind: Kind) {
        let dir = Disk::new(kind);
        let store = open(&dir);
        let log = store.open_log(1).unwrap();
        lead(&log, 3, 0);
        lead(&log, 4, 0);
        assert_eq!(log.truncate_to(5).unwrap().log_end_offset, 3);
        assert_eq!(
            log.truncate_to(9).unwrap().log_end_offset,
            3,
            "beyond the end: nothing"
        );
        assert_eq!(
            log.size_bytes(),
            headers(&log.read_for_follower(0, usize::MAX).unwrap().records)
                .iter()
                .map(|h| h.total_size() as u64)
                .sum::<u64>()
        );
    }

    fn epochs_truncation_and_high_watermark_survive_reopening(kind: Kind) {
        let dir = Disk::new(kind);
        {
            let store = open(&dir);
            let log = store.open_log(1).unwrap();
            lead(&log, 2, 0);
            lead(&log, 2, 3);
            lead(&log, 2, 5);
            log.advance_high_watermark(4).unwrap();
            log.truncate_to(4).unwrap();
        }
        let store = open(&dir);
        let log = store.open_log(1).unwrap();
        let offsets = log.offsets();
        assert_eq!((offsets.log_end_offset, offsets.high_watermark), (4, 4));
        assert_eq!(log.latest_epoch(), Some(3));
        assert_eq!(log.end_offset_for_epoch(0), (0, 2));
        assert_eq!(log.end_offset_for_epoch(5), (3, 4));
    }

    fn the_high_watermark_reaches_the_disk_at_a_checkpoint_or_with_the_logs_next_write(kind: Kind) {
        let dir = Disk::new(kind);
        {
            let store = open(&dir);
            let log = store.open_log(1).unwrap();
            lead(&log, 3, 0);
            assert_eq!(log.advance_high_watermark(2).unwrap().high_watermark, 2);
        }
        {
            let store = open(&dir);
            let log = store.open_log(1).unwrap();
            assert_eq!(log.offsets().high_watermark, 0, "moved in memory only");
            log.advance_high_watermark(2).unwrap();
            assert!(log.checkpoint_high_watermark().unwrap());
            assert!(
                !log.checkpoint_high_watermark().unwrap(),
                "nothing moved since the last checkpoint"
            );
        }
        {
            let store = open(&dir);
            let log = store.open_log(1).unwrap();
            assert_eq!(log.offsets().high_watermark, 2, "checkpointed");
            log.advance_high_watermark(3).unwrap();
            lead(&log, 1, 0);
        }
        let store = open(&dir);
        let log = store.open_log(1).unwrap();
        assert_eq!(
            (log.offsets().high_watermark, log.offsets().log_end_offset),
            (3, 4),
            "an append writes the log's state, high watermark and all"
        );
    }

    fn retention_moves_the_start_of_the_oldest_remaining_epoch(kind: Kind) {
        let dir = Disk::new(kind);
        let store = open(&dir);
        let log = store.open_log(1).unwrap();
        lead(&log, 2, 0);
        lead(&log, 2, 1);
        lead(&log, 2, 1);
        log.advance_high_watermark(6).unwrap();
        let limits = retention::RetentionLimits {
            retention_ms: -1,
            retention_bytes: 1,
        };
        let plan = log.enforce_retention(0, limits).unwrap().unwrap();
        assert_eq!(plan.new_log_start_offset, 4);
        assert_eq!(
            log.end_offset_for_epoch(0),
            (UNDEFINED_EPOCH, UNDEFINED_OFFSET)
        );
        assert_eq!(log.end_offset_for_epoch(1), (1, 6));
    }

    fn deleting_a_log_removes_its_epochs(kind: Kind) {
        let dir = Disk::new(kind);
        let store = open(&dir);
        let log = store.open_log(1).unwrap();
        lead(&log, 2, 3);
        let mut write = WriteSet::default();
        PartitionLog::delete_all(1, &mut write);
        log.write(write, "delete log").unwrap();
        drop(log);
        let reopened = store.open_log(1).unwrap();
        assert_eq!(reopened.latest_epoch(), None);
        assert_eq!(reopened.offsets().log_end_offset, 0);
    }

    fn a_new_leader_starts_its_epoch_at_the_log_end_once(kind: Kind) {
        let dir = Disk::new(kind);
        let store = open(&dir);
        let log = store.open_log(1).unwrap();
        log.become_leader(0).unwrap();
        assert_eq!(log.end_offset_for_epoch(0), (0, 0));
        lead(&log, 3, 0);
        log.become_leader(2).unwrap();
        log.become_leader(2).unwrap();
        log.become_leader(1).unwrap();
        assert_eq!(log.end_offset_for_epoch(0), (0, 3));
        assert_eq!(log.end_offset_for_epoch(1), (0, 3));
        assert_eq!(log.end_offset_for_epoch(2), (2, 3));
    }

    fn truncating_at_the_log_end_forgets_an_epoch_begun_there_without_records(kind: Kind) {
        let dir = Disk::new(kind);
        let store = open(&dir);
        let log = store.open_log(1).unwrap();
        lead(&log, 2, 0);
        // Led again at epoch 3 but never written to: the epoch covers no records.
        log.become_leader(3).unwrap();
        assert_eq!(log.latest_epoch(), Some(3));
        let offsets = log.truncate_to(2).unwrap();
        assert_eq!(offsets.log_end_offset, 2);
        assert_eq!(log.latest_epoch(), Some(0));
        drop(log);
        assert_eq!(store.open_log(1).unwrap().latest_epoch(), Some(0));
    }
}
