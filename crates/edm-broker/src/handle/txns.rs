//! Producer ids and transactions: InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn,
//! TxnOffsetCommit, EndTxn.

use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, EndTxnRequest, EndTxnResponse, InitProducerIdRequest,
    InitProducerIdResponse, ProducerId, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};

use super::super::state::State;
use super::code;

/// InitProducerId: a new producer id for an idempotent producer (or a new epoch of the one
/// it names, KIP-360); for a transactional one, its id with a new epoch, which aborts the
/// transaction an earlier instance left open.
pub fn init_producer_id(state: &State, request: InitProducerIdRequest) -> InitProducerIdResponse {
    let (producer_id, epoch) = match &request.transactional_id {
        // Kafka refuses an empty transactional id rather than take it for none.
        Some(id) if id.is_empty() => {
            return InitProducerIdResponse::default()
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1);
        }
        Some(id) => {
            let timeout =
                Duration::from_millis(u64::try_from(request.transaction_timeout_ms).unwrap_or(0));
            let (producer_id, epoch, aborted) = state
                .transactions
                .init(id, timeout, || state.new_producer_id());
            if let Some(aborted) = aborted {
                tracing::info!(transactional_id = %id.0, "a new instance of the producer aborted its predecessor's open transaction");
                state.write_transaction_end(&aborted);
            }
            (producer_id, epoch)
        }
        None if request.producer_id.0 >= 0
            && request.producer_epoch >= 0
            && request.producer_epoch < i16::MAX - 1 =>
        {
            (request.producer_id.0, request.producer_epoch + 1)
        }
        None => (state.new_producer_id(), 0),
    };
    InitProducerIdResponse::default()
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(epoch)
}

/// AddPartitionsToTxn (v0–3: one transaction per request).
pub fn add_partitions(
    state: &State,
    request: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    let _ = version;
    let unknown: Vec<(String, i32)> = request
        .v3_and_below_topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.to_string(), *p)))
        .filter(|(topic, partition)| state.topics.partition(topic, *partition).is_none())
        .collect();
    let error = if unknown.is_empty() {
        let partitions = request
            .v3_and_below_topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |p| (t.name.to_string(), *p)));
        state
            .transactions
            .add_partitions(
                &request.v3_and_below_transactional_id,
                request.v3_and_below_producer_id.0,
                request.v3_and_below_producer_epoch,
                partitions,
            )
            .err()
    } else {
        None
    };
    let results = request
        .v3_and_below_topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.to_string();
            AddPartitionsToTxnTopicResult::default()
                .with_results_by_partition(
                    topic
                        .partitions
                        .iter()
                        .map(|&partition| {
                            let failed = if unknown.is_empty() {
                                error
                            } else if unknown.contains(&(name.clone(), partition)) {
                                Some(ResponseError::UnknownTopicOrPartition)
                            } else {
                                Some(ResponseError::OperationNotAttempted)
                            };
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(partition)
                                .with_partition_error_code(code(failed))
                        })
                        .collect(),
                )
                .with_name(topic.name)
        })
        .collect();
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results)
}

/// AddOffsetsToTxn.
pub fn add_offsets(state: &State, request: AddOffsetsToTxnRequest) -> AddOffsetsToTxnResponse {
    let error = state
        .transactions
        .add_offsets(
            &request.transactional_id,
            request.producer_id.0,
            request.producer_epoch,
        )
        .err();
    AddOffsetsToTxnResponse::default().with_error_code(code(error))
}

/// TxnOffsetCommit: offsets that the group gets when the transaction commits.
pub fn offset_commit(state: &State, request: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse {
    let mut offsets = super::requested_offsets!(request.topics);
    let oversized = super::oversized_metadata(&mut offsets, state.limits.offset_metadata_max_bytes);
    let error = state
        .transactions
        .stage_offsets(
            &request.transactional_id,
            request.producer_id.0,
            request.producer_epoch,
            &request.group_id,
            offsets,
        )
        .err();
    TxnOffsetCommitResponse::default().with_topics(super::offset_commit_answers!(
        request.topics,
        TxnOffsetCommitResponseTopic,
        TxnOffsetCommitResponsePartition,
        error,
        oversized
    ))
}

/// EndTxn: markers on every partition of the transaction, then its offsets.
pub fn end(state: &State, request: EndTxnRequest) -> EndTxnResponse {
    let ended = state.transactions.end(
        &request.transactional_id,
        request.producer_id.0,
        request.producer_epoch,
        request.committed,
    );
    let error = match ended {
        Ok(Some(ended)) => {
            state.write_transaction_end(&ended);
            None
        }
        Ok(None) => None,
        Err(error) => Some(error),
    };
    EndTxnResponse::default().with_error_code(code(error))
}
