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
use std::time::{Duration, Instant};

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
    /// Why the group could not be read (its partitions are then unknown).
    pub error: Option<String>,
}

/// What the brokers said of one step's group.
#[derive(Debug, Clone)]
struct Asked {
    /// Which of the view's sources it belongs to.
    source: usize,
    step: Step,
    style: &'static str,
    members: usize,
    positions: Vec<Position>,
    error: Option<String>,
}

/// One round of questions: when it ended, and what it found.
type Round = (Instant, Vec<Asked>);

/// Answers younger than this are given again rather than asked anew: pages poll every 2 s,
/// and each round is several questions to the broker per group.
const FRESH_FOR: Duration = Duration::from_secs(1);

/// The groups of the sagas the view shows, and a reader kept for each.
pub struct Consumers {
    kafkas: Vec<Kafka>,
    readers: Mutex<HashMap<String, Arc<BaseConsumer>>>,
    /// The last round's answers. Held while a round runs: one round at a time, however
    /// many pages ask (with the broker away each question waits up to 5 s).
    last: Arc<tokio::sync::Mutex<Option<Round>>>,
}

impl Consumers {
    /// The groups of the sagas on `kafkas`' topics.
    pub fn new(kafkas: &[Kafka]) -> Self {
        Self {
            kafkas: kafkas.to_vec(),
            readers: Mutex::default(),
            last: Arc::default(),
        }
    }

    /// Every step's group that is in use (it has members, or has committed), with its lag
    /// per partition; `books[i]` is what the view read of `kafkas[i]`'s topics.
    pub async fn lags(self: Arc<Self>, books: Vec<Arc<Mutex<Book>>>) -> Vec<GroupLag> {
        let asked = self.asked().await;
        let now = crate::kafka::now_ms();
        asked
            .into_iter()
            .map(|asked| {
                let book = super::lock(&books[asked.source]);
                let partitions = asked
                    .positions
                    .into_iter()
                    .map(|position| PartitionLag {
                        lag: position.lag(),
                        lag_ms: lag_ms(&book, &asked.step.topic, &position, now),
                        position,
                    })
                    .collect();
                GroupLag {
                    group: asked.step.group,
                    topic: asked.step.topic,
                    service: asked.step.service,
                    style: asked.style,
                    members: asked.members,
                    partitions,
                    error: asked.error,
                }
            })
            .collect()
    }

    /// The last round's answers if fresh, else a new round's. The round runs on a task of
    /// its own that holds the lock: a page that goes away cannot start a second one.
    async fn asked(self: Arc<Self>) -> Vec<Asked> {
        let mut last = self.last.clone().lock_owned().await;
        if let Some((at, asked)) = last.as_ref()
            && at.elapsed() < FRESH_FOR
        {
            return asked.clone();
        }
        let round = tokio::spawn(async move {
            let asking = self.clone();
            let asked = tokio::task::spawn_blocking(move || asking.ask())
                .await
                .unwrap_or_default();
            *last = Some((Instant::now(), asked.clone()));
            asked
        });
        round.await.unwrap_or_default()
    }

    /// Asks the brokers about every step's group (blocking), each group on a thread of its
    /// own: a group's first question waits for its new client to find the coordinator
    /// (about 1 s; one after the other, the tab's first answer took 7 s). A group that
    /// cannot be read is listed with why; the others are still read.
    fn ask(&self) -> Vec<Asked> {
        let steps: Vec<(usize, &Kafka, Step)> = self
            .kafkas
            .iter()
            .enumerate()
            .flat_map(|(source, kafka)| {
                groups::steps(kafka)
                    .into_iter()
                    .map(move |step| (source, kafka, step))
            })
            .collect();
        std::thread::scope(|scope| {
            let asking: Vec<_> = steps
                .into_iter()
                .map(|(source, kafka, step)| scope.spawn(move || self.ask_one(source, kafka, step)))
                .collect();
            asking
                .into_iter()
                .filter_map(|asked| asked.join().ok().flatten())
                .collect()
        })
    }

    /// One step's group (`None`: not in use here — no member, never committed).
    fn ask_one(&self, source: usize, kafka: &Kafka, step: Step) -> Option<Asked> {
        let style = if kafka.topics.orchestration().contains(&step.topic.as_str()) {
            "orchestration"
        } else {
            "choreography"
        };
        let read = self.reader(kafka, &step.group).and_then(|reader| {
            Ok((
                groups::members(&reader, &step)?,
                groups::positions(&reader, &step)?,
            ))
        });
        let (members, positions, error) = match read {
            Ok((members, positions)) => (members, positions, None),
            Err(error) => (0, Vec::new(), Some(format!("{}: {error}", step.group))),
        };
        let unused =
            error.is_none() && members == 0 && positions.iter().all(|p| p.committed.is_none());
        (!unused).then_some(Asked {
            source,
            step,
            style,
            members,
            positions,
            error,
        })
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
