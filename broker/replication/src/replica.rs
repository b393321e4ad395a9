//! One partition's replica on this broker: its log, its role, and its high watermark channel.
//!
//! As leader it appends produce batches, serves follower fetches, tracks how far each follower
//! has caught up, advances the high watermark to what the whole ISR holds, and says which ISR
//! change the controller should commit. As follower it builds the next fetch and applies the
//! leader's answer: append verbatim, or truncate where the logs diverged.
//!
//! The role lock is held across a leader append, so no batch is ever appended at an epoch this
//! replica has already given up.

use krait_sync::MutexExt;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use krait_image::BrokerId;
use krait_image::isr::{self, AcksAll, FollowerProgress};
use krait_protocol::batch::ValidBatch;
use krait_storage::{AppendInfo, AppendOptions, LogOffsets, PartitionLog, StorageError};
use tokio::sync::watch;

use crate::wire::{Diverging, FetchPartition, FetchedPartition, ReplicaFetchError};

/// A follower rejoins the ISR only if it fetched this recently (an idle follower's fetch parks
/// on the leader for at most `max_wait_ms`, 500 ms by default, so a live one fetches more often).
const REJOIN_FETCH_RECENCY_MS: i64 = 2_000;

/// What this replica does for its partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Neither leads nor follows: not assigned here, or the partition has no leader.
    Offline,
    Leader {
        epoch: i32,
    },
    Follower {
        leader: BrokerId,
        epoch: i32,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error("this broker does not lead the partition")]
    NotLeader,
    #[error("the answer comes from a leader or epoch this replica no longer follows")]
    StaleAnswer,
    #[error("{isr} in-sync replicas, min.insync.replicas is {min}")]
    NotEnoughReplicas { isr: usize, min: usize },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

struct Leading {
    epoch: i32,
    replicas: Vec<BrokerId>,
    isr: Vec<BrokerId>,
    followers: BTreeMap<BrokerId, FollowerProgress>,
    /// The log end offset when this epoch began: a follower must reach it to rejoin the ISR.
    epoch_start_offset: i64,
    /// Followers outside the ISR whose latest fetch reached the high watermark (and this
    /// epoch's start): judged when the fetch arrives, as Kafka does, since under steady load
    /// a follower is almost never caught up at an arbitrary later moment.
    eligible: std::collections::BTreeSet<BrokerId>,
    /// An ISR expansion asked of the controller and not yet committed. Its new members count
    /// for the high watermark at once (Kafka's maximal ISR), so the high watermark never passes
    /// a replica about to join the ISR.
    pending_expansion: Vec<BrokerId>,
}

enum State {
    Offline,
    Leader(Leading),
    Follower { leader: BrokerId, epoch: i32 },
}

/// A partition replica on broker `broker_id`.
pub struct PartitionReplica {
    broker_id: BrokerId,
    log: PartitionLog,
    state: Mutex<State>,
    high_watermark: watch::Sender<i64>,
}

impl std::fmt::Debug for PartitionReplica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionReplica")
            .field("broker_id", &self.broker_id)
            .field("role", &self.role())
            .field("offsets", &self.log.offsets())
            .finish()
    }
}

impl PartitionReplica {
    pub fn new(broker_id: BrokerId, log: PartitionLog) -> Self {
        let (high_watermark, _) = watch::channel(log.offsets().high_watermark);
        Self {
            broker_id,
            log,
            state: Mutex::new(State::Offline),
            high_watermark,
        }
    }

    pub fn log(&self) -> &PartitionLog {
        &self.log
    }

    pub fn role(&self) -> Role {
        match &*self.lock() {
            State::Offline => Role::Offline,
            State::Leader(l) => Role::Leader { epoch: l.epoch },
            State::Follower { leader, epoch } => Role::Follower {
                leader: *leader,
                epoch: *epoch,
            },
        }
    }

    /// The ISR as this replica leads it (empty unless leading).
    pub fn isr(&self) -> Vec<BrokerId> {
        match &*self.lock() {
            State::Leader(l) => l.isr.clone(),
            _ => Vec::new(),
        }
    }

    /// The replicas as this replica leads them (empty unless leading).
    pub fn replicas(&self) -> Vec<BrokerId> {
        match &*self.lock() {
            State::Leader(l) => l.replicas.clone(),
            _ => Vec::new(),
        }
    }

    /// As leader: how many records each follower is behind this log's end, as of its last
    /// fetch (one it has not fetched from yet this epoch counts from the log start). Empty
    /// unless leading.
    pub fn follower_lags(&self) -> Vec<(BrokerId, i64)> {
        let state = self.lock();
        let State::Leader(leading) = &*state else {
            return Vec::new();
        };
        let offsets = self.log.offsets();
        leading
            .replicas
            .iter()
            .filter(|r| **r != self.broker_id)
            .map(|r| {
                let fetched = leading
                    .followers
                    .get(r)
                    .map_or(-1, |f| f.log_end_offset)
                    .max(offsets.log_start_offset);
                (*r, (offsets.log_end_offset - fetched).max(0))
            })
            .collect()
    }

    /// KIP-392: the follower a consumer in `client_rack` reading at `fetch_offset` should read
    /// from instead of this leader (`None`: read here, or this replica does not lead).
    pub fn preferred_read_replica<'a>(
        &self,
        client_rack: &str,
        fetch_offset: i64,
        rack_of: impl Fn(BrokerId) -> Option<&'a str>,
    ) -> Option<BrokerId> {
        let state = self.lock();
        let State::Leader(leading) = &*state else {
            return None;
        };
        isr::preferred_read_replica(
            client_rack,
            self.broker_id,
            &leading.isr,
            &leading.followers,
            fetch_offset,
            rack_of,
        )
    }

    /// Wakes on every high watermark change and every role change.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every state change is a whole assignment after the fallible work, so a poisoned lock
        // still holds a consistent state.
        self.state.lock_unpoisoned()
    }

    /// Leads at `epoch` with `replicas` and `isr` as the controller committed them. At the same
    /// epoch (an ISR or replica change) the followers' progress is kept; at a new epoch it starts
    /// afresh and the epoch begins at the log end.
    pub fn lead(
        &self,
        epoch: i32,
        replicas: &[BrokerId],
        isr: &[BrokerId],
        now_ms: i64,
    ) -> Result<(), StorageError> {
        let mut state = self.lock();
        let mut followers = match &mut *state {
            State::Leader(l) if l.epoch == epoch => std::mem::take(&mut l.followers),
            _ => {
                self.log.become_leader(epoch)?;
                BTreeMap::new()
            }
        };
        followers.retain(|r, _| replicas.contains(r));
        for r in replicas.iter().filter(|r| **r != self.broker_id) {
            followers
                .entry(*r)
                .or_insert_with(|| FollowerProgress::new(now_ms));
        }
        let epoch_start_offset = match &*state {
            State::Leader(l) if l.epoch == epoch => l.epoch_start_offset,
            _ => self.log.offsets().log_end_offset,
        };
        let leading = Leading {
            epoch,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            followers,
            epoch_start_offset,
            eligible: Default::default(),
            pending_expansion: Vec::new(),
        };
        *state = State::Leader(leading);
        self.advance_high_watermark(&state)?;
        self.high_watermark
            .send_replace(self.log.offsets().high_watermark);
        Ok(())
    }

    /// Follows `leader` at `epoch`. Nothing is truncated now: the first fetch finds out where
    /// the logs diverge, if they do.
    pub fn follow(&self, leader: BrokerId, epoch: i32) {
        *self.lock() = State::Follower { leader, epoch };
        self.high_watermark
            .send_replace(self.log.offsets().high_watermark);
    }

    /// Stops leading or following (the partition moved away or has no leader).
    pub fn go_offline(&self) {
        *self.lock() = State::Offline;
        self.high_watermark
            .send_replace(self.log.offsets().high_watermark);
    }

    /// Appends a producer's batches as leader. With `acks_all_min_isr`, refuses when the ISR is
    /// already smaller than `min.insync.replicas` (nothing is appended). The high watermark moves
    /// at once when this broker is the only in-sync replica, else as followers catch up.
    pub fn append_as_leader(
        &self,
        batches: &[ValidBatch],
        log_append_time: Option<i64>,
        acks_all_min_isr: Option<usize>,
    ) -> Result<AppendInfo, ReplicaError> {
        let state = self.lock();
        let State::Leader(leading) = &*state else {
            return Err(ReplicaError::NotLeader);
        };
        if let Some(min) = acks_all_min_isr
            && !isr::may_append_acks_all(leading.isr.len(), min)
        {
            return Err(ReplicaError::NotEnoughReplicas {
                isr: leading.isr.len(),
                min,
            });
        }
        let alone = leading.isr == [self.broker_id] && leading.pending_expansion.is_empty();
        let info = self.log.append_with(
            batches,
            AppendOptions {
                leader_epoch: leading.epoch,
                log_append_time,
                advance_high_watermark: alone,
            },
        )?;
        if alone {
            self.high_watermark
                .send_replace(info.offsets.high_watermark);
        }
        Ok(info)
    }

    /// Where an `acks=all` batch ending at `end_offset` (last offset + 1) stands now.
    pub fn acks_all(
        &self,
        end_offset: i64,
        min_insync_replicas: usize,
    ) -> Result<AcksAll, ReplicaError> {
        let state = self.lock();
        let State::Leader(leading) = &*state else {
            return Err(ReplicaError::NotLeader);
        };
        Ok(isr::acks_all(
            end_offset,
            self.log.offsets().high_watermark,
            leading.isr.len(),
            min_insync_replicas,
        ))
    }

    /// Waits until an `acks=all` batch is settled or `timeout` passes (then it is `Pending`).
    pub async fn wait_acks_all(
        &self,
        end_offset: i64,
        min_insync_replicas: usize,
        timeout: Duration,
    ) -> Result<AcksAll, ReplicaError> {
        let mut changes = self.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let status = self.acks_all(end_offset, min_insync_replicas)?;
            if status != AcksAll::Pending {
                return Ok(status);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => continue,
                _ => return Ok(AcksAll::Pending),
            }
        }
    }

    /// Serves one partition of a follower's fetch: the records after its log end, or where its
    /// log diverged from ours. Records the follower's progress and advances the high watermark.
    pub fn serve_fetch(
        &self,
        request: &FetchPartition,
        max_bytes: usize,
        now_ms: i64,
    ) -> FetchedPartition {
        let mut state = self.lock();
        let State::Leader(leading) = &mut *state else {
            return FetchedPartition::error(request, ReplicaFetchError::NotLeaderOrFollower);
        };
        if let Some(error) = check_epoch(request.current_leader_epoch, leading.epoch) {
            return FetchedPartition::error(request, error);
        }
        if !leading.replicas.contains(&request.replica_id) || request.replica_id == self.broker_id {
            return FetchedPartition::error(request, ReplicaFetchError::NotAReplica);
        }
        if let Some(diverging) = self.divergence(request) {
            return self.answer(request, bytes::Bytes::new(), Some(diverging));
        }
        let read = match self.log.read_for_follower(request.fetch_offset, max_bytes) {
            Ok(read) => read,
            Err(StorageError::OffsetOutOfRange { .. }) => {
                let mut out = self.answer(request, bytes::Bytes::new(), None);
                out.error = Some(ReplicaFetchError::OffsetOutOfRange);
                return out;
            }
            Err(e) => {
                tracing::warn!(topic = %request.topic, partition = request.partition, error = %e, "follower read failed");
                return FetchedPartition::error(request, ReplicaFetchError::Storage);
            }
        };
        if let Some(progress) = leading.followers.get_mut(&request.replica_id) {
            progress.on_fetch(request.fetch_offset, read.offsets.log_end_offset, now_ms);
        }
        if !leading.isr.contains(&request.replica_id)
            && request.fetch_offset >= read.offsets.high_watermark
            && request.fetch_offset >= leading.epoch_start_offset
        {
            leading.eligible.insert(request.replica_id);
        }
        if let Err(e) = self.advance_high_watermark(&state) {
            tracing::warn!(topic = %request.topic, partition = request.partition, error = %e, "high watermark not advanced");
        }
        self.answer(request, read.records, None)
    }

    /// As leader, does not count `stall_ms` in which this broker stood still against its
    /// followers' lag (see [`FollowerProgress::excuse`]).
    pub fn excuse_stall(&self, stall_ms: i64, now_ms: i64) {
        if let State::Leader(leading) = &mut *self.lock() {
            for progress in leading.followers.values_mut() {
                progress.excuse(stall_ms, now_ms);
            }
        }
    }

    /// The ISR the controller should commit, if it should change. Followers lagging past
    /// `lag_max_ms` leave first, on their own: a lagging follower holds the high watermark
    /// back, so judging expansion against that high watermark in the same step would let it
    /// straight back in (Kafka shrinks and expands separately for the same reason). Once no
    /// one lags, caught-up replicas join.
    pub fn isr_change(&self, now_ms: i64, lag_max_ms: i64) -> Option<Vec<BrokerId>> {
        let mut state = self.lock();
        let State::Leader(leading) = &mut *state else {
            return None;
        };
        let shrunk = isr::shrink(
            self.broker_id,
            &leading.isr,
            &leading.followers,
            now_ms,
            lag_max_ms,
        );
        if shrunk != leading.isr {
            leading.pending_expansion.clear();
            return Some(shrunk);
        }
        // Caught up at one of its fetches, and still fetching: a follower that stopped (died)
        // when it was caught up would otherwise look in sync forever.
        let recent = REJOIN_FETCH_RECENCY_MS.min(lag_max_ms);
        let joining: Vec<BrokerId> = leading
            .replicas
            .iter()
            .copied()
            .filter(|r| !leading.isr.contains(r) && leading.eligible.contains(r))
            .filter(|r| {
                leading
                    .followers
                    .get(r)
                    .is_some_and(|f| now_ms - f.last_fetch_ms() <= recent)
            })
            .collect();
        if joining.is_empty() {
            for r in leading.replicas.iter().filter(|r| !leading.isr.contains(r)) {
                tracing::trace!(replica = r, eligible = leading.eligible.contains(r), progress = ?leading.followers.get(r), high_watermark = self.log.offsets().high_watermark, "out of the ISR");
            }
            leading.pending_expansion.clear();
            return None;
        }
        leading.pending_expansion = joining.clone();
        let expanded: Vec<BrokerId> = leading.isr.iter().copied().chain(joining).collect();
        Some(expanded)
    }

    /// The fetch a follower sends next, or `None` when not following.
    pub fn next_fetch(&self, topic: &str, partition: i32) -> Option<(BrokerId, FetchPartition)> {
        let State::Follower { leader, epoch } = *self.lock() else {
            return None;
        };
        Some((
            leader,
            FetchPartition {
                topic: topic.to_string(),
                partition,
                fetch_offset: self.log.offsets().log_end_offset,
                last_fetched_epoch: self.log.latest_epoch().unwrap_or(-1),
                current_leader_epoch: epoch,
                replica_id: self.broker_id,
            },
        ))
    }

    /// Applies the leader's answer as follower: truncate where the logs diverged, or append the
    /// records and take the leader's high watermark (never beyond our own log end) and log
    /// start offset (never beyond our high watermark).
    pub fn apply_fetched(
        &self,
        fetched: &FetchedPartition,
        from_leader: BrokerId,
        epoch: i32,
    ) -> Result<LogOffsets, ReplicaError> {
        let state = self.lock();
        match *state {
            State::Follower { leader, epoch: e } if leader == from_leader && e == epoch => {}
            // An answer to a fetch sent to a leader (or at an epoch) this replica has since
            // stopped following: applying it could copy records its new leader never had, or
            // truncate below the high watermark.
            State::Follower { .. } => return Err(ReplicaError::StaleAnswer),
            _ => return Err(ReplicaError::NotLeader),
        }
        if let Some(d) = fetched.diverging {
            let offsets = self.log.truncate_to(self.truncation_point(d))?;
            tracing::info!(partition = fetched.partition, topic = %fetched.topic, epoch = d.epoch, log_end_offset = offsets.log_end_offset, "truncated to the leader's log");
            return Ok(offsets);
        }
        if fetched.error == Some(ReplicaFetchError::OffsetOutOfRange)
            && self.log.offsets().log_end_offset > fetched.log_end_offset
        {
            return Ok(self.log.truncate_to(fetched.log_end_offset)?);
        }
        if fetched.error == Some(ReplicaFetchError::OffsetOutOfRange)
            && self.log.offsets().log_end_offset < fetched.log_start_offset
        {
            let offsets = self
                .log
                .truncate_fully_and_start_at(fetched.log_start_offset)?;
            tracing::info!(partition = fetched.partition, topic = %fetched.topic, log_start_offset = offsets.log_start_offset, "behind the leader's log start: starting over there");
            return Ok(offsets);
        }
        if fetched.error.is_some() {
            return Ok(self.log.offsets());
        }
        self.start_at_first_batch_if_it_holds_our_start(fetched)?;
        self.log.append_replicated(&fetched.records)?;
        let mut offsets = self.log.advance_high_watermark(fetched.high_watermark)?;
        self.high_watermark.send_replace(offsets.high_watermark);
        if fetched.log_start_offset > offsets.log_start_offset {
            // DeleteRecords (or retention) moved the leader's log start: so does ours.
            offsets = self.log.delete_records_before(fetched.log_start_offset)?;
        }
        Ok(offsets)
    }

    /// An empty log starting inside the first fetched batch (the leader's log start fell in the
    /// middle of a batch through DeleteRecords, and this replica started over there): the batch
    /// is whole or not at all, so the log starts again at the batch's base offset, as Kafka's
    /// follower does; the leader's log start is taken back after the append.
    fn start_at_first_batch_if_it_holds_our_start(
        &self,
        fetched: &FetchedPartition,
    ) -> Result<(), StorageError> {
        let offsets = self.log.offsets();
        if offsets.log_end_offset != offsets.log_start_offset {
            return Ok(());
        }
        let Ok(first) = krait_protocol::batch::BatchHeader::parse(&fetched.records) else {
            return Ok(());
        };
        let start = offsets.log_end_offset;
        if first.base_offset < start && first.last_offset() >= start {
            self.log.truncate_fully_and_start_at(first.base_offset)?;
            tracing::info!(partition = fetched.partition, topic = %fetched.topic, base_offset = first.base_offset, log_start_offset = start, "the first fetched batch holds this log's start: starting at the batch");
        }
        Ok(())
    }

    /// Where the leader says our log diverged, clipped to where that epoch ends in our own log;
    /// a leader that knows no common epoch leaves us only what we know is committed.
    fn truncation_point(&self, d: Diverging) -> i64 {
        if d.epoch < 0 {
            return self.log.offsets().high_watermark;
        }
        let (_, own_end) = self.log.end_offset_for_epoch(d.epoch);
        if own_end < 0 {
            return self.log.offsets().high_watermark;
        }
        d.end_offset.min(own_end)
    }

    /// Whether the follower's last epoch ends, in our log, before its fetch offset (or is not
    /// ours at all): then it holds records we do not, and must truncate.
    fn divergence(&self, request: &FetchPartition) -> Option<Diverging> {
        if request.last_fetched_epoch < 0 {
            return None;
        }
        let (epoch, end_offset) = self.log.end_offset_for_epoch(request.last_fetched_epoch);
        (epoch != request.last_fetched_epoch || end_offset < request.fetch_offset)
            .then_some(Diverging { epoch, end_offset })
    }

    fn answer(
        &self,
        request: &FetchPartition,
        records: bytes::Bytes,
        diverging: Option<Diverging>,
    ) -> FetchedPartition {
        let offsets = self.log.offsets();
        FetchedPartition {
            topic: request.topic.clone(),
            partition: request.partition,
            error: None,
            high_watermark: offsets.high_watermark,
            log_start_offset: offsets.log_start_offset,
            log_end_offset: offsets.log_end_offset,
            records,
            diverging,
        }
    }

    /// Moves the high watermark to what every ISR member holds, and tells waiters.
    fn advance_high_watermark(&self, state: &State) -> Result<(), StorageError> {
        let State::Leader(leading) = state else {
            return Ok(());
        };
        let before = self.log.offsets();
        let maximal: Vec<BrokerId> = leading
            .isr
            .iter()
            .chain(leading.pending_expansion.iter())
            .copied()
            .collect();
        let Some(hw) = isr::high_watermark(
            self.broker_id,
            before.log_end_offset,
            &maximal,
            &leading.followers,
        ) else {
            return Ok(());
        };
        let after = self.log.advance_high_watermark(hw)?;
        if after.high_watermark != before.high_watermark {
            self.high_watermark.send_replace(after.high_watermark);
        }
        Ok(())
    }
}

fn check_epoch(requested: i32, current: i32) -> Option<ReplicaFetchError> {
    match requested {
        r if r == current => None,
        r if r < current => Some(ReplicaFetchError::FencedLeaderEpoch),
        _ => Some(ReplicaFetchError::UnknownLeaderEpoch),
    }
}
