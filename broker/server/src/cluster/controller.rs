//! The controller's duties, done by whichever broker leads the metadata quorum: register and
//! unfence brokers that heartbeat, fence those that stop, give the cluster its id, and keep
//! every partition led by a live in-sync replica (`krait_image::election::repair`).
//!
//! Liveness is in memory only: a new controller gives every registered broker a full session
//! timeout before fencing it, so a controller change never fences a healthy broker.
//!
//! A broker that stopped heartbeating is not always left the whole session: after one missed
//! heartbeat the controller tries to connect to its cluster port, and a refused connection
//! (nothing listens there: the process is gone, e.g. `kill -9`, or a new one has not bound yet)
//! fences it at once. A broker that is slow, paused or cut off does not refuse (the kernel
//! still accepts for a paused process; a lost route times out), so only the session timeout
//! fences it, and load never fences a healthy broker early.
//!
//! The controller need not even wait for a missed heartbeat: it sends the metadata log to every
//! broker (Raft appends, every 100 ms when idle), and when an append finds the broker's
//! connection closed or refused, the port is probed at once. The probe still decides.
//!
//! The same goes for the controller itself: a voter whose heartbeat finds the controller's
//! connection closed or refused probes the controller's port, and if it refuses, campaigns to
//! succeed it at once ([`krait_metadata::MetadataQuorum::campaign_to_succeed`]) instead of
//! waiting out the quorum's leader lease and election timeout, and fences it at its first tick
//! as controller.

use krait_sync::MutexExt;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use krait_image::{BrokerId, BrokerRegistration, MetadataRecord, election, reassignment};
use tokio::time::Instant;

use super::Cluster;
use super::rpc::{BrokerHeartbeat, HeartbeatReply, send_heartbeat};
use crate::broker::Broker;

/// How often the controller looks for brokers to fence and partitions to repair.
const TICK: Duration = Duration::from_millis(100);
/// How long a probe of a silent broker's cluster port may take; one that does not answer by
/// then proves nothing.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// The controller's memory of when each broker last heartbeated, and of the silent brokers
/// whose cluster port refused a connection since.
#[derive(Debug, Default)]
pub struct ControllerState {
    seen: Mutex<HashMap<BrokerId, Instant>>,
    /// Brokers being probed now (one probe at a time each), and when each was last probed.
    probing: Mutex<HashSet<BrokerId>>,
    last_probe: Mutex<HashMap<BrokerId, Instant>>,
    /// Brokers whose cluster port refused a probe made after their last heartbeat.
    refused: Mutex<HashSet<BrokerId>>,
    /// Wakes the controller loop before its tick: a probe was refused.
    wake: tokio::sync::Notify,
    /// Whether this voter is looking into (or campaigning against) a controller that seems gone.
    succeeding: AtomicBool,
}

impl ControllerState {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BrokerId, Instant>> {
        self.seen.lock_unpoisoned()
    }

    fn heard_from(&self, id: BrokerId) {
        self.lock().insert(id, Instant::now());
        self.refused.lock_unpoisoned().remove(&id);
    }

    /// Starts a probe of `id` when none is in flight and either it has been silent for longer
    /// than `silence` and none started within `silence` (a paused broker's kernel still
    /// accepts: it is not to be flooded), or the controller lost contact with it (`lost`) after
    /// its last heartbeat and its last probe; why, when the caller is to make it.
    fn start_probe(&self, id: BrokerId, silence: Duration, lost: Option<Instant>) -> Option<Why> {
        let now = Instant::now();
        let heard = self.lock().get(&id).copied();
        let silent = heard.is_some_and(|last| now.duration_since(last) > silence);
        let mut last_probe = self.last_probe.lock_unpoisoned();
        let probed = last_probe.get(&id).copied();
        let due = probed.is_none_or(|last| now.duration_since(last) > silence);
        let newer = |at: Instant, than: Option<Instant>| than.is_none_or(|t| at > t);
        let lost_since = lost.is_some_and(|at| newer(at, heard) && newer(at, probed));
        let start = ((silent && due) || lost_since)
            && !self.refused.lock_unpoisoned().contains(&id)
            && self.probing.lock_unpoisoned().insert(id);
        if !start {
            return None;
        }
        last_probe.insert(id, now);
        Some(if lost_since {
            Why::LostContact
        } else {
            Why::Silent
        })
    }

    /// A probe of `id` started at `started` ended; `refused` when the connection was refused.
    /// A heartbeat heard after the probe started outweighs it.
    fn probed(&self, id: BrokerId, started: Instant, refused: bool) {
        self.probing.lock_unpoisoned().remove(&id);
        let heard_since = self.lock().get(&id).is_some_and(|last| *last >= started);
        if refused && !heard_since {
            self.refused.lock_unpoisoned().insert(id);
            self.wake.notify_one();
        }
    }

    /// Whether `id`'s cluster port refused a connection since its last heartbeat.
    fn refused(&self, id: BrokerId) -> bool {
        self.refused.lock_unpoisoned().contains(&id)
    }

    /// A newly elected controller keeps what it heard as a voter (brokers heartbeat every
    /// voter), but gives every broker at least half a session from now: a voter that was cut
    /// off may have missed heartbeats that the old controller received.
    fn restart(&self, session: Duration) {
        let floor = Instant::now()
            .checked_sub(session / 2)
            .unwrap_or_else(Instant::now);
        for last in self.lock().values_mut() {
            *last = (*last).max(floor);
        }
    }

    /// Whether `id` has been silent for longer than `timeout` (a broker never heard from is
    /// timed from now).
    fn expired(&self, id: BrokerId, timeout: Duration) -> bool {
        let now = Instant::now();
        let last = *self.lock().entry(id).or_insert(now);
        now.duration_since(last) > timeout
    }
}

/// Why a broker's cluster port is probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    /// It missed a heartbeat.
    Silent,
    /// The controller's metadata appends found its connection closed or refused.
    LostContact,
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Why::Silent => "it missed a heartbeat",
            Why::LostContact => "the controller lost contact with it",
        })
    }
}

/// Whether two registrations describe the same broker process.
fn same_process(a: &BrokerRegistration, b: &BrokerRegistration) -> bool {
    a.id == b.id
        && a.rack == b.rack
        && a.kafka_host == b.kafka_host
        && a.kafka_port == b.kafka_port
        && a.listeners == b.listeners
        && a.cluster_address == b.cluster_address
        && a.incarnation == b.incarnation
}

/// The controller's side of a heartbeat: note the broker alive, and register or unfence it.
pub async fn on_heartbeat(cluster: &Cluster, registration: BrokerRegistration) -> HeartbeatReply {
    // Every voter notes the heartbeat, so a new controller knows who was alive.
    cluster.controller.heard_from(registration.id);
    if !cluster.quorum.is_leader() {
        return HeartbeatReply::NotController {
            leader: cluster.quorum.leader(),
        };
    }
    let (id, address) = (registration.id, registration.cluster_address.clone());
    let image = cluster.quorum.image().borrow().clone();
    let record = match image.brokers.get(&registration.id) {
        Some(known) if same_process(known, &registration) => known
            .fenced
            .then_some(MetadataRecord::UnfenceBroker { id: known.id }),
        known => {
            if let Some(known) = known.filter(|k| registration.lost_directory_of(k)) {
                let held = image
                    .partitions()
                    .filter(|(_, _, p)| p.isr.contains(&known.id))
                    .count();
                tracing::warn!(
                    broker = known.id,
                    previous = ?known.directory,
                    directory = ?registration.directory,
                    in_sync_partitions = held,
                    "broker is back with a new data directory: its replicas are empty, so it leaves every ISR and leadership and rejoins as a follower"
                );
            }
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
    // A broker the quorum does not know yet joins it as an observer, to receive the log.
    let membership = cluster.quorum.membership();
    if !membership.voters.contains(&id)
        && !membership.observers.contains(&id)
        && !address.is_empty()
    {
        match cluster.quorum.add_observer(id, &address).await {
            Ok(()) => {
                tracing::info!(broker = id, %address, "added observer to the metadata quorum")
            }
            Err(e) => tracing::debug!(broker = id, error = %e, "adding observer failed"),
        }
    }
    HeartbeatReply::Ok
}

/// Observers that were unregistered and have stopped heartbeating: the quorum stops sending
/// them the log.
fn departed_observers(cluster: &Cluster) -> Vec<BrokerId> {
    let image = cluster.quorum.image().borrow().clone();
    let timeout = cluster.settings.session_timeout;
    cluster
        .quorum
        .membership()
        .observers
        .into_iter()
        .filter(|id| !image.brokers.contains_key(id) && cluster.controller.expired(*id, timeout))
        .collect()
}

/// Sends this broker's heartbeat every heartbeat interval to the controller, which acts on it,
/// and to the other voters, which remember it for when one of them becomes the controller.
pub async fn heartbeat_loop(cluster: Arc<Cluster>) {
    let mut tick = tokio::time::interval(cluster.settings.heartbeat_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let heartbeat = BrokerHeartbeat {
        registration: cluster.registration.clone(),
    };
    loop {
        tick.tick().await;
        if cluster.shutting_down() {
            // Fenced on purpose: a heartbeat now would unfence this broker.
            return;
        }
        let me = cluster.node_id();
        let controller = cluster.quorum.leader();
        let mut calls = Vec::new();
        for voter in cluster.heartbeat_targets() {
            if voter == me {
                on_heartbeat(&cluster, heartbeat.registration.clone()).await;
                continue;
            }
            let Some(address) = cluster.cluster_address(voter) else {
                continue;
            };
            let call = send_heartbeat(cluster.client(&address), &heartbeat);
            let timeout = cluster.settings.session_timeout;
            calls.push(async move {
                let outcome = tokio::time::timeout(timeout, call).await;
                (voter, outcome)
            });
        }
        for (voter, outcome) in futures_util::future::join_all(calls).await {
            if Some(voter) != controller {
                continue;
            }
            match outcome {
                Ok(Ok(_)) => {}
                Ok(Err(status)) => {
                    tracing::debug!(controller = voter, %status, "heartbeat failed");
                    if krait_peer::connection_lost(&status) {
                        succeed_if_gone(&cluster, voter);
                    }
                }
                Err(_) => tracing::debug!(controller = voter, "heartbeat timed out"),
            }
        }
    }
}

/// The controller's connection closed under this broker's heartbeat or was refused: probes the
/// controller's cluster port and, when it refuses (the process is gone), campaigns to succeed
/// it now rather than after the quorum's leader lease and election timeout (1.1-1.5 s of
/// silence with the default session). Only a voter campaigns, and only on a refusal: a paused
/// or cut-off controller is left to the timeouts, as a paused broker is left to its session.
/// The refusal is remembered as a controller's own probe would be, so that this broker, once
/// elected, fences the dead one at its first tick.
fn succeed_if_gone(cluster: &Arc<Cluster>, controller: BrokerId) {
    if !cluster.quorum.votes() {
        return;
    }
    let Some(address) = cluster.cluster_address(controller) else {
        return;
    };
    if cluster.controller.succeeding.swap(true, Ordering::SeqCst) {
        return;
    }
    let cluster = cluster.clone();
    tokio::spawn(async move {
        let started = Instant::now();
        if refuses(&address).await {
            tracing::info!(
                controller,
                %address,
                "the controller's cluster port refused a connection: campaigning to succeed it"
            );
            cluster.controller.probed(controller, started, true);
            let within = Duration::from_millis(cluster.settings.election_timeout_ms.1 * 2);
            if !cluster.quorum.campaign_to_succeed(controller, within).await {
                tracing::debug!(controller, "no successor known after campaigning");
            }
        }
        cluster.controller.succeeding.store(false, Ordering::SeqCst);
    });
}

/// Whether a TCP connection to `address` is refused (nothing listens there) within
/// [`PROBE_TIMEOUT`]; a timeout or any other error proves nothing and is `false`.
async fn refuses(address: &str) -> bool {
    let attempt =
        tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(address)).await;
    matches!(&attempt, Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused)
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
        // A lost contact is looked into, and a refused probe acted on, before the tick.
        tokio::select! {
            _ = tick.tick() => {}
            _ = cluster.quorum.contact_lost() => {}
            _ = cluster.controller.wake.notified() => {}
        }
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
            cluster.controller.restart(cluster.settings.session_timeout);
            leading = true;
        }
        probe_silent_brokers(&cluster);
        for id in departed_observers(&cluster) {
            match cluster.quorum.remove_observer(id).await {
                Ok(()) => tracing::info!(
                    broker = id,
                    "removed unregistered observer from the metadata quorum"
                ),
                Err(e) => tracing::debug!(broker = id, error = %e, "removing observer failed"),
            }
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

/// Probes the cluster port of every live broker (but this one) that missed a heartbeat or whose
/// connection the controller's appends found closed: a TCP connection attempt, at most one in
/// flight per broker, whose refusal fences the broker (`duties`) as soon as it comes.
fn probe_silent_brokers(cluster: &Arc<Cluster>) {
    let image = cluster.quorum.image().borrow().clone();
    // One heartbeat interval and a half: one heartbeat missed, whatever the jitter.
    let silence = cluster.settings.heartbeat_interval * 3 / 2;
    let me = cluster.node_id();
    for broker in image.live_brokers() {
        let (id, address) = (broker.id, broker.cluster_address.clone());
        if id == me || address.is_empty() {
            continue;
        }
        let lost = cluster.quorum.contact_lost_at(id);
        let Some(why) = cluster.controller.start_probe(id, silence, lost) else {
            continue;
        };
        let cluster = cluster.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let refused = refuses(&address).await;
            if refused {
                tracing::info!(broker = id, %address, %why, "the broker's cluster port refused a connection");
            } else {
                tracing::debug!(broker = id, %address, %why, "probed a broker's cluster port");
            }
            cluster.controller.probed(id, started, refused);
        });
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
        .filter_map(|b| {
            if cluster.controller.expired(b.id, timeout) {
                tracing::warn!(broker = b.id, ?timeout, "fencing broker: no heartbeat");
            } else if cluster.controller.refused(b.id) {
                tracing::warn!(
                    broker = b.id,
                    address = %b.cluster_address,
                    "fencing broker: its cluster port refuses connections"
                );
            } else {
                return None;
            }
            Some(MetadataRecord::FenceBroker { id: b.id })
        })
        .collect();
    // Fenced brokers' partitions are repaired in the same step, from the image as it will be.
    let mut image = (*image).clone();
    for record in &fence {
        let _ = image.apply(record);
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
    fence
        .into_iter()
        .chain(changes.into_iter().map(MetadataRecord::ChangePartition))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SILENCE: Duration = Duration::from_millis(30);

    async fn silent(state: &ControllerState, id: BrokerId) {
        state.heard_from(id);
        tokio::time::sleep(SILENCE * 2).await;
    }

    #[tokio::test]
    async fn only_a_broker_that_missed_a_heartbeat_is_probed_and_one_probe_at_a_time() {
        let state = ControllerState::default();
        assert!(
            state.start_probe(1, SILENCE, None).is_none(),
            "never heard from: the session decides"
        );
        state.heard_from(1);
        assert!(
            state.start_probe(1, SILENCE, None).is_none(),
            "just heard from"
        );
        tokio::time::sleep(SILENCE * 2).await;
        assert!(state.start_probe(1, SILENCE, None).is_some());
        assert!(
            state.start_probe(1, SILENCE, None).is_none(),
            "one in flight"
        );
        state.probed(1, Instant::now(), false);
        assert!(!state.refused(1), "answered or timed out: proves nothing");
        assert!(
            state.start_probe(1, SILENCE, None).is_none(),
            "not again at once"
        );
        tokio::time::sleep(SILENCE * 2).await;
        assert!(
            state.start_probe(1, SILENCE, None).is_some(),
            "probed again while silent"
        );
    }

    #[tokio::test]
    async fn a_refused_probe_marks_the_broker_until_it_heartbeats_again() {
        let state = ControllerState::default();
        silent(&state, 2).await;
        let started = Instant::now();
        assert!(state.start_probe(2, SILENCE, None).is_some());
        state.probed(2, started, true);
        assert!(state.refused(2));
        assert!(
            state.start_probe(2, SILENCE, None).is_none(),
            "nothing more to learn"
        );
        state.heard_from(2);
        assert!(
            !state.refused(2),
            "a new process heartbeats: not fenced for the old one"
        );
    }

    #[tokio::test]
    async fn a_heartbeat_during_the_probe_outweighs_its_refusal() {
        let state = ControllerState::default();
        silent(&state, 3).await;
        let started = Instant::now();
        assert!(state.start_probe(3, SILENCE, None).is_some());
        state.heard_from(3);
        state.probed(3, started, true);
        assert!(!state.refused(3));
    }

    #[tokio::test]
    async fn a_lost_contact_is_probed_at_once_and_once() {
        let state = ControllerState::default();
        state.heard_from(4);
        let before = Instant::now();
        assert!(
            state
                .start_probe(4, SILENCE, Some(before - SILENCE))
                .is_none(),
            "lost before the last heartbeat: it is back"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
        let lost = Instant::now();
        assert_eq!(
            state.start_probe(4, SILENCE, Some(lost)),
            Some(Why::LostContact),
            "no missed heartbeat needed"
        );
        assert!(
            state.start_probe(4, SILENCE, Some(lost)).is_none(),
            "one in flight"
        );
        state.probed(4, lost, false);
        assert!(
            state.start_probe(4, SILENCE, Some(lost)).is_none(),
            "that loss was looked into"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
        let again = Instant::now();
        assert!(
            state.start_probe(4, SILENCE, Some(again)).is_some(),
            "a new loss"
        );
        state.probed(4, again, true);
        assert!(state.refused(4));
    }

    #[tokio::test]
    async fn a_refused_probe_wakes_the_controller() {
        let state = ControllerState::default();
        let woken = state.wake.notified();
        silent(&state, 5).await;
        let started = Instant::now();
        assert!(state.start_probe(5, SILENCE, None).is_some());
        state.probed(5, started, true);
        tokio::time::timeout(Duration::from_secs(1), woken)
            .await
            .expect("the controller loop is woken to fence it");
    }
}
