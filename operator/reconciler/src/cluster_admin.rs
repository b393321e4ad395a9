//! The operator's view of a running cluster for day-2 operations, through the Kafka admin
//! protocol (`krait-admin`): brokers (fenced ones too), the controller, every partition's
//! replicas, ISR and size, topics' `min.insync.replicas`, reassignments in progress and the
//! replication throttle, the metadata quorum's voters and observers; and the actions scaling
//! needs: start reassignments, set or clear the throttle, unregister a broker, add or remove a
//! voter. A small trait, so tests can stand in for the cluster.
//!
//! To ensure correctness, implementations must: report what the cluster says, never a guess
//! (an unreachable broker is an error, not an empty answer), and start reassignments without
//! waiting for them to finish.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use krait_admin::reassign::answers;
use krait_admin::{Admin, AdminError, BrokerInfo, Ongoing, Quorum, Reassignment, THROTTLE_CONFIGS};

use crate::kafka::AdminEndpoint;

/// A voter's directory id when the quorum records none.
const NIL_DIRECTORY: &str = "00000000-0000-0000-0000-000000000000";

/// Topic config read for safe rolls.
const MIN_INSYNC: &str = "min.insync.replicas";

/// A failed observation or action.
#[derive(Debug, thiserror::Error)]
pub enum ClusterAdminError {
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error("the admin task for {0} failed")]
    Task(&'static str),
    #[error("the controller refused to move {}: {}", .0.len(), .0.join("; "))]
    Moves(Vec<String>),
}

/// One broker as the cluster reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerObserved {
    pub id: i32,
    pub rack: Option<String>,
    /// Registered but not heartbeating: leads nothing, in no ISR.
    pub fenced: bool,
}

/// One partition as the cluster reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionObserved {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// Size of the largest replica in bytes (0 when the brokers do not report log dirs).
    pub size_bytes: u64,
}

/// Everything day-2 decisions read from the cluster, taken in one go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterState {
    /// The controller (metadata quorum leader), when there is one.
    pub controller_id: Option<i32>,
    /// Every registered broker, fenced ones included, by id.
    pub brokers: Vec<BrokerObserved>,
    pub partitions: Vec<PartitionObserved>,
    /// Each topic's effective `min.insync.replicas`.
    pub min_insync: BTreeMap<String, i32>,
    pub reassignments: Vec<Ongoing>,
    /// Brokers with a replication throttle set.
    pub throttled_brokers: BTreeSet<i32>,
    /// The metadata quorum as its leader describes it.
    pub quorum: QuorumObserved,
}

/// The metadata quorum's members, by broker id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuorumObserved {
    pub voters: BTreeSet<i32>,
    /// Each voter's data directory id, where the quorum records one.
    pub directories: BTreeMap<i32, String>,
    /// Brokers following the metadata log without a vote: the ones that can become voters.
    pub observers: BTreeSet<i32>,
}

impl ClusterState {
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerObserved> {
        self.brokers.iter().filter(|b| !b.fenced)
    }
}

/// Day-2 admin operations on one cluster.
pub trait ClusterAdmin: Send + Sync {
    /// The cluster's current state.
    fn observe(&self) -> BoxFuture<'_, Result<ClusterState, ClusterAdminError>>;
    /// Starts every move in one request (each `(topic, partition, new replicas)`).
    fn reassign(&self, moves: Vec<Reassignment>) -> BoxFuture<'_, Result<(), ClusterAdminError>>;
    /// Sets (`Some`) or clears (`None`) the replication throttle on every live broker.
    fn set_throttle(&self, rate: Option<u64>) -> BoxFuture<'_, Result<(), ClusterAdminError>>;
    /// Forgets a broker that has stopped for good and holds nothing.
    fn unregister(&self, broker: i32) -> BoxFuture<'_, Result<(), ClusterAdminError>>;
    /// Makes a broker that follows the metadata log a voter (waits until it has caught up).
    fn add_voter(&self, broker: i32) -> BoxFuture<'_, Result<(), ClusterAdminError>>;
    /// Takes a voter out of the quorum; its broker stays an observer.
    fn remove_voter(&self, broker: i32) -> BoxFuture<'_, Result<(), ClusterAdminError>>;
}

/// The real implementation: a fresh `krait-admin` session per call, on a blocking thread.
#[derive(Debug, Clone)]
pub struct WireClusterAdmin {
    endpoint: Arc<AdminEndpoint>,
    timeout: Duration,
}

impl WireClusterAdmin {
    pub fn new(endpoint: &AdminEndpoint, timeout: Duration) -> Self {
        Self {
            endpoint: Arc::new(endpoint.clone()),
            timeout,
        }
    }

    fn run<T: Send + 'static>(
        &self,
        what: &'static str,
        work: impl FnOnce(Admin) -> Result<T, ClusterAdminError> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, ClusterAdminError>> {
        self.endpoint
            .session(self.timeout, ClusterAdminError::Task(what), work)
    }
}

fn live(brokers: &[BrokerInfo]) -> Vec<BrokerInfo> {
    brokers.iter().filter(|b| !b.fenced).cloned().collect()
}

/// Reads the whole state with one admin session.
fn observe(mut admin: Admin) -> Result<ClusterState, ClusterAdminError> {
    let cluster = admin.describe_cluster()?;
    let metadata = admin.metadata(None)?;
    let live = live(&cluster.brokers);
    // Each replica's size from its broker's log dirs; a partition counts its largest replica.
    let mut sizes: BTreeMap<(String, i32), u64> = BTreeMap::new();
    for broker in &live {
        for (key, size) in admin.replica_sizes(broker)?.unwrap_or_default() {
            let entry = sizes.entry(key).or_default();
            *entry = (*entry).max(size);
        }
    }
    let mut throttled_brokers = BTreeSet::new();
    for broker in &live {
        if !admin
            .broker_dynamic_configs(broker, &THROTTLE_CONFIGS)?
            .is_empty()
        {
            throttled_brokers.insert(broker.id);
        }
    }
    let topics: Vec<String> = metadata.topics.iter().map(|t| t.name.clone()).collect();
    let min_insync = admin
        .topic_configs(&topics, &[MIN_INSYNC])?
        .into_iter()
        .filter_map(|(topic, configs)| Some((topic, configs.get(MIN_INSYNC)?.parse().ok()?)))
        .collect();
    let partitions = metadata
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| PartitionObserved {
            topic: p.topic.clone(),
            partition: p.partition,
            replicas: p.replicas.clone(),
            isr: p.isr.clone(),
            size_bytes: sizes
                .get(&(p.topic.clone(), p.partition))
                .copied()
                .unwrap_or(0),
        })
        .collect();
    Ok(ClusterState {
        controller_id: (cluster.controller_id >= 0).then_some(cluster.controller_id),
        brokers: cluster
            .brokers
            .iter()
            .map(|b| BrokerObserved {
                id: b.id,
                rack: b.rack.clone(),
                fenced: b.fenced,
            })
            .collect(),
        partitions,
        min_insync,
        reassignments: admin.reassignments_in_progress(None)?,
        throttled_brokers,
        quorum: quorum(&admin.describe_quorum()?),
    })
}

fn quorum(described: &Quorum) -> QuorumObserved {
    let ids = |members: &[krait_admin::QuorumMember]| members.iter().map(|m| m.id).collect();
    QuorumObserved {
        voters: ids(&described.voters),
        directories: described
            .voters
            .iter()
            .filter(|v| !v.directory.is_empty() && v.directory != NIL_DIRECTORY)
            .map(|v| (v.id, v.directory.clone()))
            .collect(),
        observers: ids(&described.observers),
    }
}

impl ClusterAdmin for WireClusterAdmin {
    fn observe(&self) -> BoxFuture<'_, Result<ClusterState, ClusterAdminError>> {
        self.run("observing the cluster", observe)
    }

    fn reassign(&self, moves: Vec<Reassignment>) -> BoxFuture<'_, Result<(), ClusterAdminError>> {
        self.run("reassigning partitions", move |mut admin| {
            let response = admin.alter_reassignments(&moves)?;
            let refused: Vec<String> = answers(&response)
                .into_iter()
                .filter(|(_, (code, _))| *code != 0)
                .map(|((topic, partition), (code, message))| {
                    let message = message.map(kafka_protocol::protocol::StrBytes::from);
                    format!(
                        "{topic}-{partition}: {}",
                        krait_admin::error_text(code, message.as_ref())
                    )
                })
                .collect();
            if refused.is_empty() {
                Ok(())
            } else {
                Err(ClusterAdminError::Moves(refused))
            }
        })
    }

    fn set_throttle(&self, rate: Option<u64>) -> BoxFuture<'_, Result<(), ClusterAdminError>> {
        self.run("setting the replication throttle", move |mut admin| {
            let brokers = live(&admin.describe_cluster()?.brokers);
            Ok(admin.set_replication_throttle(&brokers, rate)?)
        })
    }

    fn unregister(&self, broker: i32) -> BoxFuture<'_, Result<(), ClusterAdminError>> {
        self.run("unregistering a broker", move |mut admin| {
            Ok(admin.unregister_broker(broker)?)
        })
    }

    fn add_voter(&self, broker: i32) -> BoxFuture<'_, Result<(), ClusterAdminError>> {
        self.run("adding a metadata quorum voter", move |mut admin| {
            // Already a voter (a retry after an answer that was lost) is done too.
            admin.add_raft_voter(broker)?;
            Ok(())
        })
    }

    fn remove_voter(&self, broker: i32) -> BoxFuture<'_, Result<(), ClusterAdminError>> {
        self.run("removing a metadata quorum voter", move |mut admin| {
            Ok(admin.remove_raft_voter(broker)?)
        })
    }
}
