//! The cluster image: every broker, topic and partition as the metadata log describes them, and
//! the one function that changes it, [`ClusterImage::apply`].
//!
//! Every broker applies the same records in the same order, so every broker holds the same
//! image. `apply` must therefore be deterministic and must either apply a record whole or leave
//! the image untouched: a refused record is a no-op everywhere.

use std::collections::BTreeMap;

use krait_acl::{AclBinding, Acls};
use krait_auth::scram::{ScramCredential, ScramMechanism};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::BrokerId;
use crate::transaction::TransactionMetadata;

/// A broker as it registered with the controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub id: BrokerId,
    /// Failure domain (Kafka's `broker.rack`); replicas of a partition spread across racks.
    pub rack: Option<String>,
    /// Where Kafka clients reach it (what Metadata returns).
    pub kafka_host: String,
    pub kafka_port: i32,
    /// Where other brokers reach it for replication and the metadata quorum.
    pub cluster_address: String,
    /// Where clients of each named listener reach it (the primary listener's entry equals
    /// `kafka_host:kafka_port`); empty from brokers that registered before listeners had names.
    #[serde(default)]
    pub listeners: BTreeMap<String, ListenerAddress>,
    /// Changes every time the broker process starts, so a stale registration is told apart.
    pub incarnation: Uuid,
    /// The id of the data directory the broker serves from, made when the directory was (as
    /// KIP-858's directory ids): a broker that comes back with another one lost its replicas.
    /// `None` from brokers that registered before directories had ids.
    #[serde(default)]
    pub directory: Option<Uuid>,
    /// A fenced broker leads nothing and is in no ISR; it is unfenced once it heartbeats.
    pub fenced: bool,
}

impl BrokerRegistration {
    /// Whether this registration comes from another data directory than `earlier`, the same
    /// broker's previous one: everything `earlier` held is gone. Unknown when either has no id.
    pub fn lost_directory_of(&self, earlier: &BrokerRegistration) -> bool {
        matches!((self.directory, earlier.directory), (Some(now), Some(then)) if now != then)
    }
}

/// A host and port a client connects to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerAddress {
    pub host: String,
    pub port: i32,
}

/// The replication state of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// Every replica, preferred leader first. During a reassignment: the target replicas
    /// followed by those being removed.
    pub replicas: Vec<BrokerId>,
    /// In-sync replicas: the leader and the followers caught up with it.
    pub isr: Vec<BrokerId>,
    /// `None` when no eligible replica is alive (the partition is offline).
    pub leader: Option<BrokerId>,
    /// Bumped on every leader change; batches are stamped with it, and followers truncate by it.
    pub leader_epoch: i32,
    /// Bumped on every change; a change computed from an older state is refused.
    pub partition_epoch: i32,
    /// Replicas a reassignment is adding (not yet caught up).
    pub adding: Vec<BrokerId>,
    /// Replicas a reassignment will remove once the added ones are in the ISR.
    pub removing: Vec<BrokerId>,
}

impl PartitionState {
    /// A new partition: the first replica leads, every replica is in sync (the log is empty).
    pub fn new(replicas: Vec<BrokerId>) -> Self {
        Self {
            leader: replicas.first().copied(),
            isr: replicas.clone(),
            replicas,
            leader_epoch: 0,
            partition_epoch: 0,
            adding: Vec::new(),
            removing: Vec::new(),
        }
    }

    /// The replicas the partition will have when its reassignment (if any) completes.
    pub fn target_replicas(&self) -> Vec<BrokerId> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.removing.contains(r))
            .collect()
    }

    pub fn is_reassigning(&self) -> bool {
        !self.adding.is_empty() || !self.removing.is_empty()
    }
}

/// A topic and its partitions, indexed by partition number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicImage {
    pub id: Uuid,
    pub partitions: Vec<PartitionState>,
    /// Topic-level config overrides only; defaults come from the brokers' configuration.
    pub configs: BTreeMap<String, String>,
}

/// A new state for one partition, computed by the controller (or asked for by the leader) from
/// the state with `expected_partition_epoch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionChange {
    pub topic: String,
    pub partition: i32,
    pub expected_partition_epoch: i32,
    pub replicas: Vec<BrokerId>,
    pub isr: Vec<BrokerId>,
    pub leader: Option<BrokerId>,
    pub adding: Vec<BrokerId>,
    pub removing: Vec<BrokerId>,
}

impl PartitionChange {
    /// A change that starts from `state` and keeps everything; callers edit the fields they mean.
    pub fn from_state(topic: &str, partition: i32, state: &PartitionState) -> Self {
        Self {
            topic: topic.to_string(),
            partition,
            expected_partition_epoch: state.partition_epoch,
            replicas: state.replicas.clone(),
            isr: state.isr.clone(),
            leader: state.leader,
            adding: state.adding.clone(),
            removing: state.removing.clone(),
        }
    }

    /// True when applying it would change nothing.
    pub fn is_noop(&self, state: &PartitionState) -> bool {
        self.replicas == state.replicas
            && self.isr == state.isr
            && self.leader == state.leader
            && self.adding == state.adding
            && self.removing == state.removing
    }
}

/// One entry of the metadata log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataRecord {
    /// The first record of a cluster: its identity, persisted with the log.
    InitCluster {
        cluster_id: String,
    },
    RegisterBroker(BrokerRegistration),
    FenceBroker {
        id: BrokerId,
    },
    UnfenceBroker {
        id: BrokerId,
    },
    /// Forgets a fenced broker that holds no replica (a scale-down's last step).
    UnregisterBroker {
        id: BrokerId,
    },
    CreateTopic {
        name: String,
        id: Uuid,
        /// Replicas of each partition, preferred leader first.
        assignments: Vec<Vec<BrokerId>>,
        configs: BTreeMap<String, String>,
    },
    DeleteTopic {
        name: String,
    },
    /// Appends partitions to a topic (partition counts only grow).
    CreatePartitions {
        topic: String,
        assignments: Vec<Vec<BrokerId>>,
    },
    /// Replaces a topic's whole set of config overrides.
    SetTopicConfigs {
        topic: String,
        configs: BTreeMap<String, String>,
    },
    ChangePartition(PartitionChange),
    /// A consumer group's commit: `(topic, partition, commit)` for each partition.
    CommitOffsets {
        group: String,
        offsets: Vec<(String, i32, OffsetCommit)>,
    },
    /// Replaces the dynamic configs of broker `resource` (a broker id, or `""` for the
    /// cluster-wide default).
    SetBrokerConfigs {
        resource: String,
        configs: BTreeMap<String, String>,
    },
    /// Forgets a group's commits: the listed partitions, or all of them when `None`.
    DeleteOffsets {
        group: String,
        partitions: Option<Vec<(String, i32)>>,
    },
    /// Sets (creates or replaces) one SCRAM credential of a user.
    SetScramCredential {
        user: String,
        credential: ScramCredential,
    },
    /// Forgets one SCRAM credential of a user.
    DeleteScramCredential {
        user: String,
        mechanism: ScramMechanism,
    },
    /// Adds ACLs (those already present are kept once).
    CreateAcls {
        bindings: Vec<AclBinding>,
    },
    /// Removes ACLs (those absent are ignored).
    DeleteAcls {
        bindings: Vec<AclBinding>,
    },
    /// Sets a transactional id's state, as the transaction coordinator decided it
    /// (`transaction`); its producer id is never handed out again.
    PutTransaction {
        transactional_id: String,
        transaction: TransactionMetadata,
    },
    /// Forgets a transactional id whose state expired (`transactional.id.expiration.ms`), if
    /// it still has this producer id and epoch: a state that moved on since the coordinator
    /// decided stays. Its producer id is never handed out again.
    RemoveTransaction {
        transactional_id: String,
        producer_id: i64,
        producer_epoch: i16,
    },
    /// Hands broker `broker` the producer ids `first..first + count` for its idempotent
    /// producers (Kafka's AllocateProducerIds). Refused when `first` is below the cluster's
    /// next producer id, so a block is never handed out twice.
    AllocateProducerIds {
        broker: BrokerId,
        first: i64,
        count: i64,
    },
}

/// Why a record was not applied. The image is unchanged when `apply` returns one.
///
/// Serializable because the metadata quorum hands it back to the proposer through Raft's
/// response type, which must be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ApplyError {
    #[error("cluster id is already {existing}; refusing {proposed}")]
    ClusterIdMismatch { existing: String, proposed: String },
    #[error("unknown broker {0}")]
    UnknownBroker(BrokerId),
    #[error("topic {0} already exists")]
    TopicExists(String),
    #[error("unknown topic {0}")]
    UnknownTopic(String),
    #[error("unknown partition {topic}-{partition}")]
    UnknownPartition { topic: String, partition: i32 },
    #[error(
        "partition {topic}-{partition} is at epoch {actual}, the change was made for {expected}"
    )]
    StalePartitionEpoch {
        topic: String,
        partition: i32,
        expected: i32,
        actual: i32,
    },
    #[error("broker {broker} cannot join the ISR of {topic}-{partition}: it is fenced or unknown")]
    IneligibleReplica {
        topic: String,
        partition: i32,
        broker: BrokerId,
    },
    #[error("invalid assignment for {topic}: {reason}")]
    InvalidAssignment { topic: String, reason: String },
    #[error("refused change of {topic}-{partition}: {reason}")]
    InvalidPartitionState {
        topic: String,
        partition: i32,
        reason: String,
    },
    #[error("user {user} has no {mechanism} credential")]
    UnknownScramCredential { user: String, mechanism: String },
    #[error("broker {0} is alive: stop it before unregistering it")]
    BrokerAlive(BrokerId),
    #[error(
        "broker {broker} still holds replicas of {partitions} partitions, e.g. {example}: move them first"
    )]
    BrokerInUse {
        broker: BrokerId,
        partitions: usize,
        example: String,
    },
    #[error("producer ids from {first} were already handed out; the next free one is {next}")]
    ProducerIdTaken { first: i64, next: i64 },
}

/// The whole cluster as the metadata log describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterImage {
    pub cluster_id: Option<String>,
    pub brokers: BTreeMap<BrokerId, BrokerRegistration>,
    pub topics: BTreeMap<String, TopicImage>,
    /// Consumer groups' committed offsets: group -> topic -> partition -> commit. Replicated
    /// with the metadata so a group keeps its positions when its coordinator fails.
    #[serde(default)]
    pub offsets: BTreeMap<String, GroupOffsets>,
    /// Dynamic broker configs (replication throttles), by broker id; the key `""` holds the
    /// cluster-wide defaults.
    #[serde(default)]
    pub broker_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// SCRAM credentials by user and mechanism: salted keys, never passwords.
    #[serde(default)]
    pub scram: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
    /// The ACLs the authorizer enforces.
    #[serde(default)]
    pub acls: Acls,
    /// Transactions by transactional id: the transaction coordinator's state, replicated so a
    /// new coordinator completes what the old one began.
    #[serde(default)]
    pub transactions: BTreeMap<String, TransactionMetadata>,
    /// The cluster's next free producer id, for a transactional id or a broker's block of
    /// idempotent ones (the name is from before idempotent ids came from here too). Starts at
    /// [`FIRST_TRANSACTIONAL_PRODUCER_ID`], above the ids brokers once counted up from 0
    /// themselves, and only grows.
    #[serde(default = "first_transactional_producer_id")]
    pub next_transactional_producer_id: i64,
}

/// Cluster producer ids start here (2^48), so they never meet the ids brokers counted up from 0
/// for idempotent producers before those came from the cluster too.
pub const FIRST_TRANSACTIONAL_PRODUCER_ID: i64 = 1 << 48;

fn first_transactional_producer_id() -> i64 {
    FIRST_TRANSACTIONAL_PRODUCER_ID
}

impl Default for ClusterImage {
    fn default() -> Self {
        Self {
            cluster_id: None,
            brokers: BTreeMap::new(),
            topics: BTreeMap::new(),
            offsets: BTreeMap::new(),
            broker_configs: BTreeMap::new(),
            scram: BTreeMap::new(),
            acls: Acls::default(),
            transactions: BTreeMap::new(),
            next_transactional_producer_id: FIRST_TRANSACTIONAL_PRODUCER_ID,
        }
    }
}

/// One group's committed offsets: topic -> partition -> commit.
pub type GroupOffsets = BTreeMap<String, BTreeMap<i32, OffsetCommit>>;

/// A committed offset and what came with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetCommit {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    /// Wall-clock milliseconds of the commit (set by the coordinator), for offset expiry.
    pub commit_timestamp: i64,
}

impl ClusterImage {
    /// Applies one record, whole or not at all.
    pub fn apply(&mut self, record: &MetadataRecord) -> Result<(), ApplyError> {
        match record {
            MetadataRecord::InitCluster { cluster_id } => self.init_cluster(cluster_id),
            MetadataRecord::RegisterBroker(registration) => {
                self.register_broker(registration);
                Ok(())
            }
            MetadataRecord::FenceBroker { id } => self.set_fenced(*id, true),
            MetadataRecord::UnfenceBroker { id } => self.set_fenced(*id, false),
            MetadataRecord::UnregisterBroker { id } => self.unregister_broker(*id),
            MetadataRecord::CreateTopic {
                name,
                id,
                assignments,
                configs,
            } => self.create_topic(name, *id, assignments, configs),
            MetadataRecord::DeleteTopic { name } => self
                .topics
                .remove(name)
                .map(drop)
                .ok_or_else(|| ApplyError::UnknownTopic(name.clone())),
            MetadataRecord::CreatePartitions { topic, assignments } => {
                self.create_partitions(topic, assignments)
            }
            MetadataRecord::SetTopicConfigs { topic, configs } => {
                let image = self.topic_mut(topic)?;
                image.configs = configs.clone();
                Ok(())
            }
            MetadataRecord::ChangePartition(change) => self.change_partition(change),
            MetadataRecord::CommitOffsets { group, offsets } => {
                let committed = self.offsets.entry(group.clone()).or_default();
                for (topic, partition, commit) in offsets {
                    committed
                        .entry(topic.clone())
                        .or_default()
                        .insert(*partition, commit.clone());
                }
                Ok(())
            }
            MetadataRecord::SetBrokerConfigs { resource, configs } => {
                if configs.is_empty() {
                    self.broker_configs.remove(resource);
                } else {
                    self.broker_configs
                        .insert(resource.clone(), configs.clone());
                }
                Ok(())
            }
            MetadataRecord::SetScramCredential { user, credential } => {
                self.scram
                    .entry(user.clone())
                    .or_default()
                    .insert(credential.mechanism, credential.clone());
                Ok(())
            }
            MetadataRecord::DeleteScramCredential { user, mechanism } => {
                let removed = self
                    .scram
                    .get_mut(user)
                    .and_then(|c| c.remove(mechanism))
                    .is_some();
                if self.scram.get(user).is_some_and(BTreeMap::is_empty) {
                    self.scram.remove(user);
                }
                if removed {
                    Ok(())
                } else {
                    Err(ApplyError::UnknownScramCredential {
                        user: user.clone(),
                        mechanism: mechanism.name().to_string(),
                    })
                }
            }
            MetadataRecord::CreateAcls { bindings } => {
                for b in bindings {
                    self.acls.insert(b.clone());
                }
                Ok(())
            }
            MetadataRecord::DeleteAcls { bindings } => {
                for b in bindings {
                    self.acls.remove(b);
                }
                Ok(())
            }
            MetadataRecord::PutTransaction {
                transactional_id,
                transaction,
            } => self.put_transaction(transactional_id, transaction),
            MetadataRecord::RemoveTransaction {
                transactional_id,
                producer_id,
                producer_epoch,
            } => {
                let same = self.transactions.get(transactional_id).is_some_and(|t| {
                    t.producer_id == *producer_id && t.producer_epoch == *producer_epoch
                });
                if same {
                    self.transactions.remove(transactional_id);
                }
                Ok(())
            }
            MetadataRecord::AllocateProducerIds { first, count, .. } => {
                self.allocate_producer_ids(*first, *count)
            }
            MetadataRecord::DeleteOffsets { group, partitions } => {
                match partitions {
                    None => {
                        self.offsets.remove(group);
                    }
                    Some(partitions) => {
                        if let Some(committed) = self.offsets.get_mut(group) {
                            for (topic, partition) in partitions {
                                if let Some(t) = committed.get_mut(topic) {
                                    t.remove(partition);
                                    if t.is_empty() {
                                        committed.remove(topic);
                                    }
                                }
                            }
                            if committed.is_empty() {
                                self.offsets.remove(group);
                            }
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// Brokers that are registered and not fenced: the ones that may lead and be in an ISR.
    /// Broker `id`'s dynamic config `key`: its own value, else the cluster-wide default.
    pub fn broker_config(&self, id: BrokerId, key: &str) -> Option<&str> {
        self.broker_configs
            .get(&id.to_string())
            .and_then(|c| c.get(key))
            .or_else(|| self.broker_configs.get("").and_then(|c| c.get(key)))
            .map(String::as_str)
    }

    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    pub fn is_live(&self, id: BrokerId) -> bool {
        self.brokers.get(&id).is_some_and(|b| !b.fenced)
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionState> {
        let index = usize::try_from(partition).ok()?;
        self.topics.get(topic)?.partitions.get(index)
    }

    /// Every partition as `(topic, partition number, state)`, in a stable order.
    pub fn partitions(&self) -> impl Iterator<Item = (&str, i32, &PartitionState)> {
        self.topics.iter().flat_map(|(name, topic)| {
            topic
                .partitions
                .iter()
                .enumerate()
                .map(move |(i, p)| (name.as_str(), i as i32, p))
        })
    }

    fn init_cluster(&mut self, cluster_id: &str) -> Result<(), ApplyError> {
        match &self.cluster_id {
            Some(existing) if existing != cluster_id => Err(ApplyError::ClusterIdMismatch {
                existing: existing.clone(),
                proposed: cluster_id.to_string(),
            }),
            _ => {
                self.cluster_id = Some(cluster_id.to_string());
                Ok(())
            }
        }
    }

    /// The partitions with a replica on `broker` (current, being added or being removed).
    pub fn partitions_on(&self, broker: BrokerId) -> Vec<(String, i32)> {
        self.topics
            .iter()
            .flat_map(|(name, topic)| {
                topic
                    .partitions
                    .iter()
                    .enumerate()
                    .filter(move |(_, p)| {
                        p.replicas.contains(&broker) || p.adding.contains(&broker)
                    })
                    .map(move |(i, _)| (name.clone(), i as i32))
            })
            .collect()
    }

    /// A transaction's producer id is its own from before, or a fresh one: never one already
    /// handed out (to another transactional id or in a broker's block), which a coordinator
    /// deciding on an image a block allocation has since moved could otherwise propose.
    fn put_transaction(
        &mut self,
        transactional_id: &str,
        transaction: &TransactionMetadata,
    ) -> Result<(), ApplyError> {
        let next = self
            .next_transactional_producer_id
            .max(FIRST_TRANSACTIONAL_PRODUCER_ID);
        let known = self
            .transactions
            .get(transactional_id)
            .is_some_and(|t| t.producer_id == transaction.producer_id);
        if !known && transaction.producer_id < next {
            return Err(ApplyError::ProducerIdTaken {
                first: transaction.producer_id,
                next,
            });
        }
        self.next_transactional_producer_id = next.max(transaction.producer_id.saturating_add(1));
        self.transactions
            .insert(transactional_id.to_string(), transaction.clone());
        Ok(())
    }

    fn allocate_producer_ids(&mut self, first: i64, count: i64) -> Result<(), ApplyError> {
        let next = self
            .next_transactional_producer_id
            .max(FIRST_TRANSACTIONAL_PRODUCER_ID);
        match first.checked_add(count) {
            Some(end) if count > 0 && first >= next => {
                self.next_transactional_producer_id = end;
                Ok(())
            }
            _ => Err(ApplyError::ProducerIdTaken { first, next }),
        }
    }

    fn unregister_broker(&mut self, id: BrokerId) -> Result<(), ApplyError> {
        let broker = self.brokers.get(&id).ok_or(ApplyError::UnknownBroker(id))?;
        if !broker.fenced {
            return Err(ApplyError::BrokerAlive(id));
        }
        let on = self.partitions_on(id);
        if let Some((topic, partition)) = on.first() {
            return Err(ApplyError::BrokerInUse {
                broker: id,
                partitions: on.len(),
                example: format!("{topic}-{partition}"),
            });
        }
        self.brokers.remove(&id);
        self.broker_configs.remove(&id.to_string());
        Ok(())
    }

    /// Records a registration. A broker that registered before with another data directory
    /// lost every record it held (its volume was replaced or wiped): its replicas are new and
    /// empty, so in the same record it leaves every ISR and the leadership of every partition
    /// it led, and never leads or counts toward `acks=all` with a log it no longer has. It
    /// rejoins each ISR as a follower that caught up; the controller elects leaders from the
    /// rest of each ISR, and a partition whose ISR held only this broker stays offline (its
    /// acknowledged records are gone) unless unclean election is allowed.
    fn register_broker(&mut self, registration: &BrokerRegistration) {
        let lost = self
            .brokers
            .get(&registration.id)
            .is_some_and(|known| registration.lost_directory_of(known));
        if lost {
            self.forget_replicas_of(registration.id);
        }
        self.brokers.insert(registration.id, registration.clone());
    }

    /// Takes broker `id` out of every ISR, and out of the leadership of the partitions it led
    /// (a new leader epoch, so its old requests are refused).
    fn forget_replicas_of(&mut self, id: BrokerId) {
        let held = self
            .topics
            .values_mut()
            .flat_map(|t| t.partitions.iter_mut())
            .filter(|state| state.isr.contains(&id));
        for state in held {
            state.isr.retain(|r| *r != id);
            if state.leader == Some(id) {
                state.leader = None;
                state.leader_epoch += 1;
            }
            state.partition_epoch += 1;
        }
    }

    fn set_fenced(&mut self, id: BrokerId, fenced: bool) -> Result<(), ApplyError> {
        let broker = self
            .brokers
            .get_mut(&id)
            .ok_or(ApplyError::UnknownBroker(id))?;
        broker.fenced = fenced;
        Ok(())
    }

    fn create_topic(
        &mut self,
        name: &str,
        id: Uuid,
        assignments: &[Vec<BrokerId>],
        configs: &BTreeMap<String, String>,
    ) -> Result<(), ApplyError> {
        if self.topics.contains_key(name) {
            return Err(ApplyError::TopicExists(name.to_string()));
        }
        if assignments.is_empty() {
            return Err(invalid(name, "a topic needs at least one partition"));
        }
        self.check_assignments(name, assignments)?;
        self.topics.insert(
            name.to_string(),
            TopicImage {
                id,
                partitions: assignments
                    .iter()
                    .map(|r| PartitionState::new(r.clone()))
                    .collect(),
                configs: configs.clone(),
            },
        );
        Ok(())
    }

    fn create_partitions(
        &mut self,
        topic: &str,
        assignments: &[Vec<BrokerId>],
    ) -> Result<(), ApplyError> {
        self.check_assignments(topic, assignments)?;
        let image = self.topic_mut(topic)?;
        image
            .partitions
            .extend(assignments.iter().map(|r| PartitionState::new(r.clone())));
        Ok(())
    }

    /// Every partition has at least one replica, no broker twice, and only registered brokers.
    fn check_assignments(
        &self,
        topic: &str,
        assignments: &[Vec<BrokerId>],
    ) -> Result<(), ApplyError> {
        for replicas in assignments {
            if replicas.is_empty() {
                return Err(invalid(topic, "a partition needs at least one replica"));
            }
            for (i, r) in replicas.iter().enumerate() {
                if replicas[..i].contains(r) {
                    return Err(invalid(topic, &format!("broker {r} appears twice")));
                }
                if !self.brokers.contains_key(r) {
                    return Err(ApplyError::UnknownBroker(*r));
                }
            }
        }
        Ok(())
    }

    fn change_partition(&mut self, change: &PartitionChange) -> Result<(), ApplyError> {
        let unknown = || ApplyError::UnknownPartition {
            topic: change.topic.clone(),
            partition: change.partition,
        };
        let index = usize::try_from(change.partition).map_err(|_| unknown())?;
        if let Some(reason) = self.broken_invariant(change) {
            return Err(ApplyError::InvalidPartitionState {
                topic: change.topic.clone(),
                partition: change.partition,
                reason,
            });
        }
        // Only live brokers join an ISR (Kafka's KIP-841): a leader's stale view of a dead
        // follower must not bring it back.
        let joining_dead = self
            .partition(&change.topic, change.partition)
            .and_then(|state| {
                change
                    .isr
                    .iter()
                    .copied()
                    .find(|r| !state.isr.contains(r) && !self.is_live(*r))
            });
        if let Some(broker) = joining_dead {
            return Err(ApplyError::IneligibleReplica {
                topic: change.topic.clone(),
                partition: change.partition,
                broker,
            });
        }
        let topic = self.topic_mut(&change.topic)?;
        let state = topic.partitions.get_mut(index).ok_or_else(unknown)?;
        if state.partition_epoch != change.expected_partition_epoch {
            return Err(ApplyError::StalePartitionEpoch {
                topic: change.topic.clone(),
                partition: change.partition,
                expected: change.expected_partition_epoch,
                actual: state.partition_epoch,
            });
        }
        // A new leader, or a replica set that lost members, starts a new leader epoch: the old
        // leader's and removed replicas' requests carry the old one and are refused.
        let shrunk = state.replicas.iter().any(|r| !change.replicas.contains(r));
        if change.leader != state.leader || shrunk {
            state.leader_epoch += 1;
        }
        state.partition_epoch += 1;
        state.replicas = change.replicas.clone();
        state.isr = change.isr.clone();
        state.leader = change.leader;
        state.adding = change.adding.clone();
        state.removing = change.removing.clone();
        Ok(())
    }

    /// What is wrong with the partition state `change` leads to, if anything: whoever proposed
    /// it (a controller with a bug, or anything that reached the cluster port), the image
    /// keeps replicas distinct and registered, leader ∈ ISR ⊆ replicas, and the replicas being
    /// added or removed among the replicas.
    fn broken_invariant(&self, change: &PartitionChange) -> Option<String> {
        let distinct = |ids: &[BrokerId]| {
            let mut sorted = ids.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            sorted.len() == ids.len()
        };
        let within = |ids: &[BrokerId]| ids.iter().all(|b| change.replicas.contains(b));
        if change.replicas.is_empty() || !distinct(&change.replicas) {
            return Some(format!(
                "replicas {:?} must be distinct and not empty",
                change.replicas
            ));
        }
        if let Some(unknown) = change
            .replicas
            .iter()
            .find(|b| !self.brokers.contains_key(b))
        {
            return Some(format!("replica {unknown} is not a registered broker"));
        }
        if !distinct(&change.isr) || !within(&change.isr) {
            return Some(format!(
                "ISR {:?} must be distinct replicas of {:?}",
                change.isr, change.replicas
            ));
        }
        if let Some(leader) = change.leader.filter(|l| !change.isr.contains(l)) {
            return Some(format!(
                "leader {leader} is not in the ISR {:?}",
                change.isr
            ));
        }
        if !within(&change.adding) || !within(&change.removing) {
            return Some(format!(
                "replicas being added {:?} and removed {:?} must be among the replicas {:?}",
                change.adding, change.removing, change.replicas
            ));
        }
        None
    }

    fn topic_mut(&mut self, topic: &str) -> Result<&mut TopicImage, ApplyError> {
        self.topics
            .get_mut(topic)
            .ok_or_else(|| ApplyError::UnknownTopic(topic.to_string()))
    }
}

fn invalid(topic: &str, reason: &str) -> ApplyError {
    ApplyError::InvalidAssignment {
        topic: topic.to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
#[path = "image_tests.rs"]
pub(crate) mod tests;
