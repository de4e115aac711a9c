//! The producer: saga events keyed by `transaction_id`, sent one by one or pipelined in
//! order, each awaited until the broker acknowledges it.

use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use tokio::sync::watch;

use super::KafkaFailure;
use crate::event::SagaEvent;

/// One message to send: where, its key, its bytes and its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Destination topic.
    pub topic: String,
    /// Message key (`transaction_id` for saga events, so a saga stays on one partition).
    pub key: Option<String>,
    /// Message value.
    pub payload: Vec<u8>,
    /// String headers (dead letters carry the error and the source position).
    pub headers: Vec<(String, String)>,
}

impl Record {
    /// A saga event for `topic`, keyed by its `transaction_id`.
    pub fn event(topic: &str, event: &SagaEvent) -> Self {
        Self {
            topic: topic.to_string(),
            key: Some(event.transaction_id.clone()),
            payload: event.to_payload(),
            headers: Vec::new(),
        }
    }
}

/// Sends saga events keyed by `transaction_id`, so all events of one saga stay in order on
/// one partition, and waits for the broker's acknowledgement.
#[derive(Clone)]
pub struct EventProducer {
    pub(super) producer: FutureProducer<ReadyContext>,
    /// Whether the producer has its id (see [`ReadyContext`]); `None` when statistics are
    /// off, so there is no telling.
    pub(super) ready: Option<watch::Receiver<bool>>,
}

/// Producer callbacks: tells when the idempotent producer has its producer id, from
/// librdkafka's statistics (`statistics.interval.ms`), so that a service can wait for it
/// before it takes work. Until then every record waits: librdkafka first asks for the id
/// 500 ms after the producer is created (a timer of its own, whatever the broker), so a
/// fresh producer's first record waits up to half a second. That matters where the first
/// saga's latency is on show — the lab on edm's own broker — and is why only there
/// producers pay for statistics.
pub struct ReadyContext {
    ready: watch::Sender<bool>,
}

impl ReadyContext {
    /// A context, and the receiver that learns when the producer is ready.
    pub(super) fn new() -> (Self, watch::Receiver<bool>) {
        let (ready, receiver) = watch::channel(false);
        (Self { ready }, receiver)
    }
}

impl ClientContext for ReadyContext {
    fn stats_raw(&self, statistics: &[u8]) {
        if *self.ready.borrow() {
            return;
        }
        let assigned = statistics
            .windows(IDEMP_STATE.len())
            .position(|w| w == IDEMP_STATE)
            .and_then(|at| statistics.get(at..(at + IDEMP_STATE.len() + 16)))
            .is_some_and(|around| around.windows(8).any(|w| w == b"Assigned"));
        if assigned {
            self.ready.send_replace(true);
        }
    }
}

/// The key of the idempotent producer's state in librdkafka's statistics.
const IDEMP_STATE: &[u8] = b"\"idemp_state\"";

impl EventProducer {
    /// Waits until the producer has its producer id, so that its first record is sent
    /// without delay; false if that took longer than `timeout` or cannot be told
    /// (statistics off).
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let Some(mut ready) = self.ready.clone() else {
            return false;
        };
        matches!(
            tokio::time::timeout(timeout, ready.wait_for(|ready| *ready)).await,
            Ok(Ok(_))
        )
    }

    /// Waits (up to 5 s) until the producer has its producer id, where that can be told,
    /// so that the first event a service sends is not held up by it; warns and goes on if
    /// that takes longer.
    pub async fn wait_for_id(&self) {
        const PRODUCER_ID_TIMEOUT: Duration = Duration::from_secs(5);
        if self.ready.is_some() && !self.wait_ready(PRODUCER_ID_TIMEOUT).await {
            tracing::warn!(
                "the Kafka producer has no producer id after {PRODUCER_ID_TIMEOUT:?}; going on (the first sends wait for it)"
            );
        }
    }

    /// Sends `event` to `topic` and waits until the broker has it.
    pub async fn send(&self, topic: &str, event: &SagaEvent) -> Result<(), KafkaFailure> {
        self.send_record(&Record::event(topic, event)).await
    }

    /// Sends raw bytes with an optional key and string headers (dead letters, tests).
    pub async fn send_raw(
        &self,
        topic: &str,
        key: Option<&str>,
        payload: &[u8],
        headers: &[(&str, &str)],
    ) -> Result<(), KafkaFailure> {
        self.send_record(&Record {
            topic: topic.to_string(),
            key: key.map(str::to_string),
            payload: payload.to_vec(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
        .await
    }

    /// Sends one record and waits until the broker has it.
    pub async fn send_record(&self, record: &Record) -> Result<(), KafkaFailure> {
        let mut results = self.send_all(std::slice::from_ref(record)).await;
        results.pop().unwrap_or(Ok(()))
    }

    /// Sends `records` pipelined — all queued in their order before any acknowledgement is
    /// awaited, so they travel in as few requests as the producer can make — and returns
    /// each one's result, in the same order. Records with the same key keep their order
    /// (idempotent producer).
    pub async fn send_all(&self, records: &[Record]) -> Vec<Result<(), KafkaFailure>> {
        let mut deliveries = Vec::with_capacity(records.len());
        for record in records {
            deliveries.push(self.enqueue(record).await);
        }
        let mut results = Vec::with_capacity(records.len());
        for (record, delivery) in records.iter().zip(deliveries) {
            let delivered = match delivery {
                Err(detail) => Err(detail),
                Ok(delivery) => match delivery.await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((detail, _))) => Err(detail),
                    Err(_) => Err(KafkaError::Canceled),
                },
            };
            results.push(delivered.map_err(|detail| KafkaFailure::NotDelivered {
                topic: record.topic.clone(),
                detail,
            }));
        }
        results
    }

    /// Puts `record` in the producer's queue, waiting (up to 10 s) while the queue is full.
    async fn enqueue(&self, record: &Record) -> Result<DeliveryFuture, KafkaError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mut headers = rdkafka::message::OwnedHeaders::new();
            for (name, value) in &record.headers {
                headers = headers.insert(rdkafka::message::Header {
                    key: name,
                    value: Some(value.as_str()),
                });
            }
            let mut future_record = FutureRecord::to(&record.topic)
                .payload(&record.payload)
                .headers(headers);
            if let Some(key) = &record.key {
                future_record = future_record.key(key);
            }
            match self.producer.send_result(future_record) {
                Ok(delivery) => return Ok(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                    if tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err((error, _)) => return Err(error),
            }
        }
    }

    /// Waits until every queued message is delivered (used at shutdown).
    pub fn flush(&self, timeout: Duration) {
        if let Err(error) = self.producer.flush(Timeout::After(timeout)) {
            tracing::warn!(%error, "producer flush incomplete at shutdown");
        }
    }
}
