//! One consumer group's membership, as Kafka's classic group protocol defines it: members
//! join (JoinGroup), the coordinator waits until every known member has joined again, a
//! leader computes the assignment and hands it over (SyncGroup), members heartbeat, leave,
//! or are dropped when their session runs out.
//!
//! States: `Empty` (no members) → `PreparingRebalance` (waiting for members to join) →
//! `CompletingRebalance` (waiting for the leader's assignment) → `Stable` (members
//! heartbeat), back to `PreparingRebalance` on any change of membership.
//!
//! Two choices of edm's own, both about members that are gone:
//! - A member whose connection closed while it waited in JoinGroup or SyncGroup will never
//!   read the answer: it is dropped at once, rather than kept until its session runs out.
//! - No initial rebalance delay (Kafka's `group.initial.rebalance.delay.ms`, which Kafka's
//!   own development configuration also sets to 0): the first member of a group gets its
//!   partitions without waiting for others that may never come.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;

mod protocol;
mod rebalance;
mod static_members;

pub use protocol::{Answer, GroupState, JoinRequest, JoinResult, SyncResult};

use super::Committed;

#[derive(Debug)]
pub(super) struct Member {
    pub(super) id: String,
    pub(super) instance_id: Option<String>,
    pub(super) client_id: String,
    pub(super) client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocol_type: String,
    pub(super) protocols: Vec<(String, Bytes)>,
    pub(super) assignment: Bytes,
    last_heard: Instant,
    join_waiter: Option<oneshot::Sender<JoinResult>>,
    sync_waiter: Option<oneshot::Sender<SyncResult>>,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    /// Gone: its session ran out, or its connection closed while it waited for an answer.
    fn is_gone(&self, now: Instant) -> bool {
        let waiting = self.join_waiter.is_some() || self.sync_waiter.is_some();
        let hung_up = self.join_waiter.as_ref().is_some_and(|w| w.is_closed())
            || self.sync_waiter.as_ref().is_some_and(|w| w.is_closed());
        hung_up || (!waiting && now.duration_since(self.last_heard) > self.session_timeout)
    }

    fn tell_removed(&mut self) {
        let error = Some(ResponseError::UnknownMemberId);
        if let Some(waiter) = self.join_waiter.take() {
            let _ = waiter.send(JoinResult {
                error,
                member_id: self.id.clone(),
                ..JoinResult::default()
            });
        }
        if let Some(waiter) = self.sync_waiter.take() {
            let _ = waiter.send(SyncResult {
                error,
                ..SyncResult::default()
            });
        }
    }
}

/// One consumer group.
#[derive(Debug)]
pub struct Group {
    pub(super) state: GroupState,
    pub(super) generation: i32,
    pub(super) protocol_type: Option<String>,
    pub(super) protocol: Option<String>,
    leader: Option<String>,
    pub(super) members: Vec<Member>,
    /// Member ids handed out by a JoinGroup that asked for one, until they join.
    pending: HashMap<String, Instant>,
    rebalance_deadline: Option<Instant>,
    pub(super) offsets: BTreeMap<(String, i32), Committed>,
}

impl Group {
    /// An empty group.
    pub fn new() -> Self {
        Self {
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: Vec::new(),
            pending: HashMap::new(),
            rebalance_deadline: None,
            offsets: BTreeMap::new(),
        }
    }

    fn member(&mut self, id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.id == id)
    }

    pub(super) fn has_member(&self, id: &str) -> bool {
        self.members.iter().any(|m| m.id == id)
    }

    /// Handles a JoinGroup.
    pub fn join(&mut self, request: JoinRequest, now: Instant) -> Answer<JoinResult> {
        let refuse = |error: ResponseError, member_id: &str| {
            Answer::Now(JoinResult {
                error: Some(error),
                member_id: member_id.to_string(),
                ..JoinResult::default()
            })
        };
        if !self.members.is_empty()
            && (self.protocol_type.as_deref() != Some(request.protocol_type.as_str())
                || !self.supports_some(&request.protocols))
        {
            return refuse(ResponseError::InconsistentGroupProtocol, &request.member_id);
        }
        if let Some(instance) = request.group_instance_id.clone() {
            if request.member_id.is_empty() && self.static_member(&instance).is_some() {
                return self.replace_static_member(&instance, request, now);
            }
            if self.is_fenced(Some(&instance), &request.member_id) {
                return refuse(ResponseError::FencedInstanceId, &request.member_id);
            }
        }
        let mut member_id = request.member_id.clone();
        if member_id.is_empty() {
            member_id = format!("{}-{}", request.client_id, uuid::Uuid::new_v4());
            // A static member needs no second round (KIP-394 exempts it).
            if request.require_known_member_id && request.group_instance_id.is_none() {
                self.pending
                    .insert(member_id.clone(), now + request.session_timeout);
                return refuse(ResponseError::MemberIdRequired, &member_id);
            }
        } else if !self.has_member(&member_id) && !self.pending.contains_key(&member_id) {
            return refuse(ResponseError::UnknownMemberId, &member_id);
        }
        self.pending.remove(&member_id);

        // A known member joining again with nothing changed, while the group is settled,
        // gets the current generation again rather than a new rebalance.
        let unchanged = self.members.iter().any(|m| {
            m.id == member_id && m.protocols == request.protocols && m.join_waiter.is_none()
        });
        let is_leader = self.leader.as_deref() == Some(member_id.as_str());
        match self.state {
            GroupState::Stable if unchanged && !is_leader => {
                return Answer::Now(self.join_result(&member_id, false));
            }
            GroupState::CompletingRebalance if unchanged => {
                return Answer::Now(self.join_result(&member_id, is_leader));
            }
            _ => {}
        }

        let (waiter, answer) = oneshot::channel();
        let rebalance_timeout = if request.rebalance_timeout.is_zero() {
            request.session_timeout
        } else {
            request.rebalance_timeout
        };
        match self.member(&member_id) {
            Some(member) => {
                member.protocols = request.protocols;
                member.session_timeout = request.session_timeout;
                member.rebalance_timeout = rebalance_timeout;
                member.last_heard = now;
                member.join_waiter = Some(waiter);
            }
            None => {
                if self.members.is_empty() {
                    self.protocol_type = Some(request.protocol_type.clone());
                }
                self.members.push(Member {
                    id: member_id,
                    instance_id: request.group_instance_id,
                    client_id: request.client_id,
                    client_host: request.client_host,
                    session_timeout: request.session_timeout,
                    rebalance_timeout,
                    protocol_type: request.protocol_type,
                    protocols: request.protocols,
                    assignment: Bytes::new(),
                    last_heard: now,
                    join_waiter: Some(waiter),
                    sync_waiter: None,
                });
            }
        }
        if self.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(now);
        }
        self.try_complete_join(now);
        Answer::Later(answer)
    }

    /// Handles a SyncGroup.
    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol: (Option<&str>, Option<&str>),
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> Answer<SyncResult> {
        let refuse = |error| {
            Answer::Now(SyncResult {
                error: Some(error),
                ..SyncResult::default()
            })
        };
        if self.is_fenced(instance_id, member_id) {
            return refuse(ResponseError::FencedInstanceId);
        }
        if !self.has_member(member_id) {
            return refuse(ResponseError::UnknownMemberId);
        }
        if generation != self.generation {
            return refuse(ResponseError::IllegalGeneration);
        }
        let (protocol_type, protocol_name) = protocol;
        if protocol_type.is_some_and(|t| Some(t) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|n| Some(n) != self.protocol.as_deref())
        {
            return refuse(ResponseError::InconsistentGroupProtocol);
        }
        match self.state {
            GroupState::Empty => refuse(ResponseError::UnknownMemberId),
            GroupState::PreparingRebalance => refuse(ResponseError::RebalanceInProgress),
            GroupState::Stable => {
                let assignment = self
                    .members
                    .iter()
                    .find(|m| m.id == member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                Answer::Now(self.sync_result(assignment))
            }
            GroupState::CompletingRebalance => {
                let (waiter, answer) = oneshot::channel();
                if let Some(member) = self.member(member_id) {
                    member.sync_waiter = Some(waiter);
                    member.last_heard = now;
                }
                if self.leader.as_deref() == Some(member_id) {
                    let mut by_member: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for member in &mut self.members {
                        member.assignment = by_member.remove(&member.id).unwrap_or_default();
                    }
                    self.state = GroupState::Stable;
                    let answers: Vec<_> = self
                        .members
                        .iter_mut()
                        .filter_map(|m| m.sync_waiter.take().map(|w| (w, m.assignment.clone())))
                        .collect();
                    for (waiter, assignment) in answers {
                        let _ = waiter.send(self.sync_result(assignment));
                    }
                }
                Answer::Later(answer)
            }
        }
    }

    /// Handles a Heartbeat.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Option<ResponseError> {
        if self.is_fenced(instance_id, member_id) {
            return Some(ResponseError::FencedInstanceId);
        }
        let state = self.state;
        let current = self.generation;
        let Some(member) = self.member(member_id) else {
            return Some(ResponseError::UnknownMemberId);
        };
        member.last_heard = now;
        match state {
            GroupState::Empty => Some(ResponseError::UnknownMemberId),
            GroupState::PreparingRebalance => Some(ResponseError::RebalanceInProgress),
            _ if generation != current => Some(ResponseError::IllegalGeneration),
            _ => None,
        }
    }

    /// Keeps a member alive (an offset commit counts as a heartbeat).
    pub(super) fn heard_from(&mut self, member_id: &str, now: Instant) {
        if let Some(member) = self.member(member_id) {
            member.last_heard = now;
        }
    }

    /// Handles one member of a LeaveGroup: by member id, or (v3+, an admin removing a
    /// static member) by instance id alone.
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
    ) -> Option<ResponseError> {
        if self.pending.remove(member_id).is_some() {
            return None;
        }
        if self.is_fenced(instance_id, member_id) && !member_id.is_empty() {
            return Some(ResponseError::FencedInstanceId);
        }
        let found = match (member_id.is_empty(), instance_id) {
            (true, Some(instance)) => self.static_member(instance),
            _ => Some(member_id.to_string()),
        };
        let Some(member_id) = found else {
            return Some(ResponseError::UnknownMemberId);
        };
        let member_id = member_id.as_str();
        let Some(at) = self.members.iter().position(|m| m.id == member_id) else {
            return Some(ResponseError::UnknownMemberId);
        };
        let mut member = self.members.remove(at);
        member.tell_removed();
        tracing::info!(member = member_id, "member left the group");
        self.membership_changed(now);
        None
    }

    /// Drops members that are gone and moves a rebalance on when its time is up; called
    /// periodically.
    pub fn tick(&mut self, now: Instant) {
        self.pending.retain(|_, deadline| *deadline > now);
        let before = self.members.len();
        let mut kept = Vec::with_capacity(before);
        for mut member in self.members.drain(..) {
            if member.is_gone(now) {
                tracing::info!(member = %member.id, "member removed: no heartbeat within its session, or its connection closed while it waited");
                member.tell_removed();
            } else {
                kept.push(member);
            }
        }
        self.members = kept;
        if self.members.len() != before {
            self.membership_changed(now);
        } else if self.state == GroupState::PreparingRebalance
            && self.rebalance_deadline.is_some_and(|d| now >= d)
        {
            self.complete_join(now);
        }
    }
}

#[cfg(test)]
mod tests;
