//! Getting a batch's outcome to the broker: events that cannot be processed copied to the
//! dead-letter topic with where they came from, and every outgoing record sent in order
//! until acknowledged — or the consumer stopped if its producer is dead.

use rdkafka::Message;
use rdkafka::message::BorrowedMessage;
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use super::backoff::Backoff;
use crate::kafka::{EventProducer, KafkaFailure, Record, Topics};

/// Where a message came from, for logs and dead letters.
pub(super) struct Origin {
    topic: String,
    partition: i32,
    offset: i64,
    key: Option<String>,
}

impl Origin {
    pub(super) fn of(message: &BorrowedMessage<'_>) -> Self {
        Self {
            topic: message.topic().to_string(),
            partition: message.partition(),
            offset: message.offset(),
            key: message
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned()),
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}@{}", self.topic, self.partition, self.offset)
    }
}

pub(super) fn dead_letter(origin: &Origin, payload: Option<&[u8]>, problem: &str) -> Record {
    let dlq = Topics::dead_letter(&origin.topic);
    error!(at = %origin, dead_letter_topic = %dlq, "poison message: {problem}");
    Record {
        topic: dlq,
        key: origin.key.clone(),
        payload: payload.unwrap_or_default().to_vec(),
        headers: vec![
            ("edm.error".into(), problem.to_string()),
            ("edm.source.topic".into(), origin.topic.clone()),
            ("edm.source.partition".into(), origin.partition.to_string()),
            ("edm.source.offset".into(), origin.offset.to_string()),
        ],
    }
}

/// Sends `records` pipelined until the broker has acknowledged all of them; false if shut
/// down meanwhile. After a failure, everything from the first unacknowledged record on is
/// sent again, in order (a record sent twice is harmless: every step is idempotent), so a
/// saga's events never overtake each other. A producer that failed fatally is not retried:
/// that is an error, and the consumer stops with it.
pub(super) async fn send_in_order(
    producer: &EventProducer,
    mut records: Vec<Record>,
    shutdown: &CancellationToken,
) -> Result<bool, KafkaFailure> {
    let mut backoff = Backoff::default();
    while !records.is_empty() {
        let results = producer.send_all(&records).await;
        match results.iter().position(Result::is_err) {
            None => return Ok(true),
            Some(first) => {
                if let Some(fatal) = producer.fatal_error() {
                    return Err(fatal);
                }
                if let Some(Err(error)) = results.get(first) {
                    let delay = backoff.next_delay();
                    let topic = &records[first].topic;
                    if Topics::is_dead_letter(topic) {
                        error!(dead_letter_topic = %topic, %error,
                               "cannot write a dead letter to `{topic}`: if it does not exist (a broker that \
                                creates no topic by itself), create it with `edm create-topics`, which creates \
                                every dead-letter topic; retrying in {delay:?}, nothing is committed meanwhile");
                    } else {
                        warn!(%error, unsent = records.len() - first, "send failed, retrying in {delay:?}");
                    }
                    if !backoff.sleep(delay, shutdown).await {
                        return Ok(false);
                    }
                }
                records.drain(..first);
            }
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::kafka::Kafka;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_producer_that_failed_for_good_is_an_error_not_a_retry_forever() {
        use edm_broker::{Broker, BrokerConfig};
        let broker = Broker::start(&BrokerConfig::new(([127, 0, 0, 1], 0).into()))
            .await
            .expect("broker");
        let kafka = Kafka::new(&crate::config::KafkaArgs::new(broker.bootstrap_servers()));
        let producer = kafka.producer().expect("producer");
        let record = Record {
            topic: "fatal-test".into(),
            key: Some("k".into()),
            payload: b"{}".to_vec(),
            headers: Vec::new(),
        };
        let shutdown = CancellationToken::new();
        assert!(matches!(
            send_in_order(&producer, vec![record.clone()], &shutdown).await,
            Ok(true)
        ));

        producer.inject_fatal_error("injected by the test");
        // Would retry with backoff forever without the check (the guard fails the test
        // after 20 s instead of hanging).
        let sent = tokio::time::timeout(
            Duration::from_secs(20),
            send_in_order(&producer, vec![record], &shutdown),
        )
        .await
        .expect("gave up instead of retrying forever");
        match sent {
            Err(KafkaFailure::Fatal { reason }) => {
                assert!(reason.contains("injected by the test"), "{reason}")
            }
            other => panic!("expected a fatal error, got {other:?}"),
        }
    }
}
