//! The producer: saga events keyed by `transaction_id`, sent one by one or pipelined in
//! order, each awaited until the broker acknowledges it.

use std::time::Duration;

use std::sync::Arc;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::util::Timeout;
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::KafkaFailure;
use super::events::{Delivered, EventContext, EventServer};
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
    pub(super) producer: Arc<BaseProducer<EventContext>>,
    /// Serves delivery reports; shared by the clones, stops with the last one.
    pub(super) _events: Arc<EventServer>,
    /// Whether the producer has its id (see [`EventContext`]); `None` when statistics are
    /// off, so there is no telling.
    pub(super) ready: Option<watch::Receiver<bool>>,
    /// The connection's health: a broker away has been said already.
    pub(super) health: super::ClusterHealth,
}

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
            if self.health.in_outage() {
                tracing::debug!("no producer id yet: the broker is away");
            } else {
                tracing::warn!(
                    "the Kafka producer has no producer id after {PRODUCER_ID_TIMEOUT:?}; going on (the first sends wait for it)"
                );
            }
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
                Ok(delivery) => delivery.await.unwrap_or(Err(KafkaError::Canceled)),
            };
            results.push(delivered.map_err(|detail| self.failure(&record.topic, detail)));
        }
        results
    }

    /// The fatal error that ended this producer, if one did: after it, every send fails.
    pub fn fatal_error(&self) -> Option<KafkaFailure> {
        self.producer
            .client()
            .fatal_error()
            .map(|(code, reason)| KafkaFailure::Fatal {
                reason: format!("{code:?}: {reason}"),
            })
    }

    /// Cancels `stop` (logging why, once) if this producer has failed fatally: it can never
    /// send again, so its service must end rather than take work it cannot pass on.
    pub fn stop_if_fatal(&self, stop: &CancellationToken) {
        if let Some(fatal) = self.fatal_error() {
            if !stop.is_cancelled() {
                tracing::error!("{fatal}");
            }
            stop.cancel();
        }
    }

    /// A failed delivery as a [`KafkaFailure`]: [`KafkaFailure::Fatal`] once the producer
    /// is dead, so that callers stop instead of retrying.
    fn failure(&self, topic: &str, detail: KafkaError) -> KafkaFailure {
        let fatal = detail.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal);
        match fatal.then(|| self.fatal_error()).flatten() {
            Some(fatal) => fatal,
            None => KafkaFailure::NotDelivered {
                topic: topic.to_string(),
                detail,
            },
        }
    }

    /// Makes the producer fail as librdkafka does on a fatal error (for tests: a broker
    /// cannot be asked to fence a producer on purpose).
    #[cfg(test)]
    pub(crate) fn inject_fatal_error(&self, reason: &str) {
        let reason = std::ffi::CString::new(reason).unwrap_or_default();
        // SAFETY: the client pointer is valid while `self.producer` lives; librdkafka copies
        // the reason.
        unsafe {
            rdkafka::bindings::rd_kafka_test_fatal_error(
                self.producer.client().native_ptr(),
                rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                reason.as_ptr(),
            );
        }
    }

    /// Puts `record` in the producer's queue, waiting (up to 10 s) while the queue is full.
    async fn enqueue(&self, record: &Record) -> Result<oneshot::Receiver<Delivered>, KafkaError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mut headers = rdkafka::message::OwnedHeaders::new();
            for (name, value) in &record.headers {
                headers = headers.insert(rdkafka::message::Header {
                    key: name,
                    value: Some(value.as_str()),
                });
            }
            let (delivered, delivery) = oneshot::channel();
            let mut base_record = BaseRecord::with_opaque_to(&record.topic, Box::new(delivered))
                .payload(&record.payload)
                .headers(headers);
            if let Some(key) = &record.key {
                base_record = base_record.key(key);
            }
            match self.producer.send(base_record) {
                Ok(()) => return Ok(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                    if tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err((error, _)) => return Err(error),
            }
        }
    }

    /// Waits until every queued message is delivered (used at shutdown). librdkafka's
    /// flush blocks its thread for up to `timeout`: it runs off the runtime's workers, so
    /// that nothing else on them (an embedded broker answering it, other services) waits.
    pub async fn flush(&self, timeout: Duration) {
        let producer = self.producer.clone();
        let flushed =
            tokio::task::spawn_blocking(move || producer.flush(Timeout::After(timeout))).await;
        match flushed {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "producer flush incomplete at shutdown"),
            Err(error) => tracing::warn!(%error, "producer flush failed"),
        }
    }
}
