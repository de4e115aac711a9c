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
mod tests {
    use super::*;

    #[test]
    fn a_batch_header_is_read_and_its_offset_set() {
        let bytes = test_batch(3, 7, 10, true);
        let batches = split(&bytes).expect("valid");
        assert_eq!(batches.len(), 1);
        let (header, batch) = &batches[0];
        assert_eq!(header.last_offset_delta, 2);
        assert_eq!((header.producer_id, header.producer_epoch), (7, 0));
        assert_eq!((header.base_sequence, header.last_sequence()), (10, 12));
        assert_eq!((header.base_timestamp, header.max_timestamp), (10, 30));
        assert!(header.transactional && !header.control);

        let placed = at_offset(batch, 500);
        let decoded = RecordBatchDecoder::decode(&mut placed.clone()).expect("decodes");
        let offsets: Vec<i64> = decoded.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [500, 501, 502], "offsets follow, CRC still holds");
    }

    #[test]
    fn damaged_batches_are_refused() {
        let bytes = test_batch(2, -1, -1, false);
        let mut flipped = BytesMut::from(&bytes[..]);
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        assert!(matches!(
            split(&flipped.freeze()),
            Err(BatchError::Corrupt { .. })
        ));
        assert!(matches!(
            split(&bytes.slice(..bytes.len() - 3)),
            Err(BatchError::Truncated(_))
        ));
        assert!(matches!(
            split(&bytes.slice(..20)),
            Err(BatchError::Truncated(_))
        ));
        let mut old = BytesMut::from(&bytes[..]);
        old[MAGIC_AT] = 1;
        assert_eq!(split(&old.freeze()), Err(BatchError::UnsupportedMagic(1)));
        assert!(matches!(split(&Bytes::new()), Err(BatchError::Invalid(_))));
        // `GET / HTTP/1.1` is no batch either.
        let http = Bytes::from_static(
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n0123456789012345678901234567890123456789",
        );
        assert!(split(&http).is_err());
    }

    #[test]
    fn two_batches_in_one_record_set_are_both_read() {
        let mut both = BytesMut::from(&test_batch(2, 1, 0, false)[..]);
        both.extend_from_slice(&test_batch(3, 1, 2, false));
        let batches = split(&both.freeze()).expect("valid");
        let sequences: Vec<(i32, i32)> = batches
            .iter()
            .map(|(h, _)| (h.base_sequence, h.last_sequence()))
            .collect();
        assert_eq!(sequences, [(0, 1), (2, 4)]);
    }

    #[test]
    fn a_marker_is_a_control_batch_of_one_record() {
        let marker = transaction_marker(9, 2, true, 41, 5);
        let decoded = RecordBatchDecoder::decode(&mut marker.clone()).expect("decodes");
        assert_eq!(decoded.records.len(), 1);
        let record = &decoded.records[0];
        assert!(record.control && record.transactional);
        assert_eq!((record.producer_id, record.producer_epoch), (9, 2));
        assert_eq!(record.offset, 41);
        assert_eq!(record.key.as_deref(), Some(&[0u8, 0, 0, 1][..]));
    }

    #[test]
    fn sequences_wrap_at_the_largest_i32() {
        assert_eq!(increment_sequence(5, 3), 8);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
    }
}
