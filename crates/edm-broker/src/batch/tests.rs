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
