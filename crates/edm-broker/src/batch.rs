//! Record batches as the broker sees them: it never decodes the records inside, it reads
//! the fixed 61-byte header of each batch (what it needs to assign offsets and check the
//! producer's sequence), checks the CRC, and writes the batch's offset into it.
//!
//! Layout of a v2 record batch (the only format since Kafka 0.11; clients that speak
//! Produce v3 or later send nothing else):
//!
//! | at | field | | at | field |
//! |---|---|---|---|---|
//! | 0 | base offset (i64) | | 27 | base timestamp (i64) |
//! | 8 | batch length (i32, bytes after it) | | 35 | max timestamp (i64) |
//! | 12 | partition leader epoch (i32) | | 43 | producer id (i64) |
//! | 16 | magic (i8, 2) | | 51 | producer epoch (i16) |
//! | 17 | CRC-32C of bytes 21.. (u32) | | 53 | base sequence (i32) |
//! | 21 | attributes (i16) | | 57 | record count (i32) |
//! | 23 | last offset delta (i32) | | 61 | records |
//!
//! The base offset and the leader epoch lie outside the CRC, so the broker can set them
//! without touching the rest.

mod keys;

pub use keys::has_record_without_key;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// Bytes before the records of a batch.
pub const HEADER_LEN: usize = 61;
/// Bytes before the batch-length field's end: a batch is `LOG_OVERHEAD + batch length` long.
const LOG_OVERHEAD: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const TRANSACTIONAL: i16 = 1 << 4;
const CONTROL: i16 = 1 << 5;

/// What the broker reads from a batch's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the last record relative to the first: the batch takes
    /// `last_offset_delta + 1` offsets.
    pub last_offset_delta: i32,
    /// Timestamp of the first record (ms since the epoch).
    pub base_timestamp: i64,
    /// Largest timestamp of its records.
    pub max_timestamp: i64,
    /// The idempotent producer's id, or -1.
    pub producer_id: i64,
    /// The producer's epoch.
    pub producer_epoch: i16,
    /// Sequence number of the first record (per producer and partition), or -1.
    pub base_sequence: i32,
    /// Part of a transaction (its records are visible to read_committed readers only once
    /// the transaction commits).
    pub transactional: bool,
    /// A transaction marker, not data.
    pub control: bool,
}

impl BatchHeader {
    /// Sequence number of the last record.
    pub fn last_sequence(&self) -> i32 {
        increment_sequence(self.base_sequence, self.last_offset_delta)
    }
}

/// Sequence numbers wrap from `i32::MAX` to 0.
pub fn increment_sequence(sequence: i32, by: i32) -> i32 {
    if sequence > i32::MAX - by {
        by - (i32::MAX - sequence) - 1
    } else {
        sequence + by
    }
}

/// Why a produce request's records are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Shorter than its header or its stated length.
    #[error("record batch truncated: {0}")]
    Truncated(String),
    /// Magic 0 or 1: message sets of clients older than Kafka 0.11.
    #[error("record format v{0} is not supported (only v2, Kafka 0.11 and later)")]
    UnsupportedMagic(i8),
    /// The CRC does not match the bytes.
    #[error("record batch CRC mismatch: stated {stated:#010x}, computed {computed:#010x}")]
    Corrupt {
        /// CRC in the header.
        stated: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// Well-formed bytes that make no sense as a batch.
    #[error("invalid record batch: {0}")]
    Invalid(String),
}

/// Splits a produce request's record set into its batches, each checked (length, magic,
/// CRC) and with its header read.
pub fn split(records: &Bytes) -> Result<Vec<(BatchHeader, Bytes)>, BatchError> {
    let mut batches = Vec::with_capacity(1);
    let mut rest = records.clone();
    while !rest.is_empty() {
        if rest.len() < HEADER_LEN {
            return Err(BatchError::Truncated(format!(
                "{} bytes left, a batch header takes {HEADER_LEN}",
                rest.len()
            )));
        }
        let magic = rest[MAGIC_AT] as i8;
        if magic != 2 {
            return Err(BatchError::UnsupportedMagic(magic));
        }
        let length = (&rest[8..12]).get_i32();
        let total = usize::try_from(length)
            .ok()
            .and_then(|l| l.checked_add(LOG_OVERHEAD))
            .filter(|&total| total >= HEADER_LEN)
            .ok_or_else(|| BatchError::Invalid(format!("batch length {length}")))?;
        if rest.len() < total {
            return Err(BatchError::Truncated(format!(
                "batch of {total} bytes, {} given",
                rest.len()
            )));
        }
        let batch = rest.split_to(total);
        let header = read_header(&batch)?;
        if header.control {
            return Err(BatchError::Invalid(
                "control batches are written by the broker, not produced".into(),
            ));
        }
        batches.push((header, batch));
    }
    if batches.is_empty() {
        return Err(BatchError::Invalid("no record batch".into()));
    }
    Ok(batches)
}

fn read_header(batch: &[u8]) -> Result<BatchHeader, BatchError> {
    let stated = (&batch[CRC_AT..ATTRIBUTES_AT]).get_u32();
    let computed = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    if stated != computed {
        return Err(BatchError::Corrupt { stated, computed });
    }
    let mut fields = &batch[ATTRIBUTES_AT..HEADER_LEN];
    let attributes = fields.get_i16();
    let header = BatchHeader {
        last_offset_delta: fields.get_i32(),
        base_timestamp: fields.get_i64(),
        max_timestamp: fields.get_i64(),
        producer_id: fields.get_i64(),
        producer_epoch: fields.get_i16(),
        base_sequence: fields.get_i32(),
        transactional: attributes & TRANSACTIONAL != 0,
        control: attributes & CONTROL != 0,
    };
    let record_count = fields.get_i32();
    // Each record takes at least 7 bytes; a count the batch cannot hold is a lie that a
    // decoder would otherwise reserve memory for (an uncompressed batch; a compressed one
    // is never decoded here).
    let uncompressed = attributes & 0x07 == 0;
    if uncompressed && usize::try_from(record_count).is_ok_and(|n| n > batch.len() - HEADER_LEN) {
        return Err(BatchError::Invalid(format!(
            "{record_count} records in {} bytes",
            batch.len() - HEADER_LEN
        )));
    }
    if record_count <= 0 || header.last_offset_delta < 0 {
        return Err(BatchError::Invalid(format!(
            "{record_count} records, last offset delta {}",
            header.last_offset_delta
        )));
    }
    Ok(header)
}

/// A batch read back from a log file.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Its base offset.
    pub base_offset: i64,
    /// Its header.
    pub header: BatchHeader,
    /// Its bytes, as fetch answers carry them.
    pub bytes: Bytes,
    /// For a transaction marker: whether it commits (or aborts).
    pub commits: Option<bool>,
}

/// The batches of a log file in order, up to the first one that is incomplete or damaged
/// (a write cut short by a crash), and the length of that good part.
pub fn read_log(file: &Bytes) -> (Vec<Stored>, usize) {
    let mut stored = Vec::new();
    let mut good = 0;
    while file.len() - good >= HEADER_LEN {
        let length = (&file[good + 8..good + 12]).get_i32();
        let Some(total) = usize::try_from(length)
            .ok()
            .and_then(|l| l.checked_add(LOG_OVERHEAD))
            .filter(|&total| total >= HEADER_LEN && good + total <= file.len())
        else {
            break;
        };
        let bytes = file.slice(good..good + total);
        let Ok(header) = read_header(&bytes) else {
            break;
        };
        let commits = match header.control {
            true => RecordBatchDecoder::decode(&mut bytes.clone())
                .ok()
                .and_then(|set| set.records.first().and_then(|r| r.key.clone()))
                .map(|key| key.get(3) == Some(&1)),
            false => None,
        };
        stored.push(Stored {
            base_offset: (&bytes[0..8]).get_i64(),
            header,
            bytes,
            commits,
        });
        good += total;
    }
    (stored, good)
}

/// The batch with its base offset set (and leader epoch 0, this broker's only epoch).
pub fn at_offset(batch: &[u8], base_offset: i64) -> Bytes {
    let mut placed = BytesMut::from(batch);
    placed[0..8].copy_from_slice(&base_offset.to_be_bytes());
    placed[12..16].copy_from_slice(&0i32.to_be_bytes());
    placed.freeze()
}

/// A transaction marker: a control batch of one record that tells readers the producer's
/// transaction on this partition ended (committed or aborted).
pub fn transaction_marker(
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    base_offset: i64,
    timestamp: i64,
) -> Bytes {
    // Key: version 0, type (0 abort, 1 commit). Value: version 0, coordinator epoch 0.
    let key = Bytes::from_static(if commit { &[0, 0, 0, 1] } else { &[0, 0, 0, 0] });
    let value = Bytes::from_static(&[0, 0, 0, 0, 0, 0]);
    let record = Record {
        transactional: true,
        control: true,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id,
        producer_epoch,
        timestamp_type: TimestampType::Creation,
        offset: base_offset,
        sequence: -1,
        timestamp,
        key: Some(key),
        value: Some(value),
        headers: IndexMap::new(),
    };
    let mut encoded = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    // Encoding one uncompressed record into memory cannot fail.
    if let Err(error) = RecordBatchEncoder::encode(&mut encoded, [&record], &options) {
        tracing::error!(%error, "cannot encode a transaction marker");
    }
    encoded.freeze()
}

/// A batch as a client would produce it, for tests: `count` records of `producer_id` (-1:
/// none) from `sequence`, timestamps 10, 20, 30, …
#[cfg(test)]
pub(crate) fn test_batch(
    count: usize,
    producer_id: i64,
    sequence: i32,
    transactional: bool,
) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch: 0,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder keeps offset − sequence constant within a batch.
            sequence: if producer_id < 0 {
                i as i32 - 1
            } else {
                sequence + i as i32
            },
            timestamp: 10 * (i as i64 + 1),
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("v{i}"))),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    if let Err(error) = RecordBatchEncoder::encode(&mut buf, &records, &options) {
        panic!("a test batch encodes: {error}");
    }
    buf.freeze()
}

#[cfg(test)]
mod tests;
