//! What follows `payment.decisions` in the background: the reader that learns every
//! decision as it is made, and the events of the client that asks for the topic's ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::Message;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Decision, Known};
use crate::kafka::{ClusterHealth, SagaConsumer};

/// What the follower writes: the decisions by transaction, and whether one was lost.
pub(super) struct Memory {
    pub(super) known: Arc<Mutex<HashMap<String, Known>>>,
    pub(super) lost: Arc<Mutex<Option<String>>>,
}

impl Memory {
    /// Takes one record of the topic: a decision, or a record that cannot be one.
    fn take(&self, topic: &str, message: &rdkafka::message::BorrowedMessage<'_>) {
        let at = format!("{topic} {}@{}", message.partition(), message.offset());
        let decision = message
            .payload()
            .and_then(|payload| serde_json::from_slice::<Decision>(payload).ok());
        let key = message
            .key()
            .and_then(|key| std::str::from_utf8(key).ok())
            .map(str::to_string);
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        match (decision, key) {
            (Some(decision), _) => {
                known.insert(decision.transaction_id, Known::Answered(decision.accepted));
            }
            (None, Some(transaction_id)) => {
                tracing::error!(tx = %transaction_id, at, "a payment decision cannot be read: this transaction will not be decided again");
                known.insert(transaction_id, Known::Unreadable(at));
            }
            (None, None) => {
                tracing::error!(
                    at,
                    "a payment decision without a key cannot be read: no transaction can be decided any more"
                );
                *self.lost.lock().unwrap_or_else(|p| p.into_inner()) = Some(at);
            }
        }
    }
}

/// Serves the events of a client that reads no messages (errors, mostly) until
/// `shutdown`: unserved, they pile up for as long as the service runs, and all come out
/// at its stop (seen: 91 stale "all brokers down" lines after a 12 s outage).
pub(super) async fn serve_events(client: Arc<SagaConsumer>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            // Errors are told to the client's context as they are served; nothing else
            // comes to a client without partitions.
            _ = client.recv() => {}
        }
    }
}

/// Reads decisions as they come until `shutdown`, recording how far each partition is read.
pub(super) async fn follow(
    reader: Arc<SagaConsumer>,
    memory: Memory,
    progress: watch::Sender<HashMap<i32, i64>>,
    shutdown: CancellationToken,
) {
    loop {
        let received = tokio::select! {
            _ = shutdown.cancelled() => return,
            received = reader.recv() => received,
        };
        match received {
            Ok(message) => {
                memory.take(message.topic(), &message);
                let (partition, next) = (message.partition(), message.offset() + 1);
                progress.send_modify(|read| {
                    read.insert(partition, next);
                });
            }
            // The end of a partition: nothing to do (a decision is never deleted but by
            // compaction, which keeps the last record of a partition, so the offset after
            // the last record read is the partition's end).
            Err(rdkafka::error::KafkaError::PartitionEOF(_)) => {}
            Err(error) => {
                // An outage is said once, by the connection's health.
                if !ClusterHealth::is_unreachable(&error) {
                    tracing::warn!(%error, "reading the payment decisions failed; retrying in 1 s");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}
