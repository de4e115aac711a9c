//! The payment consumer's memory: the answer it gave each transaction, so that an
//! INVENTORY_RESERVED delivered again — after a crash, a rebalance, a replay — gets the
//! same answer, whatever the gateway says now.
//!
//! Without it, a payment consumer restarted with `--pg-ok false` (as the course has
//! students do) declined a redelivered event it had accepted before: the inventory gave
//! the stock of a completed, paid order back. The course's payment service keeps no
//! database, so its decisions live in a compacted topic (`payment.decisions`, keyed by
//! transaction id): each decision is sent, and acknowledged, with the outcome it leads to,
//! before the event's offset is committed. A reader follows the topic from its start, so
//! every instance knows every decision made so far; before it decides a transaction it
//! does not know, an instance reads the topic up to its current end, so a decision just
//! made by another instance (the event moved with a rebalance) is not missed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rdkafka::TopicPartitionList;
use rdkafka::consumer::Consumer;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::payment_gateway::Gateway;
use crate::kafka::{Kafka, KafkaFailure, Record, SagaConsumer};
use follower::{Memory, follow, serve_events};

mod follower;

/// How long catching up with the decisions may take before the batch is retried.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(10);

/// One decision, as the topic holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Decision {
    transaction_id: String,
    accepted: bool,
    /// When it was made (the course's `updated` format).
    decided_at: String,
}

/// What the topic says of one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Known {
    /// The answer given.
    Answered(bool),
    /// A decision whose record cannot be read, where (`topic partition@offset`).
    Unreadable(String),
}

/// The answer given before cannot be read: deciding again could contradict it, so the
/// transaction is not decided (its event is dead-lettered with this).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the decision already made for transaction {transaction_id} cannot be read ({at}): it is \
     not decided again, which could contradict it; settle it by hand"
)]
pub struct Unknowable {
    transaction_id: String,
    at: String,
}

/// Every decision made so far, and how far the topic has been read. Clones share it (the
/// payment consumer's event and command loops keep one memory).
#[derive(Clone)]
pub struct Decisions {
    known: Arc<Mutex<HashMap<String, Known>>>,
    /// Set when a decision without a key cannot be read: any transaction may be the one
    /// it decided, so none can be decided any more.
    lost: Arc<Mutex<Option<String>>>,
    /// Per partition, the offset the reader reads next.
    read_up_to: watch::Receiver<HashMap<i32, i64>>,
    /// Asks for the topic's ends. Not the reader: a broker answers one connection's
    /// requests in order, so a ListOffsets behind the reader's waiting Fetch would wait
    /// for it (up to `fetch.wait.max.ms`, 500 ms: measured as a 350–500 ms payment hop in
    /// `edm lab` on edm's broker; Apache Kafka serialises a connection's requests the same
    /// way). This client never fetches, so its connection is always free.
    ends_client: Arc<SagaConsumer>,
    topic: String,
    partitions: Vec<i32>,
    servers: String,
}

impl Decisions {
    /// Creates the topic if it is missing, starts reading it from the start in the
    /// background, and waits until everything already in it is read (failing for good if
    /// a decision without a key in it cannot be read).
    pub async fn open(kafka: &Kafka, shutdown: CancellationToken) -> Result<Self, KnowError> {
        let topic = kafka.topics.payment_decisions.clone();
        for (name, change) in kafka.ensure_topics(&[topic.as_str()], None, 1).await? {
            match change {
                crate::kafka::TopicChange::Kept(_) => {}
                change => {
                    tracing::info!(topic = %name, ?change, "the payment decisions' topic set up")
                }
            }
        }
        let reader =
            Arc::new(kafka.reader(&format!("{topic}-reader-{}", uuid::Uuid::new_v4().simple()))?);
        let servers = kafka.servers().to_string();
        let unreachable = |detail| KafkaFailure::Unreachable {
            servers: servers.clone(),
            detail,
        };
        let assignment = {
            let (reader, topic) = (reader.clone(), topic.clone());
            tokio::task::spawn_blocking(move || {
                let mut assignment = TopicPartitionList::new();
                crate::kafka::add_whole_topic(&reader, &topic, &mut assignment).map(|()| assignment)
            })
            .await
            .map_err(|join| KafkaFailure::Task(join.to_string()))?
            .map_err(unreachable)?
        };
        let partitions: Vec<i32> = assignment
            .elements()
            .iter()
            .map(|e| e.partition())
            .collect();
        reader.assign(&assignment).map_err(unreachable)?;
        let known = Arc::new(Mutex::new(HashMap::new()));
        let lost = Arc::new(Mutex::new(None));
        let (progress, read_up_to) = watch::channel(HashMap::new());
        tokio::spawn(follow(
            reader.clone(),
            Memory {
                known: known.clone(),
                lost: lost.clone(),
            },
            progress,
            shutdown.clone(),
        ));
        let shutdown_events = shutdown;
        let ends_client =
            Arc::new(kafka.reader(&format!("{topic}-ends-{}", uuid::Uuid::new_v4().simple()))?);
        tokio::spawn(serve_events(ends_client.clone(), shutdown_events));
        let decisions = Self {
            known,
            lost,
            read_up_to,
            ends_client,
            topic,
            partitions,
            servers,
        };
        decisions.catch_up().await?;
        decisions.know(std::iter::empty()).await?;
        Ok(decisions)
    }

    fn known(&self) -> MutexGuard<'_, HashMap<String, Known>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The answer already given to `transaction_id`, if any; an error if one was given
    /// but cannot be read.
    pub fn answer(&self, transaction_id: &str) -> Result<Option<bool>, Unknowable> {
        match self.known().get(transaction_id) {
            None => Ok(None),
            Some(Known::Answered(accepted)) => Ok(Some(*accepted)),
            Some(Known::Unreadable(at)) => Err(Unknowable {
                transaction_id: transaction_id.to_string(),
                at: at.clone(),
            }),
        }
    }

    /// How many decisions are known.
    pub fn len(&self) -> usize {
        self.known().len()
    }

    /// Whether no decision is known.
    pub fn is_empty(&self) -> bool {
        self.known().is_empty()
    }

    /// Remembers a decision; returns the record that keeps it, to send with its outcome.
    pub fn remember(&self, transaction_id: &str, accepted: bool) -> Record {
        self.known()
            .insert(transaction_id.to_string(), Known::Answered(accepted));
        let decision = Decision {
            transaction_id: transaction_id.to_string(),
            accepted,
            decided_at: crate::store::orders::updated_now(),
        };
        Record {
            topic: self.topic.clone(),
            key: Some(transaction_id.to_string()),
            payload: serde_json::to_vec(&decision).unwrap_or_default(),
            headers: Vec::new(),
        }
    }

    /// The answer for `transaction_id` by `user_id`: the one already given, if any (logged
    /// when `gateway` would now say otherwise), else `gateway`'s, with the record that
    /// keeps it — to be sent with its outcome.
    pub fn decide(
        &self,
        gateway: &Gateway,
        transaction_id: &str,
        user_id: &str,
    ) -> Result<(bool, Option<Record>), Unknowable> {
        let verdict = |accepted: bool| if accepted { "accepted" } else { "declined" };
        Ok(match self.answer(transaction_id)? {
            Some(given) => {
                let now = gateway.accepts(transaction_id, user_id);
                if now != given {
                    tracing::info!(tx = %transaction_id, "asked again: the gateway would now say {}, but this transaction was {} before — the first answer stands",
                                   verdict(now), verdict(given));
                }
                (given, None)
            }
            None => {
                let accepted = gateway.accepts(transaction_id, user_id);
                (accepted, Some(self.remember(transaction_id, accepted)))
            }
        })
    }

    /// Reads every decision made so far if one of `transaction_ids` has no known answer
    /// (another instance may just have made it: the event moved with a rebalance).
    /// Fails for good ([`DecisionsLost`]) once a decision without a key could not be read.
    pub async fn know<'a>(
        &self,
        mut transaction_ids: impl Iterator<Item = &'a str>,
    ) -> Result<(), KnowError> {
        if let Some(at) = self.lost.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Err(KnowError::Lost(DecisionsLost { at }));
        }
        match transaction_ids.any(|tx| self.known().get(tx).is_none()) {
            true => self.catch_up().await.map_err(KnowError::Kafka),
            false => Ok(()),
        }
    }

    /// Waits until the reader has read every decision in the topic now.
    pub async fn catch_up(&self) -> Result<(), KafkaFailure> {
        let ends = self.ends().await?;
        let mut progress = self.read_up_to.clone();
        let caught_up = progress.wait_for(|read| {
            ends.iter()
                .all(|(partition, end)| read.get(partition).copied().unwrap_or(0) >= *end)
        });
        match tokio::time::timeout(CATCH_UP_TIMEOUT, caught_up).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(KafkaFailure::Task(format!(
                "the payment decisions in `{}` were not read within {CATCH_UP_TIMEOUT:?}",
                self.topic
            ))),
        }
    }

    /// Each partition's end (high watermark).
    async fn ends(&self) -> Result<Vec<(i32, i64)>, KafkaFailure> {
        let (reader, topic, partitions) = (
            self.ends_client.clone(),
            self.topic.clone(),
            self.partitions.clone(),
        );
        let servers = self.servers.clone();
        tokio::task::spawn_blocking(move || {
            partitions
                .iter()
                .map(|&partition| {
                    reader
                        .fetch_watermarks(&topic, partition, Duration::from_secs(5))
                        .map(|(_, high)| (partition, high))
                        .map_err(|detail| KafkaFailure::Unreachable {
                            servers: servers.clone(),
                            detail,
                        })
                })
                .collect()
        })
        .await
        .map_err(|join| KafkaFailure::Task(join.to_string()))?
    }
}

/// A decision without a key could not be read: any transaction may be the one it decided.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the payment decision at {at} has no key and cannot be read: any transaction may be the \
     one it decided, so the payment consumer decides none. Remove the record (or the topic, \
     if every decision in it may be forgotten) and start it again"
)]
pub struct DecisionsLost {
    at: String,
}

/// Why the decisions could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum KnowError {
    /// The broker did not answer in time: retry.
    #[error(transparent)]
    Kafka(#[from] KafkaFailure),
    /// For good: see [`DecisionsLost`].
    #[error(transparent)]
    Lost(DecisionsLost),
}

impl KnowError {
    /// What it makes of a step: retried when the broker was slow, the end of the
    /// service when a decision was lost.
    pub fn step_error(&self) -> crate::consumer::StepError {
        match self {
            KnowError::Kafka(error) => crate::consumer::StepError::Retry(error.to_string()),
            KnowError::Lost(lost) => crate::consumer::StepError::Fatal(lost.to_string()),
        }
    }
}
