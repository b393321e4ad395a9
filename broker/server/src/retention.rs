//! The retention and log cleaner tasks.
//!
//! Retention: every `--retention-check-interval-ms`, each partition of a topic whose
//! `cleanup.policy` has `delete` deletes the batches its `retention.ms` / `retention.bytes` no
//! longer keep, and the group coordinator expires committed offsets of empty groups. Then the
//! store gives back the space of deleted batches that files shared with live ones still hold,
//! when enough has built up (`--storage-reclaim-min-mb`).
//!
//! The cleaner: every `--log-cleaner-backoff-ms` (Kafka's `log.cleaner.backoff.ms`, 15 s),
//! each partition of a topic whose policy has `compact` runs a compaction pass when one is due.
//! Looking is cheap for a partition that has not changed since it was last found not due: it
//! is scanned again only every `--retention-check-interval-ms`.
//!
//! Passes run on blocking threads: they scan RocksDB and must not stall request handling.
//! Each partition takes its append lock only for its writes, so produce and fetch continue
//! while retention and compaction plan; compaction's reads are also held to
//! `--log-cleaner-io-max-bytes-per-second` so that it cannot take the disk or a core from them.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use krait_storage::retention::RetentionLimits;
use tracing::{info, warn};

use crate::broker::Broker;
use crate::topics::Topic;

/// Runs retention passes forever; the caller aborts the task at shutdown.
pub async fn run(broker: Arc<Broker>) {
    let period = Duration::from_millis(broker.config.retention_check_interval_ms.max(1));
    every(period, || async {
        expire_offsets(&broker, now_ms()).await;
        let b = broker.clone();
        let passed = tokio::task::spawn_blocking(move || {
            pass(&b);
            reclaim(&b);
        });
        if let Err(e) = passed.await {
            warn!(error = %e, "retention pass failed");
        }
    })
    .await
}

/// Runs the log cleaner forever; the caller aborts the task at shutdown.
pub async fn run_cleaner(broker: Arc<Broker>) {
    let period = Duration::from_millis(broker.config.log_cleaner_backoff_ms.max(1));
    every(period, || async {
        let b = broker.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || clean(&b)).await {
            warn!(error = %e, "log cleaner pass failed");
        }
    })
    .await
}

/// Calls `f` every `period` after the first, never two at once.
async fn every<F: std::future::Future<Output = ()>>(period: Duration, mut f: impl FnMut() -> F) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        f().await;
    }
}

/// One retention pass over every partition of every topic whose policy has `delete`.
pub fn pass(broker: &Broker) {
    let now_ms = now_ms();
    for topic in broker.topics.all() {
        let limits = limits(broker, &topic);
        if !broker.defaults.has_cleanup_policy(&topic.configs, "delete")
            || limits.retention_ms < 0 && limits.retention_bytes < 0
        {
            continue;
        }
        for partition in &topic.partitions {
            match partition.log().enforce_retention(now_ms, limits) {
                Ok(Some(plan)) => info!(
                    topic = %topic.name,
                    partition = partition.index,
                    log_start_offset = plan.new_log_start_offset,
                    batches = plan.batches,
                    bytes = plan.bytes,
                    "retention deleted batches"
                ),
                Ok(None) => {}
                Err(e) => {
                    warn!(topic = %topic.name, partition = partition.index, error = %e, "retention failed")
                }
            }
        }
    }
}

/// Gives back the disk space of deleted batches that RocksDB's blob files still hold beside
/// live ones, when it is due (`--storage-reclaim-min-mb`, and half of those files).
pub fn reclaim(broker: &Broker) {
    let min_bytes = broker.config.storage_reclaim_min_mb.saturating_mul(1 << 20);
    let started = Instant::now();
    match broker.store.reclaim(min_bytes) {
        Ok(Some(r)) => info!(
            blob_files_bytes_before = r.files_before,
            garbage_bytes_before = r.garbage_before,
            blob_files_bytes_after = r.files_after,
            garbage_bytes_after = r.garbage_after,
            seconds = started.elapsed().as_secs_f64(),
            "gave back the space of deleted batches"
        ),
        Ok(None) => {}
        Err(e) => warn!(error = %e, "giving back the space of deleted batches failed"),
    }
}

/// One cleaner pass: compacts each partition of a compacted topic that is due, all of them
/// together held to the cleaner's I/O rate.
pub fn clean(broker: &Broker) {
    let now_ms = now_ms();
    let rate = broker
        .defaults
        .broker_config(crate::dynamic_config::CLEANER_IO_RATE)
        .and_then(|v| v.parse().ok())
        .unwrap_or(broker.config.log_cleaner_io_max_bytes_per_second);
    let mut throttle = Throttle::new(rate);
    for topic in broker.topics.all() {
        if broker
            .defaults
            .has_cleanup_policy(&topic.configs, "compact")
        {
            compact(broker, &topic, now_ms, &mut throttle);
        }
    }
}

/// A compaction pass over each partition of a compacted topic that is due for one. Every
/// replica compacts its own copy (below its own high watermark), to the same records.
fn compact(broker: &Broker, topic: &Topic, now_ms: i64, throttle: &mut Throttle) {
    let config = broker.defaults.compaction_config(&topic.configs);
    for partition in &topic.partitions {
        let started = Instant::now();
        match partition
            .log()
            .compact(now_ms, &config, &mut |bytes| throttle.take(bytes))
        {
            Ok(Some(stats)) => {
                let secs = started.elapsed().as_secs_f64().max(1e-6);
                info!(
                    topic = %topic.name,
                    partition = partition.index,
                    cleaned_to = stats.end,
                    bytes_read = stats.bytes_read,
                    bytes_before = stats.bytes_before,
                    bytes_after = stats.bytes_after,
                    records_removed = stats.records_removed,
                    batches_removed = stats.batches_removed,
                    mb_per_s = %format!("{:.1}", stats.bytes_read as f64 / secs / 1e6),
                    "compacted"
                );
            }
            Ok(None) => {}
            Err(e) => {
                warn!(topic = %topic.name, partition = partition.index, error = %e, "compaction failed")
            }
        }
    }
}

/// Holds compaction's reads to a rate: after each batch, sleeps long enough that the bytes
/// read since the pass began took at least `bytes / rate` seconds.
struct Throttle {
    rate: u64,
    started: Instant,
    bytes: u64,
}

impl Throttle {
    fn new(bytes_per_second: u64) -> Self {
        Self {
            rate: bytes_per_second,
            started: Instant::now(),
            bytes: 0,
        }
    }

    fn take(&mut self, bytes: u64) {
        if self.rate == 0 {
            return;
        }
        self.bytes += bytes;
        let due = Duration::from_secs_f64(self.bytes as f64 / self.rate as f64);
        if let Some(wait) = due.checked_sub(self.started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}

/// Offsets of groups without members expire `offsets.retention.minutes` after their commit. The
/// coordinator (the controller) decides and commits the expiry; every broker applies it.
async fn expire_offsets(broker: &Broker, now_ms: i64) {
    if broker.not_coordinator().is_some() {
        return;
    }
    let before = now_ms.saturating_sub((broker.config.offsets_retention_minutes * 60_000) as i64);
    let image = broker.cluster.quorum.image().borrow().clone();
    for (group, offsets) in &image.offsets {
        if !broker.coordinator.is_inactive(group) {
            continue;
        }
        let expired: Vec<(String, i32)> = offsets
            .iter()
            .flat_map(|(t, partitions)| {
                partitions
                    .iter()
                    .filter(|(_, o)| o.commit_timestamp < before)
                    .map(move |(p, _)| (t.clone(), *p))
            })
            .collect();
        if expired.is_empty() {
            continue;
        }
        let n = expired.len();
        match broker.delete_offsets(group, Some(expired)).await {
            Ok(()) => info!(group = %group, offsets = n, "expired committed offsets"),
            Err(e) => warn!(group = %group, error = %e, "cannot expire offsets"),
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn limits(broker: &Broker, topic: &Topic) -> RetentionLimits {
    let value = |key| {
        broker
            .defaults
            .topic_value(&topic.configs, key)
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1)
    };
    RetentionLimits {
        retention_ms: value("retention.ms"),
        retention_bytes: value("retention.bytes"),
    }
}
