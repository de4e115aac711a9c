//! The loop every saga consumer runs: receive an event, apply the step, send what it
//! produces, and only then commit the offset.
//!
//! - An event that cannot be processed (not JSON, missing fields, a status this step does
//!   not handle) is a *poison* message: it is logged with topic/partition/offset, copied to
//!   the dead-letter topic `<topic>.dlq` with the error in its headers, and committed, so the
//!   consumer keeps going.
//! - A server that fails (MySQL, DynamoDB, Kafka) makes the step retry with backoff; the
//!   offset is not committed until the step and its outgoing events are done.
//! - On shutdown the loop stops taking new events, finishes or abandons (uncommitted) the
//!   one in hand, commits and flushes.

use std::future::Future;
use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::event::SagaEvent;
use crate::kafka::{EventProducer, Kafka, KafkaFailure, Topics};

/// An event to send to a topic once the step is applied.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Destination topic.
    pub topic: String,
    /// The event.
    pub event: SagaEvent,
}

/// Why a step did not produce its outgoing events.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The event can never be processed: dead-letter it and move on.
    #[error("{0}")]
    Poison(String),
    /// A server failed: retry the same event later.
    #[error("{0}")]
    Retry(String),
}

/// One consumer's business logic: what to do with an event from its topic.
pub trait SagaStep: Send + Sync {
    /// Applies the step to `event`; returns the events to send on.
    fn handle(
        &self,
        event: &SagaEvent,
    ) -> impl Future<Output = Result<Vec<Outgoing>, StepError>> + Send;
}

/// Where a message came from, for logs and dead letters.
struct Origin {
    topic: String,
    partition: i32,
    offset: i64,
    key: Option<String>,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}@{}", self.topic, self.partition, self.offset)
    }
}

/// Runs `step` on every event of `topic` in consumer group `group` until `shutdown`.
pub async fn run<S: SagaStep>(
    kafka: &Kafka,
    group: &str,
    topic: &str,
    step: S,
    shutdown: CancellationToken,
) -> Result<(), KafkaFailure> {
    let consumer = kafka.consumer(group)?;
    let producer = kafka.producer()?;
    consumer
        .subscribe(&[topic])
        .map_err(|detail| KafkaFailure::Unreachable {
            servers: kafka.servers().to_string(),
            detail,
        })?;
    info!(topic, group, "waiting for events");

    loop {
        let received = tokio::select! {
            _ = shutdown.cancelled() => break,
            received = consumer.recv() => received,
        };
        let message = match received {
            Ok(message) => message,
            Err(error) => {
                warn!(%error, "Kafka receive failed; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let origin = Origin {
            topic: message.topic().to_string(),
            partition: message.partition(),
            offset: message.offset(),
            key: message
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned()),
        };
        let payload = message.payload();
        let outgoing = match SagaEvent::from_payload(payload) {
            Err(problem) => vec![dead_letter(&origin, payload, &problem.to_string())],
            Ok(event) => match handle_with_retry(&step, &event, &origin, &shutdown).await {
                Some(Ok(outgoing)) => outgoing
                    .into_iter()
                    .map(|o| ToSend::Event(Box::new(o)))
                    .collect(),
                Some(Err(problem)) => vec![dead_letter(&origin, payload, &problem)],
                None => break, // shutting down mid-retry: left uncommitted, redelivered later
            },
        };
        if !send_all(&producer, &outgoing, &shutdown).await {
            break;
        }
        // Only now is the event done: store its offset, so that no commit (the final one at
        // shutdown included) ever covers an event still in hand.
        if let Err(error) = consumer.store_offset_from_message(&message) {
            warn!(%error, at = %origin, "offset not stored; the event may be redelivered (harmless)");
        } else if let Err(error) = consumer.commit_consumer_state(CommitMode::Async) {
            warn!(%error, at = %origin, "offset commit failed; the event may be redelivered (harmless)");
        }
    }

    info!(topic, group, "stopping: committing offsets and flushing");
    // Commits the stored offsets only: events fully handled.
    if let Err(error) = consumer.commit_consumer_state(CommitMode::Sync) {
        // NoOffset just means nothing was consumed since the last commit.
        if !matches!(
            error.rdkafka_error_code(),
            Some(rdkafka::types::RDKafkaErrorCode::NoOffset)
        ) {
            warn!(%error, "final offset commit failed; uncommitted events will be redelivered");
        }
    }
    producer.flush(Duration::from_secs(5));
    Ok(())
}

/// What the loop sends after a message: the step's events or a dead letter.
enum ToSend {
    Event(Box<Outgoing>),
    DeadLetter {
        topic: String,
        key: Option<String>,
        payload: Vec<u8>,
        headers: Vec<(&'static str, String)>,
    },
}

fn dead_letter(origin: &Origin, payload: Option<&[u8]>, problem: &str) -> ToSend {
    let dlq = Topics::dead_letter(&origin.topic);
    error!(at = %origin, dead_letter_topic = %dlq, "poison message: {problem}");
    ToSend::DeadLetter {
        topic: dlq,
        key: origin.key.clone(),
        payload: payload.unwrap_or_default().to_vec(),
        headers: vec![
            ("edm.error", problem.to_string()),
            ("edm.source.topic", origin.topic.clone()),
            ("edm.source.partition", origin.partition.to_string()),
            ("edm.source.offset", origin.offset.to_string()),
        ],
    }
}

/// Applies the step, retrying server failures with backoff; `None` if shut down meanwhile.
async fn handle_with_retry<S: SagaStep>(
    step: &S,
    event: &SagaEvent,
    origin: &Origin,
    shutdown: &CancellationToken,
) -> Option<Result<Vec<Outgoing>, String>> {
    let mut backoff = Backoff::default();
    loop {
        match step.handle(event).await {
            Ok(outgoing) => return Some(Ok(outgoing)),
            Err(StepError::Poison(problem)) => return Some(Err(problem)),
            Err(StepError::Retry(problem)) => {
                let delay = backoff.next_delay();
                warn!(tx = %event.transaction_id, at = %origin, "step failed, retrying in {delay:?}: {problem}");
                if !backoff.sleep(delay, shutdown).await {
                    return None;
                }
            }
        }
    }
}

/// Sends every event, retrying until the broker acknowledges; false if shut down meanwhile.
async fn send_all(
    producer: &EventProducer,
    items: &[ToSend],
    shutdown: &CancellationToken,
) -> bool {
    for item in items {
        let mut backoff = Backoff::default();
        loop {
            let sent = match item {
                ToSend::Event(outgoing) => producer.send(&outgoing.topic, &outgoing.event).await,
                ToSend::DeadLetter {
                    topic,
                    key,
                    payload,
                    headers,
                } => {
                    let headers: Vec<(&str, &str)> =
                        headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                    producer
                        .send_raw(topic, key.as_deref(), payload, &headers)
                        .await
                }
            };
            match sent {
                Ok(()) => break,
                Err(error) => {
                    let delay = backoff.next_delay();
                    warn!(%error, "send failed, retrying in {delay:?}");
                    if !backoff.sleep(delay, shutdown).await {
                        return false;
                    }
                }
            }
        }
    }
    true
}

/// Exponential backoff from 200 ms up to 10 s.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            next: Duration::from_millis(200),
        }
    }
}

impl Backoff {
    /// The delay before the next attempt (doubling each time, at most 10 s).
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(10));
        delay
    }

    /// Sleeps `delay`; false if `shutdown` fired first.
    pub async fn sleep(&self, delay: Duration, shutdown: &CancellationToken) -> bool {
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = tokio::time::sleep(delay) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_ten_seconds() {
        let mut backoff = Backoff::default();
        let delays: Vec<_> = (0..8).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, [200, 400, 800, 1600, 3200, 6400, 10000, 10000]);
    }
}
