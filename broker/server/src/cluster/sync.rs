//! Applying the cluster image on this broker: the local topic catalog, each replica's role
//! (lead, follow, offline), where the other brokers are, and the follower fetch loops. Then the
//! leaders' side of ISR changes: asking the controller to commit them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use krait_image::{ClusterImage, MetadataRecord, PartitionChange, PartitionState};
use krait_replication::{PartitionReplica, Role, Throttle};

use super::{Cluster, now_ms};
use crate::broker::Broker;

/// How often leaders check whether their ISR should change.
const ISR_CHECK: Duration = Duration::from_millis(200);

/// Applies every new image of the quorum, in order, until the quorum stops.
pub async fn run(broker: Arc<Broker>) {
    let mut images = broker.cluster.quorum.image();
    loop {
        let image = images.borrow_and_update().clone();
        match apply(&broker, &image) {
            Ok(()) => broker.cluster.publish_applied(image),
            Err(e) => {
                tracing::error!(error = %e, "cannot apply the cluster image; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }
        if images.changed().await.is_err() {
            return;
        }
    }
}

fn apply(broker: &Broker, image: &ClusterImage) -> anyhow::Result<()> {
    if let Some(id) = &image.cluster_id {
        broker.adopt_cluster_id(id)?;
    }
    broker.topics.sync(image)?;
    let cluster = &broker.cluster;
    let me = cluster.node_id();
    let now = now_ms();
    // An image without this process's registration is one restored from the data directory
    // (after a restart, or on a volume reused after the broker was unregistered): its leaders,
    // ISRs and placements may be long gone. Replicas keep the role they started with, offline,
    // until the controller's registration of this incarnation has been applied, as a Kafka
    // broker catches up on the metadata log before it acts on it.
    let roles = if cluster.registered_in(image) {
        image.partitions().collect()
    } else {
        Vec::new()
    };
    for (topic, index, state) in roles {
        let Some(partition) = broker
            .topics
            .get(topic)
            .and_then(|t| t.partition(index).cloned())
        else {
            continue;
        };
        // An ISR change of a partition this broker already leads at this epoch: Kafka's
        // IsrShrinksPerSec and IsrExpandsPerSec.
        let led = partition.replica.role()
            == Role::Leader {
                epoch: state.leader_epoch,
            };
        let before = if led {
            partition.replica.isr()
        } else {
            Vec::new()
        };
        set_role(&partition.replica, me, state, now)?;
        if led && state.leader == Some(me) && before != state.isr {
            broker.metrics.isr_changed(state.isr.len() < before.len());
        }
    }
    let mut addresses: BTreeMap<_, _> = cluster.settings.voters.clone();
    for b in image.brokers.values() {
        if !b.cluster_address.is_empty() {
            addresses.insert(b.id, b.cluster_address.clone());
        }
    }
    cluster.transport.set_addresses(addresses);
    cluster.replicas.set_throttle(throttle(image, me));
    cluster.replicas.ensure_fetchers(&cluster.transport);
    Ok(())
}

/// This broker's replication throttles: its dynamic configs, applied to partitions a
/// reassignment is adding replicas to.
fn throttle(image: &ClusterImage, me: i32) -> Throttle {
    let rate = |key| {
        image
            .broker_config(me, key)
            .and_then(|v| v.parse::<u64>().ok())
    };
    Throttle {
        leader_bytes_per_sec: rate(LEADER_THROTTLE),
        follower_bytes_per_sec: rate(FOLLOWER_THROTTLE),
        partitions: image
            .partitions()
            .filter(|(_, _, s)| !s.adding.is_empty())
            .map(|(t, p, _)| (t.to_string(), p))
            .collect(),
    }
}

pub use crate::dynamic_config::{FOLLOWER_THROTTLE, LEADER_THROTTLE};

/// Gives a replica the role the image says, touching it only when that differs.
fn set_role(
    replica: &PartitionReplica,
    me: i32,
    state: &PartitionState,
    now: i64,
) -> anyhow::Result<()> {
    let role = replica.role();
    match state.leader {
        Some(leader) if leader == me => {
            let same =
                role == Role::Leader {
                    epoch: state.leader_epoch,
                } && replica.isr() == state.isr
                    && replica.replicas() == state.replicas;
            if !same {
                replica.lead(state.leader_epoch, &state.replicas, &state.isr, now)?;
            }
        }
        Some(leader) if state.replicas.contains(&me) => {
            let wanted = Role::Follower {
                leader,
                epoch: state.leader_epoch,
            };
            if role != wanted {
                replica.follow(leader, state.leader_epoch);
            }
        }
        _ => {
            if role != Role::Offline {
                replica.go_offline();
            }
            // A partition moved off this broker: its copy here is dropped.
            let offsets = replica.log().offsets();
            if !state.replicas.contains(&me) && offsets.log_end_offset > offsets.log_start_offset {
                replica.log().truncate_to(offsets.log_start_offset)?;
                tracing::info!(
                    log_end_offset = offsets.log_end_offset,
                    "dropped the data of a partition moved off this broker"
                );
            }
        }
    }
    Ok(())
}

/// How often the replicas' high watermarks are written (Kafka's
/// `replica.high.watermark.checkpoint.interval.ms` default).
const HIGH_WATERMARK_CHECKPOINT: Duration = Duration::from_secs(5);

/// Writes the replicas' high watermarks that moved since the last checkpoint, so a broker
/// that restarts after a quiet spell finds them where they were: replication moves them in
/// memory only (`PartitionLog::advance_high_watermark`).
pub async fn checkpoint_loop(cluster: Arc<Cluster>) {
    let mut tick = tokio::time::interval(HIGH_WATERMARK_CHECKPOINT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        cluster.replicas.checkpoint_high_watermarks();
    }
}

/// Leaders ask the controller to commit ISR changes: lagging followers out, caught-up ones in.
pub async fn isr_loop(cluster: Arc<Cluster>) {
    let mut tick = tokio::time::interval(ISR_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_check = std::time::Instant::now();
    loop {
        tick.tick().await;
        let now = std::time::Instant::now();
        let stall = stall_ms(now - last_check);
        last_check = now;
        if stall > 0 {
            tracing::info!(
                stall_ms = stall,
                "this broker stood still; its followers' lag does not count that time"
            );
        }
        let changes = isr_changes(&cluster, stall);
        if changes.is_empty() {
            continue;
        }
        for c in &changes {
            tracing::info!(topic = %c.topic, partition = c.partition, isr = ?c.isr, "asking the controller to change the ISR");
        }
        let records = changes
            .into_iter()
            .map(MetadataRecord::ChangePartition)
            .collect();
        match cluster.propose(records).await {
            Ok(results) => {
                for e in results.into_iter().filter_map(Result::err) {
                    tracing::debug!(error = %e, "ISR change refused");
                }
            }
            Err(e) => tracing::warn!(error = %e, "ISR change not committed"),
        }
    }
}

/// How long the process stood still between two ISR checks, beyond the check interval and
/// ordinary scheduling delay: 0 unless the gap is more than twice the interval (a stopped
/// process, a throttled container, a starved runtime).
fn stall_ms(since_last_check: Duration) -> i64 {
    if since_last_check <= ISR_CHECK * 2 {
        return 0;
    }
    i64::try_from((since_last_check - ISR_CHECK).as_millis()).unwrap_or(i64::MAX)
}

fn isr_changes(cluster: &Cluster, stall_ms: i64) -> Vec<PartitionChange> {
    let image = cluster.image();
    let me = cluster.node_id();
    let now = now_ms();
    let lag = cluster.settings.replica_lag_time_max_ms;
    image
        .partitions()
        .filter(|(_, _, state)| state.leader == Some(me))
        .filter_map(|(topic, index, state)| {
            let replica = cluster.replicas.get(topic, index)?;
            if stall_ms > 0 {
                replica.excuse_stall(stall_ms, now);
            }
            let isr = replica.isr_change(now, lag)?;
            let mut change = PartitionChange::from_state(topic, index, state);
            change.isr = isr;
            Some(change)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_gap_of_more_than_two_checks_is_a_stall_and_one_interval_of_it_is_expected() {
        assert_eq!(stall_ms(ISR_CHECK), 0);
        assert_eq!(stall_ms(ISR_CHECK * 2), 0);
        assert_eq!(stall_ms(Duration::from_secs(3)), 3_000 - 200);
    }
}
