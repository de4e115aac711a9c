//! What a partition remembers of each idempotent producer, so that a batch the producer
//! sends again (its request timed out, the connection dropped) is stored once, and a batch
//! that would leave a gap in the producer's sequence is refused — the checks that make
//! `enable.idempotence=true` mean something.
//!
//! The rules are Kafka's: per producer id, sequences continue from the last batch; a
//! batch among the last five already stored is a duplicate and gets the offset it got the
//! first time; a newer epoch starts again at sequence 0; an older epoch is fenced.

use std::collections::{HashMap, VecDeque};

use super::batch::{BatchHeader, increment_sequence};

/// How many recent batches per producer are remembered for duplicate detection: librdkafka
/// and the Java client keep at most five requests in flight per partition.
const REMEMBERED_BATCHES: usize = 5;

/// A batch already stored: its sequence range and where it went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StoredBatch {
    first_sequence: i32,
    last_sequence: i32,
    base_offset: i64,
}

#[derive(Debug, Clone)]
struct ProducerEntry {
    epoch: i16,
    recent: VecDeque<StoredBatch>,
}

/// The verdict on a batch from an idempotent producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Append it.
    Append,
    /// Already stored at this base offset: answer success with it, store nothing.
    Duplicate(i64),
    /// Its epoch is older than the producer's current one: another instance took over.
    Fenced,
    /// Its first sequence does not follow the last stored one.
    OutOfOrder {
        /// The sequence the partition expected.
        expected: i32,
    },
}

/// Idempotent producers seen on one partition.
#[derive(Debug, Default)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStates {
    /// What to do with `header`'s batch (call only for producer ids ≥ 0).
    pub fn check(&self, header: &BatchHeader) -> SequenceCheck {
        let Some(entry) = self.producers.get(&header.producer_id) else {
            // A producer this partition has not seen: after a restart of an in-memory
            // broker its producers come back mid-sequence; take their batch as the start.
            return SequenceCheck::Append;
        };
        if header.producer_epoch < entry.epoch {
            return SequenceCheck::Fenced;
        }
        if header.producer_epoch > entry.epoch {
            return match header.base_sequence {
                0 => SequenceCheck::Append,
                _ => SequenceCheck::OutOfOrder { expected: 0 },
            };
        }
        if let Some(stored) = entry.recent.iter().find(|b| {
            b.first_sequence == header.base_sequence && b.last_sequence == header.last_sequence()
        }) {
            return SequenceCheck::Duplicate(stored.base_offset);
        }
        let expected = entry
            .recent
            .back()
            .map_or(0, |last| increment_sequence(last.last_sequence, 1));
        if header.base_sequence == expected {
            SequenceCheck::Append
        } else {
            SequenceCheck::OutOfOrder { expected }
        }
    }

    /// Records that `header`'s batch was appended at `base_offset`.
    pub fn appended(&mut self, header: &BatchHeader, base_offset: i64) {
        let entry = self
            .producers
            .entry(header.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: header.producer_epoch,
                recent: VecDeque::with_capacity(REMEMBERED_BATCHES),
            });
        if header.producer_epoch != entry.epoch {
            entry.epoch = header.producer_epoch;
            entry.recent.clear();
        }
        if entry.recent.len() == REMEMBERED_BATCHES {
            entry.recent.pop_front();
        }
        entry.recent.push_back(StoredBatch {
            first_sequence: header.base_sequence,
            last_sequence: header.last_sequence(),
            base_offset,
        });
    }

    /// The producer's current epoch, if the partition has seen it.
    pub fn epoch(&self, producer_id: i64) -> Option<i16> {
        self.producers.get(&producer_id).map(|p| p.epoch)
    }

    /// Forgets the producer's batches before a new epoch (a transaction marker written for
    /// a bumped epoch), so its next batch starts at sequence 0.
    pub fn bump_epoch(&mut self, producer_id: i64, epoch: i16) {
        if let Some(entry) = self.producers.get_mut(&producer_id)
            && epoch > entry.epoch
        {
            entry.epoch = epoch;
            entry.recent.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(epoch: i16, first: i32, count: i32) -> BatchHeader {
        BatchHeader {
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: 1,
            producer_epoch: epoch,
            base_sequence: first,
            transactional: false,
            control: false,
        }
    }

    #[test]
    fn sequences_continue_and_repeats_get_their_first_offset() {
        let mut states = ProducerStates::default();
        assert_eq!(states.check(&batch(0, 0, 3)), SequenceCheck::Append);
        states.appended(&batch(0, 0, 3), 100);
        assert_eq!(states.check(&batch(0, 3, 2)), SequenceCheck::Append);
        states.appended(&batch(0, 3, 2), 103);
        assert_eq!(states.check(&batch(0, 0, 3)), SequenceCheck::Duplicate(100));
        assert_eq!(states.check(&batch(0, 3, 2)), SequenceCheck::Duplicate(103));
        assert_eq!(
            states.check(&batch(0, 9, 1)),
            SequenceCheck::OutOfOrder { expected: 5 }
        );
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut states = ProducerStates::default();
        for n in 0..7 {
            states.appended(&batch(0, n, 1), i64::from(n));
        }
        assert_eq!(states.check(&batch(0, 6, 1)), SequenceCheck::Duplicate(6));
        assert_eq!(states.check(&batch(0, 2, 1)), SequenceCheck::Duplicate(2));
        assert_eq!(
            states.check(&batch(0, 1, 1)),
            SequenceCheck::OutOfOrder { expected: 7 }
        );
    }

    #[test]
    fn a_new_epoch_starts_at_zero_and_fences_the_old_one() {
        let mut states = ProducerStates::default();
        states.appended(&batch(0, 0, 5), 0);
        assert_eq!(
            states.check(&batch(1, 5, 1)),
            SequenceCheck::OutOfOrder { expected: 0 }
        );
        assert_eq!(states.check(&batch(1, 0, 1)), SequenceCheck::Append);
        states.appended(&batch(1, 0, 1), 5);
        assert_eq!(states.check(&batch(0, 5, 1)), SequenceCheck::Fenced);
        states.bump_epoch(1, 2);
        assert_eq!(states.check(&batch(1, 1, 1)), SequenceCheck::Fenced);
        assert_eq!(states.check(&batch(2, 0, 1)), SequenceCheck::Append);
    }

    #[test]
    fn an_unknown_producer_mid_sequence_is_taken_as_it_comes() {
        let states = ProducerStates::default();
        assert_eq!(states.check(&batch(4, 1234, 2)), SequenceCheck::Append);
    }
}
