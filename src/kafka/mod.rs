//! Kafka plumbing shared by the services. This file makes the clients ([`Kafka`]: client
//! configuration, group names); the rest is one concern per file: [`topics`] (names),
//! [`error`] (what goes wrong), `producer` and `events` (sending, delivery reports),
//! `context` (consumer callbacks), `admin` (topic creation), `properties` (`-X`).
//!
//! On any broker, librdkafka's defaults stand except where `edm` needs a setting for
//! correctness (idempotence, offsets stored by hand) or the course asks for it (reading
//! from the earliest offset); `-X key=value` overrides any of them. On edm's own broker
//! ([`crate::broker`], recognised by its cluster id) producers also report librdkafka's
//! statistics, so that a service can wait for its producer id before it takes work.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::BaseConsumer;
use rdkafka::util::Timeout;

use crate::config::KafkaArgs;

mod admin;
mod context;
pub mod error;
mod events;
mod health;
mod membership;
mod partitioner;
mod producer;
mod properties;
pub mod topics;

pub use admin::{TopicChange, TopicInfo};
pub use context::{AssignmentNotifier, Owned, SagaConsumer, SagaContext};
pub use error::KafkaFailure;
use events::{EventContext, EventServer};
pub use health::ClusterHealth;
pub use membership::Membership;
pub use partitioner::Partitioner;
pub use producer::{EventProducer, Record};
use properties::Role;
pub use topics::Topics;

/// Milliseconds since the epoch (the clock Kafka's message timestamps use).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Adds every partition of `topic`, each at its beginning, to `assignment`, as `client`
/// finds them in the broker's metadata (blocking, up to [`METADATA_TIMEOUT`]): what a
/// reader of whole topics assigns itself (`edm trace`, the payment decisions' follower,
/// the web view, the drills).
pub fn add_whole_topic(
    client: &SagaConsumer,
    topic: &str,
    assignment: &mut rdkafka::TopicPartitionList,
) -> Result<(), rdkafka::error::KafkaError> {
    use rdkafka::consumer::Consumer;
    let metadata = client.fetch_metadata(Some(topic), METADATA_TIMEOUT)?;
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        assignment.add_partition_offset(topic, partition.id(), rdkafka::Offset::Beginning)?;
    }
    Ok(())
}

/// How long a metadata request may take before the broker counts as unreachable.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// Told of every consumer's assignments (`edm lab`'s readiness check).
    on_assigned: Option<AssignmentNotifier>,
    /// Kept up to date with the partitions its consumers own (the orchestrator's watch).
    owned: Option<Owned>,
    /// Whether the services' consumers join as static members ([`Membership`]).
    static_members: bool,
    /// Outages and a replaced cluster, as every client of this connection saw them.
    health: ClusterHealth,
}

impl Kafka {
    /// Kafka settings from the command line, for a broker not yet asked who it is (it is
    /// treated as any broker: librdkafka's defaults).
    pub fn new(args: &KafkaArgs) -> Self {
        Self {
            topics: Topics::with_prefix(&args.topic_prefix),
            args: args.clone(),
            broker: BrokerKind::Other,
            on_assigned: None,
            owned: None,
            static_members: true,
            health: ClusterHealth::new(&args.bootstrap_servers),
        }
    }

    /// What its clients saw of the cluster: outages, or the cluster replaced.
    pub fn health(&self) -> &ClusterHealth {
        &self.health
    }

    /// The same, with every consumer it creates reporting its assignments to `notifier`
    /// (how `edm lab` knows that its consumers are ready before it places orders).
    pub fn reporting_assignments_to(mut self, notifier: AssignmentNotifier) -> Self {
        self.on_assigned = Some(notifier);
        self
    }

    /// The same, with the services' consumers joining as dynamic members: `edm lab`'s
    /// groups live for one run, so no instance ever rejoins, and no slot is kept on the
    /// machine for them.
    pub fn with_dynamic_members(mut self) -> Self {
        self.static_members = false;
        self
    }

    /// The same, with its consumers keeping `owned` up to date with their partitions.
    pub fn tracking_partitions_in(mut self, owned: Owned) -> Self {
        self.owned = Some(owned);
        self
    }

    /// The producers' partitioner (`-X partitioner`, else librdkafka's default); `None`
    /// if it is one edm cannot compute.
    pub fn partitioner(&self) -> Option<Partitioner> {
        match self
            .args
            .kafka_properties()
            .filter(|(k, _)| k == "partitioner")
            .last()
        {
            Some((_, name)) => Partitioner::named(name),
            None => Some(Partitioner::DEFAULT),
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
            .is_some_and(edm_broker::is_edm_cluster)
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
        for (key, value) in self.args.kafka_properties() {
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
        let (context, ready) = EventContext::new(self.health.clone());
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
            health: self.health.clone(),
        })
    }

    /// A consumer in `group` (already prefixed) that commits only when told to and logs
    /// every partition assignment.
    pub fn consumer(&self, group: &str) -> Result<SagaConsumer, KafkaFailure> {
        self.consumer_configured(self.base_config(), group, false)
    }

    /// The consumer of a service's loop in `group`: a static member of the group (see
    /// [`Membership`]), which a restart gets back its partitions with at once.
    pub fn member(&self, group: &str) -> Result<(SagaConsumer, Option<Membership>), KafkaFailure> {
        let membership = self.static_members.then(|| Membership::claim(self, group));
        let mut config = self.base_config();
        if let Some(membership) = &membership {
            config.set("group.instance.id", &membership.instance_id);
        }
        let consumer = self.consumer_configured(config, group, false)?;
        Ok((consumer, membership))
    }

    /// A client of `group` that never joins it: what the group has committed, and where
    /// partitions end, asked without disturbing its members.
    pub fn group_reader(&self, group: &str) -> Result<BaseConsumer, KafkaFailure> {
        let mut config = self.base_config();
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false");
        self.with_user_properties(config, Role::Consumer)
            .create()
            .map_err(KafkaFailure::Config)
    }

    /// A consumer that reports `KafkaError::PartitionEOF` each time it reaches a partition's
    /// high watermark as the broker's fetch answers give it (the payment decisions'
    /// follower, which must know when it has read everything there is).
    pub fn reader(&self, group: &str) -> Result<SagaConsumer, KafkaFailure> {
        self.consumer_configured(self.base_config(), group, true)
    }

    /// A [`Self::reader`] for one pass to the partitions' ends (`edm trace`, the lab's
    /// timelines). Its fetches wait at most 50 ms for data: a reader learns that it reached
    /// a partition's end from a fetch answer, which a broker holds for up to the wait when
    /// there is nothing new (librdkafka's default, 500 ms, made `edm trace` take 1.8 s);
    /// and a consumer's close waits for its fetch in flight. `-X` still overrides it.
    pub fn one_pass_reader(&self, group: &str) -> Result<SagaConsumer, KafkaFailure> {
        let mut config = self.base_config();
        config.set("fetch.wait.max.ms", "50");
        self.consumer_configured(config, group, true)
    }

    /// `config` plus what every edm consumer has: manual offsets, the course's
    /// `auto.offset.reset`, and the user's `-X` last.
    fn consumer_configured(
        &self,
        mut config: ClientConfig,
        group: &str,
        partition_eof: bool,
    ) -> Result<SagaConsumer, KafkaFailure> {
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            // Offsets are stored by hand once an event is fully handled, so that a commit
            // (also the final one at shutdown) never covers unfinished work.
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", partition_eof.to_string());
        let context = SagaContext::new(
            group,
            self.on_assigned.clone(),
            self.owned.clone(),
            self.health.clone(),
        );
        self.with_user_properties(config, Role::Consumer)
            .create_with_context(context)
            .map_err(KafkaFailure::Config)
    }
}
