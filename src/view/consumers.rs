//! The Consumers tab: each saga step's consumer group, its members, and how far behind it
//! is on each partition of the topic it reads — in messages (the partition's end minus
//! what the group committed, as `kafka-consumer-groups.sh` counts it) and in seconds (the
//! age of the oldest message it has not committed, from the view's own reading).
//!
//! The groups are asked as `edm doctor` asks them: by a client of the group that never
//! joins it, so no member is disturbed. One such client per group is kept between
//! questions (a librdkafka client costs threads and connections to start).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rdkafka::consumer::BaseConsumer;
use serde::Serialize;

use super::book::Book;
use crate::kafka::Kafka;
use crate::tools::doctor::groups::{self, Position, Step};

/// One partition of a group's topic.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionLag {
    #[serde(flatten)]
    pub position: Position,
    /// Messages not yet committed (from the partition's start where the group never
    /// committed: edm's consumers begin at the earliest offset).
    pub lag: i64,
    /// Age of the oldest of them, ms (0 when none waits; `None` when the view has not
    /// read that far yet).
    pub lag_ms: Option<i64>,
}

/// One saga step's group.
#[derive(Debug, Clone, Serialize)]
pub struct GroupLag {
    pub group: String,
    pub topic: String,
    /// The service whose loop the group is.
    pub service: &'static str,
    pub style: &'static str,
    pub members: usize,
    pub partitions: Vec<PartitionLag>,
}

/// The groups of the sagas the view shows, and a reader kept for each.
pub struct Consumers {
    kafkas: Vec<Kafka>,
    readers: Mutex<HashMap<String, Arc<BaseConsumer>>>,
}

impl Consumers {
    /// The groups of the sagas on `kafkas`' topics.
    pub fn new(kafkas: &[Kafka]) -> Self {
        Self {
            kafkas: kafkas.to_vec(),
            readers: Mutex::default(),
        }
    }

    /// Every step's group that is in use (it has members, or has committed), with its lag
    /// per partition; `books[i]` is what the view read of `kafkas[i]`'s topics.
    pub async fn lags(
        self: Arc<Self>,
        books: Vec<Arc<Mutex<Book>>>,
    ) -> Result<Vec<GroupLag>, String> {
        let asked = tokio::task::spawn_blocking(move || self.ask())
            .await
            .map_err(|error| format!("the consumer groups cannot be read: {error}"))??;
        let now = crate::kafka::now_ms();
        let mut lags = Vec::new();
        for (index, step, style, members, positions) in asked {
            let book = super::lock(&books[index]);
            let partitions = positions
                .into_iter()
                .map(|position| PartitionLag {
                    lag: position.lag(),
                    lag_ms: lag_ms(&book, &step.topic, &position, now),
                    position,
                })
                .collect();
            lags.push(GroupLag {
                group: step.group,
                topic: step.topic,
                service: step.service,
                style,
                members,
                partitions,
            });
        }
        Ok(lags)
    }

    /// Asks the brokers about every step's group (blocking): which kafka, the step, its
    /// style, its members and its positions.
    #[allow(clippy::type_complexity)]
    fn ask(&self) -> Result<Vec<(usize, Step, &'static str, usize, Vec<Position>)>, String> {
        let mut asked = Vec::new();
        for (index, kafka) in self.kafkas.iter().enumerate() {
            for step in groups::steps(kafka) {
                let reader = self.reader(kafka, &step.group)?;
                let members = groups::members(&reader, &step)?;
                let positions = groups::positions(&reader, &step)?;
                if members == 0 && positions.iter().all(|p| p.committed.is_none()) {
                    continue; // a style not in use here
                }
                let style = if kafka.topics.orchestration().contains(&step.topic.as_str()) {
                    "orchestration"
                } else {
                    "choreography"
                };
                asked.push((index, step, style, members, positions));
            }
        }
        Ok(asked)
    }

    /// The kept reader of `group`, made on first use.
    fn reader(&self, kafka: &Kafka, group: &str) -> Result<Arc<BaseConsumer>, String> {
        let mut readers = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(reader) = readers.get(group) {
            return Ok(reader.clone());
        }
        let reader = Arc::new(kafka.group_reader(group).map_err(|e| e.to_string())?);
        readers.insert(group.to_string(), reader.clone());
        Ok(reader)
    }
}

impl Drop for Consumers {
    /// A consumer's close blocks for a moment: the readers are closed off the runtime.
    fn drop(&mut self) {
        let readers = std::mem::take(self.readers.get_mut().unwrap_or_else(|p| p.into_inner()));
        if !readers.is_empty() {
            std::thread::spawn(move || drop(readers));
        }
    }
}

/// How old the oldest message is that a group at `position` has not committed.
fn lag_ms(book: &Book, topic: &str, position: &Position, now_ms: i64) -> Option<i64> {
    if position.lag() == 0 {
        return Some(0);
    }
    book.arrivals
        .written_at(topic, position.partition, position.next())
        .map(|written| (now_ms - written).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::Topics;

    fn book_with(topic: &str, written: &[(i64, i64)]) -> Book {
        let mut book = Book::new(Topics::with_prefix(""), 10_000);
        for &(offset, at) in written {
            book.arrivals.take(topic, (0, offset), Some(at));
        }
        book
    }

    fn at(committed: Option<i64>, end: i64) -> Position {
        Position {
            partition: 0,
            committed,
            start: 4,
            end,
        }
    }

    #[test]
    fn the_lag_in_seconds_is_the_age_of_the_oldest_uncommitted_message() {
        let book = book_with("payment", &[(4, 1_000), (5, 4_000), (6, 5_000)]);
        assert_eq!(
            lag_ms(&book, "payment", &at(Some(5), 7), 9_000),
            Some(5_000)
        );
        assert_eq!(lag_ms(&book, "payment", &at(Some(7), 7), 9_000), Some(0));
        // Never committed: read from the partition's start.
        assert_eq!(lag_ms(&book, "payment", &at(None, 7), 9_000), Some(8_000));
        assert_eq!(at(None, 7).lag(), 3);
        // Behind what the view has read: not known yet.
        assert_eq!(lag_ms(&book, "payment", &at(Some(7), 9), 9_000), None);
    }
}
