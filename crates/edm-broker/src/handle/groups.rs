//! Consumer groups: JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
//! OffsetFetch, DescribeGroups, ListGroups.

use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::{
    DescribeGroupsRequest, DescribeGroupsResponse, GroupId, HeartbeatRequest, HeartbeatResponse,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
    OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::super::groups::{Answer, JoinRequest, JoinResult, SyncResult};
use super::super::state::State;
use super::{Client, code};

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

fn millis(value: i32) -> Duration {
    Duration::from_millis(u64::try_from(value).unwrap_or(0))
}

/// JoinGroup: answers once the group's rebalance completes.
pub async fn join(
    state: &State,
    client: &Client,
    request: JoinGroupRequest,
    version: i16,
) -> JoinGroupResponse {
    let member_id = request.member_id.to_string();
    let join = JoinRequest {
        member_id: member_id.clone(),
        group_instance_id: request.group_instance_id.map(|id| id.to_string()),
        client_id: client.id.clone(),
        client_host: client.host.clone(),
        session_timeout: millis(request.session_timeout_ms),
        rebalance_timeout: match version {
            0 => Duration::ZERO,
            _ => millis(request.rebalance_timeout_ms),
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        require_known_member_id: version >= 4,
    };
    let result = match state.groups.join(&request.group_id, join) {
        Answer::Now(result) => result,
        // The member was replaced by its own later JoinGroup.
        Answer::Later(waiting) => waiting.await.unwrap_or_else(|_| JoinResult {
            error: Some(ResponseError::RebalanceInProgress),
            member_id,
            ..JoinResult::default()
        }),
    };
    // Before v7 the strategy name may not be null.
    let protocol_name = match (result.protocol_name, version) {
        (None, 0..=6) => Some(StrBytes::default()),
        (name, _) => name.map(StrBytes::from_string),
    };
    let skip_assignment = result.skip_assignment && version >= 9;
    let response = JoinGroupResponse::default()
        .with_error_code(code(result.error))
        .with_generation_id(if result.error.is_some() {
            -1
        } else {
            result.generation
        })
        .with_protocol_name(protocol_name)
        .with_leader(text(&result.leader))
        .with_member_id(text(&result.member_id))
        .with_members(
            result
                .members
                .into_iter()
                .map(|(id, instance, metadata)| {
                    let member = JoinGroupResponseMember::default()
                        .with_member_id(text(&id))
                        .with_metadata(metadata);
                    if version >= 5 {
                        member.with_group_instance_id(instance.map(StrBytes::from_string))
                    } else {
                        member
                    }
                })
                .collect(),
        );
    let response = match version >= 9 {
        true => response.with_skip_assignment(skip_assignment),
        false => response,
    };
    if version >= 7 {
        response.with_protocol_type(result.protocol_type.map(StrBytes::from_string))
    } else {
        response
    }
}

/// SyncGroup: the leader hands the assignment in; every member gets its part.
pub async fn sync(state: &State, request: SyncGroupRequest, version: i16) -> SyncGroupResponse {
    let assignments = request
        .assignments
        .into_iter()
        .map(|a| (a.member_id.to_string(), a.assignment))
        .collect();
    let answer = state.groups.sync(
        &request.group_id,
        (&request.member_id, request.group_instance_id.as_deref()),
        request.generation_id,
        (
            request.protocol_type.as_deref(),
            request.protocol_name.as_deref(),
        ),
        assignments,
    );
    let result = match answer {
        Answer::Now(result) => result,
        Answer::Later(waiting) => waiting.await.unwrap_or_else(|_| SyncResult {
            error: Some(ResponseError::RebalanceInProgress),
            ..SyncResult::default()
        }),
    };
    let response = SyncGroupResponse::default()
        .with_error_code(code(result.error))
        .with_assignment(result.assignment);
    if version >= 5 {
        response
            .with_protocol_type(result.protocol_type.map(StrBytes::from_string))
            .with_protocol_name(result.protocol_name.map(StrBytes::from_string))
    } else {
        response
    }
}

/// Heartbeat: keeps a member's session alive, and tells it to join again when a
/// rebalance is under way (REBALANCE_IN_PROGRESS).
pub fn heartbeat(state: &State, request: HeartbeatRequest) -> HeartbeatResponse {
    let error = state.groups.heartbeat(
        &request.group_id,
        (&request.member_id, request.group_instance_id.as_deref()),
        request.generation_id,
    );
    HeartbeatResponse::default().with_error_code(code(error))
}

/// LeaveGroup: one member (before v3) or several.
pub fn leave(state: &State, request: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    let members: Vec<(String, Option<String>)> = match version {
        0..=2 => vec![(request.member_id.to_string(), None)],
        _ => request
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|i| i.to_string()),
                )
            })
            .collect(),
    };
    let results = state.groups.leave(&request.group_id, &members);
    if version < 3 {
        return LeaveGroupResponse::default()
            .with_error_code(code(results.into_iter().flatten().next()));
    }
    LeaveGroupResponse::default().with_members(
        request
            .members
            .into_iter()
            .zip(results)
            .map(|(member, error)| {
                MemberResponse::default()
                    .with_member_id(member.member_id)
                    .with_group_instance_id(member.group_instance_id)
                    .with_error_code(code(error))
            })
            .collect(),
    )
}

/// OffsetCommit: all of the request's offsets are committed, or none (with the same error
/// for each).
pub fn offset_commit(state: &State, request: OffsetCommitRequest) -> OffsetCommitResponse {
    let mut offsets = super::requested_offsets!(request.topics);
    let oversized = super::oversized_metadata(&mut offsets, state.limits.offset_metadata_max_bytes);
    let error = state.groups.commit(
        &request.group_id,
        (&request.member_id, request.group_instance_id.as_deref()),
        request.generation_id_or_member_epoch,
        offsets,
    );
    OffsetCommitResponse::default().with_topics(super::offset_commit_answers!(
        request.topics,
        OffsetCommitResponseTopic,
        OffsetCommitResponsePartition,
        error,
        oversized
    ))
}

/// OffsetFetch: the committed offsets of the partitions asked for (-1 where none is), or
/// of all the group's partitions.
pub fn offset_fetch(
    state: &State,
    request: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    let wanted = request.topics.map(|topics| {
        topics
            .into_iter()
            .flat_map(|t| {
                let name = t.name.to_string();
                t.partition_indexes
                    .into_iter()
                    .map(move |p| (name.clone(), p))
            })
            .collect()
    });
    let mut topics: Vec<OffsetFetchResponseTopic> = Vec::new();
    for ((topic, partition), committed) in state.groups.committed(&request.group_id, wanted) {
        let answer = OffsetFetchResponsePartition::default().with_partition_index(partition);
        let answer = match committed {
            Some(c) => {
                let answer = answer
                    .with_committed_offset(c.offset)
                    .with_metadata(Some(StrBytes::from_string(c.metadata.unwrap_or_default())));
                if version >= 5 {
                    answer.with_committed_leader_epoch(c.leader_epoch)
                } else {
                    answer
                }
            }
            None => answer
                .with_committed_offset(-1)
                .with_metadata(Some(StrBytes::default())),
        };
        match topics.iter_mut().find(|t| *t.name == *topic) {
            Some(t) => t.partitions.push(answer),
            None => topics.push(
                OffsetFetchResponseTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic)))
                    .with_partitions(vec![answer]),
            ),
        }
    }
    OffsetFetchResponse::default().with_topics(topics)
}

/// DescribeGroups.
pub fn describe(state: &State, request: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let groups = request
        .groups
        .into_iter()
        .map(|id| match state.groups.describe(&id) {
            Some(group) => DescribedGroup::default()
                .with_group_id(id)
                .with_group_state(StrBytes::from_static_str(group.state))
                .with_protocol_type(text(&group.protocol_type))
                .with_protocol_data(text(&group.protocol))
                .with_members(
                    group
                        .members
                        .into_iter()
                        .map(|m| {
                            DescribedGroupMember::default()
                                .with_member_id(text(&m.member_id))
                                .with_group_instance_id(
                                    m.group_instance_id.map(StrBytes::from_string),
                                )
                                .with_client_id(text(&m.client_id))
                                .with_client_host(text(&m.client_host))
                                .with_member_metadata(m.metadata)
                                .with_member_assignment(m.assignment)
                        })
                        .collect(),
                ),
            // Kafka describes an unknown group as a dead one, not as an error.
            None => DescribedGroup::default()
                .with_group_id(id)
                .with_group_state(StrBytes::from_static_str("Dead")),
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

/// ListGroups.
pub fn list(state: &State, request: ListGroupsRequest) -> ListGroupsResponse {
    let groups = state
        .groups
        .list()
        .into_iter()
        .filter(|(_, _, group_state)| {
            request.states_filter.is_empty()
                || request
                    .states_filter
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(group_state))
        })
        .map(|(id, protocol_type, group_state)| {
            ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(id)))
                .with_protocol_type(StrBytes::from_string(protocol_type))
                .with_group_state(StrBytes::from_static_str(group_state))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
