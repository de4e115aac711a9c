//! The loop every saga consumer runs: take what a poll returns as a batch, apply the step
//! to the batch, send what it produces (pipelined), and only then commit the offsets.
//!
//! - A batch is every message the consumer has ready, up to [`MAX_BATCH`]; under light
//!   load it is one message, so latency stays one round trip per hop. Events of one
//!   `transaction_id` are applied in their order; distinct sagas may run concurrently (see
//!   [`SagaStep::handle_batch`]). Outgoing events are sent in the batch's order.
//! - An event that cannot be processed (not JSON, missing fields, a status this step does
//!   not handle) is a *poison* message: it is logged with topic/partition/offset, copied to
//!   the dead-letter topic `<topic>.dlq` with the error in its headers, and committed, so the
//!   consumer keeps going.
//! - A server that fails (MySQL, DynamoDB, Kafka) makes the failed events retry with
//!   backoff; no offset of the batch is stored until all its events and their outgoing
//!   events are done.
//! - A producer that failed fatally (librdkafka's idempotence broken, the producer fenced)
//!   cannot send again: the loop stops and returns the error, the batch in hand uncommitted
//!   (redelivered to the next run), so the service exits non-zero instead of retrying a dead
//!   producer forever.
//! - On shutdown the loop stops taking new events, finishes or abandons (uncommitted) the
//!   batch in hand, commits and flushes.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::BorrowedMessage;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::event::SagaEvent;
use crate::kafka::{EventProducer, Kafka, KafkaFailure, Record, Topics};

/// Most messages handled as one batch.
pub const MAX_BATCH: usize = 500;

/// Most sagas of one batch a step's default [`SagaStep::handle_batch`] runs at once.
pub const STEP_CONCURRENCY: usize = 64;

/// A record to send once the step is applied: an event of the saga ([`Record::event`]),
/// or a record of the step's own (the payment consumer's decisions).
pub type Outgoing = Record;

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

/// What a step did with one event.
pub type StepResult = Result<Vec<Outgoing>, StepError>;

/// One consumer's business logic: what to do with an event from its topic.
pub trait SagaStep: Send + Sync {
    /// Applies the step to `event`; returns the events to send on.
    fn handle(&self, event: &SagaEvent) -> impl Future<Output = StepResult> + Send;

    /// Applies the step to a batch; returns one result per event, in the same order.
    ///
    /// The default runs the events of one `transaction_id` one after the other, and up to
    /// [`STEP_CONCURRENCY`] sagas at once. After an event that must be retried, the later
    /// events of the same saga are not run (they are retried after it).
    fn handle_batch(&self, events: &[&SagaEvent]) -> impl Future<Output = Vec<StepResult>> + Send {
        async move {
            let mut sagas: Vec<Vec<usize>> = Vec::new();
            let mut saga_of: HashMap<&str, usize> = HashMap::new();
            for (index, event) in events.iter().enumerate() {
                let saga = *saga_of
                    .entry(event.transaction_id.as_str())
                    .or_insert_with(|| {
                        sagas.push(Vec::new());
                        sagas.len() - 1
                    });
                sagas[saga].push(index);
            }
            let done: Vec<Vec<(usize, StepResult)>> = futures_util::stream::iter(sagas)
                .map(|indices| async move {
                    let mut results = Vec::with_capacity(indices.len());
                    let mut blocked = false;
                    for index in indices {
                        let result = match blocked {
                            true => Err(StepError::Retry(
                                "an earlier event of this saga is being retried".into(),
                            )),
                            false => self.handle(events[index]).await,
                        };
                        blocked |= matches!(result, Err(StepError::Retry(_)));
                        results.push((index, result));
                    }
                    results
                })
                .buffer_unordered(STEP_CONCURRENCY)
                .collect()
                .await;
            let mut ordered: Vec<Option<StepResult>> = events.iter().map(|_| None).collect();
            for (index, result) in done.into_iter().flatten() {
                ordered[index] = Some(result);
            }
            ordered
                .into_iter()
                .map(|r| r.unwrap_or_else(|| Err(StepError::Retry("not run".into()))))
                .collect()
        }
    }
}

/// Where a message came from, for logs and dead letters.
struct Origin {
    topic: String,
    partition: i32,
    offset: i64,
    key: Option<String>,
}

impl Origin {
    fn of(message: &BorrowedMessage<'_>) -> Self {
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
    tokio::select! {
        _ = producer.wait_for_id() => {}
        _ = shutdown.cancelled() => return Ok(()),
    }
    consumer
        .subscribe(&[topic])
        .map_err(|detail| KafkaFailure::Unreachable {
            servers: kafka.servers().to_string(),
            detail,
        })?;
    info!(topic, group, "waiting for events");

    // Set when the loop ends on an error that no retry can fix.
    let mut stopped_by = None;
    loop {
        let received = tokio::select! {
            _ = shutdown.cancelled() => break,
            received = consumer.recv() => received,
        };
        let mut batch = match received {
            Ok(message) => vec![message],
            Err(error) => {
                warn!(%error, "Kafka receive failed; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // Whatever else is already fetched joins the batch; nothing is waited for.
        while batch.len() < MAX_BATCH {
            match consumer.recv().now_or_never() {
                Some(Ok(message)) => batch.push(message),
                Some(Err(error)) => {
                    warn!(%error, "Kafka receive failed");
                    break;
                }
                None => break,
            }
        }
        let started = std::time::Instant::now();
        let Some(records) = handle_batch(&step, &batch, &shutdown).await else {
            break; // shutting down mid-retry: left uncommitted, redelivered later
        };
        let handled = started.elapsed();
        let sent = records.len();
        match send_in_order(&producer, records, &shutdown).await {
            Ok(true) => {}
            Ok(false) => break,
            Err(fatal) => {
                error!(topic, group, "{fatal}");
                stopped_by = Some(fatal);
                break;
            }
        }
        debug!(group, events = batch.len(), sent, handled = ?handled, acknowledged = ?started.elapsed(),
               "batch done");
        // Only now is the batch done: store its offsets, so that no commit (the final one
        // at shutdown included) ever covers an event still in hand.
        for message in &batch {
            if let Err(error) = consumer.store_offset_from_message(message) {
                let at = Origin::of(message);
                warn!(%error, %at, "offset not stored; the event may be redelivered (harmless)");
            }
        }
        if let Err(error) = consumer.commit_consumer_state(CommitMode::Async) {
            warn!(%error, "offset commit failed; the batch may be redelivered (harmless)");
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
    stopped_by.map_or(Ok(()), Err)
}

/// Applies the step to a batch of messages, retrying server failures with backoff; returns
/// what to send (outgoing events and dead letters, in the batch's order), or `None` if shut
/// down meanwhile.
async fn handle_batch<S: SagaStep>(
    step: &S,
    batch: &[BorrowedMessage<'_>],
    shutdown: &CancellationToken,
) -> Option<Vec<Record>> {
    let origins: Vec<Origin> = batch.iter().map(Origin::of).collect();
    let parsed: Vec<Result<SagaEvent, String>> = batch
        .iter()
        .map(|m| SagaEvent::from_payload(m.payload()).map_err(|e| e.to_string()))
        .collect();
    let mut outcomes: Vec<Option<Result<Vec<Outgoing>, String>>> = parsed
        .iter()
        .map(|p| p.as_ref().err().map(|problem| Err(problem.clone())))
        .collect();
    let mut backoff = Backoff::default();
    loop {
        let pending: Vec<usize> = (0..batch.len())
            .filter(|&i| outcomes[i].is_none())
            .collect();
        let events: Vec<&SagaEvent> = pending
            .iter()
            .filter_map(|&i| parsed[i].as_ref().ok())
            .collect();
        if events.is_empty() {
            break;
        }
        let results = step.handle_batch(&events).await;
        let mut failed = Vec::new();
        for (&i, result) in pending.iter().zip(results) {
            match result {
                Ok(outgoing) => outcomes[i] = Some(Ok(outgoing)),
                Err(StepError::Poison(problem)) => outcomes[i] = Some(Err(problem)),
                Err(StepError::Retry(problem)) => failed.push((i, problem)),
            }
        }
        if let Some((first, problem)) = failed.first() {
            let delay = backoff.next_delay();
            let tx = parsed[*first]
                .as_ref()
                .map(|e| e.transaction_id.as_str())
                .unwrap_or("");
            warn!(%tx, at = %origins[*first], failed = failed.len(),
                  "step failed, retrying in {delay:?}: {problem}");
            if !backoff.sleep(delay, shutdown).await {
                return None;
            }
        }
    }
    let mut records = Vec::new();
    for ((outcome, origin), message) in outcomes.into_iter().zip(&origins).zip(batch) {
        match outcome {
            Some(Ok(outgoing)) => records.extend(outgoing),
            Some(Err(problem)) => records.push(dead_letter(origin, message.payload(), &problem)),
            None => {}
        }
    }
    Some(records)
}

fn dead_letter(origin: &Origin, payload: Option<&[u8]>, problem: &str) -> Record {
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
async fn send_in_order(
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

    /// Records the order events are applied in; fails (retry) the event whose
    /// `transaction_id` and `user_id` are `fail`.
    struct Recorder {
        applied: std::sync::Mutex<Vec<String>>,
        fail: (&'static str, &'static str),
    }

    impl SagaStep for Recorder {
        async fn handle(&self, event: &SagaEvent) -> StepResult {
            // Later sagas finish first, so that only per-saga order can hold.
            let delay = if event.transaction_id == "a" { 5 } else { 0 };
            tokio::time::sleep(Duration::from_millis(delay)).await;
            let name = format!("{}{}", event.transaction_id, event.order.user_id);
            if (event.transaction_id.as_str(), event.order.user_id.as_str()) == self.fail {
                return Err(StepError::Retry("down".into()));
            }
            self.applied.lock().map(|mut a| a.push(name)).ok();
            Ok(Vec::new())
        }
    }

    fn event(tx: &str, n: &str) -> SagaEvent {
        SagaEvent::from_payload(Some(
            format!(
                r#"{{"order":{{"user_id":"{n}","name":"","addr":"","tel":"","email":""}},
                    "inventory":{{"id":1,"quantity":1}},"transaction_id":"{tx}",
                    "status":"ORDER_CREATED"}}"#
            )
            .as_bytes(),
        ))
        .expect("event")
    }

    #[tokio::test]
    async fn a_batch_keeps_each_sagas_order_and_stops_a_saga_at_its_retry() {
        let events = [
            event("a", "1"),
            event("b", "1"),
            event("a", "2"),
            event("b", "2"),
            event("a", "3"),
            event("b", "3"),
        ];
        let refs: Vec<&SagaEvent> = events.iter().collect();
        let step = Recorder {
            applied: Default::default(),
            fail: ("b", "2"),
        };
        let results = step.handle_batch(&refs).await;

        let outcome: Vec<&str> = results
            .iter()
            .map(|r| match r {
                Ok(_) => "ok",
                Err(StepError::Retry(_)) => "retry",
                Err(StepError::Poison(_)) => "poison",
            })
            .collect();
        // b2 failed, so b3 was not run; saga a is unaffected.
        assert_eq!(outcome, ["ok", "ok", "ok", "retry", "ok", "retry"]);
        let applied = step.applied.lock().map(|a| a.clone()).unwrap_or_default();
        let of = |saga: char| -> Vec<&str> {
            applied
                .iter()
                .filter(|n| n.starts_with(saga))
                .map(String::as_str)
                .collect()
        };
        assert_eq!(of('a'), ["a1", "a2", "a3"]);
        assert_eq!(of('b'), ["b1"]);
        // The sagas ran concurrently: b finished before a's first (delayed) event.
        assert_eq!(applied.first().map(String::as_str), Some("b1"));
    }

    #[test]
    fn backoff_doubles_up_to_ten_seconds() {
        let mut backoff = Backoff::default();
        let delays: Vec<_> = (0..8).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, [200, 400, 800, 1600, 3200, 6400, 10000, 10000]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_producer_that_failed_for_good_is_an_error_not_a_retry_forever() {
        use crate::broker::{Broker, BrokerConfig};
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
