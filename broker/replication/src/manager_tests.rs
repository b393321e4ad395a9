//! Specifications of the replica manager: fetcher loops over an in-memory transport between
//! three brokers in one process, with a way to cut a broker off.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use krait_image::BrokerId;
use krait_image::isr::AcksAll;

use crate::test_support::{self, Cluster, batch, eventually, now_ms};
use crate::*;

#[derive(Default)]
struct Loopback {
    managers: Mutex<BTreeMap<BrokerId, Arc<ReplicaManager>>>,
    cut: Mutex<BTreeSet<BrokerId>>,
    /// Leaders whose connection closes under the next fetch to them, once.
    close_next: Mutex<BTreeSet<BrokerId>>,
}

impl ReplicaTransport for Loopback {
    async fn fetch(
        &self,
        leader: BrokerId,
        request: FetchRequest,
    ) -> Result<Vec<FetchedPartition>, TransportError> {
        if self.close_next.lock().unwrap().remove(&leader) {
            return Err(TransportError {
                leader,
                reason: "connection closed".into(),
                connection_lost: true,
            });
        }
        let cut = self.cut.lock().unwrap().clone();
        let manager = self.managers.lock().unwrap().get(&leader).cloned();
        // A broker not in the map is gone: its connection is refused, as a dead process's is.
        let gone = manager.is_none();
        match manager {
            Some(m) if !cut.contains(&leader) && !cut.contains(&request.replica_id) => {
                Ok(m.serve(&request).await)
            }
            _ => Err(TransportError {
                leader,
                reason: "unreachable".into(),
                connection_lost: gone,
            }),
        }
    }
}

/// The shared three-broker cluster, connected in memory with fetchers running.
fn cluster() -> (Arc<Loopback>, Cluster) {
    connected(test_support::cluster())
}

fn connected(c: Cluster) -> (Arc<Loopback>, Cluster) {
    let transport = Arc::new(Loopback::default());
    for m in &c.managers {
        transport
            .managers
            .lock()
            .unwrap()
            .insert(m.broker_id(), m.clone());
    }
    for m in &c.managers {
        m.ensure_fetchers(&transport);
    }
    (transport, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_replicate_every_batch_and_acks_all_completes() {
    let (_transport, c) = cluster();
    let leader = &c.replicas[0];
    let mut last = None;
    for i in 0..50 {
        let info = leader
            .append_as_leader(&[batch(&["x", "y"])], None, Some(2))
            .unwrap();
        c.managers[0].notify_appended();
        last = Some(info.last_offset + 1);
        if i % 10 == 0 {
            let status = leader
                .wait_acks_all(info.last_offset + 1, 2, Duration::from_secs(10))
                .await;
            assert_eq!(status.unwrap(), AcksAll::Complete);
        }
    }
    let end = last.unwrap();
    assert_eq!(end, 100);
    eventually(
        "every replica has all 100 records and the high watermark",
        || {
            c.replicas.iter().all(|r| {
                let o = r.log().offsets();
                o.log_end_offset == end && o.high_watermark == end
            })
        },
    )
    .await;
    let reference = leader
        .log()
        .read_for_follower(0, usize::MAX)
        .unwrap()
        .records;
    for r in &c.replicas[1..] {
        assert_eq!(
            r.log().read_for_follower(0, usize::MAX).unwrap().records,
            reference
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_follower_holds_acks_all_until_it_leaves_the_isr_then_catches_up() {
    let (transport, c) = cluster();
    let leader = &c.replicas[0];
    transport.cut.lock().unwrap().insert(3);
    let info = leader
        .append_as_leader(&[batch(&["a"])], None, Some(2))
        .unwrap();
    c.managers[0].notify_appended();
    let pending = leader
        .wait_acks_all(1, 2, Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(
        pending,
        AcksAll::Pending,
        "3 is in the ISR and has not fetched"
    );

    // The controller commits the shrink the leader asks for once 3 lags past the limit.
    let lag_max_ms = 200;
    let mut shrunk = None;
    eventually("the leader asks to drop 3", || {
        shrunk = leader.isr_change(now_ms(), lag_max_ms);
        shrunk.is_some()
    })
    .await;
    assert_eq!(shrunk.clone().unwrap(), vec![1, 2]);
    leader
        .lead(0, &[1, 2, 3], &shrunk.unwrap(), now_ms())
        .unwrap();
    let done = leader
        .wait_acks_all(info.last_offset + 1, 2, Duration::from_secs(5))
        .await;
    assert_eq!(done.unwrap(), AcksAll::Complete);

    transport.cut.lock().unwrap().clear();
    eventually("3 catches up and may rejoin", || {
        leader.isr_change(now_ms(), lag_max_ms) == Some(vec![1, 2, 3])
    })
    .await;
    assert_eq!(c.replicas[2].log().offsets().log_end_offset, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetcher_stops_when_its_broker_follows_nothing_there_and_restarts_on_demand() {
    let (transport, c) = cluster();
    c.replicas[1].go_offline();
    c.replicas[2].go_offline();
    eventually("no follower fetches remain", || {
        c.managers[1].fetches_by_leader().is_empty()
    })
    .await;
    c.replicas[1].follow(1, 0);
    c.managers[1].ensure_fetchers(&transport);
    c.replicas[0]
        .append_as_leader(&[batch(&["z"])], None, None)
        .unwrap();
    c.managers[0].notify_appended();
    eventually("2 replicated again", || {
        c.replicas[1].log().offsets().log_end_offset == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_connection_is_refused_is_unreachable_until_a_fetch_gets_through() {
    let (transport, c) = cluster();
    let leader = transport.managers.lock().unwrap().remove(&1).unwrap();
    eventually("2 finds broker 1 gone", || {
        c.managers[1].unreachable_leaders() == [1].into()
    })
    .await;
    // A cut route proves nothing: only a refused or closed connection counts.
    transport.cut.lock().unwrap().insert(1);
    transport.managers.lock().unwrap().insert(1, leader);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        c.managers[1].unreachable_leaders(),
        [1].into(),
        "still not reached"
    );
    transport.cut.lock().unwrap().clear();
    eventually("a fetch reaches broker 1 again", || {
        c.managers[1].unreachable_leaders().is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_closes_under_a_fetch_is_tried_again_at_once() {
    // Any other failure waits out a minute's backoff: only the retry at once can replicate.
    let (transport, c) = connected(test_support::cluster_with(FetchSettings {
        retry_backoff: Duration::from_secs(60),
        ..test_support::test_fetch_settings()
    }));
    eventually("2 fetching from 1", || {
        c.managers[1].fetches_by_leader().contains_key(&1)
    })
    .await;
    transport.close_next.lock().unwrap().insert(1);
    // The fetches keep coming (long polls of 100 ms), so one of them meets the close; appending
    // only after it makes the follower whose fetch it was replicate on its retry, not on a
    // fetch already parked at the leader before the close.
    eventually("the close happened", || {
        transport.close_next.lock().unwrap().is_empty()
    })
    .await;
    let end = c.replicas[0]
        .append_as_leader(&[batch(&["after the close"])], None, None)
        .unwrap()
        .last_offset
        + 1;
    c.managers[0].notify_appended();
    eventually("both followers replicate at once", || {
        c.replicas[1..]
            .iter()
            .all(|r| r.log().offsets().log_end_offset == end)
    })
    .await;
    assert!(c.managers[1].unreachable_leaders().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_answers_with_no_more_than_its_own_limit_whatever_a_follower_asks_for() {
    // No fetcher runs: the follower's request is served by hand.
    let c = test_support::cluster_with(FetchSettings {
        max_bytes: 4096,
        ..test_support::test_fetch_settings()
    });
    let value = "v".repeat(1000);
    for _ in 0..20 {
        c.replicas[0]
            .append_as_leader(&[batch(&[value.as_str()])], None, None)
            .unwrap();
    }
    let partitions = c.managers[1]
        .fetches_by_leader()
        .remove(&1)
        .expect("2 follows 1");
    let request = FetchRequest {
        replica_id: 2,
        max_wait_ms: 0,
        max_bytes: usize::MAX,
        partitions,
    };
    let answers = c.managers[0].serve(&request).await;
    let bytes: usize = answers.iter().map(|a| a.records.len()).sum();
    assert!(
        bytes > 1000 && bytes <= 4096,
        "{bytes} bytes of 20 KB, against the leader's 4096"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_writes_the_high_watermarks_that_moved_since_the_last_one() {
    let (_transport, c) = cluster();
    let info = c.replicas[0]
        .append_as_leader(&[batch(&["x", "y"])], None, Some(2))
        .unwrap();
    c.managers[0].notify_appended();
    let end = info.last_offset + 1;
    eventually("every replica has the high watermark", || {
        c.replicas
            .iter()
            .all(|r| r.log().offsets().high_watermark == end)
    })
    .await;
    for m in &c.managers {
        assert_eq!(
            m.checkpoint_high_watermarks(),
            1,
            "broker {}",
            m.broker_id()
        );
        assert_eq!(
            m.checkpoint_high_watermarks(),
            0,
            "broker {}: nothing moved since",
            m.broker_id()
        );
    }
}
