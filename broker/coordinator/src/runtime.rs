//! The coordinator's runtime: every group's state machine behind one lock, JoinGroup and
//! SyncGroup calls parked on channels until an effect answers them, a clock, and a hook that
//! persists a group's durable metadata whenever a transition changes it.
//!
//! The lock is held only while a state machine runs (microseconds); waiting happens on the
//! channels, outside it.

use krait_sync::MutexExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::group::{
    Effect, Group, GroupError, GroupState, JoinRequest, JoinResponse, Millis, Reply, Settings,
    SyncRequest, SyncResponse,
};

/// The durable part of a group, handed to the persistence hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    pub group_id: String,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
}

/// Called with a group's durable metadata after it changes; `None` when the group is deleted.
pub type PersistHook = Box<dyn Fn(&str, Option<&GroupRecord>) + Send + Sync>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupView {
    pub group_id: String,
    pub state: &'static str,
    pub protocol_type: String,
    pub protocol_name: String,
    pub members: Vec<MemberView>,
}

type Key = (String, String);

/// A reply available now, or one an effect will deliver.
enum Waiting<T> {
    Ready(T),
    Parked(oneshot::Receiver<T>),
}

impl<T> Waiting<T> {
    /// The reply; `dropped` answers a request whose channel was dropped unanswered.
    async fn answer(self, dropped: impl FnOnce() -> T) -> T {
        match self {
            Waiting::Ready(response) => response,
            Waiting::Parked(rx) => rx.await.unwrap_or_else(|_| dropped()),
        }
    }
}

#[derive(Default)]
struct Inner {
    groups: HashMap<String, Group>,
    joins: HashMap<Key, oneshot::Sender<JoinResponse>>,
    syncs: HashMap<Key, oneshot::Sender<SyncResponse>>,
}

pub struct Coordinator {
    settings: Settings,
    start: Instant,
    inner: Mutex<Inner>,
    persist: PersistHook,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Deleting a group that is not there.
pub const GROUP_ID_NOT_FOUND: i16 = 69;
/// Deleting a group that still has members.
pub const NON_EMPTY_GROUP: i16 = 68;

impl Coordinator {
    /// A coordinator with the groups found on disk, each restored empty (members rejoin).
    pub fn new(settings: Settings, restored: Vec<GroupRecord>, persist: PersistHook) -> Self {
        let groups = restored
            .into_iter()
            .map(|r| {
                (
                    r.group_id.clone(),
                    Group::restored(&r.group_id, r.generation_id, r.protocol_type),
                )
            })
            .collect();
        Self {
            settings,
            start: Instant::now(),
            inner: Mutex::new(Inner {
                groups,
                ..Inner::default()
            }),
            persist,
        }
    }

    fn now(&self) -> Millis {
        self.start.elapsed().as_millis() as Millis
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock_unpoisoned()
    }

    /// Delivers effects: answers parked requests and persists changed metadata.
    fn apply(&self, inner: &mut Inner, group_id: &str, effects: Vec<Effect>) {
        for e in effects {
            match e {
                Effect::Join(member, response) => {
                    if let Some(tx) = inner.joins.remove(&(group_id.to_string(), member)) {
                        let _ = tx.send(response);
                    }
                }
                Effect::Sync(member, response) => {
                    if let Some(tx) = inner.syncs.remove(&(group_id.to_string(), member)) {
                        let _ = tx.send(response);
                    }
                }
                Effect::Changed => {
                    if let Some(g) = inner.groups.get(group_id) {
                        let record = GroupRecord {
                            group_id: group_id.to_string(),
                            generation_id: g.generation_id,
                            protocol_type: g.protocol_type.clone(),
                        };
                        (self.persist)(group_id, Some(&record));
                    }
                }
            }
        }
    }

    pub async fn join(&self, group_id: &str, req: JoinRequest) -> JoinResponse {
        let waiting = {
            let mut inner = self.lock();
            let now = self.now();
            let group = inner
                .groups
                .entry(group_id.to_string())
                .or_insert_with(|| Group::new(group_id));
            let (reply, effects) = group.join(now, &req, &self.settings);
            self.settle(&mut inner, group_id, reply, effects, |inner| {
                &mut inner.joins
            })
        };
        waiting
            .answer(|| JoinResponse {
                error: Some(GroupError::UnknownMemberId),
                generation_id: -1,
                ..JoinResponse::default()
            })
            .await
    }

    pub async fn sync(&self, group_id: &str, req: SyncRequest) -> SyncResponse {
        let waiting = {
            let mut inner = self.lock();
            let now = self.now();
            let Some(group) = inner.groups.get_mut(group_id) else {
                return SyncResponse {
                    error: Some(GroupError::UnknownMemberId),
                    ..SyncResponse::default()
                };
            };
            let (reply, effects) = group.sync(now, &req);
            self.settle(&mut inner, group_id, reply, effects, |inner| {
                &mut inner.syncs
            })
        };
        waiting
            .answer(|| SyncResponse {
                error: Some(GroupError::RebalanceInProgress),
                ..SyncResponse::default()
            })
            .await
    }

    /// Parks the request if the state machine said so — before applying the effects, which may
    /// answer it at once — and applies them.
    fn settle<T>(
        &self,
        inner: &mut Inner,
        group_id: &str,
        reply: Reply<T>,
        effects: Vec<Effect>,
        parked: impl FnOnce(&mut Inner) -> &mut HashMap<Key, oneshot::Sender<T>>,
    ) -> Waiting<T> {
        let waiting = match reply {
            Reply::Now(response) => Waiting::Ready(response),
            Reply::Park { member_id } => {
                let (tx, rx) = oneshot::channel();
                parked(inner).insert((group_id.to_string(), member_id), tx);
                Waiting::Parked(rx)
            }
        };
        self.apply(inner, group_id, effects);
        waiting
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        generation_id: i32,
        instance: Option<&str>,
    ) -> Option<GroupError> {
        let mut inner = self.lock();
        let now = self.now();
        match inner.groups.get_mut(group_id) {
            Some(g) => g.heartbeat(now, member_id, generation_id, instance),
            None => Some(GroupError::UnknownMemberId),
        }
    }

    pub fn leave(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Vec<Option<GroupError>> {
        let mut inner = self.lock();
        let now = self.now();
        let Some(group) = inner.groups.get_mut(group_id) else {
            return members
                .iter()
                .map(|_| Some(GroupError::UnknownMemberId))
                .collect();
        };
        let (results, effects) = group.leave(now, members, &self.settings);
        self.apply(&mut inner, group_id, effects);
        results
    }

    /// Checks an OffsetCommit's identity. A simple consumer's first commit creates the group,
    /// as in Kafka, so that it shows in ListGroups and DescribeGroups.
    pub fn validate_commit(
        &self,
        group_id: &str,
        member_id: &str,
        generation_id: i32,
        instance: Option<&str>,
    ) -> Result<(), GroupError> {
        let mut inner = self.lock();
        match inner.groups.get(group_id) {
            Some(g) => g.validate_commit(member_id, generation_id, instance),
            None if generation_id < 0 => {
                inner
                    .groups
                    .insert(group_id.to_string(), Group::new(group_id));
                self.apply(&mut inner, group_id, vec![Effect::Changed]);
                Ok(())
            }
            None => Err(GroupError::IllegalGeneration),
        }
    }

    /// Checks a TxnOffsetCommit's group identity (see [`Group::validate_txn_commit`]). A group
    /// this coordinator does not know is judged as a new, empty one, as Kafka does; it is not
    /// created here (the transaction's commit creates its offsets).
    pub fn validate_txn_commit(
        &self,
        group_id: &str,
        member_id: &str,
        generation_id: i32,
        instance: Option<&str>,
    ) -> Result<(), GroupError> {
        let inner = self.lock();
        match inner.groups.get(group_id) {
            Some(g) => g.validate_txn_commit(member_id, generation_id, instance),
            None => Group::new(group_id).validate_txn_commit(member_id, generation_id, instance),
        }
    }

    /// Whether a group exists and has no members (so its offsets may expire).
    pub fn is_inactive(&self, group_id: &str) -> bool {
        self.lock().groups.get(group_id).is_none_or(Group::is_empty)
    }

    pub fn list(&self) -> Vec<GroupView> {
        let inner = self.lock();
        let mut groups: Vec<GroupView> = inner.groups.values().map(view).collect();
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        groups
    }

    pub fn describe(&self, group_id: &str) -> Option<GroupView> {
        self.lock().groups.get(group_id).map(view)
    }

    /// Deletes an empty group; the caller deletes its offsets.
    pub fn delete(&self, group_id: &str) -> Result<(), i16> {
        let mut inner = self.lock();
        match inner.groups.get(group_id) {
            None => Err(GROUP_ID_NOT_FOUND),
            Some(g) if !g.is_empty() => Err(NON_EMPTY_GROUP),
            Some(_) => {
                inner.groups.remove(group_id);
                (self.persist)(group_id, None);
                Ok(())
            }
        }
    }

    /// Advances every group's clock: session expiry, rebalance deadlines.
    pub fn tick(&self) {
        let mut inner = self.lock();
        let now = self.now();
        let ids: Vec<String> = inner.groups.keys().cloned().collect();
        for id in ids {
            let effects = match inner.groups.get_mut(&id) {
                Some(g) => g.tick(now, &self.settings),
                None => continue,
            };
            self.apply(&mut inner, &id, effects);
        }
    }

    /// Ticks every `period` until the returned task is aborted.
    pub fn spawn_ticker(self: &Arc<Self>, period: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                this.tick();
            }
        })
    }
}

fn view(g: &Group) -> GroupView {
    let protocol = g.protocol_name.clone().unwrap_or_default();
    let state = if g.state == GroupState::Empty && g.members.is_empty() {
        "Empty"
    } else {
        g.state.name()
    };
    GroupView {
        group_id: g.group_id.clone(),
        state,
        protocol_type: g.protocol_type.clone().unwrap_or_default(),
        protocol_name: protocol.clone(),
        members: g
            .members
            .values()
            .map(|m| MemberView {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: m
                    .protocols
                    .iter()
                    .find(|p| p.name == protocol)
                    .map(|p| p.metadata.clone())
                    .unwrap_or_default(),
                assignment: m.assignment.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::Protocol;

    fn coordinator(delay: Millis) -> Arc<Coordinator> {
        let settings = Settings {
            initial_rebalance_delay_ms: delay,
            ..Settings::default()
        };
        Arc::new(Coordinator::new(settings, Vec::new(), Box::new(|_, _| {})))
    }

    fn join_req(member_id: &str, fresh: &str) -> JoinRequest {
        JoinRequest {
            member_id: member_id.into(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "h".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            protocol_type: "consumer".into(),
            protocols: vec![Protocol {
                name: "range".into(),
                metadata: Bytes::new(),
            }],
            require_known_member_id: false,
            fresh_member_id: fresh.into(),
        }
    }

    #[tokio::test]
    async fn parked_joins_of_two_members_complete_together() {
        let c = coordinator(200);
        let (a, b) = (c.clone(), c.clone());
        let ja = tokio::spawn(async move { a.join("g", join_req("", "a")).await });
        let jb = tokio::spawn(async move { b.join("g", join_req("", "b")).await });
        let tick = {
            let c = c.clone();
            tokio::spawn(async move {
                for _ in 0..40 {
                    tokio::time::sleep(Duration::from_millis(25)).await;
                    c.tick();
                }
            })
        };
        let (ra, rb) = (ja.await.unwrap(), jb.await.unwrap());
        tick.abort();
        assert_eq!((ra.error, rb.error), (None, None));
        assert_eq!(ra.generation_id, rb.generation_id);
        assert_eq!(ra.leader, rb.leader);
        let view = c.describe("g").unwrap();
        assert_eq!((view.state, view.members.len()), ("CompletingRebalance", 2));
    }

    #[tokio::test]
    async fn delete_refuses_non_empty_and_unknown_groups() {
        let c = coordinator(0);
        let r = c.join("g", join_req("", "a")).await;
        assert_eq!(r.error, None);
        assert_eq!(c.delete("g"), Err(NON_EMPTY_GROUP));
        assert_eq!(c.delete("nope"), Err(GROUP_ID_NOT_FOUND));
        assert_eq!(c.leave("g", &[("a".into(), None)]), vec![None]);
        assert_eq!(c.delete("g"), Ok(()));
        assert!(c.describe("g").is_none());
    }

    #[tokio::test]
    async fn simple_consumer_commit_creates_an_empty_group() {
        let c = coordinator(0);
        assert_eq!(c.validate_commit("simple", "", -1, None), Ok(()));
        assert_eq!(c.describe("simple").unwrap().state, "Empty");
        assert_eq!(
            c.validate_commit("other", "m", 3, None),
            Err(GroupError::IllegalGeneration)
        );
    }
}
