use super::*;

fn append(log: &mut PartitionLog, bytes: Bytes) -> Result<i64, AppendError> {
    let batches = batch::split(&bytes).expect("valid");
    let (header, raw) = &batches[0];
    log.append(header, raw)
}

#[test]
fn offsets_follow_each_other_and_reads_start_anywhere() {
    let mut log = PartitionLog::default();
    assert_eq!(append(&mut log, batch::test_batch(3, -1, 0, false)), Ok(0));
    assert_eq!(append(&mut log, batch::test_batch(2, -1, 0, false)), Ok(3));
    assert_eq!(log.high_watermark(), 5);
    assert_eq!(log.last_stable_offset(), 5);

    let from_middle = log.read(4, log.high_watermark(), 1 << 20, true);
    assert_eq!(from_middle.batches.len(), 1, "the batch holding offset 4");
    assert_eq!(from_middle.next_offset, 5);
    let all = log.read(0, log.high_watermark(), 1 << 20, true);
    assert_eq!(all.batches.len(), 2);
    assert!(
        log.read(5, log.high_watermark(), 1 << 20, true)
            .batches
            .is_empty()
    );
    // A size limit smaller than one batch still returns that batch.
    assert_eq!(log.read(0, log.high_watermark(), 1, true).batches.len(), 1);
    assert!(
        log.read(0, log.high_watermark(), 1, false)
            .batches
            .is_empty()
    );
}

#[test]
fn retention_drops_the_oldest_batches_but_not_an_open_transaction() {
    let mut log = PartitionLog::default();
    for _ in 0..4 {
        append(&mut log, batch::test_batch(1, -1, 0, false)).expect("plain");
    }
    let one = log.size() / 4;
    log.retain(2 * one);
    assert_eq!((log.log_start_offset(), log.size()), (2, 2 * one));
    assert_eq!(
        log.read(0, 4, 1 << 20, true).batches.len(),
        2,
        "from the start kept"
    );
    log.retain(0);
    assert_eq!(log.log_start_offset(), 3, "the last batch stays");

    append(&mut log, batch::test_batch(1, 8, 0, true)).expect("transactional");
    append(&mut log, batch::test_batch(1, -1, 0, false)).expect("plain");
    log.retain(0);
    assert_eq!(log.log_start_offset(), 4, "the open transaction stays");
    log.end_transaction(8, 0, false, 99);
    log.retain(0);
    assert_eq!(
        log.log_start_offset(),
        6,
        "the abort marker, the last batch"
    );
    assert_eq!(log.aborted_between(6, 7).len(), 1, "kept with its marker");
    append(&mut log, batch::test_batch(1, -1, 0, false)).expect("plain");
    log.retain(0);
    assert!(
        log.aborted_between(0, 8).is_empty(),
        "dropped with its marker"
    );
}

#[test]
fn a_repeated_batch_is_stored_once() {
    let mut log = PartitionLog::default();
    assert_eq!(append(&mut log, batch::test_batch(2, 7, 0, false)), Ok(0));
    assert_eq!(append(&mut log, batch::test_batch(2, 7, 2, false)), Ok(2));
    assert_eq!(append(&mut log, batch::test_batch(2, 7, 0, false)), Ok(0));
    assert_eq!(log.high_watermark(), 4);
    assert_eq!(
        append(&mut log, batch::test_batch(1, 7, 9, false)),
        Err(AppendError::OutOfOrder { expected: 4 })
    );
}

#[test]
fn an_open_transaction_holds_back_read_committed_readers() {
    let mut log = PartitionLog::default();
    append(&mut log, batch::test_batch(1, -1, 0, false)).expect("plain");
    append(&mut log, batch::test_batch(2, 8, 0, true)).expect("transactional");
    append(&mut log, batch::test_batch(1, -1, 0, false)).expect("plain");
    assert_eq!(log.last_stable_offset(), 1);
    assert_eq!(
        log.read(0, log.last_stable_offset(), 1 << 20, true)
            .batches
            .len(),
        1
    );

    let marker = log.end_transaction(8, 0, false, 99);
    assert_eq!(marker, 4);
    assert_eq!(log.last_stable_offset(), 5);
    assert_eq!(log.high_watermark(), 5);
    let aborted = log.aborted_between(0, 5);
    assert_eq!(
        aborted,
        [AbortedTransaction {
            producer_id: 8,
            first_offset: 1,
            last_offset: 4
        }]
    );
    assert!(log.aborted_between(5, 6).is_empty(), "after the marker");
}

#[test]
fn timestamps_find_their_record() {
    let mut log = PartitionLog::default();
    append(&mut log, batch::test_batch(3, -1, 0, false)).expect("append"); // 10, 20, 30
    append(&mut log, batch::test_batch(3, -1, 0, false)).expect("append"); // 10, 20, 30 again
    assert_eq!(log.offset_for_timestamp(15), Some((1, 20)));
    assert_eq!(log.offset_for_timestamp(31), None);
    assert_eq!(log.max_timestamp().map(|(_, t)| t), Some(30));
}
