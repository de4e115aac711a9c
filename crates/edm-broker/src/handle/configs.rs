//! Topic configs: DescribeConfigs, AlterConfigs (the whole set replaced) and
//! IncrementalAlterConfigs (set, delete, append, subtract, key by key). A broker resource
//! describes the few broker settings edm broker has; altering one is refused, as this
//! broker takes its settings from its command line.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, alter_configs_response,
    incremental_alter_configs_response,
};
use kafka_protocol::protocol::StrBytes;

use super::super::configs::{ConfigError, Described, Source, TopicConfigs};
use super::super::state::State;
use super::super::topics::TopicError;
use super::admin::topic_error;

/// Resource types of the config requests.
const TOPIC: i8 = 2;
const BROKER: i8 = 4;

type Refusal = (ResponseError, String);

fn text(value: impl Into<String>) -> StrBytes {
    StrBytes::from_string(value.into())
}

fn refusal(error: TopicError) -> Refusal {
    (topic_error(&error), error.to_string())
}

/// DescribeConfigs: every config of each topic asked for (or the names asked for).
pub fn describe(
    state: &State,
    request: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let names: Option<Vec<String>> = resource
                .configuration_keys
                .map(|keys| keys.iter().map(|k| k.to_string()).collect());
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let described = match resource.resource_type {
                TOPIC => state
                    .topics
                    .get(&resource.resource_name)
                    .map(|topic| {
                        topic
                            .configs
                            .describe(names.as_deref(), state.limits.retention_bytes)
                    })
                    .ok_or_else(|| {
                        refusal(TopicError::Unknown(resource.resource_name.to_string()))
                    }),
                BROKER => Ok(broker_configs(state, names.as_deref())),
                other => Err((
                    ResponseError::InvalidRequest,
                    format!(
                        "resource type {other}: only topics (2) and brokers (4) have configs here"
                    ),
                )),
            };
            match described {
                Ok(configs) => {
                    result.with_configs(configs.into_iter().map(|d| entry(d, version)).collect())
                }
                Err((error, message)) => result
                    .with_error_code(error.code())
                    .with_error_message(Some(text(message))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn entry(described: Described, version: i16) -> DescribeConfigsResourceResult {
    let entry = DescribeConfigsResourceResult::default()
        .with_name(text(described.name))
        .with_value(Some(text(described.value)))
        .with_config_source(described.source as i8)
        .with_read_only(described.source == Source::StaticBroker);
    if version >= 3 {
        entry.with_config_type(described.kind as i8)
    } else {
        entry
    }
}

/// What a broker resource describes: the settings of `edm broker`'s command line that
/// Kafka has too, as static broker configs.
fn broker_configs(state: &State, names: Option<&[String]>) -> Vec<Described> {
    use super::super::configs::Kind;
    let settings = [
        (
            "auto.create.topics.enable",
            state.auto_create_topics.to_string(),
            Kind::Boolean,
        ),
        (
            "num.partitions",
            state.default_partitions.to_string(),
            Kind::Int,
        ),
        ("broker.id", state.node.id.to_string(), Kind::Int),
    ];
    settings
        .into_iter()
        .filter(|(name, _, _)| names.is_none_or(|names| names.iter().any(|n| n == name)))
        .map(|(name, value, kind)| Described {
            name,
            value,
            source: Source::StaticBroker,
            kind,
        })
        .collect()
}

/// Applies `change` to the configs of a topic resource; a broker resource is refused.
fn alter(
    state: &State,
    resource_type: i8,
    name: &str,
    apply: bool,
    change: impl FnOnce(&TopicConfigs) -> Result<TopicConfigs, ConfigError>,
) -> Result<(), Refusal> {
    match resource_type {
        TOPIC => state
            .topics
            .alter_configs(name, apply, change)
            .map_err(refusal),
        BROKER => Err((
            ResponseError::InvalidRequest,
            "edm broker takes its settings from its command line; restart it with other flags"
                .to_string(),
        )),
        other => Err((
            ResponseError::InvalidRequest,
            format!("resource type {other}"),
        )),
    }
}

/// AlterConfigs: each topic's configs become exactly those given.
pub fn alter_configs(state: &State, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let apply = !request.validate_only;
    let responses = request
        .resources
        .into_iter()
        .map(|resource| {
            let outcome = alter(
                state,
                resource.resource_type,
                &resource.resource_name,
                apply,
                |_| {
                    TopicConfigs::from_pairs(
                        resource
                            .configs
                            .iter()
                            .filter_map(|c| Some((c.name.as_str(), c.value.as_deref()?))),
                    )
                },
            );
            if let (Ok(()), true) = (&outcome, apply) {
                tracing::info!(topic = %resource.resource_name, "topic configs replaced");
            }
            let response = alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name);
            match outcome {
                Ok(()) => response,
                Err((error, message)) => response
                    .with_error_code(error.code())
                    .with_error_message(Some(text(message))),
            }
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}

/// IncrementalAlterConfigs: each key set (0), deleted (1), appended to (2) or
/// subtracted from (3, list configs: `cleanup.policy`).
pub fn incremental_alter_configs(
    state: &State,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let apply = !request.validate_only;
    let responses = request
        .resources
        .into_iter()
        .map(|resource| {
            let outcome = alter(state, resource.resource_type, &resource.resource_name, apply, |current| {
                let mut configs = current.clone();
                for change in &resource.configs {
                    let value = change.value.as_deref().unwrap_or_default();
                    match change.config_operation {
                        0 => configs.set(&change.name, value)?,
                        1 => configs.reset(&change.name)?,
                        op @ (2 | 3) => {
                            let mut list: Vec<String> = configs
                                .value(&change.name)
                                .unwrap_or_default()
                                .split(',')
                                .map(|v| v.trim().to_string())
                                .filter(|v| !v.is_empty())
                                .collect();
                            for item in value.split(',').map(str::trim) {
                                list.retain(|v| v != item);
                                if op == 2 {
                                    list.push(item.to_string());
                                }
                            }
                            configs.set(&change.name, &list.join(","))?;
                        }
                        other => {
                            return Err(ConfigError::Invalid {
                                name: change.name.to_string(),
                                value: other.to_string(),
                                why: "no such operation (0 set, 1 delete, 2 append, 3 subtract)",
                            });
                        }
                    }
                }
                Ok(configs)
            });
            if let (Ok(()), true) = (&outcome, apply) {
                tracing::info!(topic = %resource.resource_name, "topic configs altered");
            }
            let response = incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name);
            match outcome {
                Ok(()) => response,
                Err((error, message)) => response
                    .with_error_code(error.code())
                    .with_error_message(Some(text(message))),
            }
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
