//! Produce: each partition's batches are checked (format, CRC, the producer's sequence)
//! and appended under the partition's lock, which assigns their offsets; fetches waiting
//! for data are woken once the whole request is stored.

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;

use super::super::batch::{self, BatchError};
use super::super::log::AppendError;
use super::super::state::State;
use super::super::topics;

type Refusal = (ResponseError, String);

/// The answer to a produce request, or `None` with `acks=0` (the producer reads none).
pub fn produce(state: &State, request: ProduceRequest, version: i16) -> Option<ProduceResponse> {
    let acks = request.acks;
    let transactional = request.transactional_id.is_some();
    let mut appended = false;
    let responses = request
        .topic_data
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partition_data
                .into_iter()
                .map(|data| {
                    let outcome = if matches!(acks, -1..=1) {
                        append(state, &topic.name, data.index, data.records, transactional)
                    } else {
                        Err((ResponseError::InvalidRequiredAcks, format!("acks={acks}: use -1, 0 or 1")))
                    };
                    let response = PartitionProduceResponse::default()
                        .with_index(data.index)
                        .with_log_append_time_ms(-1);
                    match outcome {
                        Ok(base_offset) => {
                            tracing::trace!(topic = %topic.name.0, partition = data.index, base_offset, "appended");
                            appended = true;
                            response.with_base_offset(base_offset)
                        }
                        Err((error, message)) => {
                            tracing::warn!(topic = %topic.name.0, partition = data.index, ?error, "produce refused: {message}");
                            let response = response.with_base_offset(-1).with_error_code(error.code());
                            if version >= 8 {
                                response.with_error_message(Some(StrBytes::from_string(message)))
                            } else {
                                response
                            }
                        }
                    }
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_partition_responses(partitions)
        })
        .collect();
    if appended {
        state.notify_appended();
    }
    (acks != 0).then(|| ProduceResponse::default().with_responses(responses))
}

/// Appends one partition's record set; returns the base offset of its first batch.
fn append(
    state: &State,
    topic: &str,
    partition: i32,
    records: Option<Bytes>,
    transactional: bool,
) -> Result<i64, Refusal> {
    let found = state.topics.get(topic);
    let (Some(configs), Some(log)) = (
        found.as_ref().map(|t| &t.configs),
        found.as_ref().and_then(|t| t.partition(partition)),
    ) else {
        return Err((
            ResponseError::UnknownTopicOrPartition,
            format!("no partition {partition} of topic `{topic}`"),
        ));
    };
    let records = records.unwrap_or_default();
    let limit = configs.max_message_bytes();
    if records.len() > limit {
        return Err((
            ResponseError::MessageTooLarge,
            format!(
                "{} bytes, at most {limit} (the topic's max.message.bytes)",
                records.len()
            ),
        ));
    }
    let batches = batch::split(&records).map_err(|error| {
        let code = match error {
            BatchError::UnsupportedMagic(_) => ResponseError::UnsupportedForMessageFormat,
            BatchError::Corrupt { .. } => ResponseError::CorruptMessage,
            BatchError::Truncated(_) | BatchError::Invalid(_) => ResponseError::InvalidRecord,
        };
        (code, error.to_string())
    })?;
    // One batch per partition and request, as Kafka requires of produce v3 and later
    // (what librdkafka and the Java client send): the answer has one base offset.
    if batches.len() != 1 {
        return Err((
            ResponseError::InvalidRecord,
            format!(
                "{} record batches for one partition: a produce request carries exactly one",
                batches.len()
            ),
        ));
    }
    if configs.compacted()
        && batches
            .iter()
            .any(|(_, b)| batch::has_record_without_key(b) == Some(true))
    {
        return Err((
            ResponseError::InvalidRecord,
            format!(
                "topic `{topic}` is compacted (cleanup.policy=compact): every record needs a key"
            ),
        ));
    }
    for (header, _) in batches.iter().filter(|(h, _)| h.transactional) {
        if !transactional {
            return Err((
                ResponseError::InvalidRecord,
                "a transactional batch in a request without transactional.id".into(),
            ));
        }
        state
            .transactions
            .produced(
                header.producer_id,
                header.producer_epoch,
                (topic.to_string(), partition),
            )
            .map_err(|error| (error, "no open transaction for this producer".to_string()))?;
    }
    let mut log = topics::lock(log);
    let mut first = None;
    for (header, bytes) in &batches {
        let base_offset = log.append(header, bytes).map_err(|error| match error {
            AppendError::Fenced => (
                ResponseError::InvalidProducerEpoch,
                format!(
                    "producer {} epoch {} is older than the producer's current epoch",
                    header.producer_id, header.producer_epoch
                ),
            ),
            AppendError::Storage(error) => (
                ResponseError::KafkaStorageError,
                format!("cannot write to the partition's file: {error}"),
            ),
            AppendError::OutOfOrder { expected } => (
                ResponseError::OutOfOrderSequenceNumber,
                format!(
                    "producer {} sent sequence {}, expected {expected}",
                    header.producer_id, header.base_sequence
                ),
            ),
        })?;
        first.get_or_insert(base_offset);
    }
    if let Some(keep) = configs.retention_bytes(state.limits.retention_bytes) {
        log.retain(keep);
    }
    Ok(first.unwrap_or(-1))
}
