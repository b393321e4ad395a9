//! The cluster port with mutual TLS, attacked from outside a real `krait-broker` process: a
//! caller without a certificate or with another CA's is refused at the handshake, and a broker
//! of the cluster that claims to be another node (a replica fetch as someone else, a heartbeat
//! that would re-register another broker, a vote or a forged snapshot) is refused by the
//! services. The broker keeps serving afterwards.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use krait_image::BrokerRegistration;
use krait_metadata::proto::RaftMessage;
use krait_metadata::proto::controller_client::ControllerClient;
use krait_metadata::proto::raft_client::RaftClient;
use krait_peer::ClusterTransport;
use krait_peer::testing::TestCa as Ca;
use krait_replication::grpc::proto::replication_client::ReplicationClient;
use krait_replication::grpc::proto::{FetchPartition, FetchRequest};
use krait_server::cluster::rpc::BrokerHeartbeat;
use tonic::Code;

/// Two free loopback ports below the ephemeral range.
fn free_ports() -> (u16, u16) {
    let start = 20_000 + (std::process::id() % 10_000) as u16;
    let mut free = (start..32_000).filter(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok());
    (free.next().unwrap(), free.next().unwrap())
}

struct Broker {
    child: Child,
    kafka: SocketAddr,
    cluster: SocketAddr,
}

impl Broker {
    /// One broker, the only voter, with cluster TLS from `ca`.
    fn start(dir: &Path, ca: &Ca) -> Self {
        let bin = std::env::var_os("KRAIT_BROKER_BIN")
            .map(PathBuf::from)
            .expect("KRAIT_BROKER_BIN is not set (tests/run sets it)");
        let (kafka, cluster) = free_ports();
        let kafka = SocketAddr::from(([127, 0, 0, 1], kafka));
        let cluster = SocketAddr::from(([127, 0, 0, 1], cluster));
        let child = Command::new(bin)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg(format!("--listen={kafka}"))
            .arg("--node-id=1")
            .arg(format!("--cluster-listen={cluster}"))
            .arg(format!("--voters=1@{cluster}"))
            .arg("--cluster-tls-keystore")
            .arg(ca.keystore(Some(1)))
            .arg("--cluster-tls-truststore")
            .arg(ca.truststore())
            .env("KRAIT_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("broker.log")).unwrap())
            .spawn()
            .unwrap();
        let mut broker = Self {
            child,
            kafka,
            cluster,
        };
        broker.wait_serving(Duration::from_secs(60));
        broker
    }

    fn wait_serving(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while TcpStream::connect(self.kafka).is_err() {
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "krait-broker exited"
            );
            assert!(Instant::now() < deadline, "krait-broker not serving");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn assert_serving(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "krait-broker died"
        );
        self.wait_serving(Duration::from_secs(5));
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn channel(transport: &ClusterTransport, broker: &Broker) -> tonic::transport::Channel {
    transport
        .channel(
            &broker.cluster.to_string(),
            Duration::from_secs(2),
            Some(Duration::from_secs(10)),
        )
        .unwrap()
}

fn fetch_as(replica_id: i32, partition_replica_id: i32) -> FetchRequest {
    FetchRequest {
        replica_id,
        max_wait_ms: 0,
        max_bytes: 1024,
        partitions: vec![FetchPartition {
            topic: "t".into(),
            partition: 0,
            fetch_offset: 0,
            last_fetched_epoch: -1,
            current_leader_epoch: 0,
            replica_id: partition_replica_id,
        }],
    }
}

fn raft_message(value: serde_json::Value) -> RaftMessage {
    RaftMessage {
        payload: serde_json::to_vec(&value).unwrap(),
    }
}

fn assert_denied<T: std::fmt::Debug>(result: Result<T, tonic::Status>, expected: &str) {
    let status = result.expect_err("the call must be refused");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains(expected),
        "{:?} does not say {expected:?}",
        status.message()
    );
}

#[tokio::test]
#[ignore = "needs KRAIT_BROKER_BIN (tests/run sets it)"]
async fn the_cluster_port_refuses_strangers_and_brokers_that_claim_another_node_id() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "cluster-ca");
    let rogue = Ca::new(dir.path(), "rogue-ca");
    let mut broker = Broker::start(dir.path(), &ca);

    // No certificate, or one of another CA: no call gets through.
    for (who, transport) in [
        ("plaintext", ClusterTransport::Plaintext),
        ("another CA", rogue.transport(Some(2))),
    ] {
        let mut client = ReplicationClient::new(channel(&transport, &broker));
        let refused = client.fetch(fetch_as(2, 2)).await.unwrap_err();
        assert_ne!(refused.code(), Code::Ok, "{who}");
        assert!(
            matches!(
                refused.code(),
                Code::Unavailable | Code::Unknown | Code::Internal
            ),
            "{who}: a transport failure, not an answer: {refused:?}"
        );
    }

    // Broker 2 of this cluster's CA: it may fetch as itself, never as broker 3.
    let node2 = ca.transport(Some(2));
    let mut replication = ReplicationClient::new(channel(&node2, &broker));
    replication
        .fetch(fetch_as(2, 2))
        .await
        .expect("a fetch as itself is answered");
    assert_denied(
        replication.fetch(fetch_as(3, 3)).await,
        "node 2 cannot send a replica fetch as node 3",
    );
    assert_denied(
        replication.fetch(fetch_as(2, 3)).await,
        "node 2 cannot send a replica fetch as node 3",
    );

    // A heartbeat would register broker 5 at an address broker 2 chooses.
    let mut controller = ControllerClient::new(channel(&node2, &broker));
    let heartbeat = BrokerHeartbeat {
        registration: BrokerRegistration {
            id: 5,
            rack: None,
            kafka_host: "evil".into(),
            kafka_port: 9092,
            listeners: Default::default(),
            cluster_address: "evil:9093".into(),
            incarnation: uuid::Uuid::new_v4(),
            directory: None,
            fenced: false,
        },
    };
    assert_denied(
        controller
            .heartbeat(raft_message(serde_json::to_value(&heartbeat).unwrap()))
            .await,
        "node 2 cannot send a heartbeat as node 5",
    );

    // Raft: a vote or a snapshot in the name of the real voter, or from a broker that is no
    // voter, with a term far ahead (a snapshot like that used to replace the image).
    let mut raft = RaftClient::new(channel(&node2, &broker));
    let vote = |term: u64, node: u64| {
        serde_json::to_value(openraft::Vote::<u64>::new_committed(term, node)).unwrap()
    };
    let snapshot = |term: u64, node: u64| serde_json::json!({"vote": vote(term, node), "meta": {}, "offset": 0, "data": [], "done": true});
    assert_denied(
        raft.install_snapshot(raft_message(snapshot(1_000_000, 1)))
            .await,
        "node 2 cannot send a snapshot as node 1",
    );
    assert_denied(
        raft.install_snapshot(raft_message(snapshot(1_000_000, 2)))
            .await,
        "node 2 is not a voter",
    );
    assert_denied(
        raft.vote(raft_message(
            serde_json::json!({"vote": vote(1_000_000, 2), "last_log_id": null}),
        ))
        .await,
        "node 2 is not a voter",
    );
    broker.assert_serving();
}
