//! Static membership (KIP-345, `group.instance.id`): a member that names its instance
//! keeps its place in the group across restarts. A new process with the same instance id
//! takes over the old member's partitions at once — without a rebalance when the group
//! is stable and its strategies are unchanged — and the old process, should it still run,
//! is fenced (FENCED_INSTANCE_ID) on its next request. A static member that stops without
//! leaving (librdkafka and the Java client send no LeaveGroup when a static member
//! closes) keeps its partitions until its session runs out.

use std::time::Instant;

use kafka_protocol::ResponseError;

use super::{Answer, Group, GroupState, JoinRequest, JoinResult, SyncResult};

impl Group {
    /// Whether `instance_id` belongs to a member other than `member_id`: the caller is
    /// an instance that was replaced.
    pub(crate) fn is_fenced(&self, instance_id: Option<&str>, member_id: &str) -> bool {
        instance_id.is_some_and(|instance| {
            self.members
                .iter()
                .any(|m| m.instance_id.as_deref() == Some(instance) && m.id != member_id)
        })
    }

    /// The member id of the static member `instance_id`, if it is in the group.
    pub(crate) fn static_member(&self, instance_id: &str) -> Option<String> {
        self.members
            .iter()
            .find(|m| m.instance_id.as_deref() == Some(instance_id))
            .map(|m| m.id.clone())
    }

    /// A JoinGroup without a member id from an instance already in the group: the new
    /// process takes the member's place under a new member id.
    pub(super) fn replace_static_member(
        &mut self,
        instance_id: &str,
        request: JoinRequest,
        now: Instant,
    ) -> Answer<JoinResult> {
        let new_id = format!("{}-{}", request.client_id, uuid::Uuid::new_v4());
        let Some(member) = self
            .members
            .iter_mut()
            .find(|m| m.instance_id.as_deref() == Some(instance_id))
        else {
            return Answer::Now(JoinResult {
                error: Some(ResponseError::UnknownMemberId),
                ..JoinResult::default()
            });
        };
        let old_id = std::mem::replace(&mut member.id, new_id.clone());
        // The old process is fenced: an answer it still waits for tells it so.
        let fenced = Some(ResponseError::FencedInstanceId);
        if let Some(waiter) = member.join_waiter.take() {
            let _ = waiter.send(JoinResult {
                error: fenced,
                member_id: old_id.clone(),
                ..JoinResult::default()
            });
        }
        if let Some(waiter) = member.sync_waiter.take() {
            let _ = waiter.send(SyncResult {
                error: fenced,
                ..SyncResult::default()
            });
        }
        member.protocols = request.protocols;
        member.client_id = request.client_id;
        member.client_host = request.client_host;
        member.session_timeout = request.session_timeout;
        member.rebalance_timeout = match request.rebalance_timeout.is_zero() {
            true => request.session_timeout,
            false => request.rebalance_timeout,
        };
        member.last_heard = now;
        let was_leader = self.leader.as_deref() == Some(old_id.as_str());
        if was_leader {
            self.leader = Some(new_id.clone());
        }
        tracing::info!(instance = instance_id, old = %old_id, new = %new_id, "static member replaced by a new instance");
        // As Kafka: the group stays as it is unless the strategy it would choose now
        // differs (the members' metadata — their owned partitions — may well differ).
        if self.state == GroupState::Stable && self.choose_protocol() == self.protocol {
            // Its assignment stays; a leader is told the members but need not assign.
            let mut result = self.join_result(&new_id, was_leader);
            result.skip_assignment = was_leader;
            return Answer::Now(result);
        }
        let (waiter, answer) = tokio::sync::oneshot::channel();
        if let Some(member) = self.member(&new_id) {
            member.join_waiter = Some(waiter);
        }
        if self.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(now);
        }
        self.try_complete_join(now);
        Answer::Later(answer)
    }
}
