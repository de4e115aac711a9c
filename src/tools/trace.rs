//! `edm trace <transaction_id>`: one saga's messages, read back from the topics in order —
//! the choreography's events, or the orchestration's commands and replies together with
//! the orchestrator's state changes, read from the saga's order.

use std::collections::HashSet;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Message, TopicPartitionList};
use serde_json::Value;

use crate::config::{KafkaArgs, OrderStoreArgs};
use crate::event::Status;
use crate::kafka::{ClusterHealth, Kafka, KafkaFailure, SagaConsumer, Topics};
use crate::orchestration::saga::{HistoryEntry, Saga};
use crate::store::orders::{OrderStore, OrderStoreError, UPDATED_FORMAT};

/// `edm trace` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct TraceArgs {
    /// The saga's transaction id.
    pub transaction_id: String,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Where the orders are: an orchestrated saga's state changes are read from its order.
    #[command(flatten)]
    pub dynamo: OrderStoreArgs,
}

/// `edm trace`: prints the saga's timeline; fails if no topic has an event of it.
pub async fn command(args: TraceArgs) -> anyhow::Result<()> {
    let kafka = Kafka::new(&args.kafka);
    let transaction_id = &args.transaction_id;
    let mut events = trace(&kafka, transaction_id).await?;
    if events.is_empty() {
        let topics = kafka
            .topics
            .all()
            .into_iter()
            .chain(kafka.topics.orchestration());
        anyhow::bail!(
            "no messages of saga {transaction_id} on {}",
            topics.collect::<Vec<_>>().join(", ")
        );
    }
    let messages = events.len();
    match orchestrator_states(&args.dynamo, transaction_id).await {
        Ok(states) => events = sorted(events.into_iter().chain(states).collect()),
        Err(error) => println!("(the orchestrator's state changes are not shown: {error})"),
    }
    println!("saga {transaction_id}: {messages} messages");
    print!("{}", render_timeline(&events, None));
    Ok(())
}

/// The orchestrator's state changes of saga `transaction_id` (none for a choreographed
/// saga), from its order.
async fn orchestrator_states(
    dynamo: &OrderStoreArgs,
    transaction_id: &str,
) -> Result<Vec<TracedEvent>, OrderStoreError> {
    let store = OrderStore::connect(dynamo).await?;
    Ok(store
        .saga(transaction_id)
        .await?
        .map(|saga| saga_states(&saga))
        .unwrap_or_default())
}

/// Where the orchestrator's state changes are shown to come from.
pub const ORDER_STORE: &str = "(order store)";

/// A saga's state changes as timeline rows. The first is the order service's (it stores
/// the order with its saga); every later one is the orchestrator's.
pub fn saga_states(saga: &Saga) -> Vec<TracedEvent> {
    saga.history
        .iter()
        .filter_map(|entry| HistoryEntry::parse(entry))
        .map(|entry| {
            let started = entry.cause == Status::OrderCreated.as_str();
            TracedEvent {
                topic: ORDER_STORE.to_string(),
                position: None,
                timestamp_ms: chrono::DateTime::parse_from_str(&entry.at, UPDATED_FORMAT)
                    .ok()
                    .map(|at| at.timestamp_millis()),
                status: format!("saga {}", entry.state),
                reason: Some(entry.cause).filter(|_| !started),
                total_price: None,
                sent_by: if started {
                    "order-service"
                } else {
                    "orchestrator"
                },
            }
        })
        .collect()
}

/// How long to wait for the next message before giving up on a topic.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// One event of a saga as found on a topic.
#[derive(Debug, Clone, PartialEq)]
pub struct TracedEvent {
    /// Topic it was found on ([`ORDER_STORE`] for an orchestrator's state change).
    pub topic: String,
    /// Partition and offset; `None` for a state change.
    pub position: Option<(i32, i64)>,
    /// Broker timestamp (ms since the epoch), if any.
    pub timestamp_ms: Option<i64>,
    /// The event's `status`, the command's or reply's name, or the saga's new state (`?`
    /// if unreadable).
    pub status: String,
    /// The `reason`, if any (for a state change: its cause).
    pub reason: Option<String>,
    /// `payment.total_price`, if any.
    pub total_price: Option<i64>,
    /// Which service sent it, as far as the saga tells.
    pub sent_by: &'static str,
}

/// Which service sends `status` to `topic` in the saga.
pub fn sender_of(topics: &Topics, topic: &str, status: &str, reason: Option<&str>) -> &'static str {
    match (topic, status) {
        (t, _) if Topics::is_dead_letter(t) => "dead letter",
        // The order service sends a saga's first command; the orchestrator only its retry.
        (t, "RESERVE_STOCK") if t == topics.inventory_commands => "order-service",
        (t, _) if t == topics.inventory_commands || t == topics.payment_commands => "orchestrator",
        (t, s) if t == topics.saga_replies && s.starts_with("STOCK_") => "inventory-consumer",
        (t, s) if t == topics.saga_replies && s.starts_with("PAYMENT_") => "payment-consumer",
        (t, "ORDER_CREATED") if t == topics.inventory => "order-service",
        (t, "INVENTORY_RESERVED") if t == topics.payment => "inventory-consumer",
        (t, "PAYMENT_COMPLETE") if t == topics.order => "payment-consumer",
        (t, "ORDER_CANCEL") if t == topics.inventory => match reason {
            Some(crate::event::reason::ORDER_ALREADY_CANCELLED) => "order-consumer",
            _ => "payment-consumer",
        },
        (t, "ORDER_CANCEL") if t == topics.order => "inventory-consumer",
        _ => "?",
    }
}

/// The topics a saga's messages can be on — both styles' and their dead-letter topics —
/// that exist on the broker.
pub async fn saga_topics_present(kafka: &Kafka) -> Result<Vec<String>, KafkaFailure> {
    let existing: Vec<String> = kafka
        .check_reachable()
        .await?
        .into_iter()
        .map(|t| t.name)
        .collect();
    let saga_topics: Vec<&str> = kafka
        .topics
        .all()
        .into_iter()
        .chain(kafka.topics.orchestration())
        .collect();
    let mut wanted: Vec<String> = saga_topics.iter().map(|t| t.to_string()).collect();
    wanted.extend(saga_topics.iter().map(|t| Topics::dead_letter(t)));
    wanted.retain(|t| existing.contains(t));
    Ok(wanted)
}

/// The name a saga message goes by: an event's `status`, a command's or a reply's name
/// (`?` if it has none).
pub fn message_name(payload: &Value) -> String {
    ["status", "command", "reply"]
        .iter()
        .find_map(|field| payload[field].as_str())
        .unwrap_or("?")
        .to_string()
}

/// Reads every event of saga `transaction_id` from the saga's topics and their dead-letter
/// topics, oldest first.
pub async fn trace(kafka: &Kafka, transaction_id: &str) -> Result<Vec<TracedEvent>, KafkaFailure> {
    let wanted = saga_topics_present(kafka).await?;
    let group = format!("edm-trace-{}", uuid::Uuid::new_v4().simple());
    let reads = wanted
        .iter()
        .map(|topic| read_topic(kafka, &group, topic, transaction_id));
    let events = futures_util::future::try_join_all(reads).await?;
    Ok(sorted(events.into_iter().flatten().collect()))
}

/// Whether a consumer error is one librdkafka recovers from by itself (a connection lost
/// and made again).
fn is_transient(error: &KafkaError) -> bool {
    ClusterHealth::is_unreachable(error)
        || error.rdkafka_error_code() == Some(RDKafkaErrorCode::OperationTimedOut)
}

/// The events of saga `transaction_id` on every partition of `topic`, read from the start
/// to the end each partition had when the read reached it.
async fn read_topic(
    kafka: &Kafka,
    group: &str,
    topic: &str,
    transaction_id: &str,
) -> Result<Vec<TracedEvent>, KafkaFailure> {
    let consumer = kafka.one_pass_reader(group)?;
    let events = read_with(&consumer, kafka, topic, transaction_id).await;
    // A consumer's close blocks (~100 ms: librdkafka's group handle winds down on its own
    // timer); off the runtime's threads, the topics' readers close side by side.
    let _ = tokio::task::spawn_blocking(move || drop(consumer)).await;
    events
}

async fn read_with(
    consumer: &SagaConsumer,
    kafka: &Kafka,
    topic: &str,
    transaction_id: &str,
) -> Result<Vec<TracedEvent>, KafkaFailure> {
    let unreachable = |detail| KafkaFailure::Unreachable {
        servers: kafka.servers().to_string(),
        detail,
    };
    let mut assignment = TopicPartitionList::new();
    crate::kafka::add_whole_topic(consumer, topic, &mut assignment).map_err(unreachable)?;
    let mut unread: HashSet<i32> = assignment
        .elements()
        .iter()
        .map(|e| e.partition())
        .collect();
    let mut events = Vec::new();
    if unread.is_empty() {
        return Ok(events);
    }
    consumer.assign(&assignment).map_err(unreachable)?;
    // The consumer reports each partition's end as it reaches it (the high watermark of
    // the broker's fetch answer).
    let mut last_error = None;
    while !unread.is_empty() {
        let message = match tokio::time::timeout(READ_TIMEOUT, consumer.recv()).await {
            Ok(Ok(message)) => message,
            Ok(Err(KafkaError::PartitionEOF(partition))) => {
                unread.remove(&partition);
                continue;
            }
            // A connection lost (librdkafka reconnects by itself, as its docs say of these
            // errors): keep reading; it is the answer only if nothing follows it.
            Ok(Err(error)) if is_transient(&error) => {
                last_error = Some(error);
                continue;
            }
            Ok(Err(error)) => return Err(unreachable(error)),
            Err(_) => match last_error {
                Some(error) => return Err(unreachable(error)),
                // Nothing more arrives: what is left was deleted.
                None => break,
            },
        };
        last_error = None;
        let payload: Value = message
            .payload()
            .and_then(|p| serde_json::from_slice(p).ok())
            .unwrap_or(Value::Null);
        let keyed = message
            .key()
            .is_some_and(|k| k == transaction_id.as_bytes());
        if payload["transaction_id"] != transaction_id && !keyed {
            continue;
        }
        let status = message_name(&payload);
        let reason = payload["reason"].as_str().map(str::to_string);
        events.push(TracedEvent {
            sent_by: sender_of(&kafka.topics, topic, &status, reason.as_deref()),
            topic: topic.to_string(),
            position: Some((message.partition(), message.offset())),
            timestamp_ms: message.timestamp().to_millis(),
            total_price: payload["payment"]["total_price"]
                .as_i64()
                .or(payload["total_price"].as_i64()),
            status,
            reason,
        });
    }
    Ok(events)
}

/// Oldest first: by timestamp, then cause before effect, then by offset.
pub fn sorted(mut events: Vec<TracedEvent>) -> Vec<TracedEvent> {
    events.sort_by_key(|e| {
        (
            e.timestamp_ms.unwrap_or(i64::MAX),
            step_in_chain(e),
            e.position,
        )
    });
    events
}

/// Where a message (or state change) stands in its saga's chain of causes: each step
/// comes after the one that caused it. Timestamps are whole milliseconds, and on a quick
/// stack a cause and its effect share one (the compensation's ORDER_CANCEL to `order`
/// was shown before the payment's ORDER_CANCEL that caused it); offsets of different
/// topics say nothing about which came first.
fn step_in_chain(event: &TracedEvent) -> u8 {
    let state = event.status.strip_prefix("saga ");
    match (state, event.status.as_str()) {
        // Choreography: the events, in the saga's order.
        (None, "ORDER_CREATED") => 1,
        (None, "INVENTORY_RESERVED") => 2,
        (None, "PAYMENT_COMPLETE") => 3,
        (None, "ORDER_CANCEL") if event.sent_by == "inventory-consumer" => 4,
        (None, "ORDER_CANCEL") => 3,
        // Orchestration: each state change after the reply that caused it and before the
        // commands it sends.
        (Some("RESERVING_STOCK"), _) => 0,
        (None, "RESERVE_STOCK") => 1,
        (None, "STOCK_RESERVED" | "STOCK_REJECTED") => 2,
        (Some("TAKING_PAYMENT"), _) => 3,
        (None, "TAKE_PAYMENT") => 4,
        (None, "PAYMENT_APPROVED" | "PAYMENT_DECLINED") => 5,
        (Some("COMPLETE" | "RELEASING_STOCK"), _) => 6,
        (None, "CANCEL_PAYMENT" | "RELEASE_STOCK") => 7,
        (None, "PAYMENT_CANCELLED" | "STOCK_RELEASED") => 8,
        (Some(_), _) => 9,
        _ => 10,
    }
}

/// The events as a timeline, times relative to `start_ms` (or to the first event).
pub fn render_timeline(events: &[TracedEvent], start_ms: Option<i64>) -> String {
    let start = start_ms.or_else(|| events.iter().find_map(|e| e.timestamp_ms));
    let width = topic_width(events);
    let mut out = String::new();
    for event in events {
        let at = match (event.timestamp_ms, start) {
            (Some(t), Some(s)) => format!("{:>+7} ms", t - s),
            _ => "      ? ms".to_string(),
        };
        let mut detail = String::new();
        if let Some(price) = event.total_price {
            detail.push_str(&format!("  total_price={price}"));
        }
        match (&event.reason, event.position) {
            (Some(cause), None) => detail.push_str(&format!("  on {cause}")),
            (Some(reason), Some(_)) => detail.push_str(&format!("  reason={reason}")),
            (None, _) => {}
        }
        let position = event
            .position
            .map(|(partition, offset)| format!("({partition}@{offset})"))
            .unwrap_or_default();
        let line = format!(
            "  {at}  {:<22} {:<width$} by {:<18} {position}{detail}",
            event.status, event.topic, event.sent_by
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Width of the topic column: the longest topic name.
pub fn topic_width(events: &[TracedEvent]) -> usize {
    events.iter().map(|e| e.topic.len()).max().unwrap_or(0)
}

#[cfg(test)]
mod tests;
