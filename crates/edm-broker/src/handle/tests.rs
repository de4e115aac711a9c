//! Every answer of every request, encoded in every version the broker says it speaks: the
//! protocol crate refuses to encode a field that a version does not have, so a handler
//! that sets one would break that version's clients.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::super::state::{Node, State};
use super::{Client, Reply, SUPPORTED, handle};

fn state() -> State {
    let node = Node {
        id: 1,
        host: "127.0.0.1".into(),
        port: 9092,
    };
    let state = State::new(node, "edm-test".into(), true, 1);
    state
        .topics
        .create("t", 2, Default::default())
        .expect("topic");
    state
}

fn topic() -> TopicName {
    TopicName(StrBytes::from_static_str("t"))
}

fn batch() -> Bytes {
    super::super::batch::test_batch(1, -1, 0, false)
}

/// A request of kind `api` with something in it, so the answer has something to encode
/// (a group of its own per `version`: a JoinGroup before v4 joins at once).
fn request(api: ApiKey, version: i16) -> RequestKind {
    let group = GroupId(StrBytes::from_string(format!("g{version}")));
    match api {
        ApiKey::Produce => RequestKind::Produce(
            ProduceRequest::default()
                .with_acks(-1)
                .with_topic_data(vec![
                    TopicProduceData::default()
                        .with_name(topic())
                        .with_partition_data(vec![
                            PartitionProduceData::default()
                                .with_index(0)
                                .with_records(Some(batch())),
                            PartitionProduceData::default().with_index(7),
                        ]),
                ]),
        ),
        ApiKey::Fetch => RequestKind::Fetch(
            FetchRequest::default()
                .with_max_bytes(1 << 20)
                .with_isolation_level(1)
                .with_topics(vec![
                    FetchTopic::default()
                        .with_topic(topic())
                        .with_partitions(vec![
                            FetchPartition::default()
                                .with_partition(0)
                                .with_partition_max_bytes(1 << 20),
                        ]),
                ]),
        ),
        ApiKey::ListOffsets => {
            RequestKind::ListOffsets(ListOffsetsRequest::default().with_topics(vec![
            ListOffsetsTopic::default().with_name(topic()).with_partitions(vec![
                ListOffsetsPartition::default().with_timestamp(-1),
                ListOffsetsPartition::default().with_partition_index(9),
            ]),
        ]))
        }
        ApiKey::Metadata => {
            RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(topic())),
                MetadataRequestTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_static_str("bad name")))),
            ])))
        }
        ApiKey::JoinGroup => RequestKind::JoinGroup(
            JoinGroupRequest::default()
                .with_group_id(group)
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(10_000)
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_protocols(vec![
                    JoinGroupRequestProtocol::default()
                        .with_name(StrBytes::from_static_str("range"))
                        .with_metadata(Bytes::from_static(b"m")),
                ]),
        ),
        ApiKey::CreateTopics => {
            RequestKind::CreateTopics(CreateTopicsRequest::default().with_topics(vec![
                CreatableTopic::default()
                    .with_name(TopicName(StrBytes::from_static_str("new")))
                    .with_num_partitions(3)
                    .with_replication_factor(1)
                    .with_configs(vec![
                        create_topics_request::CreatableTopicConfig::default()
                            .with_name(StrBytes::from_static_str("cleanup.policy"))
                            .with_value(Some(StrBytes::from_static_str("compact"))),
                    ]),
                CreatableTopic::default()
                    .with_name(topic())
                    .with_num_partitions(1)
                    .with_replication_factor(3),
            ]))
        }
        ApiKey::DescribeConfigs => {
            RequestKind::DescribeConfigs(DescribeConfigsRequest::default().with_resources(vec![
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(StrBytes::from_static_str("t")),
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(4)
                    .with_resource_name(StrBytes::from_static_str("1")),
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(StrBytes::from_static_str("missing")),
            ]))
        }
        ApiKey::AlterConfigs => {
            RequestKind::AlterConfigs(AlterConfigsRequest::default().with_resources(vec![
                alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(StrBytes::from_static_str("t"))
                    .with_configs(vec![
                        alter_configs_request::AlterableConfig::default()
                            .with_name(StrBytes::from_static_str("cleanup.policy"))
                            .with_value(Some(StrBytes::from_static_str("compact"))),
                    ]),
                alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(4)
                    .with_resource_name(StrBytes::from_static_str("1")),
            ]))
        }
        ApiKey::IncrementalAlterConfigs => RequestKind::IncrementalAlterConfigs(
            IncrementalAlterConfigsRequest::default().with_resources(vec![
                incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(StrBytes::from_static_str("t"))
                    .with_configs(vec![
                        incremental_alter_configs_request::AlterableConfig::default()
                            .with_name(StrBytes::from_static_str("cleanup.policy"))
                            .with_config_operation(2)
                            .with_value(Some(StrBytes::from_static_str("compact"))),
                        incremental_alter_configs_request::AlterableConfig::default()
                            .with_name(StrBytes::from_static_str("no.such.config"))
                            .with_config_operation(0),
                    ]),
            ]),
        ),
        other => RequestKind::decode(other, &mut default_request(other), lowest_version(other))
            .expect("a default request decodes"),
    }
}

fn lowest_version(api: ApiKey) -> i16 {
    super::supported(api).map_or(0, |(min, _)| min)
}

/// The bytes of a default (empty) request of `api` in its lowest version.
fn default_request(api: ApiKey) -> Bytes {
    let version = lowest_version(api);
    let mut buf = BytesMut::new();
    macro_rules! encode_default {
        ($($key:ident => $ty:ty),* $(,)?) => {
            match api {
                $(ApiKey::$key => <$ty>::default().encode(&mut buf, version).expect("encode"),)*
                other => panic!("no default request for {other:?}"),
            }
        };
    }
    encode_default!(
        OffsetCommit => OffsetCommitRequest,
        OffsetFetch => OffsetFetchRequest,
        FindCoordinator => FindCoordinatorRequest,
        Heartbeat => HeartbeatRequest,
        LeaveGroup => LeaveGroupRequest,
        SyncGroup => SyncGroupRequest,
        DescribeGroups => DescribeGroupsRequest,
        ListGroups => ListGroupsRequest,
        ApiVersions => ApiVersionsRequest,
        DeleteTopics => DeleteTopicsRequest,
        InitProducerId => InitProducerIdRequest,
        OffsetForLeaderEpoch => OffsetForLeaderEpochRequest,
        AddPartitionsToTxn => AddPartitionsToTxnRequest,
        AddOffsetsToTxn => AddOffsetsToTxnRequest,
        EndTxn => EndTxnRequest,
        TxnOffsetCommit => TxnOffsetCommitRequest,
        CreatePartitions => CreatePartitionsRequest,
    );
    buf.freeze()
}

#[tokio::test]
async fn every_answer_encodes_in_every_version_spoken() {
    let state = state();
    let client = client();
    for &(api, min, max) in SUPPORTED {
        for version in min..=max {
            let reply = handle(&state, &client, request(api, version), version).await;
            let Reply::Send(response) = reply else {
                panic!("{api:?} v{version}: no answer");
            };
            let mut buf = BytesMut::new();
            if let Err(error) = response.encode(&mut buf, version) {
                panic!("{api:?} v{version}: {error}");
            }
        }
    }
}

/// The answer to [`request`]`(api, version)`.
async fn answer(state: &State, api: ApiKey, version: i16) -> ResponseKind {
    match handle(state, &client(), request(api, version), version).await {
        Reply::Send(response) => *response,
        other => panic!("{api:?}: {other:?}"),
    }
}

fn client() -> Client {
    Client {
        id: "test".into(),
        host: "/127.0.0.1".into(),
    }
}

#[tokio::test]
async fn a_produced_batch_is_fetched_back_and_listed() {
    let state = state();
    let ResponseKind::Produce(produced) = answer(&state, ApiKey::Produce, 9).await else {
        panic!("not a Produce answer");
    };
    let partitions = &produced.responses[0].partition_responses;
    assert_eq!(
        (partitions[0].error_code, partitions[0].base_offset),
        (0, 0)
    );
    assert_eq!(
        partitions[1].error_code,
        kafka_protocol::ResponseError::UnknownTopicOrPartition.code()
    );

    let ResponseKind::Fetch(fetched) = answer(&state, ApiKey::Fetch, 12).await else {
        panic!("not a Fetch answer");
    };
    let data = &fetched.responses[0].partitions[0];
    assert_eq!((data.high_watermark, data.last_stable_offset), (1, 1));
    assert_eq!(data.records.as_ref().map(Bytes::len), Some(batch().len()));

    let ResponseKind::ListOffsets(listed) = answer(&state, ApiKey::ListOffsets, 7).await else {
        panic!("not a ListOffsets answer");
    };
    let partitions = &listed.topics[0].partitions;
    assert_eq!((partitions[0].error_code, partitions[0].offset), (0, 1));
    assert_ne!(partitions[1].error_code, 0);
}

#[tokio::test]
async fn an_empty_fetch_waits_for_data_and_wakes_when_it_comes() {
    let state = std::sync::Arc::new(state());
    let waiting = tokio::spawn({
        let state = state.clone();
        async move {
            let mut fetch = FetchRequest::default()
                .with_max_wait_ms(5_000)
                .with_min_bytes(1)
                .with_max_bytes(1 << 20)
                .with_topics(vec![
                    FetchTopic::default()
                        .with_topic(topic())
                        .with_partitions(vec![
                            FetchPartition::default()
                                .with_partition(1)
                                .with_partition_max_bytes(1 << 20),
                        ]),
                ]);
            fetch.isolation_level = 0;
            let started = std::time::Instant::now();
            let response = super::fetch::fetch(&state, fetch, 12).await;
            (started.elapsed(), response)
        }
    });
    // On this single-threaded runtime the fetch runs until it waits: once it is neither
    // finished nor anything but waiting, the append below must wake it (a fetch that
    // found data at once would have finished, and the wake-up path would go untested).
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished(), "the fetch waits for data");
    let mut produce = request(ApiKey::Produce, 9);
    if let RequestKind::Produce(p) = &mut produce {
        p.topic_data[0].partition_data.truncate(1);
        p.topic_data[0].partition_data[0].index = 1;
    }
    handle(&state, &client(), produce, 9).await;
    let (waited, response) = waiting.await.expect("fetch task");
    assert!(
        waited < std::time::Duration::from_secs(2),
        "woken by the append, not the wait: {waited:?}"
    );
    assert!(
        response.responses[0].partitions[0]
            .records
            .as_ref()
            .is_some_and(|r| !r.is_empty())
    );
}
