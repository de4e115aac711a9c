//! Reading each partition without holes.
//!
//! Offsets in a partition of the saga's topics are contiguous: no compaction, no
//! transaction markers. A consumer that receives offset 130 when it expected 110 is looking
//! at a broker that shows a later batch before an earlier one has landed — Tansu 0.6 does,
//! when two produce requests for one partition race (it hands out the offsets first and
//! stores the batches after; a fetch in between lists the later batch). Going on would
//! skip offsets 110–129 for good: events never handled, a saga stuck, stock never
//! released. So the consumer rewinds the partition to the missing offset and reads again;
//! once the batch has landed, the records come in order. A hole that is still there after
//! [`GapGuard::patience`] is taken as real (a topic written by a transactional producer has
//! such holes) and the consumer goes on.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset};
use tracing::{debug, warn};

use super::SagaConsumer;

/// How long going back to a hole may take.
const SEEK_TIMEOUT: Duration = Duration::from_secs(1);

/// What to do with a message, given the offsets seen before it on its partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The next offset (or the first seen, or a redelivery): handle it.
    Take,
    /// Offsets from `to` up to this one are missing: rewind the partition to `to` and drop
    /// this message and the partition's later ones from the batch.
    Rewind {
        /// The first missing offset.
        to: i64,
    },
    /// Offsets `from` up to this one stayed missing for the whole patience: handle it.
    TakeAfterGap {
        /// The first missing offset.
        from: i64,
    },
}

/// Per partition, the offset a consumer expects next, and the holes it is waiting on.
#[derive(Debug)]
pub struct GapGuard {
    next: HashMap<(String, i32), i64>,
    /// Per partition, the hole being waited for and since when.
    waiting_since: HashMap<(String, i32), (i64, Instant)>,
    patience: Duration,
}

impl GapGuard {
    /// A guard that waits up to `patience` for a hole to fill.
    pub fn new(patience: Duration) -> Self {
        Self {
            next: HashMap::new(),
            waiting_since: HashMap::new(),
            patience,
        }
    }

    /// How long a hole may stay before it is taken as real.
    pub fn patience(&self) -> Duration {
        self.patience
    }

    /// The verdict on a message at `offset` of `topic`/`partition`, seen at `now`. `Take`
    /// and `TakeAfterGap` move the expected offset past it.
    pub fn check(&mut self, topic: &str, partition: i32, offset: i64, now: Instant) -> Verdict {
        let key = (topic.to_string(), partition);
        let verdict = match self.next.get(&key) {
            Some(&expected) if offset > expected => {
                let (hole, since) = *self
                    .waiting_since
                    .entry(key.clone())
                    .or_insert((expected, now));
                let since = if hole == expected { since } else { now };
                if now.duration_since(since) < self.patience {
                    self.waiting_since.insert(key, (expected, since));
                    return Verdict::Rewind { to: expected };
                }
                Verdict::TakeAfterGap { from: expected }
            }
            _ => Verdict::Take,
        };
        self.waiting_since.remove(&key);
        self.next.insert(key, offset + 1);
        verdict
    }

    /// Takes the message at `offset` whatever came before (a rewind that failed).
    pub fn accept(&mut self, topic: &str, partition: i32, offset: i64) {
        self.next.insert((topic.to_string(), partition), offset + 1);
    }

    /// Drops from `batch` each message that follows a hole in its partition, with the
    /// partition's later messages, and rewinds `consumer` on that partition to the hole; a
    /// hole still there after the patience is skipped with a warning.
    pub fn without_holes<'a>(
        &mut self,
        consumer: &SagaConsumer,
        batch: Vec<BorrowedMessage<'a>>,
    ) -> Vec<BorrowedMessage<'a>> {
        let now = Instant::now();
        let mut rewound: HashSet<(String, i32)> = HashSet::new();
        let mut kept = Vec::with_capacity(batch.len());
        for message in batch {
            let (topic, partition, offset) = (
                message.topic().to_string(),
                message.partition(),
                message.offset(),
            );
            if rewound.contains(&(topic.clone(), partition)) {
                continue;
            }
            match self.check(&topic, partition, offset, now) {
                Verdict::Take => kept.push(message),
                Verdict::TakeAfterGap { from } => {
                    warn!(%topic, partition, "offsets {from}..{offset} never appeared within {:?}; going on without them",
                          self.patience);
                    kept.push(message);
                }
                Verdict::Rewind { to } => {
                    match consumer.seek(&topic, partition, Offset::Offset(to), SEEK_TIMEOUT) {
                        Ok(()) => {
                            debug!(%topic, partition, "offsets {to}..{offset} not there yet: reading again from {to}");
                            rewound.insert((topic, partition));
                        }
                        Err(error) => {
                            warn!(%topic, partition, %error,
                                  "cannot go back to the missing offsets {to}..{offset}; going on without them");
                            self.accept(&topic, partition, offset);
                            kept.push(message);
                        }
                    }
                }
            }
        }
        kept
    }

    /// Forgets every partition (after a rebalance: another instance may have moved on).
    pub fn forget_all(&mut self) {
        self.next.clear();
        self.waiting_since.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_offsets_and_redeliveries_are_taken() {
        let mut guard = GapGuard::new(Duration::from_secs(1));
        let now = Instant::now();
        assert_eq!(guard.check("t", 0, 40, now), Verdict::Take, "first seen");
        assert_eq!(guard.check("t", 0, 41, now), Verdict::Take);
        assert_eq!(guard.check("t", 1, 7, now), Verdict::Take, "own partition");
        assert_eq!(guard.check("t", 0, 30, now), Verdict::Take, "redelivery");
        assert_eq!(guard.check("t", 0, 31, now), Verdict::Take);
    }

    #[test]
    fn a_hole_rewinds_until_it_fills() {
        let mut guard = GapGuard::new(Duration::from_secs(1));
        let now = Instant::now();
        guard.check("t", 0, 109, now);
        // The later batch shows first: rewind to the hole, as often as it shows.
        assert_eq!(guard.check("t", 0, 130, now), Verdict::Rewind { to: 110 });
        let later = now + Duration::from_millis(20);
        assert_eq!(guard.check("t", 0, 130, later), Verdict::Rewind { to: 110 });
        // The earlier batch landed: read in order.
        assert_eq!(guard.check("t", 0, 110, later), Verdict::Take);
        assert_eq!(guard.check("t", 0, 111, later), Verdict::Take);
    }

    #[test]
    fn a_hole_that_stays_is_taken_as_real_after_the_patience() {
        let mut guard = GapGuard::new(Duration::from_secs(1));
        let now = Instant::now();
        guard.check("t", 0, 9, now);
        assert_eq!(guard.check("t", 0, 12, now), Verdict::Rewind { to: 10 });
        let after = now + Duration::from_secs(2);
        assert_eq!(
            guard.check("t", 0, 12, after),
            Verdict::TakeAfterGap { from: 10 }
        );
        assert_eq!(guard.check("t", 0, 13, after), Verdict::Take);
    }

    #[test]
    fn each_hole_gets_its_own_patience() {
        let mut guard = GapGuard::new(Duration::from_secs(1));
        let start = Instant::now();
        guard.check("t", 0, 9, start);
        assert_eq!(guard.check("t", 0, 12, start), Verdict::Rewind { to: 10 });
        for offset in 10..=19 {
            assert_eq!(guard.check("t", 0, offset, start), Verdict::Take);
        }
        // A new hole, long after the first one was waited for.
        let later = start + Duration::from_secs(5);
        assert_eq!(guard.check("t", 0, 25, later), Verdict::Rewind { to: 20 });
    }

    #[test]
    fn a_failed_rewind_and_a_rebalance_move_on() {
        let mut guard = GapGuard::new(Duration::from_secs(1));
        let now = Instant::now();
        guard.check("t", 0, 9, now);
        assert_eq!(guard.check("t", 0, 12, now), Verdict::Rewind { to: 10 });
        guard.accept("t", 0, 12);
        assert_eq!(guard.check("t", 0, 13, now), Verdict::Take);
        guard.forget_all();
        assert_eq!(guard.check("t", 0, 500, now), Verdict::Take);
    }
}
