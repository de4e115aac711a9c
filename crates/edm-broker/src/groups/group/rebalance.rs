//! How a rebalance runs: once membership changes, wait until every known member has
//! joined again (or its rebalance timeout runs out), pick the protocol all support, make
//! the first member the leader, and answer every waiting JoinGroup.

use std::time::Instant;

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::{Group, GroupState, JoinResult, SyncResult};

impl Group {
    pub(super) fn membership_changed(&mut self, now: Instant) {
        if self.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(now);
        }
        self.try_complete_join(now);
    }

    pub(super) fn prepare_rebalance(&mut self, now: Instant) {
        self.state = GroupState::PreparingRebalance;
        let longest = self
            .members
            .iter()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        self.rebalance_deadline = Some(now + longest);
        for member in &mut self.members {
            if let Some(waiter) = member.sync_waiter.take() {
                let _ = waiter.send(SyncResult {
                    error: Some(ResponseError::RebalanceInProgress),
                    ..SyncResult::default()
                });
            }
        }
    }

    pub(super) fn try_complete_join(&mut self, now: Instant) {
        let everyone_joined = self
            .members
            .iter()
            .all(|m| m.join_waiter.as_ref().is_some_and(|w| !w.is_closed()));
        if self.state == GroupState::PreparingRebalance && everyone_joined {
            self.complete_join(now);
        }
    }

    /// Ends the join phase: members that did not join again are dropped, the generation
    /// moves on, a strategy is chosen and every joined member gets its answer.
    pub(super) fn complete_join(&mut self, now: Instant) {
        for member in self.members.iter_mut().filter(|m| m.join_waiter.is_none()) {
            tracing::info!(member = %member.id, "member removed: it did not join the rebalance in time");
            member.tell_removed();
        }
        self.members.retain(|m| m.join_waiter.is_some());
        self.generation += 1;
        self.rebalance_deadline = None;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol = None;
            self.protocol_type = None;
            self.leader = None;
            return;
        }
        if !self.leader.as_ref().is_some_and(|l| self.has_member(l)) {
            self.leader = self.members.first().map(|m| m.id.clone());
        }
        self.protocol_type = self.members.first().map(|m| m.protocol_type.clone());
        self.protocol = self.choose_protocol();
        self.state = GroupState::CompletingRebalance;
        let leader = self.leader.clone().unwrap_or_default();
        let answers: Vec<_> = self
            .members
            .iter_mut()
            .filter_map(|m| {
                m.last_heard = now;
                m.join_waiter.take().map(|w| (w, m.id.clone()))
            })
            .collect();
        for (waiter, member_id) in answers {
            let result = self.join_result(&member_id, member_id == leader);
            let _ = waiter.send(result);
        }
    }

    /// The strategy most members prefer among those every member supports (ties go to the
    /// leader's preference).
    pub(super) fn choose_protocol(&self) -> Option<String> {
        let supported_by_all = |name: &str| {
            self.members
                .iter()
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        };
        let mut votes: Vec<(String, usize)> = Vec::new();
        for member in &self.members {
            if let Some((name, _)) = member.protocols.iter().find(|(n, _)| supported_by_all(n)) {
                match votes.iter_mut().find(|(n, _)| n == name) {
                    Some((_, count)) => *count += 1,
                    None => votes.push((name.clone(), 1)),
                }
            }
        }
        let most = votes.iter().map(|(_, c)| *c).max()?;
        let leader_order = self
            .members
            .iter()
            .find(|m| Some(&m.id) == self.leader.as_ref())
            .map(|m| m.protocols.clone())
            .unwrap_or_default();
        leader_order
            .iter()
            .map(|(n, _)| n)
            .find(|n| votes.iter().any(|(v, c)| v == *n && *c == most))
            .or_else(|| votes.iter().find(|(_, c)| *c == most).map(|(n, _)| n))
            .cloned()
    }

    pub(super) fn supports_some(&self, protocols: &[(String, Bytes)]) -> bool {
        protocols.iter().any(|(name, _)| {
            self.members
                .iter()
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        })
    }

    pub(super) fn join_result(&self, member_id: &str, with_members: bool) -> JoinResult {
        let protocol = self.protocol.clone().unwrap_or_default();
        JoinResult {
            error: None,
            skip_assignment: false,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: match with_members {
                true => self
                    .members
                    .iter()
                    .map(|m| {
                        (
                            m.id.clone(),
                            m.instance_id.clone(),
                            m.metadata_for(&protocol),
                        )
                    })
                    .collect(),
                false => Vec::new(),
            },
        }
    }

    pub(super) fn sync_result(&self, assignment: Bytes) -> SyncResult {
        SyncResult {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            assignment,
        }
    }
}
