//! The group coordinator: consumer groups' membership ([`group`]) and committed offsets.
//!
//! Every group lives behind one lock; a request changes its group in one step and either
//! answers at once or leaves a channel that the group answers on when it moves on (a
//! JoinGroup waits for the other members, a follower's SyncGroup for the leader's
//! assignment). [`Coordinator::tick`], called every [`TICK`], drops members whose session
//! ran out and ends rebalances whose time is up.

pub mod group;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::disk::Disk;

pub use group::{Answer, Group, GroupState, JoinRequest, JoinResult, SyncResult};

/// How often sessions and rebalance deadlines are checked.
pub const TICK: Duration = Duration::from_millis(100);

/// Kafka's default bounds on a member's session timeout
/// (`group.min.session.timeout.ms`, `group.max.session.timeout.ms`).
pub const SESSION_TIMEOUTS: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(6)..=Duration::from_secs(1800);

pub use super::committed::{Committed, OffsetCommit};

/// A member as DescribeGroups shows it.
#[derive(Debug, Clone)]
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// Static membership id.
    pub group_instance_id: Option<String>,
    /// `client.id`.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// Its metadata for the chosen strategy.
    pub metadata: Bytes,
    /// Its assignment.
    pub assignment: Bytes,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    /// State name.
    pub state: &'static str,
    /// Protocol type.
    pub protocol_type: String,
    /// Chosen strategy.
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

/// Every consumer group of the broker.
#[derive(Debug, Default)]
pub struct Coordinator {
    groups: Mutex<HashMap<String, Group>>,
    /// Where committed offsets are kept, if anywhere but memory.
    disk: Option<Arc<Disk>>,
}

impl Coordinator {
    /// Groups whose offsets are kept on `disk`, starting with `committed`.
    pub fn on_disk(disk: Arc<Disk>, committed: HashMap<String, Vec<OffsetCommit>>) -> Self {
        let groups = committed
            .into_iter()
            .map(|(id, offsets)| {
                let mut group = Group::new();
                group.offsets.extend(offsets);
                (id, group)
            })
            .collect();
        Self {
            groups: Mutex::new(groups),
            disk: Some(disk),
        }
    }

    fn keep(&self, group_id: &str, offsets: &[OffsetCommit]) {
        if let Some(disk) = &self.disk {
            disk.offsets_committed(group_id, offsets);
        }
    }

    fn groups(&self) -> MutexGuard<'_, HashMap<String, Group>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// JoinGroup.
    pub fn join(&self, group_id: &str, request: JoinRequest) -> Answer<JoinResult> {
        if group_id.is_empty() {
            return refused_join(ResponseError::InvalidGroupId, &request.member_id);
        }
        if !SESSION_TIMEOUTS.contains(&request.session_timeout) {
            return refused_join(ResponseError::InvalidSessionTimeout, &request.member_id);
        }
        self.groups()
            .entry(group_id.to_string())
            .or_insert_with(Group::new)
            .join(request, Instant::now())
    }

    /// SyncGroup.
    pub fn sync(
        &self,
        group_id: &str,
        (member_id, instance_id): (&str, Option<&str>),
        generation: i32,
        protocol: (Option<&str>, Option<&str>),
        assignments: Vec<(String, Bytes)>,
    ) -> Answer<SyncResult> {
        match self.groups().get_mut(group_id) {
            Some(group) => group.sync(
                member_id,
                instance_id,
                generation,
                protocol,
                assignments,
                Instant::now(),
            ),
            None => Answer::Now(SyncResult {
                error: Some(ResponseError::UnknownMemberId),
                ..SyncResult::default()
            }),
        }
    }

    /// Heartbeat of a member of `group_id` (an unknown group has no such member).
    pub fn heartbeat(
        &self,
        group_id: &str,
        (member_id, instance_id): (&str, Option<&str>),
        generation: i32,
    ) -> Option<ResponseError> {
        match self.groups().get_mut(group_id) {
            Some(group) => group.heartbeat(member_id, instance_id, generation, Instant::now()),
            None => Some(ResponseError::UnknownMemberId),
        }
    }

    /// LeaveGroup: one result per member (member id, instance id).
    pub fn leave(
        &self,
        group_id: &str,
        member_ids: &[(String, Option<String>)],
    ) -> Vec<Option<ResponseError>> {
        let mut groups = self.groups();
        let now = Instant::now();
        match groups.get_mut(group_id) {
            Some(group) => member_ids
                .iter()
                .map(|(id, instance)| group.leave(id, instance.as_deref(), now))
                .collect(),
            None => member_ids
                .iter()
                .map(|_| Some(ResponseError::UnknownMemberId))
                .collect(),
        }
    }

    /// OffsetCommit, checked as Kafka checks it: a group with no members takes commits
    /// from anyone (consumers that assign partitions themselves); otherwise only from a
    /// member of the current generation, and not while the leader's assignment is awaited.
    pub fn commit(
        &self,
        group_id: &str,
        (member_id, instance_id): (&str, Option<&str>),
        generation: i32,
        offsets: Vec<OffsetCommit>,
    ) -> Option<ResponseError> {
        if group_id.is_empty() {
            return Some(ResponseError::InvalidGroupId);
        }
        let mut groups = self.groups();
        let group = groups
            .entry(group_id.to_string())
            .or_insert_with(Group::new);
        let standalone = generation < 0 && group.state == GroupState::Empty;
        if !standalone {
            if group.is_fenced(instance_id, member_id) {
                return Some(ResponseError::FencedInstanceId);
            }
            if group.state == GroupState::CompletingRebalance {
                return Some(ResponseError::RebalanceInProgress);
            }
            if !group.has_member(member_id) {
                return Some(ResponseError::UnknownMemberId);
            }
            if generation != group.generation {
                return Some(ResponseError::IllegalGeneration);
            }
            group.heard_from(member_id, Instant::now());
        }
        self.keep(group_id, &offsets);
        group.offsets.extend(offsets);
        None
    }

    /// Commits offsets without membership checks (a committed transaction's offsets).
    pub fn commit_unchecked(&self, group_id: &str, offsets: Vec<OffsetCommit>) {
        self.keep(group_id, &offsets);
        self.groups()
            .entry(group_id.to_string())
            .or_insert_with(Group::new)
            .offsets
            .extend(offsets);
    }

    /// The committed offsets of `group_id`: of the given partitions (`None` for uncommitted
    /// ones), or all of them.
    pub fn committed(
        &self,
        group_id: &str,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Vec<((String, i32), Option<Committed>)> {
        let groups = self.groups();
        let offsets = groups.get(group_id).map(|g| &g.offsets);
        match partitions {
            Some(wanted) => wanted
                .into_iter()
                .map(|key| {
                    let committed = offsets.and_then(|o| o.get(&key)).cloned();
                    (key, committed)
                })
                .collect(),
            None => offsets
                .into_iter()
                .flatten()
                .map(|(key, committed)| (key.clone(), Some(committed.clone())))
                .collect(),
        }
    }

    /// DescribeGroups for one group (`None`: no such group).
    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        let groups = self.groups();
        let group = groups.get(group_id)?;
        let protocol = group.protocol.clone().unwrap_or_default();
        Some(GroupDescription {
            state: group.state.name(),
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            protocol: protocol.clone(),
            members: group
                .members
                .iter()
                .map(|m| MemberDescription {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: m
                        .protocols
                        .iter()
                        .find(|(n, _)| *n == protocol)
                        .map(|(_, md)| md.clone())
                        .unwrap_or_default(),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        })
    }

    /// ListGroups: every group's id, protocol type and state.
    pub fn list(&self) -> Vec<(String, String, &'static str)> {
        let mut listed: Vec<_> = self
            .groups()
            .iter()
            .map(|(id, g)| {
                (
                    id.clone(),
                    g.protocol_type.clone().unwrap_or_default(),
                    g.state.name(),
                )
            })
            .collect();
        listed.sort();
        listed
    }

    /// Drops gone members and ends overdue rebalances in every group.
    pub fn tick(&self) {
        let now = Instant::now();
        for group in self.groups().values_mut() {
            group.tick(now);
        }
    }
}

fn refused_join(error: ResponseError, member_id: &str) -> Answer<JoinResult> {
    Answer::Now(JoinResult {
        error: Some(error),
        member_id: member_id.to_string(),
        ..JoinResult::default()
    })
}
