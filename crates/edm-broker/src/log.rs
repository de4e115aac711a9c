//! One partition's log: the batches in offset order, with everything a reader needs to
//! know about them.
//!
//! Offsets are assigned and the batch stored in one step under the partition's lock, so a
//! reader never sees a later batch before an earlier one (the "hole" of Tansu 0.6's memory
//! engine). Reads find their first batch by binary search, so a fetch costs the same at
//! offset 10 as at offset 10 million. Everything appended counts as committed at once:
//! this broker is the only replica, so the high watermark is the log end.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Write;

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;

use super::batch::{self, BatchHeader, Stored};
use super::producers::{ProducerStates, SequenceCheck};

mod retention;
use retention::Journal;

/// A batch in the log.
#[derive(Debug, Clone)]
struct StoredBatch {
    base_offset: i64,
    last_offset: i64,
    max_timestamp: i64,
    /// The batch as fetch answers carry it (base offset already written in).
    bytes: Bytes,
}

/// A transaction that was aborted on this partition: read_committed readers drop the
/// producer's records from `first_offset` up to the abort marker at `last_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTransaction {
    /// The transactional producer.
    pub producer_id: i64,
    /// Offset of its first record on this partition.
    pub first_offset: i64,
    /// Offset of the abort marker.
    pub last_offset: i64,
}

/// Why an append was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendError {
    /// An older epoch of a producer that has a newer one.
    Fenced,
    /// A gap in the producer's sequence.
    OutOfOrder {
        /// The sequence the partition expected.
        expected: i32,
    },
    /// The batch could not be written to the partition's file (`edm broker --data-dir`).
    Storage(String),
}

/// Batches read for a fetch.
#[derive(Debug, Default)]
pub struct Read {
    /// The batches, in offset order.
    pub batches: Vec<Bytes>,
    /// Their total size.
    pub bytes: usize,
    /// The offset after the last batch read (where the next read starts).
    pub next_offset: i64,
}

/// One partition's batches and state.
#[derive(Debug, Default)]
pub struct PartitionLog {
    batches: VecDeque<StoredBatch>,
    /// Total size of `batches`.
    bytes: u64,
    end_offset: i64,
    producers: ProducerStates,
    /// First offset of each producer's open transaction, by producer and by offset.
    open_by_producer: HashMap<i64, i64>,
    open_by_offset: BTreeMap<i64, i64>,
    /// In marker order, so sorted by `last_offset`.
    aborted: Vec<AbortedTransaction>,
    /// Where each batch is also written, when the broker keeps its data on disk.
    journal: Option<Journal>,
}

impl PartitionLog {
    /// The next offset to be written: everything below it is stored and readable.
    pub fn high_watermark(&self) -> i64 {
        self.end_offset
    }

    /// The first offset of an open transaction, or the high watermark: read_committed
    /// readers see nothing at or past it.
    pub fn last_stable_offset(&self) -> i64 {
        self.open_by_offset
            .keys()
            .next()
            .copied()
            .unwrap_or(self.end_offset)
    }

    /// The first offset kept (retention drops the oldest batches).
    pub fn log_start_offset(&self) -> i64 {
        self.batches
            .front()
            .map_or(self.end_offset, |b| b.base_offset)
    }

    /// Appends `bytes` (one batch whose header is `header`) and returns its base offset; a
    /// batch the producer already sent gets the base offset it got then and is not stored
    /// again.
    pub fn append(&mut self, header: &BatchHeader, bytes: &[u8]) -> Result<i64, AppendError> {
        if header.producer_id >= 0 {
            match self.producers.check(header) {
                SequenceCheck::Append => {}
                SequenceCheck::Duplicate(base_offset) => return Ok(base_offset),
                SequenceCheck::Fenced => return Err(AppendError::Fenced),
                SequenceCheck::OutOfOrder { expected } => {
                    return Err(AppendError::OutOfOrder { expected });
                }
            }
        }
        let base_offset = self.end_offset;
        let placed = batch::at_offset(bytes, base_offset);
        self.write(&placed).map_err(AppendError::Storage)?;
        self.push(
            base_offset,
            header.last_offset_delta,
            header.max_timestamp,
            placed,
        );
        if header.producer_id >= 0 {
            self.producers.appended(header, base_offset);
        }
        if header.transactional && !self.open_by_producer.contains_key(&header.producer_id) {
            self.open_by_producer
                .insert(header.producer_id, base_offset);
            self.open_by_offset.insert(base_offset, header.producer_id);
        }
        Ok(base_offset)
    }

    /// Writes the marker that ends `producer_id`'s transaction on this partition and
    /// returns its offset.
    pub fn end_transaction(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        timestamp: i64,
    ) -> i64 {
        let offset = self.end_offset;
        let marker =
            batch::transaction_marker(producer_id, producer_epoch, commit, offset, timestamp);
        // Journaled as any batch: without it a restart would read the transaction back
        // as open (and abort it), and every later offset would move down by one.
        if let Err(error) = self.write(&marker) {
            tracing::error!(producer_id, commit, %error, "a transaction marker could not be written to the partition's file");
        }
        self.push(offset, 0, timestamp, marker);
        self.producers.bump_epoch(producer_id, producer_epoch);
        self.close_transaction(producer_id, commit, offset);
        offset
    }

    /// Writes a batch to the journal, if there is one (to the page cache: no fsync, as
    /// Kafka's default; a process crash loses nothing, a power cut the last writes).
    fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        match &mut self.journal {
            Some(journal) => journal.file.write_all(bytes).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    /// Takes back a batch read from this partition's file (at start, before any append):
    /// the offsets, producer sequences and transactions it stands for.
    pub fn replay(&mut self, stored: Stored) {
        let Stored {
            base_offset,
            header,
            bytes,
            commits,
        } = stored;
        self.push(
            base_offset,
            header.last_offset_delta,
            header.max_timestamp,
            bytes,
        );
        match commits {
            Some(commit) => {
                self.producers
                    .bump_epoch(header.producer_id, header.producer_epoch);
                self.close_transaction(header.producer_id, commit, base_offset);
            }
            None => {
                if header.producer_id >= 0 {
                    self.producers.appended(&header, base_offset);
                }
                if header.transactional {
                    self.open_transaction(header.producer_id, base_offset);
                }
            }
        }
    }

    /// Producers (with their epochs) whose transaction on this partition has no marker yet.
    pub fn open_transactions(&self) -> Vec<(i64, i16)> {
        self.open_by_producer
            .keys()
            .map(|&id| (id, self.producers.epoch(id).unwrap_or(0)))
            .collect()
    }

    fn open_transaction(&mut self, producer_id: i64, first_offset: i64) {
        if let std::collections::hash_map::Entry::Vacant(open) =
            self.open_by_producer.entry(producer_id)
        {
            open.insert(first_offset);
            self.open_by_offset.insert(first_offset, producer_id);
        }
    }

    fn close_transaction(&mut self, producer_id: i64, commit: bool, marker_offset: i64) {
        if let Some(first_offset) = self.open_by_producer.remove(&producer_id) {
            self.open_by_offset.remove(&first_offset);
            if !commit {
                self.aborted.push(AbortedTransaction {
                    producer_id,
                    first_offset,
                    last_offset: marker_offset,
                });
            }
        }
    }

    fn push(&mut self, base_offset: i64, last_offset_delta: i32, max_timestamp: i64, bytes: Bytes) {
        let last_offset = base_offset + i64::from(last_offset_delta);
        self.bytes += bytes.len() as u64;
        self.batches.push_back(StoredBatch {
            base_offset,
            last_offset,
            max_timestamp,
            bytes,
        });
        self.end_offset = last_offset + 1;
    }

    /// Whole batches from the one holding offset `from`, stopping before `until` (the high
    /// watermark, or the last stable offset for read_committed readers) and before passing
    /// `max_bytes` — though with `at_least_one` the first batch is returned whatever its
    /// size, so that a reader always makes progress (Kafka's rule for the first partition
    /// of a fetch answer that has data).
    pub fn read(&self, from: i64, until: i64, max_bytes: usize, at_least_one: bool) -> Read {
        let start = self.batches.partition_point(|b| b.last_offset < from);
        let mut read = Read {
            next_offset: from,
            ..Read::default()
        };
        for stored in self.batches.range(start..) {
            if stored.base_offset >= until {
                break;
            }
            let first = read.batches.is_empty() && at_least_one;
            if !first && read.bytes + stored.bytes.len() > max_bytes {
                break;
            }
            read.bytes += stored.bytes.len();
            read.batches.push(stored.bytes.clone());
            read.next_offset = stored.last_offset + 1;
        }
        read
    }

    /// Aborted transactions a read of `from..until` must be told about.
    pub fn aborted_between(&self, from: i64, until: i64) -> Vec<AbortedTransaction> {
        let start = self.aborted.partition_point(|a| a.last_offset < from);
        self.aborted[start..]
            .iter()
            .filter(|a| a.first_offset < until)
            .copied()
            .collect()
    }

    /// The first offset whose record has a timestamp at or after `timestamp`, with that
    /// timestamp; `None` if every record is older.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Option<(i64, i64)> {
        let stored = self.batches.iter().find(|b| b.max_timestamp >= timestamp)?;
        // Exact to the record when the batch is uncompressed, else the batch's start.
        let exact = RecordBatchDecoder::decode(&mut stored.bytes.clone())
            .ok()
            .and_then(|set| {
                set.records
                    .iter()
                    .find(|r| r.timestamp >= timestamp)
                    .map(|r| (r.offset, r.timestamp))
            });
        Some(exact.unwrap_or((stored.base_offset, stored.max_timestamp)))
    }

    /// The offset and timestamp of the batch with the latest timestamp (its last record).
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        self.batches
            .iter()
            .max_by_key(|b| b.max_timestamp)
            .map(|b| (b.last_offset, b.max_timestamp))
    }
}

#[cfg(test)]
mod tests;
