//! Reading: Fetch (which waits for data the way Kafka's does: it answers as soon as it has
//! `min_bytes`, else when new data arrives, else at `max_wait_ms`), ListOffsets and
//! OffsetForLeaderEpoch.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, ProducerId,
};

use super::super::state::State;
use super::super::topics;

/// Longest a fetch is held waiting for data, whatever the client asks.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// `isolation_level` of read_committed readers.
const READ_COMMITTED: i8 = 1;

/// Fetch: each partition's batches from the offset asked for; when none has data, waits
/// (up to the request's `max_wait_ms`) until an append wakes it.
pub async fn fetch(state: &State, request: FetchRequest, version: i16) -> FetchResponse {
    // Fetch sessions (KIP-227) are not kept: session id 0 in every answer tells clients to
    // send full requests; one that goes on with a session of its own is told it is unknown.
    if version >= 7 && request.session_id != 0 && request.session_epoch > 0 {
        return FetchResponse::default()
            .with_error_code(ResponseError::FetchSessionIdNotFound.code());
    }
    let wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0)).min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let mut appends = state.watch_appends();
    loop {
        // Marked seen before reading, so an append during the read still wakes the wait.
        appends.borrow_and_update();
        let (response, bytes, failed) = read(state, &request, version);
        if bytes >= min_bytes || failed || tokio::time::Instant::now() >= deadline {
            tracing::trace!(bytes, failed, waited = ?(tokio::time::Instant::now() + wait - deadline), "fetch answered");
            return response;
        }
        tokio::select! {
            changed = appends.changed() => if changed.is_err() { return response },
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// One pass over the requested partitions: the answer, the record bytes in it, and
/// whether a partition failed (which answers at once, as Kafka does).
fn read(state: &State, request: &FetchRequest, version: i16) -> (FetchResponse, usize, bool) {
    let read_committed = request.isolation_level == READ_COMMITTED;
    // Kafka's fetch.max.bytes caps what the client asks.
    let max_bytes = usize::try_from(request.max_bytes)
        .unwrap_or(0)
        .min(usize::try_from(state.limits.fetch_max_bytes).unwrap_or(usize::MAX));
    let mut total = 0usize;
    let mut failed = false;
    let mut topics = Vec::with_capacity(request.topics.len());
    for wanted in &request.topics {
        let topic = state.topics.get(&wanted.topic);
        let mut partitions = Vec::with_capacity(wanted.partitions.len());
        for asked in &wanted.partitions {
            let mut data = PartitionData::default().with_partition_index(asked.partition);
            let Some(log) = topic.as_ref().and_then(|t| t.partition(asked.partition)) else {
                failed = true;
                partitions
                    .push(data.with_error_code(ResponseError::UnknownTopicOrPartition.code()));
                continue;
            };
            if asked.current_leader_epoch > 0 {
                failed = true;
                partitions.push(data.with_error_code(ResponseError::UnknownLeaderEpoch.code()));
                continue;
            }
            let log = topics::lock(log);
            let (high_watermark, stable) = (log.high_watermark(), log.last_stable_offset());
            data = data
                .with_high_watermark(high_watermark)
                .with_last_stable_offset(stable)
                .with_log_start_offset(log.log_start_offset());
            if asked.fetch_offset < log.log_start_offset() || asked.fetch_offset > high_watermark {
                failed = true;
                partitions.push(data.with_error_code(ResponseError::OffsetOutOfRange.code()));
                continue;
            }
            let until = if read_committed {
                stable
            } else {
                high_watermark
            };
            // As Kafka: each partition gets what is left of max_bytes, at most its own
            // partition_max_bytes, and the first partition with data gets at least its
            // first batch, however large, so that no batch can stall a reader.
            let limit = usize::try_from(asked.partition_max_bytes)
                .unwrap_or(0)
                .min(max_bytes.saturating_sub(total));
            let batches = log.read(asked.fetch_offset, until, limit, total == 0);
            if read_committed {
                let aborted = log
                    .aborted_between(asked.fetch_offset, batches.next_offset)
                    .into_iter()
                    .map(|a| {
                        AbortedTransaction::default()
                            .with_producer_id(ProducerId(a.producer_id))
                            .with_first_offset(a.first_offset)
                    })
                    .collect();
                data = data.with_aborted_transactions(Some(aborted));
            }
            total += batches.bytes;
            partitions.push(data.with_records(Some(concatenated(batches.batches, batches.bytes))));
        }
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(wanted.topic.clone())
                .with_partitions(partitions),
        );
    }
    let _ = version;
    (
        FetchResponse::default().with_responses(topics),
        total,
        failed,
    )
}

/// The batches as one buffer (no copy for the usual single batch).
fn concatenated(mut batches: Vec<Bytes>, bytes: usize) -> Bytes {
    if batches.len() == 1 {
        return batches.pop().unwrap_or_default();
    }
    let mut all = BytesMut::with_capacity(bytes);
    for batch in batches {
        all.extend_from_slice(&batch);
    }
    all.freeze()
}

/// ListOffsets: -1 the end (for read_committed readers, the last stable offset), -2 the
/// start, -3 the record with the latest timestamp, else the first record at or after the
/// timestamp (-1 if none).
pub fn list_offsets(
    state: &State,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let read_committed = request.isolation_level == READ_COMMITTED;
    let topics = request
        .topics
        .into_iter()
        .map(|wanted| {
            let partitions = wanted
                .partitions
                .into_iter()
                .map(|asked| {
                    let answer = ListOffsetsPartitionResponse::default()
                        .with_partition_index(asked.partition_index);
                    let Some(log) = state.topics.partition(&wanted.name, asked.partition_index)
                    else {
                        return answer
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let log = topics::lock(&log);
                    let (offset, timestamp) = match asked.timestamp {
                        -1 if read_committed => (log.last_stable_offset(), -1),
                        -1 => (log.high_watermark(), -1),
                        -2 => (log.log_start_offset(), -1),
                        -3 => log.max_timestamp().unwrap_or((-1, -1)),
                        at => log.offset_for_timestamp(at).unwrap_or((-1, -1)),
                    };
                    let answer = answer.with_offset(offset).with_timestamp(timestamp);
                    if version >= 4 {
                        answer.with_leader_epoch(0)
                    } else {
                        answer
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(wanted.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// OffsetForLeaderEpoch: this broker has had one leader epoch, 0, which ends at the high
/// watermark.
pub fn offset_for_leader_epoch(
    state: &State,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|wanted| {
            let partitions = wanted
                .partitions
                .into_iter()
                .map(|asked| {
                    let answer = EpochEndOffset::default().with_partition(asked.partition);
                    match state.topics.partition(&wanted.topic, asked.partition) {
                        None => {
                            answer.with_error_code(ResponseError::UnknownTopicOrPartition.code())
                        }
                        Some(_) if asked.current_leader_epoch > 0 => {
                            answer.with_error_code(ResponseError::UnknownLeaderEpoch.code())
                        }
                        Some(log) if asked.leader_epoch == 0 => answer
                            .with_leader_epoch(0)
                            .with_end_offset(topics::lock(&log).high_watermark()),
                        Some(_) => answer.with_leader_epoch(-1).with_end_offset(-1),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(wanted.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
