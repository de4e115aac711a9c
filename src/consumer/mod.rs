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

mod backoff;
mod delivery;
mod step;

use std::time::Duration;

use futures_util::FutureExt;
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::BorrowedMessage;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

pub use backoff::Backoff;
use delivery::{Origin, dead_letter, send_in_order};
pub use step::{
    Incoming, Outgoing, STEP_CONCURRENCY, SagaStep, StepError, StepResult, only_result,
};

use crate::kafka::{ClusterHealth, Kafka, KafkaFailure, Record, SagaConsumer};

/// Why a loop stopped before it was told to.
#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    /// Kafka failed for good (a dead producer, a consumer that cannot be made).
    #[error(transparent)]
    Kafka(#[from] KafkaFailure),
    /// The step cannot go on ([`StepError::Fatal`]).
    #[error("{0}")]
    Step(String),
}

/// Most messages handled as one batch.
pub const MAX_BATCH: usize = 500;

/// Where a loop reads and what it does: consumer group (already prefixed), topic, step.
pub struct Loop<'a, S> {
    /// The consumer group, already prefixed (`Kafka::group`).
    pub group: String,
    /// The topic it reads.
    pub topic: &'a str,
    /// What it does with each message.
    pub step: S,
}

/// Runs a service's two loops side by side — its events (choreography) and its commands
/// (orchestration) — until `shutdown`. If one stops on an error, the other is stopped too,
/// so the service exits with it.
pub async fn run_both<A: SagaStep, B: SagaStep>(
    kafka: &Kafka,
    events: Loop<'_, A>,
    commands: Loop<'_, B>,
    shutdown: CancellationToken,
) -> Result<(), LoopError> {
    let stop = shutdown.child_token();
    let stopping = |result: Result<(), LoopError>| {
        stop.cancel();
        result
    };
    let (events, commands) = tokio::join!(
        async {
            stopping(
                run(
                    kafka,
                    &events.group,
                    events.topic,
                    events.step,
                    stop.clone(),
                )
                .await,
            )
        },
        async {
            stopping(
                run(
                    kafka,
                    &commands.group,
                    commands.topic,
                    commands.step,
                    stop.clone(),
                )
                .await,
            )
        },
    );
    events.and(commands)
}

/// Runs `step` on every event of `topic` in consumer group `group` until `shutdown`.
pub async fn run<S: SagaStep>(
    kafka: &Kafka,
    group: &str,
    topic: &str,
    step: S,
    shutdown: CancellationToken,
) -> Result<(), LoopError> {
    let (consumer, membership) = kafka.member(group)?;
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
    let instance = membership.as_ref().map(|m| m.instance_id.as_str());
    info!(topic, group, instance, "waiting for events");

    // Set when the loop ends on an error that no retry can fix.
    let mut stopped_by = None;
    loop {
        let batch = match next_batch(&consumer, &shutdown, kafka.health()).await {
            Next::Batch(batch) => batch,
            Next::Stop => break,
            Next::Replaced(how) => {
                stopped_by = Some(LoopError::Kafka(KafkaFailure::ClusterReplaced(how)));
                break;
            }
        };
        let started = std::time::Instant::now();
        let records = match handle_batch(&step, &batch, &shutdown).await {
            Ok(Some(records)) => records,
            Ok(None) => break, // shutting down mid-retry: left uncommitted, redelivered later
            Err(fatal) => {
                error!(topic, group, "{fatal}");
                stopped_by = Some(LoopError::Step(fatal));
                break;
            }
        };
        let handled = started.elapsed();
        let sent = records.len();
        match send_in_order(&producer, records, &shutdown).await {
            Ok(true) => {}
            Ok(false) => break,
            Err(fatal) => {
                error!(topic, group, "{fatal}");
                stopped_by = Some(LoopError::Kafka(fatal));
                break;
            }
        }
        debug!(group, events = batch.len(), sent, handled = ?handled, acknowledged = ?started.elapsed(),
               "batch done");
        commit(&consumer, &batch);
    }
    // Offsets of the old cluster committed to a new one would skip its first events.
    let commit_last = kafka.health().replaced_already().is_none();
    match commit_last {
        true => info!(topic, group, "stopping: committing offsets and flushing"),
        false => info!(
            topic,
            group, "stopping (nothing committed: the cluster is another)"
        ),
    }
    stop(consumer, group, &producer, commit_last).await;
    // A static member's close keeps its place for a restart; a stop gives it up.
    if let Some(membership) = membership
        && let Err(error) = membership.leave().await
    {
        warn!(group, instance = %membership.instance_id, "could not leave the group ({error}): its partitions move to the other instances once its session ends");
    }
    stopped_by.map_or(Ok(()), Err)
}

/// What the consumer has next.
enum Next<'a> {
    /// The next message, and whatever else is already fetched.
    Batch(Vec<BorrowedMessage<'a>>),
    /// Shutdown was asked for.
    Stop,
    /// The cluster was replaced ([`crate::kafka::ClusterHealth`]): what to say.
    Replaced(String),
}

/// The next batch: the next message, and whatever else is already fetched (up to
/// [`MAX_BATCH`]; nothing is waited for). A broker out of reach is said once by `health`,
/// not once per retry here.
async fn next_batch<'a>(
    consumer: &'a SagaConsumer,
    shutdown: &CancellationToken,
    health: &ClusterHealth,
) -> Next<'a> {
    let first = loop {
        let received = tokio::select! {
            _ = shutdown.cancelled() => return Next::Stop,
            how = health.replaced() => return Next::Replaced(how),
            received = consumer.recv() => received,
        };
        match received {
            Ok(message) => break message,
            Err(error) => {
                if ClusterHealth::is_unreachable(&error) {
                    debug!(%error, "Kafka receive failed; retrying in 1 s");
                } else {
                    warn!(%error, "Kafka receive failed; retrying in 1 s");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return Next::Stop,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match consumer.recv().now_or_never() {
            Some(Ok(message)) => batch.push(message),
            Some(Err(error)) => {
                if !ClusterHealth::is_unreachable(&error) {
                    warn!(%error, "Kafka receive failed");
                }
                break;
            }
            None => break,
        }
    }
    Next::Batch(batch)
}

/// Stores and commits the offsets of a batch that is done — only then, so that no commit
/// (the final one at shutdown included) ever covers an event still in hand.
fn commit(consumer: &SagaConsumer, batch: &[BorrowedMessage<'_>]) {
    for message in batch {
        if let Err(error) = consumer.store_offset_from_message(message) {
            let at = Origin::of(message);
            warn!(%error, %at, "offset not stored; the event may be redelivered (harmless)");
        }
    }
    if let Err(error) = consumer.commit_consumer_state(CommitMode::Async) {
        warn!(%error, "offset commit failed; the batch may be redelivered (harmless)");
    }
}

/// How long the final commit and the consumer's close may take before the stop goes on
/// without them. Both take milliseconds (a static member sends no LeaveGroup); but a close
/// that races a group join can hang for good: the join's rebalance event, served after the
/// group is torn down, waits for an answer that never comes (confluentinc/librdkafka#4884;
/// seen on Apache Kafka as a payment consumer stopped while it joined, and then deaf to
/// SIGTERM). Past this, the close is left to its thread; what it did not commit is
/// redelivered to the next member, which answers it as before.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// The final commit (of the stored offsets only: events fully handled), the consumer's
/// close and the producer's flush. librdkafka's commit and close block their thread for
/// up to seconds: off the runtime's workers, or an embedded broker on the same runtime
/// could not answer them (seen: every `edm lab` took 5 s per pair of consumers to stop).
/// A thread of its own, not `spawn_blocking`: a runtime waits for its blocking tasks when
/// it shuts down, so a close that never ends would keep the process from exiting.
async fn stop(
    consumer: SagaConsumer,
    group: &str,
    producer: &crate::kafka::EventProducer,
    commit_last: bool,
) {
    let span = tracing::Span::current();
    let (closed, done) = tokio::sync::oneshot::channel();
    let teardown = std::thread::Builder::new()
        .name("consumer close".into())
        .spawn(move || {
            let _service = span.enter();
            if commit_last {
                final_commit(&consumer);
            }
            drop(consumer);
            let _ = closed.send(());
        });
    match teardown {
        Err(error) => warn!(%error, "no thread to close the consumer in; left open"),
        Ok(_) => {
            if tokio::time::timeout(CLOSE_TIMEOUT, done).await.is_err() {
                warn!(
                    group,
                    "the Kafka consumer did not close within {CLOSE_TIMEOUT:?} (librdkafka \
                     can hang when a stop meets a group join); stopping without it"
                );
            }
        }
    }
    producer.flush(Duration::from_secs(5)).await;
}

/// Commits the stored offsets; nothing stored since the last commit is fine.
fn final_commit(consumer: &SagaConsumer) {
    if let Err(error) = consumer.commit_consumer_state(CommitMode::Sync)
        && !matches!(
            error.rdkafka_error_code(),
            Some(rdkafka::types::RDKafkaErrorCode::NoOffset)
        )
    {
        warn!(%error, "final offset commit failed; uncommitted events will be redelivered");
    }
}

/// Applies the step to a batch of messages, retrying server failures with backoff; returns
/// what to send (outgoing events and dead letters, in the batch's order), `None` if shut
/// down meanwhile, or the step's fatal error.
async fn handle_batch<S: SagaStep>(
    step: &S,
    batch: &[BorrowedMessage<'_>],
    shutdown: &CancellationToken,
) -> Result<Option<Vec<Record>>, String> {
    let origins: Vec<Origin> = batch.iter().map(Origin::of).collect();
    let parsed: Vec<Result<S::Message, String>> = batch
        .iter()
        .map(|m| S::Message::parse(m.payload()))
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
        let events: Vec<&S::Message> = pending
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
                Err(StepError::Fatal(problem)) => return Err(problem),
            }
        }
        if let Some((first, problem)) = failed.first() {
            let delay = backoff.next_delay();
            let tx = parsed[*first]
                .as_ref()
                .map(Incoming::transaction_id)
                .unwrap_or("");
            warn!(%tx, at = %origins[*first], failed = failed.len(),
                  "step failed, retrying in {delay:?}: {problem}");
            if !backoff.sleep(delay, shutdown).await {
                return Ok(None);
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
    Ok(Some(records))
}
