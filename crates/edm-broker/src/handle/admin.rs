//! Where things are and what exists: Metadata, FindCoordinator, CreateTopics,
//! CreatePartitions, DeleteTopics.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest,
    CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::super::configs::TopicConfigs;
use super::super::state::State;
use super::super::topics::{Topic, TopicError};

/// The Kafka error code of a topic failure.
pub fn topic_error(error: &TopicError) -> ResponseError {
    match error {
        TopicError::Unknown(_) => ResponseError::UnknownTopicOrPartition,
        TopicError::AlreadyExists(_) => ResponseError::TopicAlreadyExists,
        TopicError::InvalidName { .. } => ResponseError::InvalidTopicException,
        TopicError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
        TopicError::InvalidConfig(_) => ResponseError::InvalidConfig,
        TopicError::LimitReached(_) => ResponseError::PolicyViolation,
        TopicError::Storage(_) => ResponseError::KafkaStorageError,
    }
}

fn name(text: &str) -> TopicName {
    TopicName(StrBytes::from_string(text.to_string()))
}

fn described(topic: &Topic, node: i32) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(Some(name(&topic.name)))
        .with_topic_id(topic.id)
        .with_partitions(
            (0..topic.partitions.len())
                .map(|index| {
                    MetadataResponsePartition::default()
                        .with_partition_index(index as i32)
                        .with_leader_id(BrokerId(node))
                        .with_leader_epoch(0)
                        .with_replica_nodes(vec![BrokerId(node)])
                        .with_isr_nodes(vec![BrokerId(node)])
                })
                .collect(),
        )
}

fn missing(topic: Option<TopicName>, error: ResponseError) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(topic)
        .with_error_code(error.code())
}

/// Metadata: this broker, and the topics asked for (all when none are named); a topic that
/// does not exist is created when the client allows it and the broker does.
pub fn metadata(state: &State, request: MetadataRequest, version: i16) -> MetadataResponse {
    let node = state.node.id;
    let everything = match &request.topics {
        None => true,
        Some(list) => version == 0 && list.is_empty(),
    };
    let topics = if everything {
        state
            .topics
            .all()
            .iter()
            .map(|t| described(t, node))
            .collect()
    } else {
        let create = state.auto_create_topics && (version < 4 || request.allow_auto_topic_creation);
        // Kafka takes the names as a set: a name listed twice is answered once.
        let mut seen = std::collections::HashSet::new();
        request
            .topics
            .unwrap_or_default()
            .into_iter()
            .filter(|wanted| match &wanted.name {
                Some(name) => seen.insert(name.clone()),
                None => true,
            })
            .map(|wanted| match wanted.name {
                Some(topic) => {
                    let found = match create {
                        true => state.topics.get_or_create(&topic, state.default_partitions),
                        false => state
                            .topics
                            .get(&topic)
                            .ok_or_else(|| TopicError::Unknown(topic.to_string())),
                    };
                    match found {
                        Ok(t) => described(&t, node),
                        Err(error) => missing(Some(topic), topic_error(&error)),
                    }
                }
                None => match state.topics.by_id(wanted.topic_id) {
                    Some(t) => described(&t, node),
                    None => missing(None, ResponseError::UnknownTopicId),
                },
            })
            .collect()
    };
    MetadataResponse::default()
        .with_brokers(vec![
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(node))
                .with_host(StrBytes::from_string(state.node.host.clone()))
                .with_port(state.node.port),
        ])
        .with_cluster_id(Some(StrBytes::from_string(state.cluster_id.clone())))
        .with_controller_id(BrokerId(node))
        .with_topics(topics)
}

/// FindCoordinator: this broker coordinates every group and transaction.
pub fn find_coordinator(
    state: &State,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let host = StrBytes::from_string(state.node.host.clone());
    let node = BrokerId(state.node.id);
    if version >= 4 {
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(node)
                    .with_host(host.clone())
                    .with_port(state.node.port)
            })
            .collect();
        FindCoordinatorResponse::default().with_coordinators(coordinators)
    } else {
        FindCoordinatorResponse::default()
            .with_node_id(node)
            .with_host(host)
            .with_port(state.node.port)
    }
}

/// CreateTopics: one node, so a replication factor of 1 (or -1, the broker's default).
pub fn create_topics(
    state: &State,
    request: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|wanted| {
            let partitions = match wanted.num_partitions {
                -1 => state.default_partitions,
                n => n,
            };
            let configs = TopicConfigs::from_pairs(
                wanted
                    .configs
                    .iter()
                    .filter_map(|c| Some((c.name.as_str(), c.value.as_deref()?))),
            )
            .map_err(TopicError::from);
            let outcome = if !matches!(wanted.replication_factor, -1 | 1) {
                Err((
                    ResponseError::InvalidReplicationFactor,
                    format!(
                        "replication factor {}: this broker is a single node, so 1 is the only one",
                        wanted.replication_factor
                    ),
                ))
            } else if request.validate_only {
                state
                    .topics
                    .check_new(&wanted.name, partitions)
                    .and(configs.map(|_| ()))
                    .map(|()| (uuid::Uuid::nil(), TopicConfigs::default()))
                    .map_err(|e| (topic_error(&e), e.to_string()))
            } else {
                configs
                    .and_then(|configs| state.topics.create(&wanted.name, partitions, configs))
                    .map(|t| (t.id, t.configs.clone()))
                    .map_err(|e| (topic_error(&e), e.to_string()))
            };
            let result = CreatableTopicResult::default().with_name(wanted.name);
            match outcome {
                Ok((id, configs)) => {
                    tracing::info!(topic = %result.name.0, partitions, "topic created");
                    let result = result.with_topic_id(id);
                    if version >= 5 {
                        result
                            .with_num_partitions(partitions)
                            .with_replication_factor(1)
                            .with_configs(Some(created_configs(
                                &configs,
                                state.limits.retention_bytes,
                            )))
                    } else {
                        result
                    }
                }
                Err((error, message)) => result
                    .with_error_code(error.code())
                    .with_error_message(Some(StrBytes::from_string(message))),
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}

/// A new topic's configs as CreateTopics v5+ answers them: every one, with its source.
fn created_configs(configs: &TopicConfigs, retention_default: i64) -> Vec<CreatableTopicConfigs> {
    configs
        .describe(None, retention_default)
        .into_iter()
        .map(|d| {
            CreatableTopicConfigs::default()
                .with_name(StrBytes::from_static_str(d.name))
                .with_value(Some(StrBytes::from_string(d.value)))
                .with_config_source(d.source as i8)
        })
        .collect()
}

/// CreatePartitions: grows topics (never shrinks them).
pub fn create_partitions(
    state: &State,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let results = request
        .topics
        .into_iter()
        .map(|wanted| {
            let result = CreatePartitionsTopicResult::default().with_name(wanted.name.clone());
            let grown = state
                .topics
                .grow(&wanted.name, wanted.count, false)
                .map_err(|e| (topic_error(&e), e.to_string()))
                .and_then(|()| check_assignments(state, &wanted))
                .and_then(|()| match request.validate_only {
                    true => Ok(()),
                    false => state
                        .topics
                        .grow(&wanted.name, wanted.count, true)
                        .map_err(|e| (topic_error(&e), e.to_string())),
                });
            match grown {
                Ok(()) => {
                    tracing::info!(topic = %wanted.name.0, partitions = wanted.count, "topic grown");
                    result
                }
                Err((error, message)) => result
                    .with_error_code(error.code())
                    .with_error_message(Some(StrBytes::from_string(message))),
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}

/// The places given for new partitions, if any: one per new partition, each on this
/// broker alone (Kafka's INVALID_REPLICA_ASSIGNMENT otherwise, an empty list included).
fn check_assignments(
    state: &State,
    wanted: &CreatePartitionsTopic,
) -> Result<(), (ResponseError, String)> {
    let Some(assignments) = &wanted.assignments else {
        return Ok(());
    };
    let current = state
        .topics
        .get(&wanted.name)
        .map_or(0, |t| t.partitions.len());
    let added = usize::try_from(wanted.count)
        .unwrap_or(0)
        .saturating_sub(current);
    if assignments.len() != added {
        return Err((
            ResponseError::InvalidReplicaAssignment,
            format!(
                "increasing the number of partitions by {added} but {} assignments provided",
                assignments.len()
            ),
        ));
    }
    let node = BrokerId(state.node.id);
    if assignments.iter().any(|a| a.broker_ids != [node]) {
        return Err((
            ResponseError::InvalidReplicaAssignment,
            format!(
                "every new partition must be on broker {}, the only one",
                node.0
            ),
        ));
    }
    Ok(())
}

/// DeleteTopics, by name (or, from v6, by id).
pub fn delete_topics(
    state: &State,
    request: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let wanted: Vec<(Option<String>, uuid::Uuid)> = if version >= 6 {
        request
            .topics
            .into_iter()
            .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
            .collect()
    };
    let responses = wanted
        .into_iter()
        .map(|(topic, id)| {
            let topic = topic.or_else(|| state.topics.by_id(id).map(|t| t.name.clone()));
            let deleted = match &topic {
                Some(topic) => state.topics.delete(topic),
                None => Err(TopicError::Unknown(id.to_string())),
            };
            let result = DeletableTopicResult::default().with_name(topic.as_deref().map(name));
            match deleted {
                Ok(t) => {
                    tracing::info!(topic = %t.name, "topic deleted");
                    if version >= 6 {
                        result.with_topic_id(t.id)
                    } else {
                        result
                    }
                }
                Err(error) => result.with_error_code(topic_error(&error).code()),
            }
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}
