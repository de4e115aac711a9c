//! Talking to the broker as its administrator: is it there and what topics does it have,
//! creating and growing the saga's topics (and their dead-letter topics), and setting a
//! fresh consumer group's start.

use std::time::Duration;

use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::util::Timeout;

use super::{Kafka, KafkaFailure, METADATA_TIMEOUT, Role};

/// A topic and its partition count, as the broker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic name.
    pub name: String,
    /// Number of partitions.
    pub partitions: usize,
}

/// What [`Kafka::ensure_topics`] did to one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicChange {
    /// Created with this many partitions.
    Created(usize),
    /// Grown from `from` to `to` partitions.
    Grown {
        /// Partitions before.
        from: usize,
        /// Partitions now.
        to: usize,
    },
    /// There already, with this many partitions.
    Kept(usize),
    /// There already, its configs set to edm's (`key=value`), which it did not have.
    Altered {
        partitions: usize,
        /// The configs it has now.
        configs: Vec<(&'static str, &'static str)>,
        /// What it had (`key=value`).
        was: Vec<String>,
    },
}

impl Kafka {
    pub(super) fn admin(&self) -> Result<AdminClient<DefaultClientContext>, KafkaFailure> {
        self.with_user_properties(self.base_config(), Role::Admin)
            .create()
            .map_err(KafkaFailure::Config)
    }

    /// Checks that the broker answers; lists the topic names it has.
    pub async fn check_reachable(&self) -> Result<Vec<TopicInfo>, KafkaFailure> {
        let admin = self.admin()?;
        let servers = self.servers().to_string();
        tokio::task::spawn_blocking(move || {
            let metadata = admin
                .inner()
                .fetch_metadata(None, Timeout::After(METADATA_TIMEOUT))
                .map_err(|detail| KafkaFailure::Unreachable { servers, detail })?;
            let mut topics: Vec<TopicInfo> = metadata
                .topics()
                .iter()
                .map(|topic| TopicInfo {
                    name: topic.name().to_string(),
                    partitions: topic.partitions().len(),
                })
                .collect();
            topics.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(topics)
        })
        .await
        .unwrap_or_else(|join| Err(KafkaFailure::Task(join.to_string())))
    }

    /// Sets consumer group `group` (already prefixed, not yet started) at the start of
    /// `topic`'s `partitions`, as `kafka-consumer-groups --reset-offsets --to-earliest`
    /// would. A group with no committed offset starts there too, but only after
    /// librdkafka's offset-reset backoff of 100 ms: `edm lab` places its first order as
    /// soon as its consumers have joined, and sets its fresh groups first.
    pub async fn commit_start(
        &self,
        group: &str,
        topic: &str,
        partitions: i32,
    ) -> Result<(), KafkaFailure> {
        let mut config = self.base_config();
        config.set("group.id", group);
        let consumer: BaseConsumer = self
            .with_user_properties(config, Role::Consumer)
            .create()
            .map_err(KafkaFailure::Config)?;
        let mut start = rdkafka::TopicPartitionList::new();
        for partition in 0..partitions {
            start
                .add_partition_offset(topic, partition, rdkafka::Offset::Offset(0))
                .map_err(KafkaFailure::Config)?;
        }
        let servers = self.servers().to_string();
        tokio::task::spawn_blocking(move || {
            rdkafka::consumer::Consumer::commit(
                &consumer,
                &start,
                rdkafka::consumer::CommitMode::Sync,
            )
            .map_err(|detail| KafkaFailure::Unreachable { servers, detail })
        })
        .await
        .unwrap_or_else(|join| Err(KafkaFailure::Task(join.to_string())))
    }

    /// Makes sure `names` exist: a missing topic is created with `partitions` (1 if not
    /// given); an existing one with fewer than `partitions` is grown to that count (Kafka
    /// keeps each record where it is; new records spread over every partition), and one
    /// with more is an error, since a topic's partitions can never be taken away. A topic
    /// edm keeps compacted ([`super::Topics::configs_of`]) is created so, and an existing
    /// one that is not is altered.
    pub async fn ensure_topics(
        &self,
        names: &[&str],
        partitions: Option<i32>,
        replication: i32,
    ) -> Result<Vec<(String, TopicChange)>, KafkaFailure> {
        let existing = self.check_reachable().await?;
        let count_of = |name: &str| {
            existing
                .iter()
                .find(|t| t.name == name)
                .map(|t| t.partitions)
        };
        let wanted = partitions.map(|p| usize::try_from(p.max(1)).unwrap_or(1));
        for name in names {
            if let (Some(current), Some(wanted)) = (count_of(name), wanted)
                && current > wanted
            {
                return Err(KafkaFailure::Shrink {
                    topic: name.to_string(),
                    current,
                    wanted,
                });
            }
        }
        let missing: Vec<&str> = names
            .iter()
            .copied()
            .filter(|name| count_of(name).is_none())
            .collect();
        let mut changes = self
            .create_topics(&missing, partitions.unwrap_or(1), replication)
            .await?;
        let fewer: Vec<(String, usize, usize)> = names
            .iter()
            .filter_map(|name| match (count_of(name), wanted) {
                (Some(current), Some(wanted)) if current < wanted => {
                    Some((name.to_string(), current, wanted))
                }
                _ => None,
            })
            .collect();
        changes.extend(self.grow_topics(fewer).await?);
        let kept: Vec<&str> = names
            .iter()
            .copied()
            .filter(|name| count_of(name).is_some_and(|c| wanted.is_none_or(|w| c == w)))
            .collect();
        let altered = self.alter_to_edm_configs(&kept).await?;
        for name in kept {
            let count = count_of(name).unwrap_or(0);
            let change = match altered.iter().find(|(n, _)| n == name) {
                Some((_, was)) => TopicChange::Altered {
                    partitions: count,
                    configs: self.topics.configs_of(name),
                    was: was.clone(),
                },
                None => TopicChange::Kept(count),
            };
            changes.push((name.to_string(), change));
        }
        changes.sort_by_key(|(name, _)| names.iter().position(|n| n == name));
        Ok(changes)
    }

    fn unreachable(&self, detail: rdkafka::error::KafkaError) -> KafkaFailure {
        KafkaFailure::Unreachable {
            servers: self.servers().to_string(),
            detail,
        }
    }

    /// Creates `names`, each with the configs edm gives it.
    async fn create_topics(
        &self,
        names: &[&str],
        partitions: i32,
        replication: i32,
    ) -> Result<Vec<(String, TopicChange)>, KafkaFailure> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let configs: Vec<Vec<(&'static str, &'static str)>> = names
            .iter()
            .map(|name| self.topics.configs_of(name))
            .collect();
        let create: Vec<NewTopic<'_>> = names
            .iter()
            .zip(&configs)
            .map(|(name, configs)| {
                configs.iter().fold(
                    NewTopic::new(name, partitions, TopicReplication::Fixed(replication)),
                    |topic, (key, value)| topic.set(key, value),
                )
            })
            .collect();
        let created = partitions.max(1) as usize;
        let mut changes = Vec::new();
        for result in self
            .admin()?
            .create_topics(&create, &admin_options())
            .await
            .map_err(|e| self.unreachable(e))?
        {
            match result {
                Ok(topic) => changes.push((topic, TopicChange::Created(created))),
                // Created meanwhile by someone else: it is there.
                Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    changes.push((topic, TopicChange::Kept(created)))
                }
                Err((topic, code)) => {
                    return Err(KafkaFailure::CreateTopic {
                        topic,
                        reason: code.to_string(),
                    });
                }
            }
        }
        Ok(changes)
    }

    /// Grows each `(name, current, wanted)` to its wanted partition count.
    async fn grow_topics(
        &self,
        grow: Vec<(String, usize, usize)>,
    ) -> Result<Vec<(String, TopicChange)>, KafkaFailure> {
        if grow.is_empty() {
            return Ok(Vec::new());
        }
        let requests: Vec<NewPartitions<'_>> = grow
            .iter()
            .map(|(name, _, wanted)| NewPartitions::new(name, *wanted))
            .collect();
        for result in self
            .admin()?
            .create_partitions(&requests, &admin_options())
            .await
            .map_err(|e| self.unreachable(e))?
        {
            if let Err((topic, code)) = result {
                return Err(KafkaFailure::CreateTopic {
                    topic,
                    reason: format!("cannot add partitions: {code}"),
                });
            }
        }
        Ok(grow
            .into_iter()
            .map(|(name, from, to)| (name, TopicChange::Grown { from, to }))
            .collect())
    }

    /// The configs of `name` that differ from what edm gives it (`key=value` as the
    /// broker has them), for each of `names` that has such a config: the compacted topic
    /// created by hand or by an older edm with the broker's default policy.
    pub async fn configs_differing(
        &self,
        names: &[&str],
    ) -> Result<Vec<(String, Vec<String>)>, KafkaFailure> {
        let wanted: Vec<&str> = names
            .iter()
            .copied()
            .filter(|name| !self.topics.configs_of(name).is_empty())
            .collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let resources: Vec<ResourceSpecifier<'_>> = wanted
            .iter()
            .map(|name| ResourceSpecifier::Topic(name))
            .collect();
        let described = self
            .admin()?
            .describe_configs(&resources, &admin_options())
            .await
            .map_err(|e| self.unreachable(e))?;
        let mut differing = Vec::new();
        for (name, result) in wanted.iter().zip(described) {
            let resource = result.map_err(|code| KafkaFailure::CreateTopic {
                topic: name.to_string(),
                reason: format!("cannot read its configs: {code}"),
            })?;
            let was: Vec<String> = self
                .topics
                .configs_of(name)
                .iter()
                .filter_map(|(key, value)| {
                    let current = resource.get(key).and_then(|e| e.value.clone());
                    (current.as_deref() != Some(value))
                        .then(|| format!("{key}={}", current.unwrap_or_default()))
                })
                .collect();
            if !was.is_empty() {
                differing.push((name.to_string(), was));
            }
        }
        Ok(differing)
    }

    /// Gives each of `names` whose configs differ from edm's those configs
    /// (IncrementalAlterConfigs-like: the topic's other configs are kept); returns the
    /// altered topics with what they had.
    async fn alter_to_edm_configs(
        &self,
        names: &[&str],
    ) -> Result<Vec<(String, Vec<String>)>, KafkaFailure> {
        let differing = self.configs_differing(names).await?;
        if differing.is_empty() {
            return Ok(differing);
        }
        // AlterConfigs replaces a topic's whole set: keep the ones set on it.
        let resources: Vec<ResourceSpecifier<'_>> = differing
            .iter()
            .map(|(name, _)| ResourceSpecifier::Topic(name))
            .collect();
        let admin = self.admin()?;
        let described = admin
            .describe_configs(&resources, &admin_options())
            .await
            .map_err(|e| self.unreachable(e))?;
        let mut kept: Vec<Vec<(String, String)>> = Vec::new();
        for result in &described {
            let set_on_topic = match result {
                Ok(resource) => resource
                    .entries
                    .iter()
                    .filter(|e| e.source == rdkafka::admin::ConfigSource::DynamicTopic)
                    .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
                    .collect(),
                Err(_) => Vec::new(),
            };
            kept.push(set_on_topic);
        }
        let alters: Vec<AlterConfig<'_>> = differing
            .iter()
            .zip(&kept)
            .map(|((name, _), kept)| {
                let alter = kept.iter().fold(
                    AlterConfig::new(ResourceSpecifier::Topic(name)),
                    |a, (k, v)| a.set(k, v),
                );
                self.topics
                    .configs_of(name)
                    .into_iter()
                    .fold(alter, |a, (k, v)| a.set(k, v))
            })
            .collect();
        for result in admin
            .alter_configs(&alters, &admin_options())
            .await
            .map_err(|e| self.unreachable(e))?
        {
            if let Err((resource, code)) = result {
                return Err(KafkaFailure::CreateTopic {
                    topic: format!("{resource:?}"),
                    reason: format!("cannot set its configs: {code}"),
                });
            }
        }
        Ok(differing)
    }
}

/// How long an admin request may take on the broker.
fn admin_options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)))
}
