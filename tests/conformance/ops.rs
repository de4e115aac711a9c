//! The requests the scenarios make, each in one version both brokers speak, each
//! returning what a client can see of the answer (error codes, offsets, records) as JSON.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use serde_json::{Value, json};

use super::wire::{self, Wire};

const PRODUCE: i16 = 9;
const FETCH: i16 = 12;
const LIST_OFFSETS: i16 = 7;
const METADATA: i16 = 12;
const CREATE_TOPICS: i16 = 7;
const CREATE_PARTITIONS: i16 = 3;

pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// CreateTopics of one topic; the error code (0 when created). The topic is ready for
/// produce and fetch when this returns 0: Apache Kafka creates it in its controller
/// first and its broker learns of it a moment later, so this waits for the leaders.
pub async fn create_topic(
    wire: &mut Wire,
    name: &str,
    partitions: i32,
    replication: i16,
    configs: &[(&str, &str)],
) -> i16 {
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(topic_name(name))
                .with_num_partitions(partitions)
                .with_replication_factor(replication)
                .with_configs(
                    configs
                        .iter()
                        .map(|(k, v)| {
                            CreatableTopicConfig::default()
                                .with_name(StrBytes::from_string(k.to_string()))
                                .with_value(Some(StrBytes::from_string(v.to_string())))
                        })
                        .collect(),
                ),
        ]);
    let answer = wire.ask(&request, CREATE_TOPICS).await;
    let code = answer.topics[0].error_code;
    if code == 0 {
        wait_for_leaders(wire, name).await;
    }
    code
}

/// Waits until every partition of `name` has a leader (Apache Kafka's broker learns of a
/// new topic, or new partitions, from its controller shortly after the answer).
pub async fn wait_for_leaders(wire: &mut Wire, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let topic = metadata(wire, name, false).await;
        if topic.error_code == 0
            && !topic.partitions.is_empty()
            && topic
                .partitions
                .iter()
                .all(|p| p.error_code == 0 && p.leader_id.0 >= 0)
        {
            return;
        }
        assert!(Instant::now() < deadline, "{name} has no leader after 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Metadata of one topic.
pub async fn metadata(
    wire: &mut Wire,
    name: &str,
    auto_create: bool,
) -> metadata_response::MetadataResponseTopic {
    let request = MetadataRequest::default()
        .with_allow_auto_topic_creation(auto_create)
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic_name(name))),
        ]));
    let answer = wire.ask(&request, METADATA).await;
    answer
        .topics
        .into_iter()
        .next()
        .expect("the topic asked for")
}

/// CreatePartitions of one topic to `count`, letting the broker place the new
/// partitions (or, with `empty_assignments`, giving it an empty list of places): the
/// error code.
pub async fn create_partitions(
    wire: &mut Wire,
    name: &str,
    count: i32,
    empty_assignments: bool,
) -> i16 {
    let request = CreatePartitionsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![
            CreatePartitionsTopic::default()
                .with_name(topic_name(name))
                .with_count(count)
                .with_assignments(empty_assignments.then(Vec::new)),
        ]);
    let answer = wire.ask(&request, CREATE_PARTITIONS).await;
    let code = answer.results[0].error_code;
    if code == 0 {
        wait_for_partitions(wire, name, count).await;
    }
    code
}

async fn wait_for_partitions(wire: &mut Wire, name: &str, count: i32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while metadata(wire, name, false).await.partitions.len() != count as usize {
        assert!(
            Instant::now() < deadline,
            "{name} not at {count} partitions after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for_leaders(wire, name).await;
}

/// Produce of one batch (acks=all): `{error, base_offset}` (the offset only when it
/// was stored).
pub async fn produce(
    wire: &mut Wire,
    name: &str,
    partition: i32,
    batch: Bytes,
    transactional_id: Option<&str>,
) -> Value {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_transactional_id(
            transactional_id.map(|t| TransactionalId(StrBytes::from_string(t.into()))),
        )
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(topic_name(name))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(batch)),
                ]),
        ]);
    // Retried as clients retry NOT_LEADER_OR_FOLLOWER and LEADER_NOT_AVAILABLE: Apache
    // Kafka's broker may take a moment after its metadata names it the leader of a new
    // partition before it takes writes.
    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        let answer = wire.ask(&request, PRODUCE).await;
        let code = answer.responses[0].partition_responses[0].error_code;
        if matches!(code, 5 | 6) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        break answer;
    };
    let partition = &answer.responses[0].partition_responses[0];
    match partition.error_code {
        0 => json!({"error": 0, "base_offset": partition.base_offset}),
        error => json!({"error": error}),
    }
}

/// Fetch from `offset` (isolation 0: read_uncommitted, 1: read_committed): the error,
/// watermarks, aborted transactions' first offsets and the records (offset and value,
/// control records shown as such).
pub async fn fetch(
    wire: &mut Wire,
    name: &str,
    partition: i32,
    offset: i64,
    isolation: i8,
) -> Value {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(100)
        .with_min_bytes(1)
        .with_max_bytes(50 << 20)
        .with_isolation_level(isolation)
        .with_session_epoch(-1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(topic_name(name))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(partition)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(10 << 20),
                ]),
        ]);
    let answer = wire.ask(&request, FETCH).await;
    let data = &answer.responses[0].partitions[0];
    let aborted: Vec<i64> = data
        .aborted_transactions
        .iter()
        .flatten()
        .map(|a| a.first_offset)
        .collect();
    let records: Vec<Value> = wire::records(data.records.as_ref())
        .into_iter()
        .filter(|(o, _)| *o >= offset)
        .map(|(o, v)| json!([o, v]))
        .collect();
    if data.error_code != 0 {
        return json!({"error": data.error_code});
    }
    json!({
        "error": 0,
        "high_watermark": data.high_watermark,
        "last_stable_offset": data.last_stable_offset,
        "log_start_offset": data.log_start_offset,
        "aborted_first_offsets": aborted,
        "records": records,
    })
}

/// Every record of a partition up to its end, fetched as a client does (the next fetch
/// from after the last batch).
pub async fn read_all(wire: &mut Wire, name: &str, partition: i32, isolation: i8) -> Value {
    let mut offset = 0;
    let mut records = Vec::new();
    let mut aborted = Vec::new();
    loop {
        let answer = fetch(wire, name, partition, offset, isolation).await;
        let batch = answer["records"].as_array().cloned().unwrap_or_default();
        aborted.extend(
            answer["aborted_first_offsets"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
        let end = match isolation {
            0 => answer["high_watermark"].as_i64(),
            _ => answer["last_stable_offset"].as_i64(),
        }
        .expect("an end offset");
        match batch.last().and_then(|r| r[0].as_i64()) {
            Some(last) => offset = last + 1,
            None => offset = end,
        }
        records.extend(batch);
        if offset >= end {
            aborted.sort_by_key(|v| v.as_i64());
            aborted.dedup();
            return json!({"end": end, "records": records, "aborted_first_offsets": aborted});
        }
    }
}

/// ListOffsets of one partition at `timestamp` (-1 latest, -2 earliest, -3 the largest
/// timestamp): `{error, offset, timestamp}`.
pub async fn list_offset(
    wire: &mut Wire,
    name: &str,
    partition: i32,
    timestamp: i64,
    isolation: i8,
) -> Value {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation)
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(topic_name(name))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(partition)
                        .with_timestamp(timestamp),
                ]),
        ]);
    let answer = wire.ask(&request, LIST_OFFSETS).await;
    let p = &answer.topics[0].partitions[0];
    match p.error_code {
        0 => json!({"error": 0, "offset": p.offset, "timestamp": p.timestamp}),
        error => json!({"error": error}),
    }
}

/// InitProducerId for an idempotent producer (no transactional id) or with
/// `transactional_id`: the error code, and the id and epoch when there is no error.
pub async fn init_producer_id(wire: &mut Wire, transactional_id: Option<&str>) -> (i16, i64, i16) {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(
            transactional_id.map(|t| TransactionalId(StrBytes::from_string(t.into()))),
        )
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = wire.ask(&request, 4).await;
        // Retried as clients do: COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE
        // (Apache Kafka loading its transaction state, at the first use or a restart).
        if matches!(answer.error_code, 14 | 15) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        return (
            answer.error_code,
            answer.producer_id.0,
            answer.producer_epoch,
        );
    }
}

/// A fetch of `partitions` from offset 0 with `max_bytes` for the answer and
/// `partition_max_bytes` for each: the offsets each partition answered.
pub async fn fetch_sized(
    wire: &mut Wire,
    name: &str,
    partitions: &[i32],
    max_bytes: i32,
    partition_max_bytes: i32,
) -> Value {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(max_bytes)
        .with_session_epoch(-1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(topic_name(name))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|&p| {
                            FetchPartition::default()
                                .with_partition(p)
                                .with_fetch_offset(0)
                                .with_partition_max_bytes(partition_max_bytes)
                        })
                        .collect(),
                ),
        ]);
    let answer = wire.ask(&request, FETCH).await;
    answer.responses[0]
        .partitions
        .iter()
        .map(|p| {
            let offsets: Vec<i64> = wire::records(p.records.as_ref())
                .into_iter()
                .map(|(o, _)| o)
                .collect();
            json!({"partition": p.partition_index, "error": p.error_code, "offsets": offsets})
        })
        .collect()
}

/// OffsetCommit v8 of offset 1 on partitions 0 and 1 of `name` for `group` (no member,
/// generation −1: a commit from outside any group's generation), with metadata of
/// `metadata_len` bytes on partition 1 only: each partition's error code.
pub async fn commit_with_metadata(
    wire: &mut Wire,
    group: &str,
    name: &str,
    metadata_len: usize,
) -> Value {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    let partition = |index: i32, metadata: String| {
        OffsetCommitRequestPartition::default()
            .with_partition_index(index)
            .with_committed_offset(1)
            .with_committed_metadata(Some(StrBytes::from_string(metadata)))
    };
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(topic_name(name))
                .with_partitions(vec![
                    partition(0, String::new()),
                    partition(1, "m".repeat(metadata_len)),
                ]),
        ]);
    // As a client does: find the group's coordinator first (Apache Kafka creates its
    // offsets topic then), and retry while the coordinator is loading.
    let find = FindCoordinatorRequest::default()
        .with_key(StrBytes::from_string(group.to_string()))
        .with_key_type(0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while wire.ask(&find, 3).await.error_code != 0 {
        assert!(Instant::now() < deadline, "no coordinator for {group}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answer = loop {
        let answer = wire.ask(&request, 8).await;
        let code = answer.topics[0].partitions[0].error_code;
        if !(14..=16).contains(&code) || Instant::now() >= deadline {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    answer.topics[0]
        .partitions
        .iter()
        .map(|p| json!([p.partition_index, p.error_code]))
        .collect()
}
