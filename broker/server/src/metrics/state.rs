//! Metrics measured at scrape time from what the broker holds: its replicas and the cluster
//! image, the metadata quorum, the group coordinator, RocksDB.
//!
//! Cluster-wide figures (offline partitions, brokers, consumer groups, the metadata replicas'
//! lag) are reported by the active controller only and are 0 elsewhere, as Kafka's controller
//! metrics are, so a `sum` over brokers counts each once. Per-partition figures come from the
//! partition's leader, so they too are counted once.

use krait_replication::Role;
use prometheus::{IntGauge, IntGaugeVec, Registry};

use super::{gauge, gauge_vec};
use crate::broker::Broker;

#[derive(Debug)]
pub(super) struct Gauges {
    topics: IntGauge,
    partitions: IntGauge,
    leaders: IntGauge,
    under_replicated: IntGauge,
    under_min_isr: IntGauge,
    at_min_isr: IntGauge,
    offline: IntGauge,
    active_controller: IntGauge,
    brokers: IntGaugeVec,
    metadata_applied: IntGauge,
    metadata_replica_lag: IntGaugeVec,
    high_watermark: IntGaugeVec,
    log_start: IntGaugeVec,
    replica_lag: IntGaugeVec,
    consumer_groups: IntGaugeVec,
    consumer_lag: IntGaugeVec,
    consumer_committed: IntGaugeVec,
    log_dir_capacity: IntGauge,
    log_dir_usable: IntGauge,
    fetch_memory: IntGauge,
    fetch_memory_peak: IntGauge,
    rocksdb: RocksDb,
}

#[derive(Debug)]
struct RocksDb {
    write_stopped: IntGauge,
    delayed_write_rate: IntGauge,
    running_compactions: IntGauge,
    running_flushes: IntGauge,
    compactions_pending: IntGauge,
    pending_compaction_bytes: IntGauge,
    sst_files_bytes: IntGauge,
    blob_files_bytes: IntGauge,
    blob_garbage_bytes: IntGauge,
    memtables_bytes: IntGauge,
    block_cache_bytes: IntGauge,
}

/// The consumer group states Kafka reports, each always present (at 0) on the controller.
const GROUP_STATES: [&str; 5] = [
    "Empty",
    "PreparingRebalance",
    "CompletingRebalance",
    "Stable",
    "Dead",
];

impl Gauges {
    pub(super) fn register(r: &Registry) -> Self {
        let partition = &["topic", "partition"];
        Self {
            topics: gauge(r, "krait_topics", "Topics in the cluster."),
            partitions: gauge(
                r,
                "krait_partitions",
                "Partition replicas this broker hosts (leading or following).",
            ),
            leaders: gauge(
                r,
                "krait_partition_leaders",
                "Partitions this broker leads.",
            ),
            under_replicated: gauge(
                r,
                "krait_under_replicated_partitions",
                "Partitions this broker leads whose in-sync replicas are fewer than their \
                 replicas.",
            ),
            under_min_isr: gauge(
                r,
                "krait_under_min_isr_partitions",
                "Partitions this broker leads with fewer in-sync replicas than \
                 min.insync.replicas: acks=all writes to them are refused.",
            ),
            at_min_isr: gauge(
                r,
                "krait_at_min_isr_partitions",
                "Partitions this broker leads with exactly min.insync.replicas in-sync \
                 replicas: one more loss refuses acks=all writes.",
            ),
            offline: gauge(
                r,
                "krait_offline_partitions",
                "Partitions without a leader (active controller only; 0 elsewhere).",
            ),
            active_controller: gauge(
                r,
                "krait_active_controller",
                "1 on the broker that leads the metadata quorum, 0 elsewhere.",
            ),
            brokers: gauge_vec(
                r,
                "krait_brokers",
                "Registered brokers by state, live or fenced (active controller only).",
                &["state"],
            ),
            metadata_applied: gauge(
                r,
                "krait_metadata_applied_offset",
                "Index of the last metadata log entry this broker applied.",
            ),
            metadata_replica_lag: gauge_vec(
                r,
                "krait_metadata_replica_lag_entries",
                "Metadata log entries each other voter or observer is behind the controller's \
                 log (active controller only).",
                &["node"],
            ),
            high_watermark: gauge_vec(
                r,
                "krait_partition_high_watermark",
                "The high watermark of each partition this broker leads: the end of what \
                 consumers may read.",
                partition,
            ),
            log_start: gauge_vec(
                r,
                "krait_partition_log_start_offset",
                "The first offset of each partition this broker leads.",
                partition,
            ),
            replica_lag: gauge_vec(
                r,
                "krait_replica_lag_records",
                "On a partition's leader: records each follower is behind the leader's log end, \
                 as of the follower's last fetch.",
                &["topic", "partition", "replica"],
            ),
            consumer_groups: gauge_vec(
                r,
                "krait_consumer_groups",
                "Consumer groups by state (active controller, the group coordinator, only).",
                &["state"],
            ),
            consumer_lag: gauge_vec(
                r,
                "krait_consumer_group_lag_records",
                "On a partition's leader: its high watermark minus each group's committed \
                 offset (what Burrow and kafka-exporter report).",
                &["group", "topic", "partition"],
            ),
            consumer_committed: gauge_vec(
                r,
                "krait_consumer_group_committed_offset",
                "On a partition's leader: each group's committed offset.",
                &["group", "topic", "partition"],
            ),
            log_dir_capacity: gauge(
                r,
                "krait_log_dir_capacity_bytes",
                "Size of the volume holding the data directory.",
            ),
            log_dir_usable: gauge(
                r,
                "krait_log_dir_usable_bytes",
                "Bytes still usable on the volume holding the data directory (a full disk stops \
                 the broker).",
            ),
            fetch_memory: gauge(
                r,
                "krait_fetch_memory_bytes",
                "Bytes of records Fetch responses hold now, from their read until written \
                 (bounded by fetch.memory.max.bytes).",
            ),
            fetch_memory_peak: gauge(
                r,
                "krait_fetch_memory_peak_bytes",
                "The most bytes of records Fetch responses held at once since the broker \
                 started.",
            ),
            rocksdb: RocksDb {
                write_stopped: gauge(
                    r,
                    "krait_rocksdb_write_stopped",
                    "1 while RocksDB stops writes (too many memtables or level-0 files, or \
                     pending compaction past its hard limit).",
                ),
                delayed_write_rate: gauge(
                    r,
                    "krait_rocksdb_delayed_write_rate_bytes_per_second",
                    "The rate RocksDB slows writes to while it delays them; 0 when it does not.",
                ),
                running_compactions: gauge(
                    r,
                    "krait_rocksdb_running_compactions",
                    "RocksDB compactions running.",
                ),
                running_flushes: gauge(
                    r,
                    "krait_rocksdb_running_flushes",
                    "RocksDB memtable flushes running.",
                ),
                compactions_pending: gauge(
                    r,
                    "krait_rocksdb_compactions_pending",
                    "RocksDB key spaces (column families) with a compaction pending.",
                ),
                pending_compaction_bytes: gauge(
                    r,
                    "krait_rocksdb_pending_compaction_bytes",
                    "Bytes RocksDB compaction must rewrite to bring every level to its target \
                     size.",
                ),
                sst_files_bytes: gauge(
                    r,
                    "krait_rocksdb_sst_files_bytes",
                    "Bytes of RocksDB's table files on disk.",
                ),
                blob_files_bytes: gauge(
                    r,
                    "krait_rocksdb_blob_files_bytes",
                    "Bytes of RocksDB's blob files on disk: the partition logs' batches.",
                ),
                blob_garbage_bytes: gauge(
                    r,
                    "krait_rocksdb_blob_garbage_bytes",
                    "Bytes of those blob files holding deleted batches, until reclaimed.",
                ),
                memtables_bytes: gauge(
                    r,
                    "krait_rocksdb_memtables_bytes",
                    "Bytes of RocksDB's memtables.",
                ),
                block_cache_bytes: gauge(
                    r,
                    "krait_rocksdb_block_cache_bytes",
                    "Bytes in RocksDB's block caches.",
                ),
            },
        }
    }

    /// Sets every gauge from the broker's state now.
    pub(super) fn measure(&self, broker: &Broker) {
        let image = broker.cluster.image();
        let controller = broker.cluster.quorum.is_leader();
        for vec in [
            &self.brokers,
            &self.metadata_replica_lag,
            &self.high_watermark,
            &self.log_start,
            &self.replica_lag,
            &self.consumer_groups,
            &self.consumer_lag,
            &self.consumer_committed,
        ] {
            vec.reset();
        }

        let topics = broker.topics.all();
        let (mut hosted, mut leaders, mut under, mut under_min, mut at_min) = (0, 0, 0, 0, 0);
        for topic in &topics {
            let min_isr = broker.defaults.min_insync_replicas(&topic.configs);
            for p in &topic.partitions {
                let replica = &p.replica;
                if replica.role() == Role::Offline {
                    continue;
                }
                hosted += 1;
                if !matches!(replica.role(), Role::Leader { .. }) {
                    continue;
                }
                leaders += 1;
                let isr = replica.isr().len();
                under += i64::from(isr < replica.replicas().len());
                under_min += i64::from(isr < min_isr);
                at_min += i64::from(isr == min_isr);
                let index = p.index.to_string();
                let labels = [topic.name.as_str(), index.as_str()];
                let offsets = replica.log().offsets();
                self.high_watermark
                    .with_label_values(&labels)
                    .set(offsets.high_watermark);
                self.log_start
                    .with_label_values(&labels)
                    .set(offsets.log_start_offset);
                for (follower, lag) in replica.follower_lags() {
                    let follower = follower.to_string();
                    self.replica_lag
                        .with_label_values(&[labels[0], labels[1], follower.as_str()])
                        .set(lag);
                }
                for (group, offsets_of) in &image.offsets {
                    let Some(commit) = offsets_of.get(&topic.name).and_then(|o| o.get(&p.index))
                    else {
                        continue;
                    };
                    let labels = [group.as_str(), labels[0], labels[1]];
                    self.consumer_committed
                        .with_label_values(&labels)
                        .set(commit.offset);
                    self.consumer_lag
                        .with_label_values(&labels)
                        .set((offsets.high_watermark - commit.offset).max(0));
                }
            }
        }
        self.topics.set(image.topics.len() as i64);
        self.partitions.set(hosted);
        self.leaders.set(leaders);
        self.under_replicated.set(under);
        self.under_min_isr.set(under_min);
        self.at_min_isr.set(at_min);

        self.active_controller.set(i64::from(controller));
        let metrics = broker.cluster.quorum.raft_metrics().borrow().clone();
        self.metadata_applied
            .set(metrics.last_applied.map_or(0, |l| l.index as i64));
        if controller {
            let offline = image
                .partitions()
                .filter(|(_, _, s)| s.leader.is_none())
                .count();
            self.offline.set(offline as i64);
            let fenced = image.brokers.values().filter(|b| b.fenced).count();
            self.brokers
                .with_label_values(&["live"])
                .set((image.brokers.len() - fenced) as i64);
            self.brokers
                .with_label_values(&["fenced"])
                .set(fenced as i64);
            let last = metrics.last_log_index.unwrap_or(0);
            for (node, matched) in metrics.replication.iter().flatten() {
                if *node == metrics.id {
                    continue;
                }
                let matched = matched.map_or(0, |l| l.index);
                self.metadata_replica_lag
                    .with_label_values(&[node.to_string().as_str()])
                    .set(last.saturating_sub(matched) as i64);
            }
            for state in GROUP_STATES {
                self.consumer_groups.with_label_values(&[state]).set(0);
            }
            for group in broker.coordinator.list() {
                self.consumer_groups.with_label_values(&[group.state]).inc();
            }
        } else {
            self.offline.set(0);
        }

        let (capacity, usable) = crate::disk::space(&broker.config.data_dir).unwrap_or((0, 0));
        let bytes = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.log_dir_capacity.set(bytes(capacity));
        self.log_dir_usable.set(bytes(usable));
        let held = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        self.fetch_memory.set(held(broker.fetch_memory.used()));
        self.fetch_memory_peak.set(held(broker.fetch_memory.peak()));

        let stats = broker.store.engine_stats().unwrap_or_default();
        let db = &self.rocksdb;
        let set = |g: &IntGauge, v: u64| g.set(i64::try_from(v).unwrap_or(i64::MAX));
        set(&db.write_stopped, stats.write_stopped);
        set(&db.delayed_write_rate, stats.delayed_write_rate);
        set(&db.running_compactions, stats.running_compactions);
        set(&db.running_flushes, stats.running_flushes);
        set(&db.compactions_pending, stats.compactions_pending);
        set(&db.pending_compaction_bytes, stats.pending_compaction_bytes);
        set(&db.sst_files_bytes, stats.sst_files_bytes);
        set(&db.blob_files_bytes, stats.blob_files_bytes);
        set(&db.blob_garbage_bytes, stats.blob_garbage_bytes);
        set(&db.memtables_bytes, stats.memtables_bytes);
        set(&db.block_cache_bytes, stats.block_cache_bytes);
    }
}
