//! What can go wrong talking to Kafka, each error saying which broker and what to do.

use rdkafka::error::KafkaError;

use crate::config::START_HINT;

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
    NotDelivered { topic: String, detail: KafkaError },
    /// The producer hit a fatal error (e.g. its idempotent sequence broken or the producer
    /// fenced): it can never send again, so retrying is pointless.
    #[error(
        "the Kafka producer failed for good ({reason}); it cannot send again, so edm stops: \
         start the service again (nothing is lost — what was not acknowledged is redelivered)"
    )]
    Fatal { reason: String },
    /// The broker restarted without its data: another cluster (the message says what to do).
    #[error("{0}")]
    ClusterReplaced(String),
    /// A background task of the client died.
    #[error("Kafka client task failed: {0}")]
    Task(String),
    /// A `-X` setting edm cannot work with (it says which, and what to use instead).
    #[error("{0}")]
    Unsupported(String),
    /// Creating a topic failed.
    #[error("cannot create topic `{topic}`: {reason}")]
    CreateTopic { topic: String, reason: String },
    /// Asked for fewer partitions than a topic has.
    #[error(
        "topic `{topic}` has {current} partitions, and Kafka cannot take partitions away: \
         ask for {current} or more (or leave out --partitions)"
    )]
    Shrink {
        topic: String,
        current: usize,
        wanted: usize,
    },
}
