//! Talking to the broker as its administrator: is it there and what topics does it have,
//! creating and growing the saga's topics (and their dead-letter topics), and setting a
//! fresh consumer group's start.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
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
    /// with more is an error, since a topic's partitions can never be taken away.
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
        let admin = self.admin()?;
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let unreachable = |detail| KafkaFailure::Unreachable {
            servers: self.servers().to_string(),
            detail,
        };
        let create: Vec<NewTopic<'_>> = names
            .iter()
            .filter(|name| count_of(name).is_none())
            .map(|name| {
                NewTopic::new(
                    name,
                    partitions.unwrap_or(1),
                    TopicReplication::Fixed(replication),
                )
            })
            .collect();
        let mut changes = Vec::new();
        if !create.is_empty() {
            for result in admin
                .create_topics(&create, &options)
                .await
                .map_err(unreachable)?
            {
                match result {
                    Ok(topic) => changes.push((topic, TopicChange::Created(wanted.unwrap_or(1)))),
                    // Created meanwhile by someone else: it is there.
                    Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                        changes.push((topic, TopicChange::Kept(wanted.unwrap_or(1))))
                    }
                    Err((topic, code)) => {
                        return Err(KafkaFailure::CreateTopic {
                            topic,
                            reason: code.to_string(),
                        });
                    }
                }
            }
        }
        let grow: Vec<(String, usize, usize)> = names
            .iter()
            .filter_map(|name| match (count_of(name), wanted) {
                (Some(current), Some(wanted)) if current < wanted => {
                    Some((name.to_string(), current, wanted))
                }
                _ => None,
            })
            .collect();
        if !grow.is_empty() {
            let requests: Vec<NewPartitions<'_>> = grow
                .iter()
                .map(|(name, _, wanted)| NewPartitions::new(name, *wanted))
                .collect();
            for result in admin
                .create_partitions(&requests, &options)
                .await
                .map_err(unreachable)?
            {
                if let Err((topic, code)) = result {
                    return Err(KafkaFailure::CreateTopic {
                        topic,
                        reason: format!("cannot add partitions: {code}"),
                    });
                }
            }
            changes.extend(
                grow.into_iter()
                    .map(|(name, from, to)| (name, TopicChange::Grown { from, to })),
            );
        }
        for name in names {
            if let Some(current) = count_of(name).filter(|&c| wanted.is_none_or(|w| c == w)) {
                changes.push((name.to_string(), TopicChange::Kept(current)));
            }
        }
        changes.sort_by_key(|(name, _)| names.iter().position(|n| n == name));
        Ok(changes)
    }
}
