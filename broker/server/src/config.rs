//! The broker's configuration: one struct, parsed from flags with `KRAIT_*` environment
//! fallbacks, validated once at start.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use krait_peer::{ClusterTls, ClusterTransport};

use crate::cluster::ClusterSettings;

/// Kafka's default `message.max.bytes`: a 1 MiB batch plus its 12-byte log overhead.
pub const DEFAULT_MAX_MESSAGE_BYTES: i32 = 1_048_588;
/// Kafka's default `log.retention.ms`: 7 days.
pub const DEFAULT_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;
/// Kafka's default log.retention.bytes: no size limit.
pub const DEFAULT_RETENTION_BYTES: i64 = -1;
/// Kafka's default min.insync.replicas.
pub const DEFAULT_MIN_INSYNC_REPLICAS: i32 = 1;

/// A Kafka-compatible broker storing partitions in RocksDB.
#[derive(Debug, Clone, Parser)]
#[command(name = "krait-broker", version, about)]
pub struct BrokerConfig {
    /// A Kafka server.properties file: its listeners, security and broker settings, by Kafka's
    /// own key names. Flags and KRAIT_* variables win over it.
    #[arg(long, env = "KRAIT_CONFIG")]
    pub config: Option<PathBuf>,

    /// `KEY=VALUE`: a Kafka key set as if the --config file held it, over the file's own value
    /// (Kafka's `kafka-server-start.sh --override`). Repeatable; what differs from broker to
    /// broker (its advertised listeners, its keystore) comes this way when every broker shares
    /// one file.
    #[arg(long = "override", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,

    /// SCRAM users to create when they do not exist yet, as kafka-storage format --add-scram
    /// writes them: 'SCRAM-SHA-512=[name=admin,password=admin-secret]', several separated by
    /// ';'. A user who exists keeps the credential it has (a later password change stands).
    #[arg(long, env = "KRAIT_ADD_SCRAM", value_delimiter = ';')]
    pub add_scram: Vec<String>,

    /// The configuration file's keys (empty without --config).
    #[arg(skip)]
    pub properties: BTreeMap<String, String>,

    /// Directory holding the broker's RocksDB database; created if missing.
    #[arg(long, env = "KRAIT_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Address the Kafka listener binds.
    #[arg(long, env = "KRAIT_LISTEN", default_value = "127.0.0.1:9092")]
    pub listen: SocketAddr,

    /// Address of the HTTP endpoint for probes and metrics (/healthz, /readyz, /metrics), e.g.
    /// 0.0.0.0:9644 in a pod. Off unless set, so several local brokers never collide on it.
    #[arg(long, env = "KRAIT_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,

    /// HOST:PORT that Metadata returns to clients; defaults to the listen address.
    #[arg(long, env = "KRAIT_ADVERTISE")]
    pub advertise: Option<String>,

    /// This broker's id (Kafka's node.id).
    #[arg(long, env = "KRAIT_NODE_ID", default_value_t = 1)]
    pub node_id: i32,

    /// Create a topic when a client asks for one that does not exist (auto.create.topics.enable).
    #[arg(long, env = "KRAIT_AUTO_CREATE_TOPICS", default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_create_topics: bool,

    /// Partitions of an automatically created topic, or of one created with -1 (num.partitions).
    #[arg(long, env = "KRAIT_DEFAULT_PARTITIONS", default_value_t = 1)]
    pub default_partitions: i32,

    /// MiB the broker's memory stays within under any load (memory.mb): RocksDB, request
    /// frames, Fetch responses, replication and the process itself. The budgets of those parts
    /// default to shares of it (`memory_budget.rs`); set one of them and it is used as given.
    #[arg(
        long,
        env = "KRAIT_MEMORY_MB",
        default_value_t = crate::memory_budget::DEFAULT_MEMORY_MB,
        value_parser = clap::value_parser!(u64).range(crate::memory_budget::MIN_MEMORY_MB..=1 << 20)
    )]
    pub memory_mb: u64,

    /// Largest request frame accepted, in bytes (socket.request.max.bytes). Defaults to the
    /// request frames' share of --memory-mb, at most 100 MiB (Kafka's default).
    #[arg(long, env = "KRAIT_MAX_REQUEST_BYTES")]
    pub max_request_bytes: Option<usize>,

    /// Client connections this broker keeps open at once, over all listeners
    /// (max.connections); one more is closed as soon as it is accepted. Defaults to the
    /// process's open-file limit less a reserve for the data directory and the cluster port.
    #[arg(long, env = "KRAIT_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// Client connections from one IP address at once (max.connections.per.ip).
    #[arg(long, env = "KRAIT_MAX_CONNECTIONS_PER_IP", default_value_t = i32::MAX as usize)]
    pub max_connections_per_ip: usize,

    /// A client connection with no request for this long is closed (connections.max.idle.ms).
    #[arg(long, env = "KRAIT_CONNECTIONS_MAX_IDLE_MS", default_value_t = 600_000)]
    pub connections_max_idle_ms: u64,

    /// How long a SASL login lasts (connections.max.reauth.ms, KIP-368): SaslAuthenticate tells
    /// the client, which logs in again on the same connection before then; a connection whose
    /// login has expired is closed at its next request. 0: a login lasts as long as the
    /// connection.
    #[arg(long, env = "KRAIT_CONNECTIONS_MAX_REAUTH_MS", default_value_t = 0)]
    pub connections_max_reauth_ms: u64,

    /// A request frame whose first byte has arrived must arrive whole within this time, or the
    /// connection is closed: a client that trickles a frame byte by byte ("slowloris") does not
    /// hold a connection and its buffer forever. Likewise a client that reads nothing of its
    /// response for this long is closed, so it does not hold the response's records.
    #[arg(long, env = "KRAIT_REQUEST_READ_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_read_timeout_ms: u64,

    /// Most partitions one CreateTopics or CreatePartitions request may add, over its topics.
    #[arg(long, env = "KRAIT_MAX_REQUEST_PARTITIONS", default_value_t = 10_000)]
    pub max_request_partitions: i32,

    /// Bytes of request frames being read or handled at once, over all connections
    /// (queued.max.request.bytes); a connection waits for room before it reads a frame's body.
    /// Never less than --max-request-bytes. Defaults to an eighth of --memory-mb.
    #[arg(long, env = "KRAIT_QUEUED_MAX_REQUEST_BYTES")]
    pub queued_max_request_bytes: Option<usize>,

    /// Most partitions one topic may have, through CreateTopics or CreatePartitions.
    #[arg(long, env = "KRAIT_MAX_PARTITIONS_PER_TOPIC", default_value_t = 10_000)]
    pub max_partitions_per_topic: i32,

    /// Most partitions in the whole cluster (max.partitions, as KIP-578 names it).
    #[arg(long, env = "KRAIT_MAX_PARTITIONS", default_value_t = 100_000)]
    pub max_partitions: i64,

    /// Largest Fetch response, whatever the client asks for (fetch.max.bytes). As in Kafka,
    /// the first batch is returned whole even when it is larger, so a consumer always advances.
    #[arg(long, env = "KRAIT_FETCH_MAX_BYTES", default_value_t = 55 * 1024 * 1024)]
    pub fetch_max_bytes: usize,

    /// Bytes of records all Fetch responses may hold at once, from their read until they are
    /// written to the client (fetch.memory.max.bytes). A fetch reads only what is free, and
    /// waits while less than 1 MiB is; the first batch of a response may go over by itself.
    /// Defaults to an eighth of --memory-mb.
    #[arg(long, env = "KRAIT_FETCH_MEMORY_MAX_BYTES")]
    pub fetch_memory_max_bytes: Option<usize>,

    /// The most records one replica fetch response carries, served as leader or asked for as
    /// follower (replica.fetch.response.max.bytes). Defaults to a 64th of --memory-mb, at most
    /// 16 MiB; at most 32 MiB.
    #[arg(long, env = "KRAIT_REPLICA_FETCH_RESPONSE_MAX_BYTES")]
    pub replica_fetch_response_max_bytes: Option<usize>,

    /// Longest metadata string a committed offset may carry (offset.metadata.max.bytes).
    #[arg(long, env = "KRAIT_OFFSET_METADATA_MAX_BYTES", default_value_t = 4096)]
    pub offset_metadata_max_bytes: usize,

    /// Largest record batch accepted unless a topic overrides max.message.bytes (message.max.bytes).
    #[arg(long, env = "KRAIT_MAX_MESSAGE_BYTES", default_value_t = DEFAULT_MAX_MESSAGE_BYTES)]
    pub max_message_bytes: i32,

    /// Default retention.ms of topics (log.retention.ms); -1 keeps data forever.
    #[arg(long, env = "KRAIT_RETENTION_MS", default_value_t = DEFAULT_RETENTION_MS)]
    pub retention_ms: i64,

    /// Default retention.bytes of topic partitions (log.retention.bytes); -1 means no limit.
    #[arg(long, env = "KRAIT_RETENTION_BYTES", default_value_t = DEFAULT_RETENTION_BYTES)]
    pub retention_bytes: i64,

    /// How often retention deletes expired batches (log.retention.check.interval.ms).
    #[arg(
        long,
        env = "KRAIT_RETENTION_CHECK_INTERVAL_MS",
        default_value_t = 300_000
    )]
    pub retention_check_interval_ms: u64,

    /// Bytes per second log compaction may read, summed over every partition
    /// (log.cleaner.io.max.bytes.per.second), so that it does not starve produce and fetch; 0
    /// for no limit.
    #[arg(
        long,
        env = "KRAIT_LOG_CLEANER_IO_MAX_BYTES_PER_SECOND",
        default_value_t = 32 * 1024 * 1024
    )]
    pub log_cleaner_io_max_bytes_per_second: u64,

    /// How often the log cleaner looks for compacted partitions due for a pass
    /// (log.cleaner.backoff.ms). A partition that has not changed since a look found nothing
    /// due is looked at again only every --retention-check-interval-ms.
    #[arg(long, env = "KRAIT_LOG_CLEANER_BACKOFF_MS", default_value_t = 15_000)]
    pub log_cleaner_backoff_ms: u64,

    /// How long the first rebalance of an empty consumer group waits for more members
    /// (group.initial.rebalance.delay.ms).
    #[arg(
        long,
        env = "KRAIT_GROUP_INITIAL_REBALANCE_DELAY_MS",
        default_value_t = 3_000
    )]
    pub group_initial_rebalance_delay_ms: u64,

    /// Smallest session.timeout.ms a consumer may ask for (group.min.session.timeout.ms).
    #[arg(
        long,
        env = "KRAIT_GROUP_MIN_SESSION_TIMEOUT_MS",
        default_value_t = 6_000
    )]
    pub group_min_session_timeout_ms: i32,

    /// Largest session.timeout.ms a consumer may ask for (group.max.session.timeout.ms).
    #[arg(
        long,
        env = "KRAIT_GROUP_MAX_SESSION_TIMEOUT_MS",
        default_value_t = 1_800_000
    )]
    pub group_max_session_timeout_ms: i32,

    /// Largest transaction.timeout.ms a transactional producer may ask for
    /// (transaction.max.timeout.ms); InitProducerId above it gets INVALID_TRANSACTION_TIMEOUT.
    #[arg(
        long,
        env = "KRAIT_TRANSACTION_MAX_TIMEOUT_MS",
        default_value_t = 900_000
    )]
    pub transaction_max_timeout_ms: i32,

    /// The coordinator forgets a transactional id with no transaction open and no request for
    /// this long (transactional.id.expiration.ms); its next InitProducerId starts afresh.
    #[arg(
        long,
        env = "KRAIT_TRANSACTIONAL_ID_EXPIRATION_MS",
        default_value_t = 604_800_000,
        value_parser = clap::value_parser!(i64).range(1..)
    )]
    pub transactional_id_expiration_ms: i64,

    /// Committed offsets of a group without members expire this long after their commit
    /// (offsets.retention.minutes).
    #[arg(long, env = "KRAIT_OFFSETS_RETENTION_MINUTES", default_value_t = 7 * 24 * 60)]
    pub offsets_retention_minutes: u64,

    /// fsync the write-ahead log before acknowledging a produce. Off, an acknowledged record
    /// survives the broker process dying but not the machine losing power.
    #[arg(long, env = "KRAIT_FSYNC", default_value_t = false, action = clap::ArgAction::Set)]
    pub fsync: bool,

    /// MiB RocksDB may hold in memory, memtables and cached blocks together, whatever the
    /// load (storage.memory.mb). Recent data is still read from the OS page cache beyond it.
    /// Defaults to three eighths of --memory-mb.
    #[arg(
        long,
        env = "KRAIT_STORAGE_MEMORY_MB",
        value_parser = clap::value_parser!(u64).range(16..=1 << 20)
    )]
    pub storage_memory_mb: Option<u64>,

    /// MiB of deleted batches (retention, deleted topics, compaction) that RocksDB's blob files
    /// may keep on disk because live batches share their files, before each retention check
    /// gives the space back (storage.reclaim.min.mb). It is given back only once it is also
    /// half of those files, by rewriting the live batches: at most one more write per byte
    /// freed, and a disk holding at most about twice the live data.
    #[arg(long, env = "KRAIT_STORAGE_RECLAIM_MIN_MB", default_value_t = 64)]
    pub storage_reclaim_min_mb: u64,

    /// Address the cluster gRPC listener binds (metadata quorum, controller, replication).
    /// Needed with --voters; off for a broker alone.
    #[arg(long, env = "KRAIT_CLUSTER_LISTEN")]
    pub cluster_listen: Option<SocketAddr>,

    /// Cluster TLS: one PEM file with this broker's private key and certificate chain
    /// (cluster.ssl.keystore.location). The certificate must chain to the cluster CA and name
    /// this broker's node id as the URI subject alternative name urn:krait:node:<id>. With
    /// --cluster-tls-truststore, the cluster port speaks mutual TLS and each call is known by
    /// the node id of its caller. Re-read when the file changes.
    #[arg(long, env = "KRAIT_CLUSTER_TLS_KEYSTORE")]
    pub cluster_tls_keystore: Option<PathBuf>,

    /// Cluster TLS: the cluster CA certificates (PEM) every broker's certificate chains to
    /// (cluster.ssl.truststore.location).
    #[arg(long, env = "KRAIT_CLUSTER_TLS_TRUSTSTORE")]
    pub cluster_tls_truststore: Option<PathBuf>,

    /// Serve the cluster port without TLS on an address other than loopback. Anyone who can
    /// reach it can then rewrite the cluster's metadata and read or advance any partition: use
    /// it only where nothing but the brokers can reach the port.
    #[arg(long, env = "KRAIT_ALLOW_PLAINTEXT_CLUSTER")]
    pub allow_plaintext_cluster: bool,

    /// HOST:PORT other brokers use to reach this broker's cluster listener; defaults to this
    /// broker's entry in --voters, else the cluster listen address.
    #[arg(long, env = "KRAIT_CLUSTER_ADVERTISE")]
    pub cluster_advertise: Option<String>,

    /// The metadata quorum's voters as ID@HOST:PORT,... (their cluster listeners). Every broker
    /// gets the same list; a broker it does not name joins as an observer (it receives the
    /// metadata log but does not vote) and needs --cluster-advertise. Without it the broker is
    /// a cluster of one.
    #[arg(long, env = "KRAIT_VOTERS", value_delimiter = ',')]
    pub voters: Vec<String>,

    /// Address of a second Kafka listener for clients outside the cluster's network (e.g. a
    /// NodePort or load balancer in front of each broker).
    #[arg(long, env = "KRAIT_EXTERNAL_LISTEN")]
    pub external_listen: Option<SocketAddr>,

    /// HOST:PORT of every broker for clients of the external listener, in broker id order
    /// (entry N is broker N's).
    #[arg(
        long,
        env = "KRAIT_EXTERNAL_ADVERTISED_ADDRESSES",
        value_delimiter = ','
    )]
    pub external_advertised_addresses: Vec<String>,

    /// This broker's failure domain (broker.rack); replicas of a partition spread over racks.
    #[arg(long, env = "KRAIT_RACK")]
    pub rack: Option<String>,

    /// A file holding this broker's rack, read once at start (surrounding whitespace ignored):
    /// in Kubernetes an init container writes the node's topology label there. Instead of
    /// --rack; an empty or unreadable file stops the broker.
    #[arg(long, env = "KRAIT_RACK_FILE", conflicts_with = "rack")]
    pub rack_file: Option<PathBuf>,

    /// Which replica a consumer reads from (replica.selector.class): "leader", or "rack-aware"
    /// to send a consumer that gives its `client.rack` to an in-sync replica in that rack
    /// (KIP-392, fetch from follower). Kafka's class names are accepted too.
    #[arg(long, env = "KRAIT_REPLICA_SELECTOR", default_value = "leader", value_parser = parse_replica_selector)]
    pub replica_selector: ReplicaSelector,

    /// How often the broker heartbeats to the controller (broker.heartbeat.interval.ms).
    #[arg(
        long,
        env = "KRAIT_BROKER_HEARTBEAT_INTERVAL_MS",
        default_value_t = 250
    )]
    pub broker_heartbeat_interval_ms: u64,

    /// The controller fences a broker silent for this long (broker.session.timeout.ms).
    #[arg(long, env = "KRAIT_BROKER_SESSION_TIMEOUT_MS", default_value_t = 1_500)]
    pub broker_session_timeout_ms: u64,

    /// A follower not caught up for this long leaves the ISR (replica.lag.time.max.ms).
    #[arg(long, env = "KRAIT_REPLICA_LAG_TIME_MAX_MS", default_value_t = 10_000)]
    pub replica_lag_time_max_ms: i64,

    /// Default min.insync.replicas of topics.
    #[arg(long, env = "KRAIT_MIN_INSYNC_REPLICAS", default_value_t = DEFAULT_MIN_INSYNC_REPLICAS)]
    pub min_insync_replicas: i32,

    /// Replication factor of topics created with -1 or automatically
    /// (default.replication.factor).
    #[arg(long, env = "KRAIT_DEFAULT_REPLICATION_FACTOR", default_value_t = 1)]
    pub default_replication_factor: i16,

    /// A file the broker writes why it stopped to, when it stops on an error (Kubernetes'
    /// `terminationMessagePath`, usually /dev/termination-log: `kubectl describe pod` shows it,
    /// and the operator reads it). At most 4 KiB, as Kubernetes keeps.
    #[arg(long, env = "KRAIT_TERMINATION_MESSAGE_PATH")]
    pub termination_message_path: Option<PathBuf>,

    /// Log filter, in tracing's EnvFilter syntax (e.g. `info`, `krait_server=debug`). The Raft
    /// library's own logs are off by default (they repeat every 100 ms while a voter is down);
    /// `info,openraft=info` shows them.
    #[arg(long, env = "KRAIT_LOG", default_value = "info,openraft=off")]
    pub log: String,
}

/// A configuration that cannot run, with what to change.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("--advertise {0:?} is not HOST:PORT")]
    BadAdvertise(String),
    #[error(
        "--listen {0} binds every interface; set --advertise to the HOST:PORT clients should use"
    )]
    AdvertiseRequired(SocketAddr),
    #[error("--voters entry {0:?} is not ID@HOST:PORT")]
    BadVoter(String),
    #[error("--external-advertised-addresses entry {0:?} is not HOST:PORT")]
    BadExternalAddress(String),
    #[error("--external-listen needs --external-advertised-addresses with an entry for broker {0}")]
    ExternalAddressRequired(i32),
    #[error("--voters needs --cluster-listen")]
    ClusterListenRequired,
    #[error("--cluster-listen {0} binds every interface; set --cluster-advertise")]
    ClusterAdvertiseRequired(SocketAddr),
    #[error("cluster TLS needs both --cluster-tls-keystore and --cluster-tls-truststore")]
    ClusterTlsIncomplete,
    #[error(
        "--cluster-listen {0} is not a loopback address and the cluster port has no TLS: set --cluster-tls-keystore and --cluster-tls-truststore, or --allow-plaintext-cluster where nothing but the brokers can reach it"
    )]
    PlaintextCluster(SocketAddr),
    #[error("cluster TLS: {0}")]
    ClusterTls(String),
    #[error(transparent)]
    Listener(#[from] crate::listeners::ListenerError),
    #[error("--add-scram entry {0:?} is not MECHANISM=[name=USER,password=PASSWORD]")]
    BadAddScram(String),
    #[error("{key}={value:?}: {reason}")]
    BadSetting {
        key: String,
        value: String,
        reason: String,
    },
    #[error("--{flag} must be at least {min}, got {value}")]
    TooSmall {
        flag: &'static str,
        min: i64,
        value: i64,
    },
    #[error("--{flag} must be at most {max}, got {value}")]
    TooLarge {
        flag: &'static str,
        max: i64,
        value: i64,
    },
}

/// Host and port announced to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertised {
    pub host: String,
    pub port: i32,
}

impl BrokerConfig {
    /// Checks everything that can be checked before binding, returning the advertised address.
    pub fn validate(&self) -> Result<Advertised, ConfigError> {
        let min = |flag, min: i64, value: i64| {
            if value < min {
                Err(ConfigError::TooSmall { flag, min, value })
            } else {
                Ok(())
            }
        };
        min("node-id", 0, self.node_id.into())?;
        min("default-partitions", 1, self.default_partitions.into())?;
        min("max-request-bytes", 1024, self.max_request_bytes() as i64)?;
        min("max-message-bytes", 0, self.max_message_bytes.into())?;
        if let Some(n) = self.max_connections {
            min("max-connections", 1, n as i64)?;
        }
        min(
            "max-connections-per-ip",
            1,
            self.max_connections_per_ip as i64,
        )?;
        min(
            "connections-max-idle-ms",
            100,
            self.connections_max_idle_ms as i64,
        )?;
        min(
            "request-read-timeout-ms",
            100,
            self.request_read_timeout_ms as i64,
        )?;
        min(
            "queued-max-request-bytes",
            self.max_request_bytes() as i64,
            self.queued_max_request_bytes() as i64,
        )?;
        min(
            "max-partitions-per-topic",
            1,
            self.max_partitions_per_topic.into(),
        )?;
        min(
            "max-request-partitions",
            1,
            self.max_request_partitions.into(),
        )?;
        min("max-partitions", 1, self.max_partitions)?;
        min("fetch-max-bytes", 1024, self.fetch_max_bytes as i64)?;
        min(
            "replica-fetch-response-max-bytes",
            1024,
            self.replica_fetch_response_max_bytes() as i64,
        )?;
        let max = crate::memory_budget::MAX_REPLICA_FETCH_BYTES;
        if self.replica_fetch_response_max_bytes() > max {
            return Err(ConfigError::TooLarge {
                flag: "replica-fetch-response-max-bytes",
                max: max as i64,
                value: self.replica_fetch_response_max_bytes() as i64,
            });
        }
        min(
            "fetch-memory-max-bytes",
            crate::fetch_memory::FLOOR as i64,
            self.fetch_memory_max_bytes() as i64,
        )?;
        min("retention-ms", -1, self.retention_ms)?;
        min("retention-bytes", -1, self.retention_bytes)?;
        min("min-insync-replicas", 1, self.min_insync_replicas.into())?;
        min(
            "default-replication-factor",
            1,
            self.default_replication_factor.into(),
        )?;
        min(
            "broker-heartbeat-interval-ms",
            10,
            self.broker_heartbeat_interval_ms as i64,
        )?;
        min(
            "broker-session-timeout-ms",
            self.broker_heartbeat_interval_ms as i64 * 2,
            self.broker_session_timeout_ms as i64,
        )?;
        self.voters()?;
        match (&self.cluster_tls_keystore, &self.cluster_tls_truststore) {
            (Some(_), Some(_)) | (None, None) => {}
            _ => return Err(ConfigError::ClusterTlsIncomplete),
        }
        if let Some(listen) = self.cluster_listen
            && !listen.ip().is_loopback()
            && self.cluster_tls_keystore.is_none()
            && !self.allow_plaintext_cluster
        {
            return Err(ConfigError::PlaintextCluster(listen));
        }
        for a in &self.external_advertised_addresses {
            parse_host_port(a).ok_or_else(|| ConfigError::BadExternalAddress(a.clone()))?;
        }
        if self.external_listen.is_some() && self.external_address(self.node_id).is_none() {
            return Err(ConfigError::ExternalAddressRequired(self.node_id));
        }
        match &self.advertise {
            Some(addr) => {
                parse_host_port(addr).ok_or_else(|| ConfigError::BadAdvertise(addr.clone()))
            }
            None if self.listen.ip().is_unspecified() => {
                Err(ConfigError::AdvertiseRequired(self.listen))
            }
            None => Ok(Advertised {
                host: self.listen.ip().to_string(),
                port: self.listen.port().into(),
            }),
        }
    }
}

impl BrokerConfig {
    /// The voters by id; empty without --voters.
    pub fn voters(&self) -> Result<BTreeMap<i32, String>, ConfigError> {
        let mut voters = BTreeMap::new();
        for v in self.voters.iter().filter(|v| !v.trim().is_empty()) {
            let bad = || ConfigError::BadVoter(v.clone());
            let (id, address) = v.trim().split_once('@').ok_or_else(bad)?;
            let id: i32 = id.parse().map_err(|_| bad())?;
            if id < 0 || parse_host_port(address).is_none() {
                return Err(bad());
            }
            voters.insert(id, address.to_string());
        }
        if voters.is_empty() {
            return Ok(voters);
        }
        if self.cluster_listen.is_none() {
            return Err(ConfigError::ClusterListenRequired);
        }
        Ok(voters)
    }

    /// Broker `id`'s address for clients of the external listener.
    pub fn external_address(&self, id: i32) -> Option<Advertised> {
        let index = usize::try_from(id).ok()?;
        parse_host_port(self.external_advertised_addresses.get(index)?)
    }

    /// The cluster side of this configuration.
    pub fn cluster_settings(
        &self,
        advertised: &Advertised,
    ) -> Result<ClusterSettings, ConfigError> {
        let mut voters = self.voters()?;
        let alone = voters.is_empty();
        let cluster_address = match (&self.cluster_advertise, self.cluster_listen) {
            (Some(a), _) => Some(a.clone()),
            (None, _) if voters.contains_key(&self.node_id) => voters.get(&self.node_id).cloned(),
            (None, Some(listen)) if listen.ip().is_unspecified() => {
                return Err(ConfigError::ClusterAdvertiseRequired(listen));
            }
            (None, Some(listen)) => Some(listen.to_string()),
            (None, None) => None,
        };
        if alone {
            // A cluster of one: the quorum never dials its only voter.
            voters.insert(
                self.node_id,
                cluster_address
                    .clone()
                    .unwrap_or_else(|| "127.0.0.1:0".into()),
            );
        }
        // Elections well inside the session timeout, so a new controller is in place before
        // brokers are fenced for silence towards the old one.
        let election_min = (self.broker_session_timeout_ms / 4).clamp(150, 1_000);
        let peer = match (&self.cluster_tls_keystore, &self.cluster_tls_truststore) {
            (Some(keystore), Some(truststore)) => ClusterTransport::Tls(Arc::new(
                ClusterTls::new(keystore.clone(), truststore.clone())
                    .map_err(|e| ConfigError::ClusterTls(e.to_string()))?,
            )),
            _ => ClusterTransport::Plaintext,
        };
        Ok(ClusterSettings {
            peer,
            node_id: self.node_id,
            voters,
            cluster_address,
            rack: self.rack.clone().filter(|r| !r.is_empty()),
            kafka_host: advertised.host.clone(),
            kafka_port: advertised.port,
            listeners: BTreeMap::new(),
            heartbeat_interval: Duration::from_millis(self.broker_heartbeat_interval_ms),
            session_timeout: Duration::from_millis(self.broker_session_timeout_ms),
            replica_lag_time_max_ms: self.replica_lag_time_max_ms,
            election_timeout_ms: (election_min, election_min * 2),
            replica_fetch_max_bytes: self.replica_fetch_response_max_bytes(),
        })
    }
}

fn parse_host_port(s: &str) -> Option<Advertised> {
    let (host, port) = s.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().ok()?;
    (!host.is_empty()).then(|| Advertised {
        host: host.to_string(),
        port: port.into(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The configuration these flags give, after the program name.
    pub(crate) fn parse(args: &[&str]) -> BrokerConfig {
        BrokerConfig::try_parse_from(std::iter::once("krait-broker").chain(args.iter().copied()))
            .unwrap()
    }

    #[test]
    fn defaults_are_a_local_single_broker() {
        let c = parse(&[]);
        assert_eq!(c.listen.to_string(), "127.0.0.1:9092");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(
            c.validate().unwrap(),
            Advertised {
                host: "127.0.0.1".into(),
                port: 9092
            }
        );
        assert!(c.auto_create_topics);
    }

    #[test]
    fn advertise_overrides_and_is_validated() {
        let c = parse(&["--advertise", "broker-0.krait:19092"]);
        assert_eq!(
            c.validate().unwrap(),
            Advertised {
                host: "broker-0.krait".into(),
                port: 19092
            }
        );
        assert!(parse(&["--advertise", "nohost"]).validate().is_err());
        assert!(parse(&["--advertise", "h:99999"]).validate().is_err());
        let ipv6 = parse(&["--advertise", "[::1]:9092"]).validate().unwrap();
        assert_eq!(ipv6.host, "::1");
    }

    #[test]
    fn wildcard_listen_requires_an_advertised_address() {
        let c = parse(&["--listen", "0.0.0.0:9092"]);
        assert!(matches!(
            c.validate(),
            Err(ConfigError::AdvertiseRequired(_))
        ));
    }

    #[test]
    fn nonsense_values_are_refused_with_the_flag_named() {
        let err = parse(&["--default-partitions", "0"])
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("--default-partitions"), "{err}");
        assert!(
            BrokerConfig::try_parse_from(["krait-broker", "--auto-create-topics", "maybe"])
                .is_err()
        );
    }

    #[test]
    fn voters_are_parsed_and_checked_against_the_node_id() {
        let c = parse(&[
            "--node-id",
            "2",
            "--cluster-listen",
            "0.0.0.0:9093",
            "--allow-plaintext-cluster",
            "--voters",
            "1@b1:9093,2@b2:9093,3@b3:9093",
        ]);
        let settings = c.cluster_settings(&c.validate().unwrap()).unwrap();
        assert_eq!(settings.voters.len(), 3);
        // Advertised to the other brokers as it appears in the voters.
        assert_eq!(settings.cluster_address.as_deref(), Some("b2:9093"));
        let not_listed = parse(&[
            "--node-id",
            "4",
            "--cluster-listen",
            "0.0.0.0:9093",
            "--allow-plaintext-cluster",
            "--voters",
            "1@b1:9093",
        ]);
        // A broker the voters do not list is an observer; its peers need its cluster address.
        let validated = not_listed.validate().unwrap();
        assert!(matches!(
            not_listed.cluster_settings(&validated),
            Err(ConfigError::ClusterAdvertiseRequired(_))
        ));
        let observer = parse(&[
            "--node-id",
            "4",
            "--cluster-listen",
            "0.0.0.0:9093",
            "--allow-plaintext-cluster",
            "--cluster-advertise",
            "b4:9093",
            "--voters",
            "1@b1:9093",
        ]);
        let settings = observer
            .cluster_settings(&observer.validate().unwrap())
            .unwrap();
        assert_eq!(settings.cluster_address.as_deref(), Some("b4:9093"));
        assert!(!settings.voters.contains_key(&4));
        for bad in ["x@b1:9093", "1b1:9093", "1@b1", "-1@b1:9093"] {
            let flag = format!("--voters={bad}");
            let c = parse(&["--cluster-listen", "127.0.0.1:9093", &flag]);
            assert_eq!(
                c.validate(),
                Err(ConfigError::BadVoter(bad.into())),
                "{bad}"
            );
        }
        let no_listener = parse(&["--voters", "1@b1:9093"]);
        assert_eq!(
            no_listener.validate(),
            Err(ConfigError::ClusterListenRequired)
        );
    }

    #[test]
    fn a_plaintext_cluster_port_off_loopback_must_be_allowed_explicitly() {
        let open = ["--cluster-listen", "0.0.0.0:9093", "--voters", "1@b1:9093"];
        assert_eq!(
            parse(&open).validate(),
            Err(ConfigError::PlaintextCluster(
                "0.0.0.0:9093".parse().unwrap()
            ))
        );
        let allowed = [&open[..], &["--allow-plaintext-cluster"]].concat();
        assert!(parse(&allowed).validate().is_ok());
        let loopback = [
            "--cluster-listen",
            "127.0.0.1:9093",
            "--voters",
            "1@b1:9093",
        ];
        assert!(parse(&loopback).validate().is_ok());
        let half = [&open[..], &["--cluster-tls-keystore", "k.pem"]].concat();
        assert_eq!(
            parse(&half).validate(),
            Err(ConfigError::ClusterTlsIncomplete)
        );
    }

    #[test]
    fn a_broker_without_voters_is_a_cluster_of_one() {
        let c = parse(&["--node-id", "7"]);
        let settings = c.cluster_settings(&c.validate().unwrap()).unwrap();
        assert_eq!(settings.voters.keys().collect::<Vec<_>>(), vec![&7]);
        assert_eq!(settings.cluster_address, None);
    }
}

/// Which replica consumers read from (Kafka's `replica.selector.class`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaSelector {
    /// Always the leader (Kafka's `LeaderSelector`, its default).
    Leader,
    /// An in-sync replica in the consumer's rack when the leader is not in it (Kafka's
    /// `RackAwareReplicaSelector`).
    RackAware,
}

impl std::fmt::Display for ReplicaSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Leader => "leader",
            Self::RackAware => "rack-aware",
        })
    }
}

fn parse_replica_selector(s: &str) -> Result<ReplicaSelector, String> {
    match s {
        "leader" | "" | "org.apache.kafka.common.replica.LeaderSelector" => {
            Ok(ReplicaSelector::Leader)
        }
        "rack-aware" | "org.apache.kafka.common.replica.RackAwareReplicaSelector" => {
            Ok(ReplicaSelector::RackAware)
        }
        other => Err(format!(
            "unknown replica selector {other:?}: leader, rack-aware, or Kafka's LeaderSelector / RackAwareReplicaSelector class name"
        )),
    }
}
