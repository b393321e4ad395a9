//! The controller's duties, done by whichever broker leads the metadata quorum: register and
//! unfence brokers that heartbeat, fence those that stop, give the cluster its id, and keep
//! every partition led by a live in-sync replica (`krait_controller::election::repair`).
//!
//! Liveness is in memory only: a new controller gives every registered broker a full session
//! timeout before fencing it, so a controller change never fences a healthy broker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use krait_controller::{BrokerId, BrokerRegistration, MetadataRecord, election, reassignment};
use tokio::time::Instant;

use super::Cluster;
use super::rpc::{BrokerHeartbeat, HeartbeatReply, send_heartbeat};
use crate::broker::Broker;

/// How often the controller looks for brokers to fence and partitions to repair.
const TICK: Duration = Duration::from_millis(100);

/// The controller's memory of when each broker last heartbeated.
#[derive(Debug, Default)]
pub struct ControllerState {
    seen: Mutex<HashMap<BrokerId, Instant>>,
}

impl ControllerState {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BrokerId, Instant>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn heard_from(&self, id: BrokerId) {
        self.lock().insert(id, Instant::now());
    }

    /// Forgets everything: a newly elected controller starts every clock afresh.
    fn restart(&self) {
        self.lock().clear();
    }

    /// Whether `id` has been silent for longer than `timeout` (a broker never heard from is
    /// timed from now).
    fn expired(&self, id: BrokerId, timeout: Duration) -> bool {
        let now = Instant::now();
        let last = *self.lock().entry(id).or_insert(now);
        now.duration_since(last) > timeout
    }
}

/// Whether two registrations describe the same broker process.
fn same_process(a: &BrokerRegistration, b: &BrokerRegistration) -> bool {
    a.id == b.id
        && a.rack == b.rack
        && a.kafka_host == b.kafka_host
        && a.kafka_port == b.kafka_port
        && a.cluster_address == b.cluster_address
        && a.incarnation == b.incarnation
}

/// The controller's side of a heartbeat: note the broker alive, and register or unfence it.
pub async fn on_heartbeat(cluster: &Cluster, registration: BrokerRegistration) -> HeartbeatReply {
    if !cluster.quorum.is_leader() {
        return HeartbeatReply::NotController {
            leader: cluster.quorum.leader(),
        };
    }
    cluster.controller.heard_from(registration.id);
    let image = cluster.quorum.image().borrow().clone();
    let record = match image.brokers.get(&registration.id) {
        Some(known) if same_process(known, &registration) => known
            .fenced
            .then_some(MetadataRecord::UnfenceBroker { id: known.id }),
        _ => {
            tracing::info!(broker = registration.id, rack = ?registration.rack, address = %registration.cluster_address, "registering broker");
            Some(MetadataRecord::RegisterBroker(BrokerRegistration {
                fenced: false,
                ..registration
            }))
        }
    };
    if let Some(record) = record {
        match cluster.quorum.propose(vec![record]).await {
            Ok(results) => {
                for e in results.into_iter().filter_map(Result::err) {
                    tracing::warn!(error = %e, "broker registration refused");
                }
            }
            Err(e) => tracing::debug!(error = %e, "broker registration not committed"),
        }
    }
    HeartbeatReply::Ok
}

/// Sends this broker's heartbeat to the controller every heartbeat interval.
pub async fn heartbeat_loop(cluster: Arc<Cluster>) {
    let mut tick = tokio::time::interval(cluster.settings.heartbeat_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let heartbeat = BrokerHeartbeat {
        registration: cluster.registration.clone(),
    };
    loop {
        tick.tick().await;
        let Some(controller) = cluster.quorum.leader() else {
            continue;
        };
        if controller == cluster.node_id() {
            on_heartbeat(&cluster, heartbeat.registration.clone()).await;
            continue;
        }
        let Some(address) = cluster.cluster_address(controller) else {
            continue;
        };
        let call = send_heartbeat(cluster.client(&address), &heartbeat);
        match tokio::time::timeout(cluster.settings.session_timeout, call).await {
            Ok(Ok(_)) => {}
            Ok(Err(status)) => {
                tracing::debug!(controller, %status, "heartbeat failed")
            }
            Err(_) => tracing::debug!(controller, "heartbeat timed out"),
        }
    }
}

/// While this broker's node leads the quorum: initialise the cluster id, fence silent brokers,
/// repair partition leadership, and advance reassignments.
pub async fn controller_loop(broker: Arc<Broker>) {
    let cluster = broker.cluster.clone();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut leading = false;
    let mut known = None;
    loop {
        tick.tick().await;
        let controller = cluster.quorum.leader();
        if controller != known {
            tracing::info!(controller = ?controller, "controller changed");
            known = controller;
        }
        if !cluster.quorum.is_leader() {
            leading = false;
            continue;
        }
        if !leading {
            tracing::info!(
                node_id = cluster.node_id(),
                "this broker is now the controller"
            );
            cluster.controller.restart();
            leading = true;
        }
        let records = duties(&broker, &cluster);
        if records.is_empty() {
            continue;
        }
        match cluster.quorum.propose(records).await {
            Ok(results) => {
                for e in results.into_iter().filter_map(Result::err) {
                    tracing::debug!(error = %e, "controller record refused");
                }
            }
            Err(e) => tracing::debug!(error = %e, "controller records not committed"),
        }
    }
}

/// What the controller should commit now, judged from its own image.
fn duties(broker: &Broker, cluster: &Cluster) -> Vec<MetadataRecord> {
    let image = cluster.quorum.image().borrow().clone();
    if image.cluster_id.is_none() {
        return vec![MetadataRecord::InitCluster {
            cluster_id: broker.proposed_cluster_id(),
        }];
    }
    let timeout = cluster.settings.session_timeout;
    let fence: Vec<MetadataRecord> = image
        .live_brokers()
        .filter(|b| cluster.controller.expired(b.id, timeout))
        .map(|b| {
            tracing::warn!(broker = b.id, ?timeout, "fencing broker: no heartbeat");
            MetadataRecord::FenceBroker { id: b.id }
        })
        .collect();
    if !fence.is_empty() {
        // Partitions are repaired on the next tick, from the image with these applied.
        return fence;
    }
    let unclean = |topic: &str| {
        image
            .topics
            .get(topic)
            .is_some_and(|t| broker.defaults.unclean_election(&t.configs))
    };
    let mut changes = election::repair(&image, unclean);
    if changes.is_empty() {
        changes = reassignment::progress(&image);
    }
    for c in &changes {
        tracing::info!(topic = %c.topic, partition = c.partition, leader = ?c.leader, isr = ?c.isr, replicas = ?c.replicas, "partition change");
    }
    changes
        .into_iter()
        .map(MetadataRecord::ChangePartition)
        .collect()
}
