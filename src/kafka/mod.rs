//! Kafka plumbing shared by the services: topic and group names, client configuration,
//! consumers that log rebalances, topic creation; the producer is in [`producer`].
//!
//! On any broker, librdkafka's defaults stand except where `edm` needs a setting for
//! correctness (idempotence, offsets stored by hand) or the course asks for it (reading
//! from the earliest offset); `-X key=value` overrides any of them. On edm's own broker
//! ([`crate::broker`], recognised by its cluster id) producers also report librdkafka's
//! statistics, so that a service can wait for its producer id before it takes work.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::util::Timeout;

use crate::config::{KafkaArgs, START_HINT};

mod admin;
mod events;
mod producer;

pub use admin::{TopicChange, TopicInfo};
use events::{EventContext, EventServer};
pub use producer::{EventProducer, Record};

/// How long a metadata request may take before the broker counts as unreachable.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors talking to Kafka, each saying which broker and what to do.
#[derive(Debug, thiserror::Error)]
pub enum KafkaFailure {
    /// The broker did not answer.
    #[error(
        "cannot reach Kafka at {servers}: {detail}. Is the broker running? Start it with `{START_HINT}`, or without Docker with `edm broker`"
    )]
    Unreachable {
        /// The configured bootstrap servers.
        servers: String,
        /// What librdkafka said.
        detail: KafkaError,
    },
    /// A client could not be created (usually a bad `-X` property).
    #[error("invalid Kafka client configuration: {0}")]
    Config(KafkaError),
    /// A message was not acknowledged by the broker.
    #[error("Kafka did not acknowledge the event to `{topic}`: {detail}")]
    NotDelivered {
        /// The topic it was sent to.
        topic: String,
        /// What librdkafka said.
        detail: KafkaError,
    },
    /// The producer hit a fatal error (e.g. its idempotent sequence broken or the producer
    /// fenced): it can never send again, so retrying is pointless.
    #[error(
        "the Kafka producer failed for good ({reason}); it cannot send again, so edm stops: \
         start the service again (nothing is lost — what was not acknowledged is redelivered)"
    )]
    Fatal {
        /// What librdkafka said.
        reason: String,
    },
    /// A background task of the client died.
    #[error("Kafka client task failed: {0}")]
    Task(String),
    /// Creating a topic failed.
    #[error("cannot create topic `{topic}`: {reason}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's answer.
        reason: String,
    },
    /// Asked for fewer partitions than a topic has.
    #[error(
        "topic `{topic}` has {current} partitions, and Kafka cannot take partitions away: \
         ask for {current} or more (or leave out --partitions)"
    )]
    Shrink {
        /// The topic.
        topic: String,
        /// Its partitions.
        current: usize,
        /// The partitions asked for.
        wanted: usize,
    },
}

/// What a dead-letter topic's name ends with.
const DEAD_LETTER_SUFFIX: &str = ".dlq";

/// The saga's topic names (the course's names, behind an optional prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    /// Events for the order consumer: PAYMENT_COMPLETE, ORDER_CANCEL.
    pub order: String,
    /// Events for the inventory consumer: ORDER_CREATED, ORDER_CANCEL.
    pub inventory: String,
    /// Events for the payment consumer: INVENTORY_RESERVED.
    pub payment: String,
    /// The payment consumer's answers, by transaction id (compacted: the latest per key).
    pub payment_decisions: String,
}

impl Topics {
    /// Topic names under `prefix` (empty: `order`, `inventory`, `payment`).
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            order: format!("{prefix}order"),
            inventory: format!("{prefix}inventory"),
            payment: format!("{prefix}payment"),
            payment_decisions: format!("{prefix}payment.decisions"),
        }
    }

    /// The three topics, in the order the saga first uses them.
    pub fn all(&self) -> [&str; 3] {
        [&self.inventory, &self.payment, &self.order]
    }

    /// The dead-letter topic for events from `topic` that cannot be processed.
    pub fn dead_letter(topic: &str) -> String {
        format!("{topic}{DEAD_LETTER_SUFFIX}")
    }

    /// Whether `topic` is a dead-letter topic.
    pub fn is_dead_letter(topic: &str) -> bool {
        topic.ends_with(DEAD_LETTER_SUFFIX)
    }

    /// Every topic edm uses — the three, their dead-letter topics and the payment
    /// consumer's decisions: what `edm create-topics` creates, so that nothing waits for a
    /// topic on a broker that creates none by itself.
    pub fn every_topic(&self) -> Vec<String> {
        let mut names: Vec<String> = self.all().iter().map(|t| t.to_string()).collect();
        names.extend(self.all().iter().map(|t| Self::dead_letter(t)));
        names.push(self.payment_decisions.clone());
        names
    }

    /// Whether `topic` keeps only the latest record of each key (Kafka's
    /// `cleanup.policy=compact`): a topic of decisions, not of events.
    pub fn is_compacted(&self, topic: &str) -> bool {
        topic == self.payment_decisions
    }
}

/// Which broker `edm` talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// edm's own ([`crate::broker`]): the lab's embedded one or `edm broker`.
    Edm,
    /// Any other (Apache Kafka, Redpanda, …), or not yet known.
    Other,
}

/// Configuration of one Kafka connection: broker, names, extra properties.
#[derive(Debug, Clone)]
pub struct Kafka {
    args: KafkaArgs,
    /// The saga's topic names.
    pub topics: Topics,
    broker: BrokerKind,
}

impl Kafka {
    /// Kafka settings from the command line, for a broker not yet asked who it is (it is
    /// treated as any broker: librdkafka's defaults).
    pub fn new(args: &KafkaArgs) -> Self {
        Self {
            topics: Topics::with_prefix(&args.topic_prefix),
            args: args.clone(),
            broker: BrokerKind::Other,
        }
    }

    /// Kafka settings from the command line, once the broker has answered: fails with an
    /// error that says what to start if it does not, and learns whether it is edm's own.
    pub async fn connect(args: &KafkaArgs) -> Result<Self, KafkaFailure> {
        let mut kafka = Self::new(args);
        kafka.check_reachable().await?;
        let admin = kafka.admin()?;
        let cluster_id = tokio::task::spawn_blocking(move || {
            admin
                .inner()
                .fetch_cluster_id(Timeout::After(METADATA_TIMEOUT))
        })
        .await
        .map_err(|join| KafkaFailure::Task(join.to_string()))?;
        if cluster_id
            .as_deref()
            .is_some_and(crate::broker::is_edm_cluster)
        {
            kafka.broker = BrokerKind::Edm;
        }
        Ok(kafka)
    }

    /// Which broker this is (known after [`Kafka::connect`]).
    pub fn broker(&self) -> BrokerKind {
        self.broker
    }

    /// The configured bootstrap servers.
    pub fn servers(&self) -> &str {
        &self.args.bootstrap_servers
    }

    /// A consumer group name of the original, behind the topic prefix.
    pub fn group(&self, name: &str) -> String {
        format!("{}{name}", self.args.topic_prefix)
    }

    fn base_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.args.bootstrap_servers);
        config
    }

    fn with_user_properties(&self, mut config: ClientConfig, role: Role) -> ClientConfig {
        for (key, value) in &self.args.properties {
            if role.accepts(key) {
                config.set(key, value);
            }
        }
        config
    }

    /// An idempotent producer (acks from all replicas, no duplicates on retry) that gives
    /// up on a message after 10 s, so that callers learn about an outage.
    pub fn producer(&self) -> Result<EventProducer, KafkaFailure> {
        self.producer_with_delivery_timeout(Duration::from_secs(10))
    }

    /// An idempotent producer that gives up on a message after `timeout`, with this
    /// default (overridable with `-X`):
    /// - `linger.ms=0`: every send is awaited before an offset commit, so waiting for a
    ///   batch to fill would only add latency. Records that queue up while a request is in
    ///   flight still leave together in one batch, up to 5 requests in flight per broker
    ///   (librdkafka's limit for an idempotent producer, which keeps each partition's order).
    ///
    /// On edm's own broker, `statistics.interval.ms=100` as well: how
    /// [`EventProducer::wait_ready`] learns that the producer has its id (see there).
    pub fn producer_with_delivery_timeout(
        &self,
        timeout: Duration,
    ) -> Result<EventProducer, KafkaFailure> {
        let mut config = self.base_config();
        config
            .set("enable.idempotence", "true")
            .set("linger.ms", "0")
            .set("message.timeout.ms", timeout.as_millis().to_string());
        let watch_id = self.broker == BrokerKind::Edm;
        if watch_id {
            config.set("statistics.interval.ms", "100");
        }
        let (context, ready) = EventContext::new();
        let producer: Arc<rdkafka::producer::BaseProducer<EventContext>> = Arc::new(
            self.with_user_properties(config, Role::Producer)
                .create_with_context(context)
                .map_err(KafkaFailure::Config)?,
        );
        let events = EventServer::start(producer.clone()).map_err(|error| {
            KafkaFailure::Task(format!("cannot start the producer's event thread: {error}"))
        })?;
        Ok(EventProducer {
            producer,
            _events: Arc::new(events),
            ready: watch_id.then_some(ready),
        })
    }

    /// A consumer in `group` (already prefixed) that commits only when told to and logs
    /// every partition assignment.
    pub fn consumer(&self, group: &str) -> Result<SagaConsumer, KafkaFailure> {
        self.consumer_reporting_ends(group, false)
    }

    /// A consumer for a tool that reads partitions once, up to their end: it reports
    /// `KafkaError::PartitionEOF` each time it reaches a partition's high watermark as the
    /// broker's fetch answers give it.
    pub fn reader(&self, group: &str) -> Result<SagaConsumer, KafkaFailure> {
        self.consumer_reporting_ends(group, true)
    }

    fn consumer_reporting_ends(
        &self,
        group: &str,
        partition_eof: bool,
    ) -> Result<SagaConsumer, KafkaFailure> {
        let mut config = self.base_config();
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            // Offsets are stored by hand once an event is fully handled, so that a commit
            // (also the final one at shutdown) never covers unfinished work.
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", partition_eof.to_string());
        let context = SagaContext {
            group: group.to_string(),
            on_assigned: self.args.on_assigned.clone(),
        };
        self.with_user_properties(config, Role::Consumer)
            .create_with_context(context)
            .map_err(KafkaFailure::Config)
    }
}

/// The consumers' type: a stream consumer with [`SagaContext`].
pub type SagaConsumer = StreamConsumer<SagaContext>;

/// Told the group name each time a consumer gets partitions (how `edm lab` knows its
/// consumers are ready before it places orders).
#[derive(Debug, Clone)]
pub struct AssignmentNotifier(pub tokio::sync::mpsc::UnboundedSender<String>);

/// Consumer callbacks: logs rebalances, so a student sees partitions move between
/// instances, and reports assignments to an optional [`AssignmentNotifier`].
pub struct SagaContext {
    group: String,
    on_assigned: Option<AssignmentNotifier>,
}

impl rdkafka::ClientContext for SagaContext {
    fn error(&self, error: KafkaError, reason: &str) {
        // A reader (`Kafka::reader`) asks to hear about the end of each partition: news,
        // not an error.
        if matches!(
            error,
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
        ) {
            return;
        }
        tracing::error!(target: "librdkafka", group = %self.group, "{error}: {reason}");
    }
}

impl ConsumerContext for SagaContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let describe = |list: &rdkafka::TopicPartitionList| {
            list.elements()
                .iter()
                .map(|e| format!("{}/{}", e.topic(), e.partition()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match rebalance {
            Rebalance::Assign(list) => {
                tracing::info!(group = %self.group, "partitions assigned: {}", describe(list));
                if let Some(notifier) = &self.on_assigned {
                    let _ = notifier.0.send(self.group.clone());
                }
            }
            Rebalance::Revoke(list) => {
                tracing::info!(group = %self.group, "partitions revoked: {}", describe(list));
            }
            Rebalance::Error(error) => {
                tracing::warn!(group = %self.group, %error, "rebalance failed")
            }
        }
    }
}

/// Which kind of client a `-X` property is applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Producer,
    Consumer,
    Admin,
}

/// Common properties that only consumers understand (librdkafka warns when a producer gets one).
const CONSUMER_ONLY: &[&str] = &[
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "fetch.wait.max.ms",
    "fetch.min.bytes",
    "fetch.max.bytes",
    "max.partition.fetch.bytes",
    "auto.offset.reset",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "group.instance.id",
    "isolation.level",
    "partition.assignment.strategy",
    "group.protocol",
];

/// Common properties that only producers understand.
const PRODUCER_ONLY: &[&str] = &[
    "linger.ms",
    "queue.buffering.max.ms",
    "acks",
    "request.required.acks",
    "batch.size",
    "batch.num.messages",
    "compression.type",
    "compression.codec",
    "enable.idempotence",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "retries",
    "queue.buffering.max.messages",
    "queue.buffering.max.kbytes",
    "transactional.id",
];

impl Role {
    fn accepts(self, key: &str) -> bool {
        match self {
            Role::Producer => !CONSUMER_ONLY.contains(&key),
            Role::Consumer => !PRODUCER_ONLY.contains(&key),
            Role::Admin => !CONSUMER_ONLY.contains(&key) && !PRODUCER_ONLY.contains(&key),
        }
    }
}
