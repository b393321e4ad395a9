//! The retention task: every `--retention-check-interval-ms`, each partition deletes the
//! batches its topic's `retention.ms` / `retention.bytes` no longer keep, and the group
//! coordinator expires committed offsets of empty groups.
//!
//! A pass runs on a blocking thread: it scans RocksDB and must not stall request handling.
//! Each partition takes its append lock only for the final range delete, so produce and fetch
//! continue while retention plans.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use krait_storage::retention::RetentionLimits;
use tracing::{info, warn};

use crate::broker::Broker;
use crate::topics::Topic;

/// Runs retention passes forever; the caller aborts the task at shutdown.
pub async fn run(broker: Arc<Broker>) {
    let period = Duration::from_millis(broker.config.retention_check_interval_ms.max(1));
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        expire_offsets(&broker, now_ms()).await;
        let b = broker.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || pass(&b)).await {
            warn!(error = %e, "retention pass failed");
        }
    }
}

/// One pass over every partition of every topic.
pub fn pass(broker: &Broker) {
    let now_ms = now_ms();
    for topic in broker.topics.all() {
        let limits = limits(broker, &topic);
        if limits.retention_ms < 0 && limits.retention_bytes < 0 {
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
