//! What the web view knows: every saga seen on the topics, with its messages in the
//! saga's order, its state and the steps it still has to take. Pure data: the follower
//! feeds it messages, the HTTP side reads summaries and details.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use super::arrivals::Arrivals;
use super::tail::Tail;
use crate::kafka::Topics;
use crate::orchestration::SagaStyle;
use crate::tools::trace::{TracedEvent, message_name, sender_of, sorted};

mod steps;
use steps::{is_compensation, kind_of, lifelines, receiver_of, state_of, still_to_come};

/// Where a saga stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Still has steps to take.
    InFlight,
    /// In flight with no message for longer than the view's threshold.
    Stuck,
    /// Ended with the payment taken.
    Complete,
    /// Ended undone (out of stock, payment declined, a step timed out).
    Cancelled,
    /// Not ended, and one of its messages was dead-lettered (it cannot go on by itself).
    DeadLettered,
}

/// One message of a saga, as the page draws it.
#[derive(Debug, Clone, Serialize)]
pub struct Arrow {
    /// The event's status, or the command's or reply's name.
    pub name: String,
    /// `event`, `command`, `reply` or `dead letter`.
    pub kind: &'static str,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Broker timestamp, ms since the epoch.
    pub at_ms: Option<i64>,
    pub from: &'static str,
    pub to: &'static str,
    pub reason: Option<String>,
    /// Part of undoing the saga.
    pub compensation: bool,
}

/// A saga as the list shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub transaction_id: String,
    pub style: &'static str,
    pub state: State,
    /// Why it was cancelled, or what it waits for when stuck.
    pub reason: Option<String>,
    pub user_id: Option<String>,
    pub started_ms: Option<i64>,
    pub last_ms: Option<i64>,
    /// First to last message, once it ended.
    pub latency_ms: Option<i64>,
    pub messages: usize,
}

impl Summary {
    /// The list's order: stuck and dead-lettered sagas first, then those in flight, then
    /// the ended ones; the newest first within each; then by transaction id.
    pub fn list_order(a: &Summary, b: &Summary) -> std::cmp::Ordering {
        let rank = |s: &Summary| match s.state {
            State::Stuck | State::DeadLettered => 0,
            State::InFlight => 1,
            State::Cancelled | State::Complete => 2,
        };
        (rank(a), std::cmp::Reverse(a.last_ms), &a.transaction_id).cmp(&(
            rank(b),
            std::cmp::Reverse(b.last_ms),
            &b.transaction_id,
        ))
    }
}

/// A saga in full: its summary, its messages in order, and the steps still to come.
#[derive(Debug, Clone, Serialize)]
pub struct Detail {
    #[serde(flatten)]
    pub summary: Summary,
    pub lifelines: Vec<&'static str>,
    pub arrows: Vec<Arrow>,
    pub to_come: Vec<&'static str>,
}

/// One saga's messages.
#[derive(Debug, Default)]
struct Saga {
    style: Option<SagaStyle>,
    user_id: Option<String>,
    events: Vec<TracedEvent>,
}

/// Every saga of one lab (one set of topic names).
#[derive(Debug)]
pub struct Book {
    topics: Topics,
    sagas: HashMap<String, Saga>,
    /// Sagas changed since [`Book::take_changed`] was last called.
    changed: HashSet<String>,
    /// How long an in-flight saga may go without a message before it counts as stuck.
    stuck_after_ms: i64,
    /// The newest messages of each topic, whatever they are.
    pub tail: Tail,
    /// When each message of a saga topic was written (the groups' lag in seconds).
    pub arrivals: Arrivals,
}

impl Book {
    /// An empty book of the sagas on `topics`.
    pub fn new(topics: Topics, stuck_after_ms: i64) -> Self {
        Self {
            topics,
            sagas: HashMap::new(),
            changed: HashSet::new(),
            stuck_after_ms,
            tail: Tail::default(),
            arrivals: Arrivals::default(),
        }
    }

    /// Takes one message of `topic` (into the tail; into a saga if it names one).
    pub fn take(
        &mut self,
        topic: &str,
        position: (i32, i64),
        at_ms: Option<i64>,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
    ) {
        let body: Value = payload
            .and_then(|p| serde_json::from_slice(p).ok())
            .unwrap_or(Value::Null);
        let name = message_name(&body);
        let bytes = payload.unwrap_or_default();
        self.tail.take(topic, position, at_ms, key, bytes, &name);
        if !Topics::is_dead_letter(topic) {
            self.arrivals.take(topic, position, at_ms); // no group reads dead letters
        }
        let transaction_id = body["transaction_id"]
            .as_str()
            .map(str::to_string)
            .or_else(|| {
                key.and_then(|k| std::str::from_utf8(k).ok())
                    .map(str::to_string)
            });
        let Some(transaction_id) = transaction_id.filter(|tx| !tx.is_empty()) else {
            return;
        };
        let reason = body["reason"].as_str().map(str::to_string);
        let saga = self.sagas.entry(transaction_id.clone()).or_default();
        let origin = Topics::origin(topic);
        if saga.style.is_none() {
            saga.style = if self.topics.orchestration().contains(&origin) {
                Some(SagaStyle::Orchestration)
            } else if self.topics.all().contains(&origin) {
                Some(SagaStyle::Choreography)
            } else {
                None
            };
        }
        if saga.user_id.is_none() {
            saga.user_id = body["order"]["user_id"].as_str().map(str::to_string);
        }
        saga.events.push(TracedEvent {
            sent_by: sender_of(&self.topics, topic, &name, reason.as_deref()),
            topic: topic.to_string(),
            position: Some(position),
            timestamp_ms: at_ms,
            status: name,
            reason,
            total_price: None,
        });
        saga.events = sorted(std::mem::take(&mut saga.events));
        self.changed.insert(transaction_id);
    }

    /// How many sagas it holds.
    pub fn len(&self) -> usize {
        self.sagas.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.sagas.is_empty()
    }

    /// The sagas changed since the last call, and those that became stuck since `last_ms`
    /// (they changed state without a message).
    pub fn take_changed(&mut self, now_ms: i64, last_ms: i64) -> Vec<Summary> {
        let mut changed: HashSet<String> = std::mem::take(&mut self.changed);
        for (tx, saga) in &self.sagas {
            let last = saga.events.iter().filter_map(|e| e.timestamp_ms).max();
            let stuck_since = last.map(|l| l + self.stuck_after_ms);
            if stuck_since.is_some_and(|s| s > last_ms && s <= now_ms) {
                changed.insert(tx.clone());
            }
        }
        changed
            .iter()
            .filter_map(|tx| self.summary(tx, now_ms))
            .collect()
    }

    /// The sagas whose transaction id or user id contains `query` (all if empty), stuck
    /// ones first, then in flight, then the newest; at most `limit`, and how many matched.
    pub fn list(&self, query: &str, limit: usize, now_ms: i64) -> (Vec<Summary>, usize) {
        let mut found: Vec<Summary> = self
            .sagas
            .keys()
            .filter(|tx| {
                query.is_empty()
                    || tx.contains(query)
                    || self.sagas[*tx]
                        .user_id
                        .as_deref()
                        .is_some_and(|u| u.contains(query))
            })
            .filter_map(|tx| self.summary(tx, now_ms))
            .collect();
        let matched = found.len();
        found.sort_by(Summary::list_order);
        found.truncate(limit);
        (found, matched)
    }

    /// One saga in full.
    pub fn detail(&self, transaction_id: &str, now_ms: i64) -> Option<Detail> {
        let summary = self.summary(transaction_id, now_ms)?;
        let saga = &self.sagas[transaction_id];
        let style = saga.style.unwrap_or(SagaStyle::Choreography);
        let arrows = saga
            .events
            .iter()
            .map(|e| {
                let (partition, offset) = e.position.unwrap_or_default();
                Arrow {
                    kind: kind_of(&self.topics, &e.topic),
                    to: receiver_of(&self.topics, &e.topic),
                    compensation: is_compensation(&e.status, &e.topic, &self.topics),
                    name: e.status.clone(),
                    topic: e.topic.clone(),
                    partition,
                    offset,
                    at_ms: e.timestamp_ms,
                    from: e.sent_by,
                    reason: e.reason.clone(),
                }
            })
            .collect();
        let to_come = match summary.state {
            State::InFlight | State::Stuck => still_to_come(style, &saga.events),
            _ => Vec::new(),
        };
        Some(Detail {
            summary,
            lifelines: lifelines(style),
            arrows,
            to_come,
        })
    }

    /// Every saga's summary, in no order.
    pub fn summaries(&self, now_ms: i64) -> impl Iterator<Item = Summary> + '_ {
        self.sagas
            .keys()
            .filter_map(move |tx| self.summary(tx, now_ms))
    }

    /// One saga's summary.
    pub fn summary(&self, transaction_id: &str, now_ms: i64) -> Option<Summary> {
        let saga = self.sagas.get(transaction_id)?;
        let style = saga.style.unwrap_or(SagaStyle::Choreography);
        let times = saga.events.iter().filter_map(|e| e.timestamp_ms);
        let (started_ms, last_ms) = (times.clone().min(), times.max());
        let (mut state, mut reason) = state_of(style, &saga.events);
        let dead = saga
            .events
            .iter()
            .find(|e| Topics::is_dead_letter(&e.topic));
        if let (State::InFlight, Some(dead)) = (state, dead) {
            state = State::DeadLettered;
            reason = Some(format!("dead-lettered to {}", dead.topic));
        } else if state == State::InFlight
            && last_ms.is_some_and(|l| now_ms - l > self.stuck_after_ms)
        {
            state = State::Stuck;
            reason = still_to_come(style, &saga.events)
                .first()
                .map(|s| s.to_string());
        }
        let ended = matches!(state, State::Complete | State::Cancelled);
        Some(Summary {
            transaction_id: transaction_id.to_string(),
            style: style.as_str(),
            state,
            reason,
            user_id: saga.user_id.clone(),
            started_ms,
            last_ms,
            latency_ms: started_ms
                .zip(last_ms)
                .filter(|_| ended)
                .map(|(s, l)| l - s),
            messages: saga.events.len(),
        })
    }
}

#[cfg(test)]
mod tests;
