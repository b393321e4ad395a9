//! Every partition replica on this broker, the leader side of follower fetches (with a long
//! poll, so an idle follower costs one parked request), and the follower side: one fetcher loop
//! per remote leader, started when this broker starts following it and ending when it follows
//! nothing there any more.
//!
//! The transport between brokers is a trait, so the same loops run over gRPC between processes
//! and in memory in tests.

use krait_sync::{MutexExt, RwLockExt};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use krait_image::BrokerId;
use tokio::sync::Notify;

use crate::replica::{PartitionReplica, ReplicaError};
use crate::wire::{FetchPartition, FetchedPartition, ReplicaFetchError};

/// A follower's whole fetch from one leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    pub replica_id: BrokerId,
    pub max_wait_ms: u64,
    pub max_bytes: usize,
    pub partitions: Vec<FetchPartition>,
}

/// Carries follower fetches to a leader broker.
pub trait ReplicaTransport: Send + Sync + 'static {
    /// Sends `request` to broker `leader`; an error means the leader was not reached.
    fn fetch(
        &self,
        leader: BrokerId,
        request: FetchRequest,
    ) -> impl Future<Output = Result<Vec<FetchedPartition>, TransportError>> + Send;
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("replica fetch to broker {leader} failed: {reason}")]
pub struct TransportError {
    pub leader: BrokerId,
    pub reason: String,
    /// The connection to the leader closed or could not be made, as when its process is gone
    /// (not a slow answer or a cut route, which prove nothing).
    pub connection_lost: bool,
}

/// The clock, in milliseconds; the manager reads it for follower progress.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Tuning of the fetch loops.
#[derive(Debug, Clone, Copy)]
pub struct FetchSettings {
    pub max_wait_ms: u64,
    pub max_bytes: usize,
    /// Per partition, so one busy partition cannot starve the others.
    pub partition_max_bytes: usize,
    /// Pause after a failed fetch before the next try.
    pub retry_backoff: Duration,
}

impl Default for FetchSettings {
    fn default() -> Self {
        Self {
            max_wait_ms: 500,
            max_bytes: 16 << 20,
            partition_max_bytes: 1 << 20,
            retry_backoff: Duration::from_millis(200),
        }
    }
}

type Key = (String, i32);

/// The replicas of one broker.
pub struct ReplicaManager {
    broker_id: BrokerId,
    replicas: RwLock<BTreeMap<Key, Arc<PartitionReplica>>>,
    /// Wakes parked follower fetches: a leader appended.
    appended: Notify,
    /// Leaders with a running fetcher loop.
    fetching_from: Mutex<BTreeSet<BrokerId>>,
    /// Leaders whose connection the last fetch found closed or refused.
    unreachable: Mutex<BTreeSet<BrokerId>>,
    clock: Clock,
    settings: FetchSettings,
    throttle: Mutex<Throttle>,
    /// Until when the leader serves no throttled partition (its throttle's debt).
    leader_rest: Mutex<tokio::time::Instant>,
    /// Until when no fetcher asks for a throttled partition: one debt for the whole broker,
    /// whichever leaders it fetches from, as Kafka's follower quota is.
    follower_rest: Mutex<tokio::time::Instant>,
}

/// Replication throttles (Kafka's `leader.replication.throttled.rate` and
/// `follower.replication.throttled.rate`): bytes per second of the throttled partitions' fetches,
/// served (leader) or applied (follower). Unthrottled partitions are never slowed on their own,
/// but share a fetch with throttled ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Throttle {
    pub leader_bytes_per_sec: Option<u64>,
    pub follower_bytes_per_sec: Option<u64>,
    /// The partitions being moved (a reassignment is adding replicas to them).
    pub partitions: BTreeSet<(String, i32)>,
}

impl Throttle {
    /// How long `answers` take at `rate`, counting throttled partitions' records only.
    fn delay(&self, answers: &[FetchedPartition], rate: Option<u64>) -> Option<Duration> {
        let rate = rate.filter(|r| *r > 0)?;
        let bytes: usize = answers
            .iter()
            .filter(|a| self.partitions.contains(&(a.topic.clone(), a.partition)))
            .map(|a| a.records.len())
            .sum();
        (bytes > 0).then(|| Duration::from_secs_f64(bytes as f64 / rate as f64))
    }
}

impl std::fmt::Debug for ReplicaManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaManager")
            .field("broker_id", &self.broker_id)
            .finish_non_exhaustive()
    }
}

impl ReplicaManager {
    pub fn new(broker_id: BrokerId, clock: Clock, settings: FetchSettings) -> Arc<Self> {
        Arc::new(Self {
            broker_id,
            replicas: RwLock::new(BTreeMap::new()),
            appended: Notify::new(),
            fetching_from: Mutex::new(BTreeSet::new()),
            unreachable: Mutex::new(BTreeSet::new()),
            clock,
            settings,
            throttle: Mutex::new(Throttle::default()),
            leader_rest: Mutex::new(tokio::time::Instant::now()),
            follower_rest: Mutex::new(tokio::time::Instant::now()),
        })
    }

    fn lock_leader_rest(&self) -> std::sync::MutexGuard<'_, tokio::time::Instant> {
        self.leader_rest.lock_unpoisoned()
    }

    fn lock_follower_rest(&self) -> std::sync::MutexGuard<'_, tokio::time::Instant> {
        self.follower_rest.lock_unpoisoned()
    }

    /// Sets the replication throttles (from the cluster's dynamic configs).
    pub fn set_throttle(&self, throttle: Throttle) {
        *self.throttle.lock_unpoisoned() = throttle;
    }

    fn throttle_delay(&self, answers: &[FetchedPartition], leader: bool) -> Option<Duration> {
        let t = self.throttle.lock_unpoisoned();
        let rate = if leader {
            t.leader_bytes_per_sec
        } else {
            t.follower_bytes_per_sec
        };
        t.delay(answers, rate)
    }

    pub fn broker_id(&self) -> BrokerId {
        self.broker_id
    }

    pub fn insert(&self, topic: &str, partition: i32, replica: Arc<PartitionReplica>) {
        self.write().insert((topic.to_string(), partition), replica);
    }

    pub fn remove(&self, topic: &str, partition: i32) -> Option<Arc<PartitionReplica>> {
        self.write().remove(&(topic.to_string(), partition))
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<PartitionReplica>> {
        self.read().get(&(topic.to_string(), partition)).cloned()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Key, Arc<PartitionReplica>>> {
        self.replicas.read_unpoisoned()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<Key, Arc<PartitionReplica>>> {
        self.replicas.write_unpoisoned()
    }

    /// The leaders this broker follows whose connection its last fetch found closed or
    /// refused: most likely gone, until the controller fences them or a fetch gets through.
    pub fn unreachable_leaders(&self) -> BTreeSet<BrokerId> {
        self.unreachable.lock_unpoisoned().clone()
    }

    fn reached(&self, leader: BrokerId, reached: bool) {
        let mut unreachable = self.unreachable.lock_unpoisoned();
        if reached {
            unreachable.remove(&leader);
        } else {
            unreachable.insert(leader);
        }
    }

    /// Writes the high watermark of every replica whose high watermark moved since its last
    /// checkpoint (see `PartitionLog::checkpoint_high_watermark`): how many were written.
    pub fn checkpoint_high_watermarks(&self) -> usize {
        let replicas: Vec<Arc<PartitionReplica>> = self.read().values().cloned().collect();
        krait_sync::blocking(|| {
            replicas
                .iter()
                .filter(|r| match r.log().checkpoint_high_watermark() {
                    Ok(written) => written,
                    Err(e) => {
                        tracing::warn!(error = %e, "high watermark not checkpointed");
                        false
                    }
                })
                .count()
        })
    }

    /// Tells parked follower fetches that a leader appended.
    pub fn notify_appended(&self) {
        self.appended.notify_waiters();
    }

    /// Serves a follower's fetch as leader. When no partition has records or news for it, waits
    /// up to `max_wait_ms` for an append before answering.
    pub async fn serve(&self, request: &FetchRequest) -> Vec<FetchedPartition> {
        // Under the leader throttle, throttled partitions sit out until their time is up; the
        // others are served at once.
        let resting = tokio::time::Instant::now() < *self.lock_leader_rest();
        let filtered;
        let request = if resting {
            let throttle = self.throttle.lock_unpoisoned();
            filtered = FetchRequest {
                partitions: request
                    .partitions
                    .iter()
                    .filter(|p| {
                        !throttle
                            .partitions
                            .contains(&(p.topic.clone(), p.partition))
                    })
                    .cloned()
                    .collect(),
                ..request.clone()
            };
            &filtered
        } else {
            request
        };
        let deadline = tokio::time::Instant::now() + Duration::from_millis(request.max_wait_ms);
        loop {
            // Registered before serving, so an append in between still wakes this fetch.
            let appended = self.appended.notified();
            let answers = self.serve_once(request);
            let worth_answering = answers
                .iter()
                .any(|a| !a.records.is_empty() || a.error.is_some() || a.diverging.is_some());
            if worth_answering || tokio::time::Instant::now() >= deadline {
                if let Some(delay) = self.throttle_delay(&answers, true) {
                    let mut rest = self.lock_leader_rest();
                    *rest = (*rest).max(tokio::time::Instant::now()) + delay;
                }
                return answers;
            }
            if tokio::time::timeout_at(deadline, appended).await.is_err() {
                return self.serve_once(request);
            }
        }
    }

    fn serve_once(&self, request: &FetchRequest) -> Vec<FetchedPartition> {
        let now = (self.clock)();
        // A follower asks for what its own settings allow; a leader answers with no more than
        // its own allow, so the memory a fetch takes here is bounded by this broker's budget.
        let mut budget = request.max_bytes.min(self.settings.max_bytes);
        request
            .partitions
            .iter()
            .map(|p| match self.get(&p.topic, p.partition) {
                Some(replica) => {
                    let limit = budget.min(self.settings.partition_max_bytes).max(1);
                    let answer = replica.serve_fetch(p, limit, now);
                    budget = budget.saturating_sub(answer.records.len());
                    answer
                }
                None => FetchedPartition::error(p, ReplicaFetchError::NotLeaderOrFollower),
            })
            .collect()
    }

    /// What this broker follows, grouped by leader.
    pub fn fetches_by_leader(&self) -> BTreeMap<BrokerId, Vec<FetchPartition>> {
        let mut by_leader: BTreeMap<BrokerId, Vec<FetchPartition>> = BTreeMap::new();
        for ((topic, partition), replica) in self.read().iter() {
            if let Some((leader, fetch)) = replica.next_fetch(topic, *partition) {
                by_leader.entry(leader).or_default().push(fetch);
            }
        }
        by_leader
    }

    /// Applies a leader's answers as follower.
    /// Applies `leader`'s answers to `request` as follower. An answer is applied only if the
    /// replica still follows that leader at the epoch the fetch was sent with.
    pub fn apply(&self, leader: BrokerId, request: &FetchRequest, answers: &[FetchedPartition]) {
        for answer in answers {
            let Some(replica) = self.get(&answer.topic, answer.partition) else {
                continue;
            };
            let Some(sent) = request
                .partitions
                .iter()
                .find(|p| p.topic == answer.topic && p.partition == answer.partition)
            else {
                continue;
            };
            if let Some(error) = answer.error {
                tracing::debug!(topic = %answer.topic, partition = answer.partition, leader, %error, "leader refused a fetch");
            }
            match krait_sync::blocking(|| {
                replica.apply_fetched(answer, leader, sent.current_leader_epoch)
            }) {
                Ok(_) => {}
                Err(ReplicaError::StaleAnswer | ReplicaError::NotLeader) => {
                    tracing::debug!(topic = %answer.topic, partition = answer.partition, leader, "dropped a fetch answer from a leader no longer followed");
                }
                Err(e) => {
                    tracing::warn!(topic = %answer.topic, partition = answer.partition, error = %e, "replicated fetch not applied");
                }
            }
        }
    }

    /// Starts a fetcher loop for every leader this broker follows and has none for yet. Call it
    /// after every role change.
    pub fn ensure_fetchers<T: ReplicaTransport>(self: &Arc<Self>, transport: &Arc<T>) {
        let leaders: Vec<BrokerId> = self.fetches_by_leader().into_keys().collect();
        let mut running = self.fetching_from.lock_unpoisoned();
        for leader in leaders {
            if running.insert(leader) {
                let (manager, transport) = (self.clone(), transport.clone());
                tokio::spawn(async move { manager.fetch_loop(leader, transport).await });
            }
        }
    }

    /// Fetches from `leader` until this broker follows nothing there.
    async fn fetch_loop<T: ReplicaTransport>(self: Arc<Self>, leader: BrokerId, transport: Arc<T>) {
        tracing::debug!(leader, "replica fetcher started");
        // Throttled partitions sit out while the broker's follower throttle is in debt
        // (`follower_rest`); the other partitions from this leader keep replicating at full
        // speed.
        let mut failed_in_a_row = 0u32;
        loop {
            let throttled_until = *self.lock_follower_rest();
            let partitions = {
                let mut running = self.fetching_from.lock_unpoisoned();
                let partitions = self.fetches_by_leader().remove(&leader).unwrap_or_default();
                if partitions.is_empty() {
                    running.remove(&leader);
                    self.reached(leader, true);
                    break;
                }
                partitions
            };
            let resting = tokio::time::Instant::now() < throttled_until;
            let partitions: Vec<FetchPartition> = if resting {
                let throttle = self.throttle.lock_unpoisoned();
                partitions
                    .into_iter()
                    .filter(|p| {
                        !throttle
                            .partitions
                            .contains(&(p.topic.clone(), p.partition))
                    })
                    .collect()
            } else {
                partitions
            };
            if partitions.is_empty() {
                tokio::time::sleep_until(throttled_until).await;
                continue;
            }
            let request = FetchRequest {
                replica_id: self.broker_id,
                max_wait_ms: if resting {
                    // Come back for the throttled partitions when their time is up.
                    let left = throttled_until - tokio::time::Instant::now();
                    self.settings.max_wait_ms.min(left.as_millis() as u64)
                } else {
                    self.settings.max_wait_ms
                },
                max_bytes: self.settings.max_bytes,
                partitions,
            };
            match transport.fetch(leader, request.clone()).await {
                Ok(answers) => {
                    failed_in_a_row = 0;
                    self.reached(leader, true);
                    self.apply(leader, &request, &answers);
                    if let Some(delay) = self.throttle_delay(&answers, false) {
                        let mut rest = self.lock_follower_rest();
                        *rest = (*rest).max(tokio::time::Instant::now()) + delay;
                    }
                    // After an error or a truncation, pause: a fetch that keeps failing (or a
                    // log that keeps diverging) must not spin.
                    if answers
                        .iter()
                        .any(|a| a.error.is_some() || a.diverging.is_some())
                    {
                        tokio::time::sleep(self.settings.retry_backoff).await;
                    }
                }
                Err(e) => {
                    failed_in_a_row += 1;
                    if e.connection_lost {
                        self.reached(leader, false);
                    }
                    tracing::debug!(leader, error = %e, "replica fetch failed; retrying");
                    // A connection that closed under a fetch is tried again at once: a leader
                    // that is still there answers on a new one, and is no longer taken for gone
                    // (Metadata leaves a gone leader out); a dead one refuses at once.
                    if !(e.connection_lost && failed_in_a_row == 1) {
                        tokio::time::sleep(self.settings.retry_backoff).await;
                    }
                }
            }
        }
        tracing::debug!(leader, "replica fetcher stopped");
    }
}

#[cfg(test)]
mod throttle_tests {
    use super::*;

    fn answer(topic: &str, partition: i32, bytes: usize) -> FetchedPartition {
        FetchedPartition {
            topic: topic.into(),
            partition,
            error: None,
            high_watermark: 0,
            log_start_offset: 0,
            log_end_offset: 0,
            records: bytes::Bytes::from(vec![0u8; bytes]),
            diverging: None,
        }
    }

    #[test]
    fn only_throttled_partitions_bytes_cost_time_at_the_rate() {
        let throttle = Throttle {
            leader_bytes_per_sec: None,
            follower_bytes_per_sec: Some(1_000),
            partitions: [("moving".to_string(), 0)].into(),
        };
        let answers = [answer("moving", 0, 500), answer("staying", 0, 10_000)];
        assert_eq!(
            throttle.delay(&answers, throttle.follower_bytes_per_sec),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            throttle.delay(&answers, throttle.leader_bytes_per_sec),
            None
        );
        assert_eq!(
            throttle.delay(&[answer("staying", 0, 10_000)], Some(1_000)),
            None
        );
    }
}
