//! Where things are and what exists: Metadata, FindCoordinator, CreateTopics,
//! CreatePartitions, DeleteTopics.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
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

use super::super::state::State;
use super::super::topics::{Topic, TopicError};

/// The Kafka error code of a topic failure.
pub fn topic_error(error: &TopicError) -> ResponseError {
    match error {
        TopicError::Unknown(_) => ResponseError::UnknownTopicOrPartition,
        TopicError::AlreadyExists(_) => ResponseError::TopicAlreadyExists,
        TopicError::InvalidName { .. } => ResponseError::InvalidTopicException,
        TopicError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
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
        request
            .topics
            .unwrap_or_default()
            .into_iter()
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
                    .map(|()| uuid::Uuid::nil())
                    .map_err(|e| (topic_error(&e), e.to_string()))
            } else {
                state
                    .topics
                    .create(&wanted.name, partitions)
                    .map(|t| t.id)
                    .map_err(|e| (topic_error(&e), e.to_string()))
            };
            let result = CreatableTopicResult::default().with_name(wanted.name);
            match outcome {
                Ok(id) => {
                    tracing::info!(topic = %result.name.0, partitions, "topic created");
                    let result = result.with_topic_id(id);
                    if version >= 5 {
                        result
                            .with_num_partitions(partitions)
                            .with_replication_factor(1)
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
            match state.topics.grow(&wanted.name, wanted.count, !request.validate_only) {
                Ok(()) => {
                    tracing::info!(topic = %wanted.name.0, partitions = wanted.count, "topic grown");
                    result
                }
                Err(error) => result
                    .with_error_code(topic_error(&error).code())
                    .with_error_message(Some(StrBytes::from_string(error.to_string()))),
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
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
