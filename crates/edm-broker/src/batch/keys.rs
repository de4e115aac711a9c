//! The records inside a batch, walked without decoding them into memory: only to tell
//! whether each has a key (a compacted topic refuses records without one).

use bytes::Buf;

use super::{ATTRIBUTES_AT, HEADER_LEN};

/// Whether some record of `batch` (checked, as [`split`] returns it) has no key, read
/// without decoding the records into memory; `None` when the batch is compressed and so
/// cannot be told without decompressing it (this broker never decompresses).
pub fn has_record_without_key(batch: &[u8]) -> Option<bool> {
    let attributes = (&batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2]).get_i16();
    if attributes & 0x07 != 0 {
        return None;
    }
    let mut rest = &batch[HEADER_LEN..];
    while !rest.is_empty() {
        let Some(length) = varint(&mut rest).and_then(|l| usize::try_from(l).ok()) else {
            return Some(true);
        };
        if length > rest.len() {
            return Some(true);
        }
        let (mut record, after) = rest.split_at(length);
        rest = after;
        // attributes (1 byte), timestamp delta, offset delta, then the key's length.
        if record.is_empty() {
            return Some(true);
        }
        record = &record[1..];
        let key_length = varint(&mut record)
            .and_then(|_| varint(&mut record))
            .and_then(|_| varint(&mut record));
        if key_length.is_none_or(|l| l < 0) {
            return Some(true);
        }
    }
    Some(false)
}

/// A zigzag varint (as record fields are written), taken off the front of `bytes`.
fn varint(bytes: &mut &[u8]) -> Option<i64> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some((value >> 1) as i64 ^ -((value & 1) as i64));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    fn batch(keys: &[Option<&'static [u8]>], compression: Compression) -> Bytes {
        let records: Vec<Record> = keys
            .iter()
            .enumerate()
            .map(|(n, key)| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: n as i64,
                sequence: n as i32 - 1,
                timestamp: 1,
                key: key.map(Bytes::from_static),
                value: Some(Bytes::from_static(b"value")),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .expect("a batch");
        buf.freeze()
    }

    #[test]
    fn a_record_without_a_key_is_found_among_keyed_ones() {
        let keyed = batch(&[Some(b"a"), Some(b"b")], Compression::None);
        assert_eq!(has_record_without_key(&keyed), Some(false));
        let one_missing = batch(&[Some(b"a"), None, Some(b"c")], Compression::None);
        assert_eq!(has_record_without_key(&one_missing), Some(true));
    }
}
