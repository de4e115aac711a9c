//! When each message the view has read was written: what turns a consumer group's lag in
//! messages into a lag in seconds (the age of the oldest message it has not committed).
//! Bounded: the newest [`KEPT`] messages per partition (16 bytes each, up to about 1 MiB
//! per partition), of the topics consumer groups read (the book leaves dead letters out).

use std::collections::{HashMap, VecDeque};

/// Messages remembered per partition: a group further behind than this is shown as
/// waiting since the oldest one kept (a lower bound).
pub const KEPT: usize = 50_000;

/// Each partition's offsets and broker timestamps, oldest first.
#[derive(Debug, Default)]
pub struct Arrivals {
    topics: HashMap<String, HashMap<i32, VecDeque<(i64, i64)>>>,
}

impl Arrivals {
    /// Notes that `topic`'s message at `position` was written at `at_ms`.
    pub fn take(&mut self, topic: &str, position: (i32, i64), at_ms: Option<i64>) {
        let Some(at_ms) = at_ms else { return };
        let (partition, offset) = position;
        let partitions = match self.topics.get_mut(topic) {
            Some(partitions) => partitions,
            None => self.topics.entry(topic.to_string()).or_default(),
        };
        let kept = partitions.entry(partition).or_default();
        if kept.back().is_some_and(|(last, _)| *last >= offset) {
            return; // read again (a reader's retry): already noted
        }
        if kept.len() == KEPT {
            kept.pop_front();
        }
        kept.push_back((offset, at_ms));
    }

    /// When the first message at or after `offset` of `topic`'s `partition` was written:
    /// the oldest a group that committed `offset` has not read. `None` if the view has
    /// not read that far. Past the kept window, the oldest kept (a lower bound).
    pub fn written_at(&self, topic: &str, partition: i32, offset: i64) -> Option<i64> {
        let kept = self.topics.get(topic)?.get(&partition)?;
        let first = kept.partition_point(|(at, _)| *at < offset);
        kept.get(first).map(|(_, written)| *written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_unread_message_gives_the_time() {
        let mut arrivals = Arrivals::default();
        for (offset, at) in [(0, 1_000), (1, 2_000), (2, 3_000)] {
            arrivals.take("payment", (1, offset), Some(at));
        }
        arrivals.take("payment", (1, 1), Some(9_999)); // a reread changes nothing
        assert_eq!(arrivals.written_at("payment", 1, 0), Some(1_000));
        assert_eq!(arrivals.written_at("payment", 1, 2), Some(3_000));
        // Everything read: nothing waits.
        assert_eq!(arrivals.written_at("payment", 1, 3), None);
        assert_eq!(arrivals.written_at("payment", 0, 0), None);
        assert_eq!(arrivals.written_at("order", 1, 0), None);
    }

    #[test]
    fn only_the_newest_messages_are_kept() {
        let mut arrivals = Arrivals::default();
        for offset in 0..(KEPT as i64 + 10) {
            arrivals.take("order", (0, offset), Some(offset));
        }
        // Offset 0 is forgotten: the oldest kept stands for it.
        assert_eq!(arrivals.written_at("order", 0, 0), Some(10));
        assert_eq!(arrivals.written_at("order", 0, 50), Some(50));
    }
}
