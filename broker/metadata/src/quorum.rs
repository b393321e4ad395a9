//! The metadata quorum as the broker sees it: start a node, propose records, watch the image,
//! know the leader (the controller).
//!
//! This module owns the node's lifecycle (forming the cluster exactly once, shutting down) and
//! mapping openraft's errors to the broker's. It must not decide which records to propose: the
//! controller does, with `krait-image`'s pure functions.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use krait_image::{ApplyError, BrokerId, ClusterImage, MetadataRecord};
use krait_peer::ClusterTransport;
use krait_sync::MutexExt;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{ChangeMembers, Config, ServerState, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::formation::{Admission, Formation, directory_id, identify};
use crate::kv::RaftKv;
use crate::log_store::LogStore;
use crate::network::{Contacts, Network, Partition};
use crate::proto::raft_server::RaftServer;
use crate::service::LocalNode;
use crate::service::{RaftService, ServerHandle};
use crate::state_machine::StateMachine;
use crate::types::{Member, NodeId, Proposal, Raft, broker_id, node_id};

/// openraft's metrics of one node (node ids are broker ids as `u64`).
pub type RaftMetrics = openraft::RaftMetrics<NodeId, Member>;

/// How one node of the metadata quorum runs. Every broker gets the same `voters`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumConfig {
    /// This broker's id: one of `voters`, or an observer that receives the log without voting.
    pub node_id: BrokerId,
    /// Every voter's broker id and the `host:port` of its cluster gRPC listener.
    pub voters: BTreeMap<BrokerId, String>,
    /// How often the leader sends heartbeats; well below the election timeout.
    pub heartbeat_interval_ms: u64,
    /// A follower that hears no leader for a random time in `[min, max)` starts an election.
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Build a snapshot every this many applied entries, then purge the log it covers.
    pub snapshot_every_entries: u64,
    /// Entries kept in the log behind the last snapshot, so a briefly lagging voter catches up
    /// from the log instead of a whole snapshot.
    pub entries_kept_after_snapshot: u64,
    /// How long `propose` waits for its entry to commit and apply before giving up.
    pub propose_timeout_ms: u64,
}

impl QuorumConfig {
    /// A config with defaults suited to brokers on one network (elections within a second).
    pub fn new(node_id: BrokerId, voters: BTreeMap<BrokerId, String>) -> Self {
        Self {
            node_id,
            voters,
            heartbeat_interval_ms: 100,
            election_timeout_min_ms: 500,
            election_timeout_max_ms: 1000,
            snapshot_every_entries: 10_000,
            entries_kept_after_snapshot: 1_000,
            propose_timeout_ms: 5_000,
        }
    }

    fn raft_config(&self) -> Result<Config, QuorumError> {
        let config = Config {
            cluster_name: "krait-metadata".to_string(),
            heartbeat_interval: self.heartbeat_interval_ms,
            election_timeout_min: self.election_timeout_min_ms,
            election_timeout_max: self.election_timeout_max_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every_entries),
            max_in_snapshot_log_to_keep: self.entries_kept_after_snapshot,
            ..Config::default()
        };
        config
            .validate()
            .map_err(|e| QuorumError::Config(e.to_string()))
    }

    /// The voters' cluster addresses by Raft node id; every broker id must be a valid node id.
    fn voter_addresses(&self) -> Result<BTreeMap<NodeId, String>, QuorumError> {
        node_id(self.node_id)
            .ok_or_else(|| QuorumError::Config(format!("negative node id {}", self.node_id)))?;
        self.voters
            .iter()
            .map(|(id, addr)| {
                let node = node_id(*id)
                    .ok_or_else(|| QuorumError::Config(format!("negative voter id {id}")))?;
                Ok((node, addr.clone()))
            })
            .collect()
    }

    /// Whether this node votes; otherwise it is an observer (a Raft learner) that the
    /// controller adds when it first heartbeats.
    pub fn is_voter(&self) -> bool {
        self.voters.contains_key(&self.node_id)
    }
}

/// Why the quorum could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    #[error("invalid metadata quorum config: {0}")]
    Config(String),
    #[error("opening the metadata state machine: {0}")]
    Open(#[source] Box<openraft::StorageError<NodeId>>),
    #[error("starting the Raft node: {0}")]
    Start(String),
    #[error("forming the metadata quorum: {0}")]
    Initialize(String),
    #[error("binding the Raft gRPC listener on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Why a proposal was not applied. Serializable so a forwarded proposal's outcome crosses the
/// wire unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ProposeError {
    /// Only the leader proposes; `leader` is the one this node knows of, if any.
    #[error("not the metadata leader (the leader is {leader:?})")]
    NotLeader { leader: Option<BrokerId> },
    /// No quorum acknowledged the entry in time. It may still commit later.
    #[error("the proposal was not committed within {0:?}; it may still be")]
    Timeout(Duration),
    #[error("the metadata quorum is shut down")]
    ShutDown,
    #[error("the metadata quorum stopped: {0}")]
    Fatal(String),
    /// Larger than [`MAX_PROPOSAL_BYTES`]; nothing was proposed.
    #[error("a metadata change is over the {max}-byte limit (at least {size} bytes)")]
    TooLarge { size: usize, max: usize },
}

/// The largest proposal, serialized, the quorum accepts: far above any real change (a topic
/// of 10,000 partitions is ~200 KB), far below the cluster port's 64 MiB message limit, so
/// replicating a few entries at once always fits in one message.
pub const MAX_PROPOSAL_BYTES: usize = 4 << 20;

/// The serialized size of `proposal`, counting no further than `max` bytes.
fn proposal_size(proposal: &Proposal, max: usize) -> usize {
    struct Count {
        n: usize,
        max: usize,
    }
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.n += buf.len();
            if self.n > self.max {
                return Err(std::io::Error::other("over the limit"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count { n: 0, max };
    let _ = serde_json::to_writer(&mut count, proposal);
    count.n
}

/// Who takes part in the metadata quorum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membership {
    /// Brokers that vote: those the cluster formed with, as changed since by
    /// [`MetadataQuorum::add_voter`] and [`MetadataQuorum::remove_voter`].
    pub voters: BTreeSet<BrokerId>,
    /// Brokers that receive the log without voting (openraft learners).
    pub observers: BTreeSet<BrokerId>,
}

/// How far a log may trail the leader's and still count as caught up for becoming a voter.
const CAUGHT_UP_ENTRIES: u64 = 100;
/// How long [`MetadataQuorum::add_voter`] waits for an observer to catch up.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);

/// One member's progress as the leader sees it (Kafka's DescribeQuorum `ReplicaState`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReplicaState {
    pub id: BrokerId,
    /// The data directory it joined with, where the membership records one.
    pub directory: Option<uuid::Uuid>,
    /// One past the last entry it holds (Kafka's log end offset); `None` until the leader has
    /// heard from it.
    pub log_end_offset: Option<u64>,
    /// When it last answered the leader's appends (the leader's own: now), Unix milliseconds.
    pub last_fetch_ms: Option<i64>,
    /// When it last held every committed entry: its last answer, if it holds them now.
    pub last_caught_up_ms: Option<i64>,
}

/// The quorum as its leader sees it (Kafka's DescribeQuorum).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QuorumState {
    pub leader: BrokerId,
    /// The Raft term (Kafka's leader epoch).
    pub term: u64,
    /// One past the last entry applied on the leader (Kafka's high watermark).
    pub high_watermark: u64,
    pub voters: Vec<ReplicaState>,
    pub observers: Vec<ReplicaState>,
}

/// Why a membership change was refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum MembershipError {
    #[error("broker {0} is not in the metadata quorum: start it (it joins as an observer) first")]
    UnknownMember(BrokerId),
    #[error("broker {0} is not a voter")]
    NotAVoter(BrokerId),
    #[error("broker {0} is the only voter: the quorum cannot lose its last voter")]
    LastVoter(BrokerId),
    #[error(
        "broker {id} did not catch up with the metadata log within {waited_ms} ms (it is {behind} entries behind)"
    )]
    NotCaughtUp {
        id: BrokerId,
        behind: u64,
        waited_ms: u64,
    },
    #[error("broker {id} joined with data directory {actual}, not {expected}")]
    DirectoryMismatch {
        id: BrokerId,
        expected: uuid::Uuid,
        actual: uuid::Uuid,
    },
    #[error("broker {id} did not say who it is: {reason}")]
    Unreachable { id: BrokerId, reason: String },
    #[error(transparent)]
    Propose(#[from] ProposeError),
}

/// One node of the metadata quorum. Cloning shares it.
#[derive(Clone)]
pub struct MetadataQuorum {
    inner: Arc<Inner>,
}

struct Inner {
    node_id: NodeId,
    raft: Raft,
    image: watch::Receiver<Arc<ClusterImage>>,
    partition: Partition,
    propose_timeout: Duration,
    local: Arc<LocalNode>,
    /// Why this voter refused to take part (see `crate::formation`), once it has.
    refused: watch::Receiver<Option<String>>,
    /// The task that places a node with an empty log, while it runs.
    formation: std::sync::Mutex<Option<tokio::task::AbortHandle>>,
    transport: ClusterTransport,
    /// When each member last answered this node's appends.
    contacts: Contacts,
}

impl std::fmt::Debug for MetadataQuorum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataQuorum")
            .field("node_id", &self.inner.node_id)
            .field("leader", &self.leader())
            .finish_non_exhaustive()
    }
}

impl MetadataQuorum {
    /// Starts this node on `storage` (the broker's `krait_storage::Store`, on disk or in memory).
    /// On a log that already holds a membership it resumes. On an empty log a voter places
    /// itself in the background (`crate::formation`): it forms the quorum with the other voters
    /// once all of them have said they are new too, joins the quorum they formed, or refuses
    /// (a voter whose data directory was lost), which [`Self::fatal_error`] then reports.
    pub async fn start(
        config: QuorumConfig,
        storage: Arc<dyn RaftKv>,
    ) -> Result<Self, QuorumError> {
        Self::start_with(config, storage, ClusterTransport::Plaintext).await
    }

    /// [`Self::start`] with the cluster port's `transport` for calls to the other voters.
    pub async fn start_with(
        config: QuorumConfig,
        storage: Arc<dyn RaftKv>,
        transport: ClusterTransport,
    ) -> Result<Self, QuorumError> {
        let voters = config.voter_addresses()?;
        let raft_config = Arc::new(config.raft_config()?);
        let node_id = node_id(config.node_id).expect("voter_addresses() checked the node id");
        let directory = directory_id(storage.as_ref()).map_err(QuorumError::Initialize)?;
        let (state_machine, image) =
            StateMachine::open(storage.clone()).map_err(|e| QuorumError::Open(Box::new(e)))?;
        let partition = Partition::default();
        let contacts = Contacts::default();
        let network = Network {
            partition: partition.clone(),
            transport: transport.clone(),
            contacts: contacts.clone(),
        };
        let raft = Raft::new(
            node_id,
            raft_config,
            network,
            LogStore::new(storage),
            state_machine,
        )
        .await
        .map_err(|e| QuorumError::Start(e.to_string()))?;
        let local = Arc::new(LocalNode {
            node_id,
            directory,
            admission: Admission::default(),
        });
        let (refuse, refused) = watch::channel(None);
        let mut formation = None;
        if resume_or_wait(&raft, node_id, &voters, config.is_voter()).await? {
            local.admission.open();
        } else {
            let place = Formation {
                raft: raft.clone(),
                me: node_id,
                directory,
                configured: voters,
                voter: config.is_voter(),
                transport: transport.clone(),
                partition: partition.clone(),
                admission: local.admission.clone(),
            };
            let task = tokio::spawn(async move {
                if let Err(why) = place.run().await {
                    tracing::error!(node_id, %why, "this node cannot take part in the metadata quorum");
                    let _ = refuse.send(Some(why));
                }
            });
            formation = Some(task.abort_handle());
        }
        Ok(Self {
            inner: Arc::new(Inner {
                node_id,
                raft,
                image,
                partition,
                propose_timeout: Duration::from_millis(config.propose_timeout_ms),
                local,
                refused,
                formation: std::sync::Mutex::new(formation),
                transport,
                contacts,
            }),
        })
    }

    /// The cluster image, updated after every apply on every node (leader and followers).
    pub fn image(&self) -> watch::Receiver<Arc<ClusterImage>> {
        self.inner.image.clone()
    }

    /// Proposes `records` as one log entry and waits until it is committed and applied here.
    /// Returns each record's own result: a refused record changed nothing, on any node.
    pub async fn propose(
        &self,
        records: Vec<MetadataRecord>,
    ) -> Result<Vec<Result<(), ApplyError>>, ProposeError> {
        let proposal = Proposal { records };
        let size = proposal_size(&proposal, MAX_PROPOSAL_BYTES);
        if size > MAX_PROPOSAL_BYTES {
            return Err(ProposeError::TooLarge {
                size,
                max: MAX_PROPOSAL_BYTES,
            });
        }
        let write = self.inner.raft.client_write(proposal);
        let response = self.committed(write).await?;
        Ok(response.data.results)
    }

    /// The current Raft leader, which is the controller, as this node knows it.
    pub fn leader(&self) -> Option<BrokerId> {
        self.inner
            .raft
            .metrics()
            .borrow()
            .current_leader
            .map(broker_id)
    }

    /// When this node, leading, last failed to reach `broker` at all: its connection closed or
    /// could not be made (not a slow answer). Only a hint that the process may be gone; the
    /// controller checks before acting on it.
    pub fn contact_lost_at(&self, broker: BrokerId) -> Option<tokio::time::Instant> {
        self.inner.contacts.last_lost(node_id(broker)?)
    }

    /// Completes at the next lost contact (see [`Self::contact_lost_at`]).
    pub async fn contact_lost(&self) {
        self.inner.contacts.lost_notify().notified().await
    }

    /// Whether this node votes in the membership the log holds now (voters change at runtime;
    /// the configured voters only bootstrap).
    pub fn votes(&self) -> bool {
        self.membership().voters.contains(&self.node_id())
    }

    /// Campaigns to succeed `dead`, the leader as this voter knows it, without waiting out
    /// openraft's leader lease and election timeout: an election now, and again after a random
    /// pause of a quarter to a half of the election timeout, until another leader is known or
    /// `within` has passed. Returns whether one is.
    ///
    /// Only for a leader known to be gone (its cluster port refuses connections): a campaign
    /// raises the term, and a live leader that hears of a higher term steps down. Raft still
    /// elects at most one leader per term. A voter that still holds the dead leader's lease
    /// (it heard from it within the election timeout's maximum) refuses the vote until the
    /// lease ends or it campaigns too; the random pauses keep two voters that found the same
    /// dead leader from splitting their votes round after round.
    pub async fn campaign_to_succeed(&self, dead: BrokerId, within: Duration) -> bool {
        if !self.votes() {
            return false;
        }
        let deadline = tokio::time::Instant::now() + within;
        let timeout = self.inner.raft.config().election_timeout_min.max(4);
        loop {
            if self.leader().is_some_and(|leader| leader != dead) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            if let Err(e) = self.inner.raft.trigger().elect().await {
                tracing::debug!(error = %e, "campaign not started");
                return false;
            }
            let pause = rand::random_range(timeout / 4..=timeout / 2);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    }

    /// Whether this node is the leader. A leader cut off from the others still believes it is
    /// until it hears of a newer term, but it cannot commit anything: act on `propose`'s result.
    pub fn is_leader(&self) -> bool {
        let metrics = self.inner.raft.metrics();
        let metrics = metrics.borrow();
        metrics.state == ServerState::Leader && metrics.current_leader == Some(self.inner.node_id)
    }

    /// The voters and the observers (learners) of the applied membership.
    pub fn membership(&self) -> Membership {
        let metrics = self.inner.raft.metrics();
        let metrics = metrics.borrow();
        let config = metrics.membership_config.membership();
        let voters: BTreeSet<BrokerId> = config.voter_ids().map(broker_id).collect();
        let observers = config
            .learner_ids()
            .map(broker_id)
            .filter(|id| !voters.contains(id))
            .collect();
        Membership { voters, observers }
    }

    /// The cluster address the membership records for broker `id`.
    pub fn member_address(&self, id: BrokerId) -> Option<String> {
        self.member(node_id(id)?).map(|m| m.addr)
    }

    /// How the membership records `node`.
    fn member(&self, node: NodeId) -> Option<Member> {
        let metrics = self.inner.raft.metrics();
        let metrics = metrics.borrow();
        metrics
            .membership_config
            .membership()
            .get_node(&node)
            .cloned()
    }

    /// Adds broker `id` as an observer reached at `address`, on the leader: it receives the log
    /// but never votes. Returns once the membership change is committed, not when the observer
    /// has caught up. Adding a member again is a no-op.
    pub async fn add_observer(&self, id: BrokerId, address: &str) -> Result<(), ProposeError> {
        let Some(node) = node_id(id) else {
            return Err(ProposeError::Fatal(format!("negative broker id {id}")));
        };
        let membership = self.membership();
        if membership.voters.contains(&id) || membership.observers.contains(&id) {
            return Ok(());
        }
        let add = self
            .inner
            .raft
            .add_learner(node, Member::new(address, None), false);
        self.committed(add).await.map(drop)
    }

    /// Removes observer `id` from the membership, on the leader. Voters are never removed.
    pub async fn remove_observer(&self, id: BrokerId) -> Result<(), ProposeError> {
        let Some(node) = node_id(id) else {
            return Ok(());
        };
        if !self.membership().observers.contains(&id) {
            return Ok(());
        }
        let remove = self.inner.raft.change_membership(
            openraft::ChangeMembers::RemoveNodes(BTreeSet::from([node])),
            false,
        );
        self.committed(remove).await.map(drop)
    }

    /// The quorum as this node, its leader, sees it: the term, what is applied, each voter's and
    /// observer's progress. Only the leader knows the others' progress: elsewhere `NotLeader`.
    pub fn describe(&self) -> Result<QuorumState, ProposeError> {
        let metrics = self.inner.raft.metrics().borrow().clone();
        let me = self.inner.node_id;
        if metrics.state != ServerState::Leader || metrics.current_leader != Some(me) {
            return Err(ProposeError::NotLeader {
                leader: metrics.current_leader.map(broker_id),
            });
        }
        let membership = metrics.membership_config.membership();
        let high_watermark = metrics.last_applied.map_or(0, |l| l.index + 1);
        let replication = metrics.replication.clone().unwrap_or_default();
        let now = SystemTime::now();
        let millis = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .ok()
                .and_then(|d| i64::try_from(d.as_millis()).ok())
        };
        let state = |node: NodeId| {
            let (log_end, fetched) = if node == me {
                (metrics.last_log_index.map(|i| i + 1), Some(now))
            } else {
                let matched = replication.get(&node).map(|m| m.map_or(0, |l| l.index + 1));
                (matched, self.inner.contacts.last(node))
            };
            let caught_up = log_end.is_some_and(|end| end >= high_watermark);
            ReplicaState {
                id: broker_id(node),
                directory: membership.get_node(&node).and_then(|m| m.directory),
                log_end_offset: log_end,
                last_fetch_ms: fetched.and_then(millis),
                last_caught_up_ms: fetched.filter(|_| caught_up).and_then(millis),
            }
        };
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        Ok(QuorumState {
            leader: broker_id(me),
            term: metrics.current_term,
            high_watermark,
            voters: voters.iter().map(|n| state(*n)).collect(),
            observers: membership
                .learner_ids()
                .filter(|n| !voters.contains(n))
                .map(state)
                .collect(),
        })
    }

    /// Makes observer `id` a voter, on the leader: once its log is within
    /// [`CAUGHT_UP_ENTRIES`] of the leader's, its data directory id is asked for (and must be
    /// `expected`, when given) and recorded in the membership, then a joint-consensus change
    /// makes it a voter. Returns once that change is committed. Making a voter a voter again is
    /// a no-op.
    pub async fn add_voter(
        &self,
        id: BrokerId,
        expected: Option<uuid::Uuid>,
    ) -> Result<(), MembershipError> {
        self.leading()?;
        let membership = self.membership();
        if membership.voters.contains(&id) {
            return Ok(());
        }
        let node = node_id(id)
            .filter(|_| membership.observers.contains(&id))
            .ok_or(MembershipError::UnknownMember(id))?;
        self.caught_up(id, node).await?;
        let address = self
            .member(node)
            .map(|m| m.addr)
            .ok_or(MembershipError::UnknownMember(id))?;
        let who = identify(
            &self.inner.transport,
            &self.inner.partition,
            self.inner.node_id,
            &address,
        )
        .await
        .map_err(|reason| MembershipError::Unreachable { id, reason })?;
        if who.node_id != node {
            return Err(MembershipError::Unreachable {
                id,
                reason: format!("its address {address} answers as node {}", who.node_id),
            });
        }
        if let Some(expected) = expected.filter(|e| *e != who.directory) {
            return Err(MembershipError::DirectoryMismatch {
                id,
                expected,
                actual: who.directory,
            });
        }
        // The directory first, so the voter is known by it from the moment it votes.
        let set = ChangeMembers::SetNodes(BTreeMap::from([(
            node,
            Member::new(address, Some(who.directory)),
        )]));
        self.committed(self.inner.raft.change_membership(set, true))
            .await?;
        let promote = ChangeMembers::AddVoterIds(BTreeSet::from([node]));
        self.committed(self.inner.raft.change_membership(promote, true))
            .await?;
        Ok(())
    }

    /// Removes voter `id` from the voters, on the leader (its directory must be `expected`,
    /// when given); it stays an observer, receiving the log. The leader may remove itself: it
    /// leads until the change commits, then steps down and the others elect a leader.
    pub async fn remove_voter(
        &self,
        id: BrokerId,
        expected: Option<uuid::Uuid>,
    ) -> Result<(), MembershipError> {
        self.leading()?;
        let membership = self.membership();
        let node = node_id(id)
            .filter(|_| membership.voters.contains(&id))
            .ok_or(MembershipError::NotAVoter(id))?;
        if membership.voters.len() == 1 {
            return Err(MembershipError::LastVoter(id));
        }
        let recorded = self.member(node).and_then(|m| m.directory);
        if let (Some(expected), Some(actual)) = (expected, recorded)
            && expected != actual
        {
            return Err(MembershipError::DirectoryMismatch {
                id,
                expected,
                actual,
            });
        }
        let remove = ChangeMembers::RemoveVoters(BTreeSet::from([node]));
        self.committed(self.inner.raft.change_membership(remove, true))
            .await?;
        Ok(())
    }

    fn leading(&self) -> Result<(), ProposeError> {
        if self.is_leader() {
            Ok(())
        } else {
            Err(ProposeError::NotLeader {
                leader: self.leader(),
            })
        }
    }

    /// Waits until `node`'s log is within [`CAUGHT_UP_ENTRIES`] of the leader's.
    async fn caught_up(&self, id: BrokerId, node: NodeId) -> Result<(), MembershipError> {
        let started = Instant::now();
        loop {
            let behind = {
                let metrics = self.inner.raft.metrics();
                let metrics = metrics.borrow();
                let last = metrics.last_log_index.unwrap_or(0);
                let matched = metrics
                    .replication
                    .as_ref()
                    .and_then(|r| r.get(&node).copied())
                    .flatten()
                    .map(|l| l.index);
                matched.map_or(last + 1, |m| last.saturating_sub(m))
            };
            if behind <= CAUGHT_UP_ENTRIES {
                return Ok(());
            }
            if started.elapsed() >= CATCH_UP_TIMEOUT {
                return Err(MembershipError::NotCaughtUp {
                    id,
                    behind,
                    waited_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                });
            }
            self.leading()?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits up to the propose timeout for a client write (a proposal or a membership change)
    /// to commit, mapping openraft's errors to the broker's.
    async fn committed<T>(
        &self,
        write: impl std::future::Future<
            Output = Result<T, RaftError<NodeId, ClientWriteError<NodeId, Member>>>,
        >,
    ) -> Result<T, ProposeError> {
        let timeout = self.inner.propose_timeout;
        match tokio::time::timeout(timeout, write).await {
            Err(_) => Err(ProposeError::Timeout(timeout)),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward)))) => {
                Err(ProposeError::NotLeader {
                    leader: forward.leader_id.map(broker_id),
                })
            }
            Ok(Err(RaftError::APIError(e))) => Err(ProposeError::Fatal(e.to_string())),
            Ok(Err(RaftError::Fatal(openraft::error::Fatal::Stopped))) => {
                Err(ProposeError::ShutDown)
            }
            Ok(Err(RaftError::Fatal(e))) => Err(ProposeError::Fatal(e.to_string())),
        }
    }

    /// openraft's view of this node (state, term, log, applied, snapshot, replication), for
    /// observability and for waiting on conditions in tests.
    pub fn raft_metrics(&self) -> watch::Receiver<RaftMetrics> {
        self.inner.raft.metrics()
    }

    /// This node's broker id.
    pub fn node_id(&self) -> BrokerId {
        broker_id(self.inner.node_id)
    }

    /// The id of the data directory this node runs on, made when the directory was.
    pub fn directory(&self) -> uuid::Uuid {
        self.inner.local.directory
    }

    /// The `Raft` gRPC service, to host on the broker's cluster gRPC server with its other
    /// services.
    pub fn raft_service(&self) -> RaftServer<RaftService> {
        RaftService::server(
            self.inner.raft.clone(),
            self.inner.partition.clone(),
            self.inner.local.clone(),
        )
    }

    /// Serves [`Self::raft_service`] alone on `addr` (port 0 picks a free port).
    pub async fn serve(&self, addr: SocketAddr) -> Result<ServerHandle, QuorumError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| QuorumError::Bind { addr, source })?;
        Ok(self.serve_on(listener))
    }

    /// Serves [`Self::raft_service`] alone on an already bound listener.
    pub fn serve_on(&self, listener: TcpListener) -> ServerHandle {
        ServerHandle::spawn(listener, self.raft_service())
    }

    /// Cuts this node off from every other voter, both ways, or heals it: a network partition
    /// for fault tests.
    #[doc(hidden)]
    pub fn set_partitioned(&self, cut: bool) {
        self.inner.partition.set(cut);
    }

    /// Resolves with why once the Raft node has stopped on a fatal error (a failed write of its
    /// log or state machine, a panic of its core), or this voter refused to take part (its data
    /// directory was lost); pending while it runs and after an orderly [`Self::shutdown`]. A
    /// broker whose quorum stopped serves stale metadata: it must stop.
    pub async fn fatal_error(&self) -> String {
        let mut refused = self.inner.refused.clone();
        let refusal = async move {
            let why = refused
                .wait_for(Option::is_some)
                .await
                .map(|why| why.clone().unwrap_or_default());
            match why {
                Ok(why) => why,
                // Placed (or resumed): nothing more will be refused.
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            why = refusal => why,
            why = self.raft_fatal_error() => why,
        }
    }

    async fn raft_fatal_error(&self) -> String {
        let mut metrics = self.inner.raft.metrics();
        loop {
            let fatal = match &metrics.borrow_and_update().running_state {
                Err(openraft::error::Fatal::Stopped) | Ok(()) => None,
                Err(fatal) => Some(fatal.to_string()),
            };
            if let Some(why) = fatal {
                return why;
            }
            if metrics.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// Stops the Raft node; afterwards `propose` returns `ShutDown`. Once every clone is dropped
    /// the database is no longer used by the quorum.
    pub async fn shutdown(&self) {
        if let Some(formation) = self.inner.formation.lock_unpoisoned().take() {
            formation.abort();
        }
        if let Err(error) = self.inner.raft.shutdown().await {
            tracing::warn!(%error, "metadata quorum shut down with an error");
        }
    }
}

/// On a log that holds a membership, checks it was formed with the configured voters and
/// resumes (true). An observer with an empty log waits, uninitialized, for the controller to add
/// it as a learner (true). A voter with an empty log must place itself first (false).
async fn resume_or_wait(
    raft: &Raft,
    node_id: NodeId,
    voters: &BTreeMap<NodeId, String>,
    voter: bool,
) -> Result<bool, QuorumError> {
    let initialized = raft
        .is_initialized()
        .await
        .map_err(|e| QuorumError::Initialize(e.to_string()))?;
    if initialized {
        // Voters change at runtime (every configured one may have been replaced since), so the
        // log's need not be the configured ones; but a data directory from another cluster (or
        // a cluster of one) must not join this one: this node is no member of its log, and
        // the voters differ. (One from another cluster that knows this node id is refused by
        // the cluster id, once the controller answers.)
        let (logged, members): (BTreeSet<NodeId>, BTreeSet<NodeId>) = {
            let metrics = raft.metrics();
            let metrics = metrics.borrow();
            let membership = metrics.membership_config.membership();
            (
                membership.voter_ids().collect(),
                membership.nodes().map(|(id, _)| *id).collect(),
            )
        };
        let configured: BTreeSet<NodeId> = voters.keys().copied().collect();
        let foreign = !members.contains(&node_id) && logged != configured;
        if foreign {
            return Err(QuorumError::Config(format!(
                "this data directory's metadata log belongs to a quorum of voters {logged:?}, but the configured voters are {configured:?}: it is from another cluster (use an empty data directory for a new member)"
            )));
        }
        tracing::info!(node_id, "metadata quorum resumes from its log");
        return Ok(true);
    }
    if !voter {
        tracing::info!(
            node_id,
            "observer: asking the voters for the membership, then waiting for the controller to add this broker"
        );
    }
    Ok(false)
}
