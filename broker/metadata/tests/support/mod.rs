//! A cluster of metadata quorum nodes in one process: real RocksDB in a temporary directory per
//! node, real gRPC on 127.0.0.1. Nodes can be stopped, restarted from their data directory and
//! cut off from the others. Every wait is on a condition with a deadline.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use krait_image::{BrokerRegistration, ClusterImage, MetadataRecord};
use krait_metadata::{MetadataQuorum, QuorumConfig, RaftKv, ServerHandle};
use openraft::ServerState;
use tokio::net::TcpListener;

/// How long any awaited condition may take: generous, the machine is shared and slow.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub struct Node {
    pub quorum: Option<MetadataQuorum>,
    server: Option<ServerHandle>,
    listener: Option<TcpListener>,
    addr: SocketAddr,
    dir: PathBuf,
}

pub struct Cluster {
    pub nodes: BTreeMap<i32, Node>,
    voters: BTreeMap<i32, String>,
    /// Applied to every node's config as it starts (tests shrink snapshot thresholds, ...).
    pub tune: fn(i32, &mut QuorumConfig),
    _root: tempfile::TempDir,
}

/// Timings for a test: fast, but with room for a loaded machine.
pub fn test_timings(_id: i32, config: &mut QuorumConfig) {
    config.heartbeat_interval_ms = 50;
    config.election_timeout_min_ms = 300;
    config.election_timeout_max_ms = 600;
}

impl Cluster {
    /// Reserves a port and a data directory per voter; nothing runs yet.
    pub async fn new(ids: &[i32]) -> Self {
        let root = tempfile::tempdir().unwrap();
        let mut nodes = BTreeMap::new();
        let mut voters = BTreeMap::new();
        for id in ids {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            voters.insert(*id, addr.to_string());
            let node = Node {
                quorum: None,
                server: None,
                listener: Some(listener),
                addr,
                dir: root.path().join(format!("broker-{id}")),
            };
            nodes.insert(*id, node);
        }
        Self {
            nodes,
            voters,
            tune: test_timings,
            _root: root,
        }
    }

    /// Reserves a port and a data directory for observer `id` (not a voter); returns its
    /// address. Nothing runs yet.
    pub async fn add_observer(&mut self, id: i32) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let node = Node {
            quorum: None,
            server: None,
            listener: Some(listener),
            addr,
            dir: self._root.path().join(format!("broker-{id}")),
        };
        self.nodes.insert(id, node);
        addr.to_string()
    }

    /// Starts (or restarts) node `id` from its data directory and serves its Raft service.
    pub async fn start(&mut self, id: i32) -> MetadataQuorum {
        let mut config = QuorumConfig::new(id, self.voters.clone());
        (self.tune)(id, &mut config);
        let node = self.nodes.get_mut(&id).unwrap();
        let store = open_store(node).await;
        let quorum = MetadataQuorum::start(config, store).await.unwrap();
        let listener = match node.listener.take() {
            Some(listener) => listener,
            None => TcpListener::bind(node.addr).await.unwrap(),
        };
        node.server = Some(quorum.serve_on(listener));
        node.quorum = Some(quorum.clone());
        quorum
    }

    /// Stops node `id` as a crash would leave it: Raft stopped, server gone, database closed.
    pub async fn stop(&mut self, id: i32) {
        let node = self.nodes.get_mut(&id).unwrap();
        if let Some(quorum) = node.quorum.take() {
            quorum.shutdown().await;
        }
        if let Some(server) = node.server.take() {
            server.stop().await;
        }
    }

    /// Takes stopped node `id`'s data directory away, as a lost volume would (moved aside:
    /// the stopped node's database may still be finishing its background work in it).
    pub fn wipe(&mut self, id: i32) {
        let node = &self.nodes[&id];
        assert!(node.quorum.is_none(), "stop node {id} before wiping it");
        std::fs::rename(&node.dir, node.dir.with_extension("lost")).unwrap();
    }

    pub fn quorum(&self, id: i32) -> &MetadataQuorum {
        self.nodes[&id].quorum.as_ref().expect("node is running")
    }

    pub fn running(&self) -> Vec<i32> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.quorum.is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Waits until every running node (or those in `among`) names the same leader, which is
    /// one of them and knows it leads. Returns its id.
    pub async fn agreed_leader(&self, among: &[i32]) -> i32 {
        eventually("one leader everyone agrees on", || {
            let leaders: Vec<Option<i32>> =
                among.iter().map(|id| self.quorum(*id).leader()).collect();
            let first = leaders[0]?;
            let agreed = leaders.iter().all(|l| *l == Some(first));
            (agreed && among.contains(&first) && self.quorum(first).is_leader()).then_some(first)
        })
        .await
    }

    /// Waits until every node in `among` holds an image for which `check` is true.
    pub async fn images_reach(&self, among: &[i32], check: impl Fn(&ClusterImage) -> bool) {
        for id in among {
            let mut image = self.quorum(*id).image();
            tokio::time::timeout(DEADLINE, image.wait_for(|i| check(i)))
                .await
                .unwrap_or_else(|_| panic!("node {id}'s image did not reach the condition"))
                .unwrap();
        }
    }

    pub fn image(&self, id: i32) -> Arc<ClusterImage> {
        self.quorum(id).image().borrow().clone()
    }
}

/// Opens a node's RocksDB store, waiting for a previous incarnation to release it.
async fn open_store(node: &Node) -> Arc<dyn RaftKv> {
    use krait_storage::{Store, StoreOptions};
    let started = Instant::now();
    loop {
        match Store::open(&node.dir, StoreOptions::default()) {
            Ok(store) => return Arc::new(store),
            Err(error) if started.elapsed() < DEADLINE => {
                tracing::debug!(%error, "store still held by the stopped node");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("store never released: {error}"),
        }
    }
}

/// Polls `condition` until it yields a value, failing the test after [`DEADLINE`].
pub async fn eventually<T>(what: &str, mut condition: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = condition() {
            return value;
        }
        assert!(started.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Fails the test if `future` does not finish within [`DEADLINE`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

pub fn is_leader_state(quorum: &MetadataQuorum) -> bool {
    quorum.raft_metrics().borrow().state == ServerState::Leader
}

pub fn register(id: i32) -> MetadataRecord {
    MetadataRecord::RegisterBroker(BrokerRegistration {
        id,
        rack: None,
        kafka_host: "127.0.0.1".into(),
        kafka_port: 9092,
        cluster_address: format!("127.0.0.1:{}", 19000 + id),
        listeners: Default::default(),
        incarnation: uuid::Uuid::nil(),
        directory: None,
        fenced: false,
    })
}

pub fn create_topic(name: &str, replicas: &[i32]) -> MetadataRecord {
    MetadataRecord::CreateTopic {
        name: name.into(),
        id: uuid::Uuid::nil(),
        assignments: vec![replicas.to_vec()],
        configs: BTreeMap::new(),
    }
}

/// Topic names in the image, in order.
pub fn topics(image: &ClusterImage) -> Vec<String> {
    image.topics.keys().cloned().collect()
}
