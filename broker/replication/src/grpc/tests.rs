//! Specifications of the gRPC transport: three brokers in one process, each with its own
//! RocksDB, serving its replica manager on a loopback port and fetching from the others through
//! its own `GrpcTransport`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use krait_image::BrokerId;
use krait_image::isr::AcksAll;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::grpc::{GrpcTransport, ReplicationService};
use crate::test_support::{self, Cluster, batch, eventually, now_ms};
use crate::*;

/// Long enough that a follower fetching normally on a busy two-core machine never lags.
const LAG_MAX_MS: i64 = 500;

/// The test cluster over gRPC. Servers stop when it is dropped.
struct GrpcCluster {
    c: Cluster,
    transports: Vec<Arc<GrpcTransport>>,
    addresses: BTreeMap<BrokerId, String>,
    _stop: Vec<oneshot::Sender<()>>,
}

/// Brokers 1, 2, 3 of [`test_support::cluster`], each serving its manager on 127.0.0.1. No
/// broker knows another's address yet and no fetcher runs.
async fn grpc_cluster() -> GrpcCluster {
    let c = test_support::cluster();
    let (mut transports, mut addresses, mut stops) = (Vec::new(), BTreeMap::new(), Vec::new());
    for manager in &c.managers {
        let transport = Arc::new(GrpcTransport::new());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        addresses.insert(
            manager.broker_id(),
            listener.local_addr().unwrap().to_string(),
        );
        let service =
            ReplicationService::server_with_faults(manager.clone(), transport.fault_switch());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(
            Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(
                    TcpIncoming::from(listener).with_nodelay(Some(true)),
                    async {
                        let _ = stopped.await;
                    },
                ),
        );
        transports.push(transport);
        stops.push(stop);
    }
    GrpcCluster {
        c,
        transports,
        addresses,
        _stop: stops,
    }
}

impl GrpcCluster {
    /// Gives every broker every address, as cluster metadata would.
    fn publish_addresses(&self) {
        for t in &self.transports {
            t.set_addresses(self.addresses.clone());
        }
    }

    fn start_fetchers(&self) {
        for (m, t) in self.c.managers.iter().zip(&self.transports) {
            m.ensure_fetchers(t);
        }
    }

    async fn running() -> Self {
        let g = grpc_cluster().await;
        g.publish_addresses();
        g.start_fetchers();
        g
    }

    /// Appends `values` as one batch on leader 1 and wakes parked fetches; returns the end offset.
    fn produce(&self, values: &[&str]) -> i64 {
        let info = self.c.replicas[0]
            .append_as_leader(&[batch(values)], None, None)
            .unwrap();
        self.c.managers[0].notify_appended();
        info.last_offset + 1
    }

    /// The fetch broker `follower` would send leader 1 now, without a long poll.
    fn fetch_request(&self, follower: BrokerId) -> FetchRequest {
        let partitions = self.c.managers[follower as usize - 1]
            .fetches_by_leader()
            .remove(&1)
            .expect("following 1");
        FetchRequest {
            replica_id: follower,
            max_wait_ms: 0,
            max_bytes: 1 << 20,
            partitions,
        }
    }
}

fn everything(replica: &PartitionReplica) -> Bytes {
    replica
        .log()
        .read_for_follower(0, usize::MAX)
        .unwrap()
        .records
}

fn replicated(replica: &PartitionReplica, end: i64) -> bool {
    let o = replica.log().offsets();
    o.log_end_offset == end && o.high_watermark == end
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_receive_every_batch_byte_identical_and_acks_all_completes() {
    let g = GrpcCluster::running().await;
    let leader = &g.c.replicas[0];
    let mut end = 0;
    for i in 0..30 {
        end = g.produce(&["x", "y"]);
        if i % 10 == 0 {
            let status = leader.wait_acks_all(end, 3, Duration::from_secs(10)).await;
            assert_eq!(status.unwrap(), AcksAll::Complete);
        }
    }
    assert_eq!(end, 60);
    eventually(
        "every replica has all 60 records below the high watermark",
        || g.c.replicas.iter().all(|r| replicated(r, end)),
    )
    .await;
    for follower in &g.c.replicas[1..] {
        assert_eq!(everything(follower), everything(leader));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_beyond_grpcs_default_4_mib_message_limit_replicates() {
    let g = GrpcCluster::running().await;
    let large = "r".repeat(6 << 20);
    let end = g.produce(&[&large]);
    eventually("both followers hold the 6 MiB batch", || {
        g.c.replicas.iter().all(|r| replicated(r, end))
    })
    .await;
    assert_eq!(everything(&g.c.replicas[2]), everything(&g.c.replicas[0]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_follower_stops_advancing_leaves_the_isr_and_rejoins_after_healing() {
    let g = GrpcCluster::running().await;
    let leader = &g.c.replicas[0];
    let first = g.produce(&["a"]);
    let all_have_it = leader.wait_acks_all(first, 3, Duration::from_secs(10));
    assert_eq!(all_have_it.await.unwrap(), AcksAll::Complete);

    // A network partition between 1 and 3: 3 cannot call 1, and 1 refuses 3.
    g.transports[2].cut(BTreeSet::from([1]));
    g.transports[0].cut(BTreeSet::from([3]));
    let second = g.produce(&["b"]);
    let pending = leader.wait_acks_all(second, 2, Duration::from_millis(300));
    assert_eq!(pending.await.unwrap(), AcksAll::Pending, "3 is in the ISR");

    let mut shrunk = None;
    eventually("the leader asks to drop 3", || {
        shrunk = leader.isr_change(now_ms(), LAG_MAX_MS);
        shrunk.is_some()
    })
    .await;
    assert_eq!(shrunk.as_deref(), Some(&[1, 2][..]));
    leader.lead(0, &[1, 2, 3], &[1, 2], now_ms()).unwrap();
    let done = leader.wait_acks_all(second, 2, Duration::from_secs(5));
    assert_eq!(done.await.unwrap(), AcksAll::Complete);

    // Every fetch 3 had in flight ended before it was judged lagging: it gets nothing more.
    let third = g.produce(&["c"]);
    eventually("2 has the third batch", || {
        replicated(&g.c.replicas[1], third)
    })
    .await;
    let cut_off = g.c.replicas[2].log().offsets().log_end_offset;
    assert!(cut_off < third, "3 is at {cut_off}, the leader at {third}");

    g.transports[2].heal();
    g.transports[0].heal();
    eventually("3 catches up and the leader asks to readmit it", || {
        leader.isr_change(now_ms(), LAG_MAX_MS) == Some(vec![1, 2, 3])
    })
    .await;
    leader.lead(0, &[1, 2, 3], &[1, 2, 3], now_ms()).unwrap();
    assert_eq!(leader.isr(), vec![1, 2, 3]);
    assert_eq!(everything(&g.c.replicas[2]), everything(leader));
    let acks_all_of_three = leader.wait_acks_all(third, 3, Duration::from_secs(5));
    assert_eq!(acks_all_of_three.await.unwrap(), AcksAll::Complete);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_or_unreachable_leader_fails_the_fetch_until_its_address_is_known() {
    let g = grpc_cluster().await;
    let unknown = g.transports[2].fetch(1, g.fetch_request(3)).await;
    let error = unknown.expect_err("3 knows no address for 1");
    assert_eq!(error.leader, 1);
    assert!(error.reason.contains("no address"), "{error}");
    assert!(!error.connection_lost, "no connection was tried");

    // A port nobody listens on any more: connecting is refused.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    g.transports[1].set_addresses(BTreeMap::from([(1, closed)]));
    let unreachable = tokio::time::timeout(
        Duration::from_secs(5),
        g.transports[1].fetch(1, g.fetch_request(2)),
    );
    let error = unreachable.await.unwrap().expect_err("nothing listens");
    assert_eq!(error.leader, 1);
    assert!(error.connection_lost, "a refused connection: {error}");

    // The fetchers keep retrying: once the addresses are right, both followers catch up.
    g.start_fetchers();
    let end = g.produce(&["late"]);
    g.publish_addresses();
    eventually(
        "both followers replicate once they know 1's address",
        || g.c.replicas.iter().all(|r| replicated(r, end)),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_fails_at_once_at_the_follower_and_as_unavailable_at_the_leader() {
    let g = grpc_cluster().await;
    g.publish_addresses();
    let (follower, leader) = (&g.transports[1], &g.transports[0]);

    follower.cut(BTreeSet::from([1]));
    let at_follower = tokio::time::timeout(
        Duration::from_secs(1),
        follower.fetch(1, g.fetch_request(2)),
    );
    let error = at_follower.await.unwrap().expect_err("cut at the follower");
    assert!(error.reason.contains("cut off"), "{error}");
    assert!(!error.connection_lost, "a cut proves nothing: {error}");
    follower.heal();

    leader.cut(BTreeSet::from([2]));
    let error = follower
        .fetch(1, g.fetch_request(2))
        .await
        .expect_err("refused by the leader");
    assert!(error.reason.contains("Unavailable"), "{error}");
    assert!(!error.connection_lost, "the leader answered: {error}");
    leader.heal();

    let answers = follower.fetch(1, g.fetch_request(2)).await.unwrap();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].error, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_connection_closes_under_a_parked_fetch_is_lost() {
    let g = grpc_cluster().await;
    // 2 reaches 1 through a relay: ending it closes the connection (and refuses new ones), as
    // the death of 1's process would.
    let relay = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let via = relay.local_addr().unwrap().to_string();
    let target = g.addresses[&1].clone();
    let relay = tokio::spawn(async move {
        let (mut client, _) = relay.accept().await.unwrap();
        let mut server = tokio::net::TcpStream::connect(target).await.unwrap();
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    });
    g.transports[1].set_addresses(BTreeMap::from([(1, via)]));
    // Nothing new on 1: the fetch is parked for its whole wait.
    let mut parked = g.fetch_request(2);
    parked.max_wait_ms = 10_000;
    let follower = g.transports[1].clone();
    let call = tokio::spawn(async move { follower.fetch(1, parked).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!call.is_finished(), "parked at the leader");
    relay.abort();
    let error = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("the closed connection fails the call at once")
        .unwrap()
        .expect_err("no answer");
    assert!(error.connection_lost, "{error}");
}
