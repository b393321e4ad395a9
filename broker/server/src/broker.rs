//! The state every request handler shares: configuration, storage and the topic registry.

use krait_sync::MutexExt;
use std::sync::{Arc, Mutex};

use krait_coordinator::{Coordinator, GroupRecord, Settings};
use krait_image::{GroupOffsets, ListenerAddress, MetadataRecord, OffsetCommit};
use krait_protocol::kafka_protocol::error::ResponseError;
use krait_storage::{Store, StoredGroup};

use crate::cluster::{self, Cluster};
use crate::config::{Advertised, BrokerConfig};
use crate::listeners::{Addressing, ListenerSpec};
use crate::metrics::Metrics;
use crate::security::Security;
use crate::topic_config::BrokerDefaults;
use crate::topics::Topics;

/// One running broker.
#[derive(Debug)]
pub struct Broker {
    pub config: BrokerConfig,
    pub advertised: Advertised,
    pub defaults: BrokerDefaults,
    pub topics: Topics,
    pub metrics: Metrics,
    pub security: Security,
    /// The Kafka listeners, the primary first, with the addresses they announce.
    pub listeners: Vec<ListenerSpec>,
    pub coordinator: Arc<Coordinator>,
    /// The transaction coordinator's locks (the controller coordinates transactions).
    pub transactions: crate::transactions::TxnCoordinator,
    /// This broker's block of cluster-unique producer ids for idempotent producers.
    pub producer_ids: crate::producer_ids::ProducerIds,
    pub store: Arc<Store>,
    pub cluster: Arc<Cluster>,
    /// Room for the records of Fetch responses not yet written (fetch.memory.max.bytes).
    pub fetch_memory: Arc<crate::fetch_memory::FetchMemory>,
    /// The id of the cluster this data directory belongs to, once known.
    cluster_id: Mutex<Option<String>>,
}

/// Kafka's check of a request's `current_leader_epoch` against the partition's: a client
/// ahead of the broker gets UNKNOWN_LEADER_EPOCH (retry after metadata catches up), one behind
/// gets FENCED_LEADER_EPOCH (refresh metadata); -1 skips the check.
pub fn check_leader_epoch(requested: i32, current: i32) -> Option<ResponseError> {
    match requested {
        r if r < 0 || r == current => None,
        r if r > current => Some(ResponseError::UnknownLeaderEpoch),
        _ => Some(ResponseError::FencedLeaderEpoch),
    }
}

impl Broker {
    /// Opens (and locks) the data directory of `config`.
    #[cfg(feature = "rocksdb")]
    pub fn open_store(config: &BrokerConfig) -> anyhow::Result<Store> {
        Ok(Store::open(
            &config.data_dir,
            krait_storage::StoreOptions {
                sync_writes: config.fsync,
                memory_budget: usize::try_from(config.storage_memory_mb() << 20)?,
            },
        )?)
    }

    /// Without the `rocksdb` feature (the fuzz targets' build) there is no engine on disk.
    #[cfg(not(feature = "rocksdb"))]
    pub fn open_store(config: &BrokerConfig) -> anyhow::Result<Store> {
        anyhow::bail!(
            "this krait-broker is built without RocksDB; it cannot open {}",
            config.data_dir.display()
        )
    }

    /// Opens the data directory and starts the broker (see [`Broker::start`]).
    pub async fn open(config: BrokerConfig, advertised: Advertised) -> anyhow::Result<Arc<Self>> {
        let store = Self::open_store(&config)?;
        let listeners = config.listeners(&advertised)?;
        Self::start(config, advertised, listeners, store, None).await
    }

    /// Starts the broker on an opened store: its metadata quorum node, its topics, and the
    /// background loops (image, heartbeats, controller, ISR). `cluster_listener` serves the
    /// cluster gRPC services when the broker has peers.
    pub async fn start(
        config: BrokerConfig,
        advertised: Advertised,
        listeners: Vec<ListenerSpec>,
        store: Store,
        cluster_listener: Option<tokio::net::TcpListener>,
    ) -> anyhow::Result<Arc<Self>> {
        let store = Arc::new(store);
        let stored_cluster_id = store.stored_cluster_id()?;
        let security = Security::from_config(&config)?;
        let mut settings = config.cluster_settings(&advertised)?;
        settings.listeners = listeners
            .iter()
            .filter(|l| l.addressing == Addressing::Registered)
            .map(|l| {
                let address = ListenerAddress {
                    host: l.advertised.host.clone(),
                    port: l.advertised.port,
                };
                (l.name.clone(), address)
            })
            .collect();
        let cluster_tls = match &settings.peer {
            krait_peer::ClusterTransport::Tls(tls) => Some(tls.acceptor().clone()),
            krait_peer::ClusterTransport::Plaintext => None,
        };
        let cluster = Cluster::start(settings, store.clone()).await?;
        if let Some(listener) = cluster_listener {
            cluster::serve(&cluster, listener);
        }
        let topics = Topics::load(store.clone(), config.node_id, cluster.replicas.clone())?;
        let coordinator = Arc::new(coordinator(&config, &store)?);
        let defaults = BrokerDefaults::from_config(
            &config,
            &format!("{}:{}", advertised.host, advertised.port),
        )
        .with_dynamic(cluster.watch_image());
        let fetch_memory = crate::fetch_memory::FetchMemory::new(config.fetch_memory_max_bytes());
        let broker = Arc::new(Self {
            config,
            advertised,
            defaults,
            topics,
            metrics: Metrics::default(),
            security,
            listeners,
            coordinator,
            transactions: Default::default(),
            producer_ids: Default::default(),
            fetch_memory,
            store,
            cluster,
            cluster_id: Mutex::new(stored_cluster_id),
        });
        if let Some(acceptor) = cluster_tls {
            broker.metrics.watch_certificate("cluster", acceptor);
        }
        cluster::spawn_loops(&broker);
        Ok(broker)
    }

    /// Waits until this broker process is registered, unfenced and has applied the image that
    /// says so (never by an image restored from its data directory).
    pub async fn wait_ready(&self, timeout: std::time::Duration) -> bool {
        let cluster = &self.cluster;
        cluster
            .wait_applied(|image| cluster.serving_in(image), timeout)
            .await
            .is_ok()
    }

    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }

    /// The cluster id (empty until the first controller has set it).
    pub fn cluster_id(&self) -> String {
        self.cluster_id
            .lock_unpoisoned()
            .clone()
            .unwrap_or_default()
    }

    /// The id a new cluster gets from its first controller: this data directory's, when it has
    /// one from before it was clustered, else a fresh one.
    pub fn proposed_cluster_id(&self) -> String {
        self.cluster_id
            .lock_unpoisoned()
            .clone()
            .unwrap_or_else(new_cluster_id)
    }

    /// Takes the cluster's id for this data directory, or refuses when the directory already
    /// belongs to another cluster.
    pub fn adopt_cluster_id(&self, id: &str) -> anyhow::Result<()> {
        let mut current = self.cluster_id.lock_unpoisoned();
        match current.as_deref() {
            Some(existing) if existing == id => Ok(()),
            Some(existing) => {
                let message = format!(
                    "data directory {} belongs to cluster {existing}, but the voters form cluster {id}; refusing to join (use an empty data directory for a new member)",
                    self.config.data_dir.display()
                );
                self.cluster.fail(message.clone());
                Err(anyhow::anyhow!(message))
            }
            None => {
                self.store.set_cluster_id(id)?;
                *current = Some(id.to_string());
                Ok(())
            }
        }
    }

    /// NOT_COORDINATOR unless this broker coordinates consumer groups now: the controller does
    /// (FindCoordinator names it), so a group never has two coordinators.
    pub fn not_coordinator(&self) -> Option<ResponseError> {
        (!self.cluster.quorum.is_leader()).then_some(ResponseError::NotCoordinator)
    }

    /// A group's committed offsets as this broker last applied them.
    pub fn committed_offsets(&self, group: &str) -> GroupOffsets {
        self.cluster
            .quorum
            .image()
            .borrow()
            .offsets
            .get(group)
            .cloned()
            .unwrap_or_default()
    }

    /// Commits offsets through the metadata quorum; done when a majority has them.
    pub async fn commit_offsets(
        &self,
        group: &str,
        offsets: Vec<(String, i32, OffsetCommit)>,
    ) -> Result<(), String> {
        self.propose_one(MetadataRecord::CommitOffsets {
            group: group.to_string(),
            offsets,
        })
        .await
    }

    /// Deletes committed offsets (the listed partitions, or the whole group's) through the quorum.
    pub async fn delete_offsets(
        &self,
        group: &str,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Result<(), String> {
        self.propose_one(MetadataRecord::DeleteOffsets {
            group: group.to_string(),
            partitions,
        })
        .await
    }

    async fn propose_one(&self, record: MetadataRecord) -> Result<(), String> {
        match self.cluster.propose(vec![record]).await {
            Ok(mut results) => results.pop().unwrap_or(Ok(())).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Brokers that are alive (registered and not fenced).
    pub fn live_brokers(&self) -> usize {
        self.cluster.image().live_brokers().count()
    }
}

/// The group coordinator, with the groups stored on disk, persisting group metadata on change.
fn coordinator(config: &BrokerConfig, store: &Arc<Store>) -> anyhow::Result<Coordinator> {
    let settings = Settings {
        initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
        min_session_timeout_ms: config.group_min_session_timeout_ms,
        max_session_timeout_ms: config.group_max_session_timeout_ms,
    };
    let restored = store
        .load_groups()?
        .into_iter()
        .map(|g| GroupRecord {
            group_id: g.group_id,
            generation_id: g.generation_id,
            protocol_type: g.protocol_type,
        })
        .collect();
    let store = store.clone();
    let persist = move |group_id: &str, record: Option<&GroupRecord>| {
        let result = match record {
            Some(r) => store.put_group(&StoredGroup {
                group_id: r.group_id.clone(),
                generation_id: r.generation_id,
                protocol_type: r.protocol_type.clone(),
            }),
            None => store.delete_group(group_id),
        };
        if let Err(e) = result {
            tracing::warn!(group = group_id, error = %e, "cannot persist group metadata");
        }
    };
    Ok(Coordinator::new(settings, restored, Box::new(persist)))
}

/// Kafka cluster ids are 16 random bytes in URL-safe base64 without padding (22 characters);
/// like Kafka, never one starting with '-', which command lines would take for a flag.
pub fn new_cluster_id() -> String {
    loop {
        let id = random_base64_id();
        if !id.starts_with('-') {
            return id;
        }
    }
}

fn random_base64_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut bits: u128 = u128::from_be_bytes(bytes);
    let mut out = String::with_capacity(22);
    for _ in 0..22 {
        out.push(ALPHABET[(bits >> 122) as usize] as char);
        bits <<= 6;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_epoch_check_follows_kafka() {
        assert_eq!(check_leader_epoch(-1, 5), None);
        assert_eq!(check_leader_epoch(5, 5), None);
        assert_eq!(
            check_leader_epoch(6, 5),
            Some(ResponseError::UnknownLeaderEpoch)
        );
        assert_eq!(
            check_leader_epoch(4, 5),
            Some(ResponseError::FencedLeaderEpoch)
        );
    }

    #[test]
    fn cluster_ids_look_like_kafkas() {
        let id = super::new_cluster_id();
        assert_eq!(id.len(), 22);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert!((0..200).all(|_| !super::new_cluster_id().starts_with('-')));
        assert_ne!(id, super::new_cluster_id());
    }
}
