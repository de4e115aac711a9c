//! The orchestrator's timeout watch: a saga whose step got no reply within
//! `--step-timeout` gets the timeout policy of [`crate::orchestration::saga`] (its
//! commands sent again, or compensation).
//!
//! A timeout is judged only on what has been read. Replies are keyed by transaction id,
//! so each saga's replies travel on one partition of `order-saga.replies`; a round:
//! 1. notes the time T and the reply partitions this orchestrator owns (none: it judges
//!    nothing — just started, or its partitions are with another instance);
//! 2. asks the broker for each owned partition's end at T, and waits (up to a round's
//!    period) until the group's committed offset there has reached it: every reply
//!    written before T has then been handled;
//! 3. times out only sagas whose step began before T − step timeout, whose reply
//!    partition was caught up, and only if no partition changed owner meanwhile.
//!
//! A reply that existed before T moved its saga before step 3 reads the sagas; one
//! written after T came later than the step timeout. So a restarted orchestrator, or one
//! that waits for its partitions, never cancels a saga whose participants answered in
//! time, and several orchestrators split the timeouts as they split the replies.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Orchestrator;
use crate::kafka::{EventProducer, Kafka, KafkaFailure, Owned, Partitioner};
use crate::store::orders::OrderStoreError;

/// How long a round waits for the reply loop to catch up with the partitions' ends.
const CATCH_UP: Duration = Duration::from_secs(1);

/// Reply partitions read to their end as of a moment, and how many partitions the topic
/// has (to place each saga's replies).
struct Judged {
    caught_up: BTreeSet<i32>,
    partitions: i32,
    at: chrono::DateTime<chrono::Utc>,
}

/// What the watch needs besides the orchestrator: where replies are read, and who owns
/// which partition of them.
pub struct TimeoutWatch {
    pub orchestrator: Orchestrator,
    pub kafka: Kafka,
    /// The reply loop's consumer group.
    pub group: String,
    /// The partitions the reply loop owns.
    pub owned: Owned,
    pub step_timeout: Duration,
    /// Sagas already reported as unreadable (each is reported once).
    pub unreadable: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// What the watch works with. Made before the orchestrator reads its first reply, so that
/// a watch that cannot run ends the orchestrator before it joins its group (a consumer
/// closed while its first assignment arrives can hang in librdkafka).
pub struct Tools {
    producer: EventProducer,
    ends: Arc<BaseConsumer>,
    partitioner: Partitioner,
}

impl TimeoutWatch {
    /// The watch's producer, its reader of the reply partitions' ends, and the
    /// partitioner that tells which reply partition holds a saga's replies.
    pub fn tools(&self) -> Result<Tools, KafkaFailure> {
        let partitioner = self.kafka.partitioner().ok_or_else(|| {
            KafkaFailure::Unsupported(
                "-X partitioner is one the orchestrator cannot compute, so it cannot tell which \
                 reply partition holds a saga's replies: use consistent_random (the default), \
                 consistent, murmur2(_random) or fnv1a(_random)"
                    .to_string(),
            )
        })?;
        Ok(Tools {
            producer: self.kafka.producer()?,
            ends: Arc::new(self.kafka.group_reader(&self.group)?),
            partitioner,
        })
    }

    /// Runs a round every fraction of the step timeout until `shutdown`. Fails (and with
    /// it the orchestrator) when a part it needs cannot be made: its producer, its client
    /// for the partitions' ends, a partitioner it can compute.
    pub async fn run(self, tools: Tools, shutdown: CancellationToken) -> Result<(), KafkaFailure> {
        let Tools {
            producer,
            ends,
            partitioner,
        } = tools;
        let period =
            (self.step_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
        let mut ends_unknown = false;
        loop {
            match self.judge(&ends).await {
                Ok(Some(judged)) => {
                    ends_unknown = false;
                    self.time_out(&producer, partitioner, judged).await;
                }
                Ok(None) => {}
                Err(error) => {
                    // During an outage (said once already) this is one of its effects.
                    if !ends_unknown && self.kafka.health().in_outage() {
                        info!(%error, "the reply partitions' ends cannot be read while Kafka is away: no step times out until they can");
                    } else if !ends_unknown {
                        warn!(%error, "cannot read the reply partitions' ends: no step times out until they can be read");
                    }
                    ends_unknown = true;
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(period) => {}
            }
        }
        producer.flush(Duration::from_secs(5)).await;
        Ok(())
    }

    /// Steps 1 and 2 of a round: the owned reply partitions caught up with their ends as
    /// of now; `None` when there is nothing to judge (no partition owned, or owners
    /// changed meanwhile).
    async fn judge(&self, ends: &Arc<BaseConsumer>) -> Result<Option<Judged>, String> {
        let topic = self.kafka.topics.saga_replies.clone();
        let (changes, owned) = self.owned.snapshot();
        let owned: Vec<i32> = owned
            .into_iter()
            .filter(|(t, _)| *t == topic)
            .map(|(_, p)| p)
            .collect();
        if owned.is_empty() {
            return Ok(None);
        }
        let at = chrono::Utc::now();
        let (partitions, end_of) = {
            let (ends, topic, owned) = (ends.clone(), topic.clone(), owned.clone());
            blocking(move || partition_ends(&ends, &topic, &owned)).await?
        };
        let deadline = Instant::now() + CATCH_UP;
        let caught_up = loop {
            let committed = {
                let (ends, topic, owned) = (ends.clone(), topic.clone(), owned.clone());
                blocking(move || committed_offsets(&ends, &topic, &owned)).await?
            };
            let caught_up: BTreeSet<i32> = end_of
                .iter()
                .filter(|(p, end)| committed.iter().any(|(q, c)| q == p && c >= end))
                .map(|(p, _)| *p)
                .collect();
            if caught_up.len() == owned.len() || Instant::now() >= deadline {
                break caught_up;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if self.owned.snapshot().0 != changes {
            return Ok(None);
        }
        Ok(Some(Judged {
            caught_up,
            partitions,
            at,
        }))
    }

    /// Step 3: the timeout policy for every saga stalled before the judged moment whose
    /// replies are on a caught-up partition.
    async fn time_out(&self, producer: &EventProducer, partitioner: Partitioner, judged: Judged) {
        let before = judged.at - chrono::Duration::from_std(self.step_timeout).unwrap_or_default();
        let stalled = match self.orchestrator.store.stalled_sagas(before).await {
            Ok(stalled) => stalled,
            Err(error) => {
                warn!(%error, "cannot read the sagas in flight; will retry");
                return;
            }
        };
        let (readable, unreadable): (Vec<_>, Vec<_>) = stalled.into_iter().partition(Result::is_ok);
        self.report_unreadable(unreadable.into_iter().filter_map(Result::err));
        let judged_here: Vec<_> = readable
            .into_iter()
            .filter_map(Result::ok)
            .filter(|saga| {
                let partition =
                    partitioner.partition(saga.transaction_id.as_bytes(), judged.partitions);
                judged.caught_up.contains(&partition)
            })
            .collect();
        self.orchestrator
            .time_out(producer, judged_here, self.step_timeout)
            .await;
    }
}

impl TimeoutWatch {
    /// Logs each saga that cannot be read, once: it can be neither timed out nor moved
    /// until someone mends or removes its order, and it is not taken for "no saga".
    fn report_unreadable(&self, errors: impl Iterator<Item = OrderStoreError>) {
        let mut reported = self.unreadable.lock().unwrap_or_else(|p| p.into_inner());
        for error in errors {
            if reported.insert(error.to_string()) {
                tracing::error!(%error, "a saga in flight cannot be read: it will not time out; mend or remove its order");
            }
        }
    }
}

/// Runs a blocking librdkafka call off the runtime's workers.
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|e| e.to_string())?
}

/// The topic's partition count, and the end (high watermark) of each of `owned`.
fn partition_ends(
    client: &BaseConsumer,
    topic: &str,
    owned: &[i32],
) -> Result<(i32, Vec<(i32, i64)>), String> {
    let timeout = Duration::from_secs(5);
    let metadata = client
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| e.to_string())?;
    let partitions = metadata
        .topics()
        .first()
        .map_or(0, |t| t.partitions().len() as i32);
    let mut ends = Vec::new();
    for &partition in owned {
        let (_, end) = client
            .fetch_watermarks(topic, partition, timeout)
            .map_err(|e| e.to_string())?;
        ends.push((partition, end));
    }
    Ok((partitions, ends))
}

/// The reply group's committed offset of each of `owned` (0 where none is).
fn committed_offsets(
    client: &BaseConsumer,
    topic: &str,
    owned: &[i32],
) -> Result<Vec<(i32, i64)>, String> {
    let mut wanted = TopicPartitionList::new();
    for &partition in owned {
        wanted.add_partition(topic, partition);
    }
    let committed = client
        .committed_offsets(wanted, Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    Ok(committed
        .elements()
        .iter()
        .map(|e| {
            let offset = match e.offset() {
                Offset::Offset(n) => n,
                _ => 0,
            };
            (e.partition(), offset)
        })
        .collect())
}
