//! One consumer group as a pure state machine, following Kafka's classic group protocol.
//!
//! States: `Empty` (no members), `PreparingRebalance` (waiting for members to rejoin),
//! `CompletingRebalance` (joined; waiting for the leader's assignment), `Stable`.
//! A request returns a `Reply`: an answer now, or `Park` (the caller holds the request until an
//! `Effect` completes it). Time comes in as milliseconds from any monotonic origin.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

pub use crate::messages::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocols: Vec<Protocol>,
    pub assignment: Bytes,
    pub last_heartbeat: Millis,
}

impl Member {
    fn from_request(member_id: String, req: &JoinRequest, now: Millis) -> Self {
        Self {
            member_id,
            group_instance_id: req.group_instance_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            protocols: req.protocols.clone(),
            assignment: Bytes::new(),
            last_heartbeat: now,
        }
    }

    fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }
}

/// One consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub group_id: String,
    pub state: GroupState,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// group.instance.id -> member id, for static members.
    static_members: BTreeMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with when they lapse if never used.
    pending_members: BTreeMap<String, Millis>,
    /// Members whose JoinGroup is parked in this rebalance.
    awaiting_join: BTreeSet<String>,
    /// Members whose SyncGroup is parked.
    awaiting_sync: BTreeSet<String>,
    rebalance_deadline: Millis,
    /// The first rebalance of an empty group waits for more members until then.
    delay_until: Millis,
}

impl Group {
    pub fn new(group_id: &str) -> Self {
        Self {
            group_id: group_id.to_string(),
            state: GroupState::Empty,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            awaiting_join: BTreeSet::new(),
            awaiting_sync: BTreeSet::new(),
            rebalance_deadline: 0,
            delay_until: 0,
        }
    }

    /// A group as restored after a restart: its generation and type, and no members (they
    /// rejoin, as after a Kafka coordinator moves).
    pub fn restored(group_id: &str, generation_id: i32, protocol_type: Option<String>) -> Self {
        Self {
            generation_id,
            protocol_type,
            ..Self::new(group_id)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    // ----------------------------------------------------------------- JoinGroup

    pub fn join(
        &mut self,
        now: Millis,
        req: &JoinRequest,
        settings: &Settings,
    ) -> (Reply<JoinResponse>, Vec<Effect>) {
        let mut fx = Vec::new();
        if !(settings.min_session_timeout_ms..=settings.max_session_timeout_ms)
            .contains(&req.session_timeout_ms)
        {
            return (
                Reply::Now(JoinResponse::error(
                    GroupError::InvalidSessionTimeout,
                    &req.member_id,
                )),
                fx,
            );
        }
        if !self.supports(req) {
            return (
                Reply::Now(JoinResponse::error(
                    GroupError::InconsistentGroupProtocol,
                    &req.member_id,
                )),
                fx,
            );
        }
        let reply = if req.member_id.is_empty() {
            self.join_new(now, req, settings, &mut fx)
        } else {
            self.join_known(now, req, settings, &mut fx)
        };
        (reply, fx)
    }

    /// A join is compatible when the protocol type matches and at least one protocol is
    /// supported by every member (Kafka's INCONSISTENT_GROUP_PROTOCOL rule).
    fn supports(&self, req: &JoinRequest) -> bool {
        if req.protocols.is_empty() || req.protocol_type.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(req.protocol_type.as_str()) {
            return false;
        }
        req.protocols.iter().any(|p| {
            self.members
                .values()
                .filter(|m| m.member_id != req.member_id)
                .all(|m| m.protocols.iter().any(|q| q.name == p.name))
        })
    }

    fn join_new(
        &mut self,
        now: Millis,
        req: &JoinRequest,
        s: &Settings,
        fx: &mut Vec<Effect>,
    ) -> Reply<JoinResponse> {
        let id = req.fresh_member_id.clone();
        if let Some(instance) = &req.group_instance_id {
            if let Some(old_id) = self.static_members.get(instance).cloned() {
                return self.replace_static_member(now, &old_id, req, s, fx);
            }
            self.static_members.insert(instance.clone(), id.clone());
        } else if req.require_known_member_id {
            self.pending_members
                .insert(id.clone(), now + req.session_timeout_ms.max(0) as Millis);
            return Reply::Now(JoinResponse::error(GroupError::MemberIdRequired, &id));
        }
        self.add_and_rebalance(now, Member::from_request(id, req, now), req, s, fx)
    }

    /// A static member rejoining under a new member id: the old id is fenced, and a stable
    /// group keeps its assignment without a rebalance.
    fn replace_static_member(
        &mut self,
        now: Millis,
        old_id: &str,
        req: &JoinRequest,
        s: &Settings,
        fx: &mut Vec<Effect>,
    ) -> Reply<JoinResponse> {
        let id = req.fresh_member_id.clone();
        let old = self.members.remove(old_id);
        if self.awaiting_join.remove(old_id) {
            fx.push(Effect::Join(
                old_id.to_string(),
                JoinResponse::error(GroupError::FencedInstanceId, old_id),
            ));
        }
        if self.awaiting_sync.remove(old_id) {
            fx.push(Effect::Sync(
                old_id.to_string(),
                SyncResponse::error(GroupError::FencedInstanceId),
            ));
        }
        let mut member = Member::from_request(id.clone(), req, now);
        let unchanged = old.as_ref().is_some_and(|o| o.protocols == req.protocols);
        if let Some(o) = old {
            member.assignment = o.assignment;
        }
        if let Some(instance) = &req.group_instance_id {
            self.static_members.insert(instance.clone(), id.clone());
        }
        if self.leader.as_deref() == Some(old_id) {
            self.leader = Some(id.clone());
        }
        fx.push(Effect::Changed);
        if self.state == GroupState::Stable && unchanged {
            self.members.insert(id.clone(), member);
            return Reply::Now(self.join_response(&id));
        }
        self.add_and_rebalance(now, member, req, s, fx)
    }

    fn join_known(
        &mut self,
        now: Millis,
        req: &JoinRequest,
        s: &Settings,
        fx: &mut Vec<Effect>,
    ) -> Reply<JoinResponse> {
        let id = req.member_id.clone();
        if self.pending_members.remove(&id).is_some() {
            return self.add_and_rebalance(now, Member::from_request(id, req, now), req, s, fx);
        }
        if let Err(e) = self.check_member(&id, req.group_instance_id.as_deref()) {
            return Reply::Now(JoinResponse::error(e, &id));
        }
        let member = self.members.get(&id).expect("checked");
        let changed = member.protocols != req.protocols;
        let is_leader = self.leader.as_deref() == Some(id.as_str());
        let rejoin = match self.state {
            GroupState::PreparingRebalance => true,
            GroupState::CompletingRebalance => changed,
            GroupState::Stable => changed || is_leader,
            GroupState::Empty => {
                return Reply::Now(JoinResponse::error(GroupError::UnknownMemberId, &id));
            }
        };
        if !rejoin {
            return Reply::Now(self.join_response(&id));
        }
        let member = Member {
            assignment: Bytes::new(),
            ..Member::from_request(id.clone(), req, now)
        };
        self.add_and_rebalance(now, member, req, s, fx)
    }

    fn add_and_rebalance(
        &mut self,
        now: Millis,
        member: Member,
        req: &JoinRequest,
        s: &Settings,
        fx: &mut Vec<Effect>,
    ) -> Reply<JoinResponse> {
        let id = member.member_id.clone();
        if self.members.is_empty() {
            // The first member decides the group's protocol type.
            self.protocol_type = Some(req.protocol_type.clone());
        }
        self.members.insert(id.clone(), member);
        self.prepare_rebalance(now, s, fx);
        self.awaiting_join.insert(id.clone());
        self.try_complete_join(now, fx);
        Reply::Park { member_id: id }
    }

    /// Moves to PreparingRebalance; parked syncs of the old generation learn of it.
    fn prepare_rebalance(&mut self, now: Millis, s: &Settings, fx: &mut Vec<Effect>) {
        if self.state == GroupState::PreparingRebalance {
            return;
        }
        for id in std::mem::take(&mut self.awaiting_sync) {
            fx.push(Effect::Sync(
                id,
                SyncResponse::error(GroupError::RebalanceInProgress),
            ));
        }
        let from_empty = self.state == GroupState::Empty;
        self.state = GroupState::PreparingRebalance;
        let longest = self
            .members
            .values()
            .map(|m| m.rebalance_timeout_ms.max(0) as Millis)
            .max()
            .unwrap_or(0);
        self.delay_until = if from_empty {
            now + s.initial_rebalance_delay_ms
        } else {
            now
        };
        self.rebalance_deadline = (now + longest).max(self.delay_until);
    }

    fn try_complete_join(&mut self, now: Millis, fx: &mut Vec<Effect>) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let all_joined = self
            .members
            .keys()
            .all(|id| self.awaiting_join.contains(id));
        if (all_joined && now >= self.delay_until) || now >= self.rebalance_deadline {
            self.complete_join(now, fx);
        }
    }

    /// Ends the join phase: members that did not rejoin leave, the generation advances, a
    /// protocol and a leader are chosen, and every parked JoinGroup is answered.
    fn complete_join(&mut self, now: Millis, fx: &mut Vec<Effect>) {
        let gone: Vec<String> = self
            .members
            .keys()
            .filter(|id| !self.awaiting_join.contains(*id))
            .cloned()
            .collect();
        for id in gone {
            self.remove_member(&id);
        }
        self.generation_id += 1;
        fx.push(Effect::Changed);
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol_name = None;
            self.leader = None;
            self.awaiting_join.clear();
            return;
        }
        self.protocol_name = self.select_protocol();
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.state = GroupState::CompletingRebalance;
        for m in self.members.values_mut() {
            m.last_heartbeat = now;
        }
        for id in std::mem::take(&mut self.awaiting_join) {
            fx.push(Effect::Join(id.clone(), self.join_response(&id)));
        }
    }

    /// The first protocol of the leader's (else any member's) preference that every member supports.
    fn select_protocol(&self) -> Option<String> {
        let first = self
            .leader
            .as_ref()
            .and_then(|l| self.members.get(l))
            .or_else(|| self.members.values().next())?;
        first
            .protocols
            .iter()
            .find(|p| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|q| q.name == p.name))
            })
            .map(|p| p.name.clone())
    }

    fn join_response(&self, member_id: &str) -> JoinResponse {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let leader = self.leader.clone().unwrap_or_default();
        let members = if leader == member_id {
            self.members
                .values()
                .map(|m| JoinedMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    metadata: m.metadata(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResponse {
            error: None,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader,
            member_id: member_id.to_string(),
            members,
        }
    }

    fn remove_member(&mut self, id: &str) {
        let instance = self.members.remove(id).and_then(|m| m.group_instance_id);
        if let Some(instance) =
            instance.filter(|i| self.static_members.get(i).is_some_and(|owner| owner == id))
        {
            self.static_members.remove(&instance);
        }
        self.awaiting_join.remove(id);
        self.awaiting_sync.remove(id);
    }

    /// UNKNOWN_MEMBER_ID for an unknown member, FENCED_INSTANCE_ID when a static member's
    /// instance id now belongs to another member id.
    fn check_member(&self, member_id: &str, instance: Option<&str>) -> Result<(), GroupError> {
        let owner = instance.and_then(|i| self.static_members.get(i));
        if owner.is_some_and(|owner| owner != member_id) {
            return Err(GroupError::FencedInstanceId);
        }
        if self.members.contains_key(member_id) {
            Ok(())
        } else {
            Err(GroupError::UnknownMemberId)
        }
    }

    fn check_generation(
        &self,
        member_id: &str,
        generation_id: i32,
        instance: Option<&str>,
    ) -> Result<(), GroupError> {
        self.check_member(member_id, instance)?;
        if generation_id != self.generation_id {
            Err(GroupError::IllegalGeneration)
        } else {
            Ok(())
        }
    }

    // ----------------------------------------------------------------- SyncGroup

    pub fn sync(&mut self, now: Millis, req: &SyncRequest) -> (Reply<SyncResponse>, Vec<Effect>) {
        let mut fx = Vec::new();
        if let Err(e) = self.check_generation(
            &req.member_id,
            req.generation_id,
            req.group_instance_id.as_deref(),
        ) {
            return (Reply::Now(SyncResponse::error(e)), fx);
        }
        let mismatch =
            |given: &Option<String>, ours: &Option<String>| given.is_some() && given != ours;
        if mismatch(&req.protocol_type, &self.protocol_type)
            || mismatch(&req.protocol_name, &self.protocol_name)
        {
            return (
                Reply::Now(SyncResponse::error(GroupError::InconsistentGroupProtocol)),
                fx,
            );
        }
        if let Some(m) = self.members.get_mut(&req.member_id) {
            m.last_heartbeat = now;
        }
        let reply = match self.state {
            GroupState::PreparingRebalance => {
                Reply::Now(SyncResponse::error(GroupError::RebalanceInProgress))
            }
            GroupState::Stable => Reply::Now(self.sync_response(&req.member_id)),
            GroupState::Empty => Reply::Now(SyncResponse::error(GroupError::UnknownMemberId)),
            GroupState::CompletingRebalance => {
                self.awaiting_sync.insert(req.member_id.clone());
                if self.leader.as_deref() == Some(req.member_id.as_str()) {
                    self.assign(&req.assignments, &mut fx);
                }
                Reply::Park {
                    member_id: req.member_id.clone(),
                }
            }
        };
        (reply, fx)
    }

    /// The leader's assignment makes the group Stable and answers every parked SyncGroup.
    fn assign(&mut self, assignments: &[(String, Bytes)], fx: &mut Vec<Effect>) {
        for m in self.members.values_mut() {
            m.assignment = assignments
                .iter()
                .find(|(id, _)| *id == m.member_id)
                .map(|(_, a)| a.clone())
                .unwrap_or_default();
        }
        self.state = GroupState::Stable;
        for id in std::mem::take(&mut self.awaiting_sync) {
            fx.push(Effect::Sync(id.clone(), self.sync_response(&id)));
        }
        fx.push(Effect::Changed);
    }

    fn sync_response(&self, member_id: &str) -> SyncResponse {
        SyncResponse {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment: self
                .members
                .get(member_id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
        }
    }

    // ----------------------------------------------------------------- Heartbeat, LeaveGroup

    pub fn heartbeat(
        &mut self,
        now: Millis,
        member_id: &str,
        generation_id: i32,
        instance: Option<&str>,
    ) -> Option<GroupError> {
        if self.state == GroupState::Empty {
            return Some(GroupError::UnknownMemberId);
        }
        if let Err(e) = self.check_generation(member_id, generation_id, instance) {
            return Some(e);
        }
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_heartbeat = now;
        }
        (self.state == GroupState::PreparingRebalance).then_some(GroupError::RebalanceInProgress)
    }

    /// Removes members (by member id, or by instance id for static members) and rebalances.
    pub fn leave(
        &mut self,
        now: Millis,
        leaving: &[(String, Option<String>)],
        s: &Settings,
    ) -> (Vec<Option<GroupError>>, Vec<Effect>) {
        let mut fx = Vec::new();
        let mut results = Vec::with_capacity(leaving.len());
        let mut removed = false;
        for (member_id, instance) in leaving {
            let id = match instance.as_ref().and_then(|i| self.static_members.get(i)) {
                Some(owner) if !member_id.is_empty() && owner != member_id => {
                    results.push(Some(GroupError::FencedInstanceId));
                    continue;
                }
                Some(owner) => owner.clone(),
                None => member_id.clone(),
            };
            if !self.members.contains_key(&id) {
                results.push(Some(GroupError::UnknownMemberId));
                continue;
            }
            self.evict(&id, &mut fx);
            removed = true;
            results.push(None);
        }
        if removed {
            self.rebalance_after_removal(now, s, &mut fx);
        }
        (results, fx)
    }

    /// Removes a member, answering whatever of its requests is parked.
    fn evict(&mut self, id: &str, fx: &mut Vec<Effect>) {
        if self.awaiting_join.contains(id) {
            fx.push(Effect::Join(
                id.to_string(),
                JoinResponse::error(GroupError::UnknownMemberId, id),
            ));
        }
        if self.awaiting_sync.contains(id) {
            fx.push(Effect::Sync(
                id.to_string(),
                SyncResponse::error(GroupError::UnknownMemberId),
            ));
        }
        self.remove_member(id);
    }

    fn rebalance_after_removal(&mut self, now: Millis, s: &Settings, fx: &mut Vec<Effect>) {
        if matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance
        ) {
            self.prepare_rebalance(now, s, fx);
            // No initial delay: the remaining members are known and rejoin promptly.
            self.delay_until = now;
        }
        self.try_complete_join(now, fx);
    }

    // ----------------------------------------------------------------- Time

    /// Expires members whose session lapsed and unused member ids, and ends a rebalance whose
    /// deadline passed.
    pub fn tick(&mut self, now: Millis, s: &Settings) -> Vec<Effect> {
        let mut fx = Vec::new();
        self.pending_members.retain(|_, lapses| *lapses > now);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                !self.awaiting_join.contains(&m.member_id)
                    && !self.awaiting_sync.contains(&m.member_id)
            })
            .filter(|m| {
                now.saturating_sub(m.last_heartbeat) > m.session_timeout_ms.max(0) as Millis
            })
            .map(|m| m.member_id.clone())
            .collect();
        for id in &expired {
            tracing::info!(group = %self.group_id, member = %id, "session expired");
            self.evict(id, &mut fx);
        }
        if !expired.is_empty() {
            self.rebalance_after_removal(now, s, &mut fx);
        }
        self.try_complete_join(now, &mut fx);
        fx
    }

    // ----------------------------------------------------------------- OffsetCommit

    /// Whether a commit with this identity is accepted. Generation -1 with no member id is a
    /// "simple" consumer (manual assignment), allowed only while the group has no members.
    pub fn validate_commit(
        &self,
        member_id: &str,
        generation_id: i32,
        instance: Option<&str>,
    ) -> Result<(), GroupError> {
        if generation_id < 0 && member_id.is_empty() && self.members.is_empty() {
            return Ok(());
        }
        self.check_member(member_id, instance)?;
        if self.state == GroupState::CompletingRebalance {
            return Err(GroupError::RebalanceInProgress);
        }
        if generation_id != self.generation_id {
            Err(GroupError::IllegalGeneration)
        } else {
            Ok(())
        }
    }

    /// Checks the group identity a TxnOffsetCommit (v3+) carries, as Kafka's
    /// `doTxnCommitOffsets`: a static member's instance id must still be its own, a named member
    /// must belong to the group, a generation (when not -1) must be the current one. What it
    /// leaves out is not checked, so older versions (no identity) pass. Unlike OffsetCommit, a
    /// rebalance in progress does not refuse it: the offsets count only once the transaction
    /// commits.
    pub fn validate_txn_commit(
        &self,
        member_id: &str,
        generation_id: i32,
        instance: Option<&str>,
    ) -> Result<(), GroupError> {
        let owner = instance.and_then(|i| self.static_members.get(i));
        if owner.is_some_and(|owner| owner != member_id) {
            return Err(GroupError::FencedInstanceId);
        }
        if !member_id.is_empty() && !self.members.contains_key(member_id) {
            return Err(GroupError::UnknownMemberId);
        }
        if generation_id >= 0 && generation_id != self.generation_id {
            return Err(GroupError::IllegalGeneration);
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "group_tests.rs"]
mod tests;
