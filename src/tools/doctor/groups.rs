//! The saga's consumer groups, as `edm doctor` and `edm order place --wait` check them: a
//! step whose group has no member while events wait for it is a service to start. Servers
//! and HTTP services answer a probe; a stopped consumer can only be seen here.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::Check;
use crate::kafka::Kafka;
use crate::services::{
    inventory_commands, inventory_consumer, orchestrator, order_consumer, payment_commands,
    payment_consumer,
};

/// Longest each question to the broker may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// One step of a saga: the group that runs it, the topic it reads, the service to start.
#[derive(Debug, Clone)]
pub struct Step {
    pub group: String,
    pub topic: String,
    pub service: &'static str,
}

/// Where a group stands on one partition of its topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Position {
    pub partition: i32,
    /// The next offset the group will read; `None` if it never committed here.
    pub committed: Option<i64>,
    /// The partition's start (low watermark).
    pub start: i64,
    /// The partition's end (high watermark).
    pub end: i64,
}

impl Position {
    /// Where the group reads next: what it committed, or the partition's start (edm's
    /// consumers reset to the earliest offset).
    pub fn next(&self) -> i64 {
        self.committed.unwrap_or(self.start).max(self.start)
    }

    /// Messages written that the group has not committed.
    pub fn lag(&self) -> i64 {
        (self.end - self.next()).max(0)
    }
}

/// Every step, choreography's then orchestration's.
pub fn steps(kafka: &Kafka) -> Vec<Step> {
    let topics = &kafka.topics;
    let step = |group: &str, topic: &str, service| Step {
        group: kafka.group(group),
        topic: topic.to_string(),
        service,
    };
    vec![
        step(
            inventory_consumer::GROUP,
            &topics.inventory,
            "edm inventory-consumer",
        ),
        step(
            payment_consumer::GROUP,
            &topics.payment,
            "edm payment-consumer",
        ),
        step(order_consumer::GROUP, &topics.order, "edm order-consumer"),
        step(
            orchestrator::GROUP,
            &topics.saga_replies,
            "edm orchestrator",
        ),
        step(
            inventory_commands::COMMAND_GROUP,
            &topics.inventory_commands,
            "edm inventory-consumer",
        ),
        step(
            payment_commands::COMMAND_GROUP,
            &topics.payment_commands,
            "edm payment-consumer",
        ),
    ]
}

/// What a group shows: its members, and the events of its topic it has not committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    members: usize,
    /// `None`: the group has never committed (its service never ran here).
    unread: Option<i64>,
}

/// One check per step that a service has ever run (a group never committed and without
/// members is a style not in use, and left out).
pub async fn check(kafka: &Kafka) -> Vec<Check> {
    let kafka = kafka.clone();
    let checks = tokio::task::spawn_blocking(move || {
        steps(&kafka)
            .into_iter()
            .filter_map(|step| {
                let seen = see(&kafka, &step);
                judge(&step, seen)
            })
            .collect::<Vec<_>>()
    })
    .await;
    checks.unwrap_or_else(|error| {
        vec![Check::new(
            "consumer groups".into(),
            Err(format!("cannot be read: {error}")),
        )]
    })
}

/// The verdict on one step (`None`: not in use).
fn judge(step: &Step, seen: Result<Seen, String>) -> Option<Check> {
    let name = format!("group {} ({})", step.group, step.service);
    let result = match seen {
        Err(error) => Err(format!("cannot be read: {error}")),
        Ok(Seen {
            members: 0,
            unread: None,
        }) => return None,
        Ok(Seen {
            members: 0,
            unread: Some(unread),
        }) if unread > 0 => Err(format!(
            "no member, and {unread} event(s) of `{}` wait for it: start `{}`",
            step.topic, step.service
        )),
        Ok(Seen {
            members: 0,
            unread: Some(_),
        }) => Ok(format!(
            "no member, nothing waiting (start `{}` before the next saga)",
            step.service
        )),
        Ok(Seen { members, unread }) => Ok(format!(
            "{members} member(s), {} event(s) not yet handled",
            unread.unwrap_or(0)
        )),
    };
    Some(Check::new(name, result))
}

/// Asks the broker about one step's group (blocking).
fn see(kafka: &Kafka, step: &Step) -> Result<Seen, String> {
    let reader: BaseConsumer = kafka.group_reader(&step.group).map_err(|e| e.to_string())?;
    let members = members(&reader, step)?;
    let unread = unread(&positions(&reader, step)?);
    Ok(Seen { members, unread })
}

/// The messages a group has not handled on any partition (`None`: it never committed,
/// its service never ran here). A partition it never committed counts from its start:
/// an event there waits for it as much as one behind a commit.
fn unread(positions: &[Position]) -> Option<i64> {
    positions
        .iter()
        .any(|p| p.committed.is_some())
        .then(|| positions.iter().map(Position::lag).sum())
}

/// Where `step`'s group stands on each partition of its topic, asked with `reader`, a
/// [`Kafka::group_reader`] of the group (blocking).
pub fn positions(reader: &BaseConsumer, step: &Step) -> Result<Vec<Position>, String> {
    let metadata = reader
        .fetch_metadata(Some(&step.topic), TIMEOUT)
        .map_err(|e| e.to_string())?;
    let mut wanted = TopicPartitionList::new();
    for topic in metadata.topics().iter().filter(|t| t.name() == step.topic) {
        for partition in topic.partitions() {
            wanted.add_partition(&step.topic, partition.id());
        }
    }
    let committed = reader
        .committed_offsets(wanted, TIMEOUT)
        .map_err(|e| e.to_string())?;
    let mut positions = Vec::new();
    for element in committed.elements() {
        let (start, end) = reader
            .fetch_watermarks(&step.topic, element.partition(), TIMEOUT)
            .map_err(|e| e.to_string())?;
        let committed = match element.offset() {
            Offset::Offset(at) => Some(at),
            _ => None,
        };
        positions.push(Position {
            partition: element.partition(),
            committed,
            start,
            end,
        });
    }
    positions.sort_by_key(|p| p.partition);
    Ok(positions)
}

/// A saga step's group that has members now, reading one of `topics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningReader {
    /// The group.
    pub group: String,
    /// The topic it reads.
    pub topic: String,
    /// The service that runs the step.
    pub service: &'static str,
    /// Its members.
    pub members: usize,
}

/// The saga steps reading any of `topics` whose groups have members now.
pub async fn running_readers(
    kafka: &Kafka,
    topics: &[String],
) -> Result<Vec<RunningReader>, String> {
    let kafka = kafka.clone();
    let topics = topics.to_vec();
    let found = tokio::task::spawn_blocking(move || {
        let mut running = Vec::new();
        for step in steps(&kafka)
            .into_iter()
            .filter(|s| topics.contains(&s.topic))
        {
            let reader: BaseConsumer =
                kafka.group_reader(&step.group).map_err(|e| e.to_string())?;
            let members = members(&reader, &step)?;
            if members > 0 {
                running.push(RunningReader {
                    group: step.group,
                    topic: step.topic,
                    service: step.service,
                    members,
                });
            }
        }
        Ok(running)
    });
    found.await.map_err(|error| error.to_string())?
}

/// The members of one step's group, asked with `reader` (blocking).
pub fn members(reader: &BaseConsumer, step: &Step) -> Result<usize, String> {
    Ok(reader
        .fetch_group_list(Some(&step.group), TIMEOUT)
        .map_err(|e| e.to_string())?
        .groups()
        .iter()
        .find(|g| g.name() == step.group)
        .map_or(0, |g| g.members().len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(partition: i32, committed: Option<i64>, start: i64, end: i64) -> Position {
        Position {
            partition,
            committed,
            start,
            end,
        }
    }

    #[test]
    fn an_event_on_a_partition_never_committed_waits_too() {
        // The group handled partition 0; the next saga's event went to partition 1.
        assert_eq!(unread(&[at(0, Some(1), 0, 1), at(1, None, 0, 1)]), Some(1));
        assert_eq!(unread(&[at(0, Some(3), 2, 5), at(1, None, 4, 4)]), Some(2));
        // Never committed anywhere: a style not in use.
        assert_eq!(unread(&[at(0, None, 0, 3)]), None);
    }
}
