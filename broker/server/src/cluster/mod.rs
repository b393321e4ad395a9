//! This broker as a member of a cluster: its node of the metadata quorum, its registration and
//! heartbeats, its partition replicas driven by the cluster image, and — while its node leads
//! the quorum — the controller.
//!
//! A broker started without `--voters` is a cluster of one: the same quorum with itself as the
//! only voter, so one code path serves both.
//!
//! This module owns the lifecycle (start, the background loops) and the glue between the
//! image and the replicas. It must not decide placement, elections or ISR arithmetic: those are
//! `krait-image`'s pure functions.

pub mod controller;
pub mod markers;
pub mod rpc;
pub mod sync;

use krait_sync::MutexExt;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use krait_image::{ApplyError, BrokerId, BrokerRegistration, ClusterImage, MetadataRecord};
use krait_metadata::{MembershipError, MetadataQuorum, ProposeError, QuorumConfig};
use krait_peer::ClusterTransport;
use krait_replication::{FetchSettings, ReplicaManager};
use tokio::sync::watch;
use tokio::time::Instant;
use tonic::transport::Channel;

use crate::broker::Broker;
pub use crate::cluster::rpc::GrpcTransport;

/// How long a proposal may wait for a controller and for its commit.
pub const PROPOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// This broker's cluster settings, resolved from its configuration.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// How this broker talks on the cluster port: plaintext, or mutual TLS.
    pub peer: ClusterTransport,
    pub node_id: BrokerId,
    /// Every voter's id and cluster address; just this broker (with no address) when alone.
    pub voters: BTreeMap<BrokerId, String>,
    /// Where other brokers reach this one's cluster gRPC listener; `None` when alone.
    pub cluster_address: Option<String>,
    pub rack: Option<String>,
    pub kafka_host: String,
    pub kafka_port: i32,
    /// Where clients of each named listener reach this broker.
    pub listeners: BTreeMap<String, krait_image::ListenerAddress>,
    pub heartbeat_interval: Duration,
    /// The controller fences a broker it has not heard from for this long.
    pub session_timeout: Duration,
    /// A follower that has not caught up for this long leaves the ISR.
    pub replica_lag_time_max_ms: i64,
    /// Election timeouts of the metadata quorum.
    pub election_timeout_ms: (u64, u64),
    /// The most records one replica fetch response carries, asked for or served.
    pub replica_fetch_max_bytes: usize,
}

/// The cluster side of one broker.
pub struct Cluster {
    pub settings: ClusterSettings,
    pub quorum: MetadataQuorum,
    pub replicas: Arc<ReplicaManager>,
    pub transport: Arc<GrpcTransport>,
    registration: BrokerRegistration,
    pub(crate) controller: controller::ControllerState,
    clients: Mutex<BTreeMap<String, rpc::ControllerClient<Channel>>>,
    /// The latest image this broker has applied to its topics and replicas.
    applied: watch::Sender<Arc<ClusterImage>>,
    /// Set when this broker must stop: why.
    failure: watch::Sender<Option<String>>,
    /// Set by a controlled shutdown: heartbeats stop, so the broker stays fenced.
    shutting_down: AtomicBool,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node_id", &self.settings.node_id)
            .field("controller", &self.quorum.leader())
            .finish_non_exhaustive()
    }
}

/// Why an admin change through the controller failed, as the Kafka handlers report it.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error(transparent)]
    Refused(#[from] ApplyError),
    #[error(transparent)]
    Propose(#[from] ProposeError),
    #[error("the change was committed but this broker has not applied it within {0:?}")]
    NotApplied(Duration),
}

impl Cluster {
    /// Starts this broker's quorum node on `store` (the broker's RocksDB).
    pub async fn start(
        settings: ClusterSettings,
        store: Arc<krait_storage::Store>,
    ) -> anyhow::Result<Arc<Self>> {
        let mut quorum_config = QuorumConfig::new(settings.node_id, settings.voters.clone());
        (
            quorum_config.election_timeout_min_ms,
            quorum_config.election_timeout_max_ms,
        ) = settings.election_timeout_ms;
        quorum_config.heartbeat_interval_ms = (settings.election_timeout_ms.0 / 5).max(20);
        quorum_config.propose_timeout_ms = PROPOSE_TIMEOUT.as_millis() as u64;
        let quorum =
            MetadataQuorum::start_with(quorum_config, store, settings.peer.clone()).await?;
        let clock: krait_replication::Clock = Arc::new(now_ms);
        let replicas = ReplicaManager::new(
            settings.node_id,
            clock,
            FetchSettings {
                max_bytes: settings.replica_fetch_max_bytes,
                ..FetchSettings::default()
            },
        );
        let transport = Arc::new(GrpcTransport::over(settings.peer.clone()));
        let registration = BrokerRegistration {
            id: settings.node_id,
            rack: settings.rack.clone(),
            kafka_host: settings.kafka_host.clone(),
            kafka_port: settings.kafka_port,
            listeners: settings.listeners.clone(),
            cluster_address: settings.cluster_address.clone().unwrap_or_default(),
            incarnation: uuid::Uuid::new_v4(),
            directory: Some(quorum.directory()),
            fenced: false,
        };
        let (applied, _) = watch::channel(Arc::new(ClusterImage::default()));
        let (failure, _) = watch::channel(None);
        Ok(Arc::new(Self {
            controller: controller::ControllerState::default(),
            settings,
            quorum,
            replicas,
            transport,
            registration,
            clients: Mutex::new(BTreeMap::new()),
            applied,
            failure,
            shutting_down: AtomicBool::new(false),
        }))
    }

    /// Whether a controlled shutdown has begun.
    pub fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Kafka's controlled shutdown: before the broker stops, it stops heartbeating and asks the
    /// controller to fence it, which moves the leadership of its partitions to other in-sync
    /// replicas and drops it from their ISRs in the same step. Clients and followers switch
    /// while this broker still answers (with NOT_LEADER_OR_FOLLOWER), instead of waiting a
    /// session timeout for a dead leader; and when it comes back it must catch up before it is
    /// in sync again, which is what a safe rolling restart waits for. Bounded by `timeout`;
    /// skipped when no other broker is live (fencing the last one only takes its partitions
    /// offline early). Returns whether the leaderships were handed over.
    pub async fn controlled_shutdown(&self, timeout: Duration) -> bool {
        let me = self.node_id();
        let others_live = self.image().live_brokers().any(|b| b.id != me);
        if !others_live {
            return false;
        }
        self.shutting_down.store(true, Ordering::SeqCst);
        tracing::info!(
            broker = me,
            "controlled shutdown: asking the controller to fence this broker"
        );
        let moved = |image: &ClusterImage| {
            image.brokers.get(&me).is_none_or(|b| b.fenced)
                && !image
                    .topics
                    .values()
                    .flat_map(|t| &t.partitions)
                    .any(|p| p.leader == Some(me))
        };
        let deadline = Instant::now() + timeout;
        // Proposed again until it sticks: a heartbeat already on its way when heartbeats
        // stopped can still unfence this broker once.
        while Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            let fence = self.propose(vec![MetadataRecord::FenceBroker { id: me }]);
            if let Ok(Err(e)) = tokio::time::timeout(left, fence).await {
                tracing::debug!(error = %e, "controlled shutdown: fence not committed yet");
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if self
                .wait_applied(moved, left.min(Duration::from_millis(500)))
                .await
                .is_ok()
            {
                tracing::info!(broker = me, "controlled shutdown: fenced, leadership moved");
                return true;
            }
        }
        tracing::warn!(
            ?timeout,
            "controlled shutdown: leadership not moved in time; stopping anyway"
        );
        false
    }

    pub fn node_id(&self) -> BrokerId {
        self.settings.node_id
    }

    /// Whether `image` holds this process's own registration: the controller has registered
    /// this incarnation, and this broker has applied the metadata log up to that point. An
    /// image restored from the data directory holds an earlier incarnation at best (the one
    /// before a restart, or before the broker was unregistered and its volume reused), so
    /// nothing is served or replicated by it.
    pub fn registered_in(&self, image: &ClusterImage) -> bool {
        image
            .brokers
            .get(&self.node_id())
            .is_some_and(|b| b.incarnation == self.registration.incarnation)
    }

    /// Whether this broker may serve Kafka clients by `image`: registered as this process
    /// ([`Self::registered_in`]) and unfenced.
    pub fn serving_in(&self, image: &ClusterImage) -> bool {
        self.registered_in(image) && image.is_live(self.node_id())
    }

    /// The image as this broker last applied it (topics and replicas match it).
    pub fn image(&self) -> Arc<ClusterImage> {
        self.applied.borrow().clone()
    }

    /// The images this broker applies, as they are applied.
    pub fn watch_image(&self) -> watch::Receiver<Arc<ClusterImage>> {
        self.applied.subscribe()
    }

    /// The current controller (the quorum's leader), as this broker knows it.
    pub fn controller_id(&self) -> Option<BrokerId> {
        self.quorum.leader()
    }

    /// Proposes `records` through the controller, wherever it is, retrying while there is none
    /// or it moves, for up to [`PROPOSE_TIMEOUT`].
    pub async fn propose(
        &self,
        records: Vec<MetadataRecord>,
    ) -> Result<Vec<Result<(), ApplyError>>, ProposeError> {
        let deadline = Instant::now() + PROPOSE_TIMEOUT;
        loop {
            let outcome = match self.quorum.leader() {
                Some(leader) if leader == self.node_id() => {
                    self.quorum.propose(records.clone()).await
                }
                Some(leader) => self.forward(leader, records.clone()).await,
                None => Err(ProposeError::NotLeader { leader: None }),
            };
            match outcome {
                Err(ProposeError::NotLeader { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => return other,
            }
        }
    }

    /// Proposes one record and waits until this broker has applied an image where `applied`
    /// holds, so the caller's next read sees its change.
    pub async fn change(
        &self,
        record: MetadataRecord,
        applied: impl Fn(&ClusterImage) -> bool,
    ) -> Result<Arc<ClusterImage>, ChangeError> {
        let mut results = self.propose(vec![record]).await?;
        results.pop().unwrap_or(Ok(()))?;
        self.wait_applied(applied, PROPOSE_TIMEOUT).await
    }

    /// Waits until this broker has applied an image where `applied` holds.
    pub async fn wait_applied(
        &self,
        applied: impl Fn(&ClusterImage) -> bool,
        timeout: Duration,
    ) -> Result<Arc<ClusterImage>, ChangeError> {
        let mut rx = self.applied.subscribe();
        let wait = rx.wait_for(|image| applied(image));
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(image)) => Ok(image.clone()),
            _ => Err(ChangeError::NotApplied(timeout)),
        }
    }

    /// The cluster gRPC address of `broker`: from its registration, else from the configured
    /// voters, else from the quorum's membership.
    pub fn cluster_address(&self, broker: BrokerId) -> Option<String> {
        self.image()
            .brokers
            .get(&broker)
            .map(|b| b.cluster_address.clone())
            .filter(|a| !a.is_empty())
            .or_else(|| self.settings.voters.get(&broker).cloned())
            .or_else(|| self.quorum.member_address(broker))
    }

    /// Every broker to heartbeat: the configured voters and the voters of the membership the
    /// log holds now (voters change at runtime; a new controller may be one the configuration
    /// does not list).
    pub fn heartbeat_targets(&self) -> std::collections::BTreeSet<BrokerId> {
        let mut targets: std::collections::BTreeSet<BrokerId> =
            self.settings.voters.keys().copied().collect();
        targets.extend(self.quorum.membership().voters);
        targets
    }

    /// Runs a quorum call on the leader, wherever it is, retrying while there is none or it
    /// moves, for up to [`PROPOSE_TIMEOUT`] (a voter that must catch up first may take longer:
    /// the leader's own wait bounds that).
    pub async fn quorum_call(&self, call: rpc::QuorumCall) -> rpc::QuorumOutcome {
        let deadline = Instant::now() + PROPOSE_TIMEOUT;
        loop {
            let outcome = match self.quorum.leader() {
                Some(leader) if leader == self.node_id() => {
                    self.quorum_call_here(call.clone()).await
                }
                Some(leader) => match self.cluster_address(leader) {
                    Some(address) => rpc::forward_quorum_call(self.client(&address), &call)
                        .await
                        .unwrap_or_else(|e| {
                            tracing::debug!(leader, error = %e, "forwarding a quorum call failed");
                            Err(ProposeError::NotLeader { leader: None }.into())
                        }),
                    None => Err(ProposeError::NotLeader { leader: None }.into()),
                },
                None => Err(ProposeError::NotLeader { leader: None }.into()),
            };
            match outcome {
                Err(MembershipError::Propose(ProposeError::NotLeader { .. }))
                    if Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => return other,
            }
        }
    }

    /// Runs a quorum call on this broker's node, which must lead.
    pub(crate) async fn quorum_call_here(&self, call: rpc::QuorumCall) -> rpc::QuorumOutcome {
        match call {
            rpc::QuorumCall::Describe => Ok(rpc::QuorumAnswer::Described(self.quorum.describe()?)),
            rpc::QuorumCall::AddVoter { id, directory } => {
                let started = Instant::now();
                self.quorum.add_voter(id, directory).await?;
                changed(id, started, "added a voter to the metadata quorum")
            }
            rpc::QuorumCall::RemoveVoter { id, directory } => {
                let started = Instant::now();
                self.quorum.remove_voter(id, directory).await?;
                changed(id, started, "removed a voter from the metadata quorum")
            }
        }
    }

    async fn forward(
        &self,
        leader: BrokerId,
        records: Vec<MetadataRecord>,
    ) -> Result<Vec<Result<(), ApplyError>>, ProposeError> {
        let Some(address) = self.cluster_address(leader) else {
            return Err(ProposeError::NotLeader { leader: None });
        };
        let client = self.client(&address);
        rpc::forward_proposal(client, &records)
            .await
            .unwrap_or_else(|e| {
                tracing::debug!(leader, error = %e, "forwarding a proposal failed");
                Err(ProposeError::NotLeader { leader: None })
            })
    }

    pub(crate) fn client(&self, address: &str) -> rpc::ControllerClient<Channel> {
        let mut clients = self.clients.lock_unpoisoned();
        clients
            .entry(address.to_string())
            .or_insert_with(|| rpc::controller_client(&self.settings.peer, address))
            .clone()
    }

    /// Asks the broker to stop because it cannot go on as a member, saying why.
    pub fn fail(&self, why: String) {
        self.failure.send_replace(Some(why));
    }

    /// Why this broker must stop, once [`Self::fail`] was called.
    pub fn failure(&self) -> Option<String> {
        self.failure.borrow().clone()
    }

    /// Resolves with the reason once [`Self::fail`] was called.
    pub async fn failed(&self) -> String {
        let mut rx = self.failure.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(why) => why.clone().unwrap_or_default(),
            Err(_) => std::future::pending().await,
        }
    }

    /// Records that this broker applied `image`.
    fn publish_applied(&self, image: Arc<ClusterImage>) {
        self.applied.send_replace(image);
    }
}

/// Spawns the background loops of a started broker: applying the image, heartbeats, the
/// controller's duties, the leaders' ISR changes and the high watermark checkpoints. They end
/// when the runtime does.
pub fn spawn_loops(broker: &Arc<Broker>) -> Vec<tokio::task::JoinHandle<()>> {
    let cluster = broker.cluster.clone();
    vec![
        // A quorum stopped by a storage failure leaves this broker with stale metadata: fail,
        // which turns /healthz red and makes the process exit non-zero.
        tokio::spawn(async move {
            let why = cluster.quorum.fatal_error().await;
            tracing::error!(%why, "the metadata quorum stopped on a fatal error");
            cluster.fail(format!("the metadata quorum stopped: {why}"));
        }),
        tokio::spawn(watch_store(broker.clone())),
        tokio::spawn(sync::run(broker.clone())),
        tokio::spawn(controller::heartbeat_loop(broker.cluster.clone())),
        tokio::spawn(controller::controller_loop(broker.clone())),
        tokio::spawn(sync::isr_loop(broker.cluster.clone())),
        tokio::spawn(sync::checkpoint_loop(broker.cluster.clone())),
        tokio::spawn(crate::transactions::ticker(broker.clone())),
    ]
}

/// How often the broker looks whether its store has stopped writing.
const STORE_CHECK_INTERVAL: Duration = Duration::from_millis(200);

/// Fails the broker once its store has had a failed write (a full or failing disk): the store
/// writes nothing more, so the broker can neither take produce requests nor follow the
/// metadata log. Kafka's broker shuts down when its last log directory goes offline.
async fn watch_store(broker: Arc<Broker>) {
    let mut tick = tokio::time::interval(STORE_CHECK_INTERVAL);
    loop {
        tick.tick().await;
        if let Some(why) = broker.store.failure() {
            let why = format!("the data directory failed a write and is offline: {why}");
            broker.cluster.fail(why);
            return;
        }
    }
}

/// Serves the cluster gRPC services (Raft, controller, replication) on `listener`.
pub fn serve(
    cluster: &Arc<Cluster>,
    listener: tokio::net::TcpListener,
) -> tokio::task::JoinHandle<()> {
    let local: Option<SocketAddr> = listener.local_addr().ok();
    if cluster.settings.peer.is_tls() {
        tracing::info!(
            ?local,
            "cluster port: mutual TLS; callers are known by node id"
        );
    } else {
        tracing::warn!(
            ?local,
            "cluster port: plaintext; anyone who can reach it can change the cluster (set --cluster-tls-keystore and --cluster-tls-truststore)"
        );
    }
    let server = tonic::transport::Server::builder()
        .add_service(cluster.quorum.raft_service())
        .add_service(rpc::ControllerService::server(cluster.clone()))
        .add_service(rpc::replication_service(cluster))
        .serve_with_incoming(cluster.settings.peer.incoming(listener));
    tokio::spawn(async move {
        if let Err(error) = server.await {
            tracing::error!(?local, %error, "cluster gRPC server failed");
        }
    })
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Logs a committed voter change and how long it took.
fn changed(id: BrokerId, started: Instant, what: &str) -> rpc::QuorumOutcome {
    let took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    tracing::info!(broker = id, took_ms, "{what}");
    Ok(rpc::QuorumAnswer::Changed)
}
