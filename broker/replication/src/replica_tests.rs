//! Specifications of leader and follower replicas, three brokers in one process, each with its
//! own RocksDB, exchanging fetches directly.

use std::time::Duration;

use bytes::Bytes;
use krait_image::isr::AcksAll;

use crate::test_support::{Broker, batch, broker};
use crate::*;

const LAG_MAX_MS: i64 = 10_000;

/// One fetch round trip from `follower` to `leader`.
fn pump(leader: &PartitionReplica, follower: &PartitionReplica, now_ms: i64) {
    let (leader_id, request) = follower.next_fetch("t", 0).expect("following");
    let fetched = leader.serve_fetch(&request, 1 << 20, now_ms);
    follower
        .apply_fetched(&fetched, leader_id, request.current_leader_epoch)
        .unwrap();
}

fn everything(replica: &PartitionReplica) -> Bytes {
    replica
        .log()
        .read_for_follower(0, usize::MAX)
        .unwrap()
        .records
}

fn three_brokers(epoch: i32) -> [Broker; 3] {
    let brokers = [broker(1), broker(2), broker(3)];
    brokers[0]
        .replica
        .lead(epoch, &[1, 2, 3], &[1, 2, 3], 0)
        .unwrap();
    brokers[1].replica.follow(1, epoch);
    brokers[2].replica.follow(1, epoch);
    brokers
}

#[test]
fn the_high_watermark_moves_only_when_every_isr_member_has_the_records() {
    let [b1, b2, b3] = three_brokers(0);
    let info = b1
        .replica
        .append_as_leader(&[batch(&["a", "b"])], None, Some(2))
        .unwrap();
    assert_eq!(info.offsets.high_watermark, 0);
    assert_eq!(b1.replica.acks_all(2, 2).unwrap(), AcksAll::Pending);
    pump(&b1.replica, &b2.replica, 1); // 2 gets the records
    pump(&b1.replica, &b2.replica, 2); // and says so
    assert_eq!(
        b1.replica.log().offsets().high_watermark,
        0,
        "3 has nothing yet"
    );
    pump(&b1.replica, &b3.replica, 3);
    pump(&b1.replica, &b3.replica, 4);
    assert_eq!(b1.replica.log().offsets().high_watermark, 2);
    assert_eq!(b1.replica.acks_all(2, 2).unwrap(), AcksAll::Complete);
    pump(&b1.replica, &b2.replica, 5);
    assert_eq!(
        b2.replica.log().offsets().high_watermark,
        2,
        "followers learn it"
    );
    assert_eq!(everything(&b2.replica), everything(&b1.replica));
}

#[test]
fn the_leader_reports_each_followers_lag_as_of_its_last_fetch() {
    let [b1, b2, b3] = three_brokers(0);
    b1.replica
        .append_as_leader(&[batch(&["a", "b", "c"])], None, None)
        .unwrap();
    assert_eq!(b1.replica.follower_lags(), vec![(2, 3), (3, 3)]);
    pump(&b1.replica, &b2.replica, 1); // 2 fetches from 0 and gets all three
    pump(&b1.replica, &b2.replica, 2); // and fetches from 3
    assert_eq!(b1.replica.follower_lags(), vec![(2, 0), (3, 3)]);
    pump(&b1.replica, &b3.replica, 3);
    assert_eq!(
        b1.replica.follower_lags(),
        vec![(2, 0), (3, 3)],
        "3's first fetch was from 0"
    );
    assert!(
        b2.replica.follower_lags().is_empty(),
        "followers report none"
    );
}

#[test]
fn a_follower_starting_over_inside_the_leaders_first_batch_takes_the_whole_batch() {
    // DeleteRecords put the leader's log start at 6, inside its one batch of offsets 0-9.
    let (b1, b2) = (broker(1), broker(2));
    b1.replica.lead(0, &[1, 2], &[1], 0).unwrap();
    let values: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    b1.replica
        .append_as_leader(&[batch(&values)], None, None)
        .unwrap();
    b1.replica.log().delete_records_before(6).unwrap();
    b2.replica.follow(1, 0);
    pump(&b1.replica, &b2.replica, 1); // from 0: below the leader's log start, start over at 6
    let offsets = b2.replica.log().offsets();
    assert_eq!((offsets.log_start_offset, offsets.log_end_offset), (6, 6));
    pump(&b1.replica, &b2.replica, 2); // from 6: the batch at 0, which holds 6
    let offsets = b2.replica.log().offsets();
    assert_eq!(
        (offsets.log_start_offset, offsets.log_end_offset),
        (6, 10),
        "the whole batch, and the leader's log start"
    );
    let from_start =
        |r: &PartitionReplica| r.log().read_for_follower(6, usize::MAX).unwrap().records;
    assert_eq!(from_start(&b2.replica), from_start(&b1.replica));
}

#[test]
fn acks_all_below_min_isr_is_refused_before_anything_is_appended() {
    let b1 = broker(1);
    b1.replica.lead(0, &[1, 2, 3], &[1], 0).unwrap();
    let refused = b1.replica.append_as_leader(&[batch(&["a"])], None, Some(2));
    assert!(matches!(
        refused,
        Err(ReplicaError::NotEnoughReplicas { isr: 1, min: 2 })
    ));
    assert_eq!(b1.replica.log().offsets().log_end_offset, 0);
    // acks=1 still goes, and an ISR of the leader alone commits at once.
    let info = b1
        .replica
        .append_as_leader(&[batch(&["a"])], None, None)
        .unwrap();
    assert_eq!(info.offsets.high_watermark, 1);
}

#[test]
fn a_lagging_follower_leaves_the_isr_and_rejoins_once_caught_up() {
    let [b1, b2, b3] = three_brokers(0);
    b1.replica
        .append_as_leader(&[batch(&["a"])], None, None)
        .unwrap();
    pump(&b1.replica, &b2.replica, 1_000);
    pump(&b1.replica, &b2.replica, 1_000);
    assert_eq!(b1.replica.isr_change(LAG_MAX_MS, LAG_MAX_MS), None);
    pump(&b1.replica, &b2.replica, 20_000);
    let shrunk = b1.replica.isr_change(20_001, LAG_MAX_MS).unwrap();
    assert_eq!(shrunk, vec![1, 2]);
    b1.replica.lead(0, &[1, 2, 3], &shrunk, 20_001).unwrap();
    assert_eq!(
        b1.replica.log().offsets().high_watermark,
        1,
        "3 no longer holds it back"
    );
    assert_eq!(b1.replica.acks_all(1, 2).unwrap(), AcksAll::Complete);
    assert_eq!(
        b1.replica.acks_all(1, 3).unwrap(),
        AcksAll::NotEnoughReplicasAfterAppend
    );

    pump(&b1.replica, &b3.replica, 21_000);
    pump(&b1.replica, &b3.replica, 21_001);
    assert_eq!(
        b1.replica.isr_change(21_002, LAG_MAX_MS),
        Some(vec![1, 2, 3])
    );
}

/// Three brokers, 1 leading one record both followers have fetched, at `now_ms`.
fn followers_caught_up_at(now_ms: i64) -> [Broker; 3] {
    let brokers = three_brokers(0);
    brokers[0]
        .replica
        .append_as_leader(&[batch(&["a"])], None, None)
        .unwrap();
    for follower in &brokers[1..] {
        pump(&brokers[0].replica, &follower.replica, now_ms);
        pump(&brokers[0].replica, &follower.replica, now_ms);
    }
    brokers
}

#[test]
fn followers_in_sync_when_their_leader_stalled_stay_in_the_isr_after_it_resumes() {
    // The leader stood still from 1 100 to 1 100 + 2 × LAG_MAX_MS: no fetch could reach it.
    let resumed = 1_100 + 2 * LAG_MAX_MS;
    let [b1, _, _] = followers_caught_up_at(1_000);
    b1.replica.excuse_stall(2 * LAG_MAX_MS, resumed);
    assert_eq!(b1.replica.isr_change(resumed, LAG_MAX_MS), None);
    // Without the excuse the same check drops both.
    let [c1, _, _] = followers_caught_up_at(1_000);
    assert_eq!(c1.replica.isr_change(resumed, LAG_MAX_MS), Some(vec![1]));
}

#[test]
fn a_follower_that_holds_the_high_watermark_back_is_dropped_not_readmitted() {
    let [b1, b2, b3] = three_brokers(0);
    pump(&b1.replica, &b3.replica, 0); // 3 is known to be at offset 0, then goes silent
    b1.replica
        .append_as_leader(&[batch(&["a"])], None, None)
        .unwrap();
    pump(&b1.replica, &b2.replica, 1);
    pump(&b1.replica, &b2.replica, 20_000);
    assert_eq!(
        b1.replica.log().offsets().high_watermark,
        0,
        "3 holds it back"
    );
    // 3's log end (0) is at that high watermark, yet it lags: it must leave, not stay.
    assert_eq!(b1.replica.isr_change(20_001, LAG_MAX_MS), Some(vec![1, 2]));
}

#[test]
fn a_deposed_leaders_unreplicated_records_are_truncated_by_its_new_leaders_epoch() {
    let [b1, b2, _b3] = three_brokers(0);
    b1.replica
        .append_as_leader(&[batch(&["a", "b"])], None, None)
        .unwrap();
    pump(&b1.replica, &b2.replica, 1);
    // Written by 1 but never fetched: not acknowledged with acks=all, and about to be lost.
    b1.replica
        .append_as_leader(&[batch(&["lost"])], None, None)
        .unwrap();

    b2.replica.lead(1, &[1, 2, 3], &[2, 3], 10).unwrap();
    b2.replica
        .append_as_leader(&[batch(&["c"])], None, None)
        .unwrap();
    b1.replica.follow(2, 1);
    pump(&b2.replica, &b1.replica, 11); // diverged: truncate to where epoch 0 ends on 2
    assert_eq!(b1.replica.log().offsets().log_end_offset, 2);
    pump(&b2.replica, &b1.replica, 12);
    assert_eq!(everything(&b1.replica), everything(&b2.replica));
    assert_eq!(b1.replica.log().end_offset_for_epoch(0), (0, 2));
    assert_eq!(b1.replica.log().latest_epoch(), Some(1));
}

#[test]
fn fetches_at_a_stale_or_future_epoch_or_from_strangers_are_refused() {
    let [b1, _b2, _b3] = three_brokers(3);
    let (_, mut request) = {
        let f = broker(2);
        f.replica.follow(1, 3);
        f.replica.next_fetch("t", 0).unwrap()
    };
    request.current_leader_epoch = 2;
    assert_eq!(
        b1.replica.serve_fetch(&request, 1024, 0).error,
        Some(ReplicaFetchError::FencedLeaderEpoch)
    );
    request.current_leader_epoch = 4;
    assert_eq!(
        b1.replica.serve_fetch(&request, 1024, 0).error,
        Some(ReplicaFetchError::UnknownLeaderEpoch)
    );
    request.current_leader_epoch = 3;
    request.replica_id = 9;
    assert_eq!(
        b1.replica.serve_fetch(&request, 1024, 0).error,
        Some(ReplicaFetchError::NotAReplica)
    );
    b1.replica.follow(2, 4);
    request.replica_id = 2;
    assert_eq!(
        b1.replica.serve_fetch(&request, 1024, 0).error,
        Some(ReplicaFetchError::NotLeaderOrFollower)
    );
    assert!(matches!(
        b1.replica.append_as_leader(&[batch(&["x"])], None, None),
        Err(ReplicaError::NotLeader)
    ));
}

#[tokio::test]
async fn an_acks_all_wait_completes_when_the_last_isr_member_fetches() {
    let [b1, b2, b3] = three_brokers(0);
    let b1 = std::sync::Arc::new(b1);
    b1.replica
        .append_as_leader(&[batch(&["a"])], None, Some(3))
        .unwrap();
    let waiter = {
        let b1 = b1.clone();
        tokio::spawn(async move {
            b1.replica
                .wait_acks_all(1, 3, Duration::from_secs(10))
                .await
        })
    };
    for now in 1..=2 {
        pump(&b1.replica, &b2.replica, now);
        pump(&b1.replica, &b3.replica, now);
    }
    assert_eq!(waiter.await.unwrap().unwrap(), AcksAll::Complete);
    let timed_out = b1
        .replica
        .wait_acks_all(5, 3, Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(timed_out, AcksAll::Pending);
}

#[test]
fn a_follower_caught_up_at_a_fetch_joins_under_load_and_holds_the_high_watermark_meanwhile() {
    let (b1, b2) = (broker(1), broker(2));
    b1.replica.lead(0, &[1, 2], &[1], 0).unwrap();
    b2.replica.follow(1, 0);
    b1.replica
        .append_as_leader(&[batch(&["a"])], None, None)
        .unwrap();
    pump(&b1.replica, &b2.replica, 10); // 2 copies offset 0
    pump(&b1.replica, &b2.replica, 20); // and fetches at the high watermark (1)
    // The producer keeps writing: by the time the ISR is judged, 2 is behind again.
    b1.replica
        .append_as_leader(&[batch(&["b"])], None, None)
        .unwrap();
    assert_eq!(b1.replica.log().offsets().high_watermark, 2);
    assert_eq!(b1.replica.isr_change(30, LAG_MAX_MS), Some(vec![1, 2]));
    // Until the controller commits it, 2 already counts: the high watermark waits for it.
    b1.replica
        .append_as_leader(&[batch(&["c"])], None, None)
        .unwrap();
    assert_eq!(b1.replica.log().offsets().high_watermark, 2);
    pump(&b1.replica, &b2.replica, 40);
    pump(&b1.replica, &b2.replica, 50);
    assert_eq!(b1.replica.log().offsets().high_watermark, 3);
}

#[test]
fn an_answer_from_a_leader_no_longer_followed_is_dropped() {
    let [b1, b2, _b3] = three_brokers(0);
    b1.replica
        .append_as_leader(&[batch(&["a"])], None, None)
        .unwrap();
    let (_, request) = b2.replica.next_fetch("t", 0).unwrap();
    let late = b1.replica.serve_fetch(&request, 1 << 20, 1);
    // Meanwhile 2 moved on to follow 3 at epoch 1.
    b2.replica.follow(3, 1);
    assert!(matches!(
        b2.replica.apply_fetched(&late, 1, 0),
        Err(ReplicaError::StaleAnswer)
    ));
    assert_eq!(b2.replica.log().offsets().log_end_offset, 0);
}
