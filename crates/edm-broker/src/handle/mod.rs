//! Kafka requests → answers: one module per family of requests, each turning the decoded
//! request into calls on the broker's state and the answer back into the protocol's
//! response for the version the client speaks.

mod admin;
mod configs;
mod fetch;
mod groups;
mod produce;
mod txns;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, RequestKind, ResponseKind};

use super::state::State;

/// Who sent a request.
#[derive(Debug, Clone)]
pub struct Client {
    /// Its `client.id`.
    pub id: String,
    /// Its address, as `/127.0.0.1` (the form Kafka's tools show).
    pub host: String,
}

/// The APIs this broker answers and the versions of each it speaks: what librdkafka 2.x,
/// the Java client and kafka-python use for producing, consuming in groups, transactions
/// and topic administration.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 7),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::AddOffsetsToTxn, 0, 3),
    (ApiKey::EndTxn, 0, 3),
    (ApiKey::TxnOffsetCommit, 0, 3),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
];

/// The versions of `api` this broker speaks, if it answers it at all.
pub fn supported(api: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(key, _, _)| *key == api)
        .map(|&(_, min, max)| (min, max))
}

/// The ApiVersions answer: every API with its versions.
pub fn api_versions() -> ApiVersionsResponse {
    versions_of(SUPPORTED)
}

/// The answer to ApiVersions in a version this broker does not speak: in v0, with
/// UNSUPPORTED_VERSION and, as Apache Kafka answers, only ApiVersions' own versions, so
/// that the client asks again in one of them.
pub fn api_versions_unsupported() -> ApiVersionsResponse {
    versions_of(
        &SUPPORTED
            .iter()
            .copied()
            .filter(|(key, _, _)| *key == ApiKey::ApiVersions)
            .collect::<Vec<_>>(),
    )
    .with_error_code(ResponseError::UnsupportedVersion.code())
}

fn versions_of(apis: &[(ApiKey, i16, i16)]) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(
        apis.iter()
            .map(|&(key, min, max)| {
                ApiVersion::default()
                    .with_api_key(key as i16)
                    .with_min_version(min)
                    .with_max_version(max)
            })
            .collect(),
    )
}

/// What becomes of a request.
#[derive(Debug)]
pub enum Reply {
    /// Send this answer (boxed: answers are large, and most requests have one).
    Send(Box<ResponseKind>),
    /// Send nothing (a produce request with `acks=0`).
    Nothing,
    /// Close the connection (a request this broker has no handler for).
    Close,
}

/// The answer to `request` in `version`.
pub async fn handle(state: &State, client: &Client, request: RequestKind, version: i16) -> Reply {
    let response = match request {
        RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(api_versions()),
        RequestKind::Produce(r) => {
            return match produce::produce(state, r, version) {
                Some(response) => Reply::Send(Box::new(ResponseKind::Produce(response))),
                None => Reply::Nothing,
            };
        }
        RequestKind::Fetch(r) => ResponseKind::Fetch(fetch::fetch(state, r, version).await),
        RequestKind::ListOffsets(r) => {
            ResponseKind::ListOffsets(fetch::list_offsets(state, r, version))
        }
        RequestKind::OffsetForLeaderEpoch(r) => {
            ResponseKind::OffsetForLeaderEpoch(fetch::offset_for_leader_epoch(state, r))
        }
        RequestKind::Metadata(r) => ResponseKind::Metadata(admin::metadata(state, r, version)),
        RequestKind::FindCoordinator(r) => {
            ResponseKind::FindCoordinator(admin::find_coordinator(state, r, version))
        }
        RequestKind::CreateTopics(r) => {
            ResponseKind::CreateTopics(admin::create_topics(state, r, version))
        }
        RequestKind::CreatePartitions(r) => {
            ResponseKind::CreatePartitions(admin::create_partitions(state, r))
        }
        RequestKind::DescribeConfigs(r) => {
            ResponseKind::DescribeConfigs(configs::describe(state, r, version))
        }
        RequestKind::AlterConfigs(r) => {
            ResponseKind::AlterConfigs(configs::alter_configs(state, r))
        }
        RequestKind::IncrementalAlterConfigs(r) => {
            ResponseKind::IncrementalAlterConfigs(configs::incremental_alter_configs(state, r))
        }
        RequestKind::DeleteTopics(r) => {
            ResponseKind::DeleteTopics(admin::delete_topics(state, r, version))
        }
        RequestKind::JoinGroup(r) => {
            ResponseKind::JoinGroup(groups::join(state, client, r, version).await)
        }
        RequestKind::SyncGroup(r) => ResponseKind::SyncGroup(groups::sync(state, r, version).await),
        RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(groups::heartbeat(state, r)),
        RequestKind::LeaveGroup(r) => ResponseKind::LeaveGroup(groups::leave(state, r, version)),
        RequestKind::OffsetCommit(r) => ResponseKind::OffsetCommit(groups::offset_commit(state, r)),
        RequestKind::OffsetFetch(r) => {
            ResponseKind::OffsetFetch(groups::offset_fetch(state, r, version))
        }
        RequestKind::DescribeGroups(r) => ResponseKind::DescribeGroups(groups::describe(state, r)),
        RequestKind::ListGroups(r) => ResponseKind::ListGroups(groups::list(state, r)),
        RequestKind::InitProducerId(r) => {
            ResponseKind::InitProducerId(txns::init_producer_id(state, r))
        }
        RequestKind::AddPartitionsToTxn(r) => {
            ResponseKind::AddPartitionsToTxn(txns::add_partitions(state, r, version))
        }
        RequestKind::AddOffsetsToTxn(r) => {
            ResponseKind::AddOffsetsToTxn(txns::add_offsets(state, r))
        }
        RequestKind::EndTxn(r) => ResponseKind::EndTxn(txns::end(state, r)),
        RequestKind::TxnOffsetCommit(r) => {
            ResponseKind::TxnOffsetCommit(txns::offset_commit(state, r))
        }
        other => {
            // The server decodes only what SUPPORTED lists: a handler is missing here.
            tracing::error!(request = ?std::mem::discriminant(&other), "request without a handler");
            return Reply::Close;
        }
    };
    Reply::Send(Box::new(response))
}

/// The offsets of an OffsetCommit or a TxnOffsetCommit request: two generated types with
/// the same fields, hence a macro rather than a function.
macro_rules! requested_offsets {
    ($topics:expr) => {
        $topics
            .iter()
            .flat_map(|topic| {
                topic.partitions.iter().map(|p| {
                    (
                        (topic.name.to_string(), p.partition_index),
                        $crate::groups::Committed {
                            offset: p.committed_offset,
                            leader_epoch: p.committed_leader_epoch,
                            metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                        },
                    )
                })
            })
            .collect::<Vec<_>>()
    };
}

/// Takes out of `offsets` those whose metadata is longer than `max_bytes` (Kafka's
/// `offset.metadata.max.bytes`): Kafka commits the others and answers these with
/// OFFSET_METADATA_TOO_LARGE.
pub(crate) fn oversized_metadata(
    offsets: &mut Vec<((String, i32), crate::groups::Committed)>,
    max_bytes: u64,
) -> std::collections::HashSet<(String, i32)> {
    let mut oversized = std::collections::HashSet::new();
    offsets.retain(|(partition, committed)| {
        let length = committed.metadata.as_ref().map_or(0, |m| m.len() as u64);
        if length > max_bytes {
            oversized.insert(partition.clone());
        }
        length <= max_bytes
    });
    oversized
}

/// The answer's topics of an OffsetCommit or a TxnOffsetCommit: every partition of the
/// request with the request's error (offsets are committed all or none), or else
/// OFFSET_METADATA_TOO_LARGE for those among `$oversized`.
macro_rules! offset_commit_answers {
    ($topics:expr, $topic_type:ty, $partition_type:ty, $error:expr, $oversized:expr) => {
        $topics
            .into_iter()
            .map(|topic| {
                <$topic_type>::default()
                    .with_partitions(
                        topic
                            .partitions
                            .iter()
                            .map(|p| {
                                let oversized = $oversized
                                    .contains(&(topic.name.to_string(), p.partition_index));
                                let error = $error.or(oversized.then_some(
                                    kafka_protocol::ResponseError::OffsetMetadataTooLarge,
                                ));
                                <$partition_type>::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code($crate::handle::code(error))
                            })
                            .collect(),
                    )
                    .with_name(topic.name)
            })
            .collect()
    };
}

use {offset_commit_answers, requested_offsets};

/// Error code of an optional error (0: none).
pub(crate) fn code(error: Option<ResponseError>) -> i16 {
    error.map_or(0, |e| e.code())
}

#[cfg(test)]
mod tests;
