//! Conformance: `edm broker` held to Apache Kafka. Each scenario runs against both test
//! brokers at once (`EDM_TEST_EDM_BROKER` and `EDM_TEST_APACHE_KAFKA`, started by
//! `scripts/test-servers.sh`) and what a client can see of the answers — records,
//! offsets, watermarks, error codes, configs, assignments — must be the same; a test
//! fails naming every field that differs. Three client stacks: requests spoken by hand
//! (`wire`: what no library sends on purpose, such as a sequence gap), librdkafka
//! (`rdkafka`), and the Java client from the Kafka jars (`java`).
//!
//! Every test name starts with `both_brokers`: `scripts/test.sh` runs it in its first
//! pass only (it talks to both brokers whichever one the pass is for).

mod common;

#[path = "conformance/compare.rs"]
mod compare;
#[path = "conformance/java.rs"]
mod java;
#[path = "conformance/ops.rs"]
mod ops;
#[path = "conformance/rdkafka.rs"]
mod rdkafka_scenarios;
#[path = "conformance/restart.rs"]
mod restart;
// Shared with the broker crate's own tests, which speak the protocol by hand too.
#[path = "../crates/edm-broker/tests/wire/mod.rs"]
mod wire;

use compare::{Broker, same_on_both};
use serde_json::{Value, json};
use wire::{Producer, Wire, batch};

/// Kafka's error codes the scenarios expect, by name, for the messages of failed tests.
mod code {
    pub const OFFSET_OUT_OF_RANGE: i64 = 1;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i64 = 3;
    pub const MESSAGE_TOO_LARGE: i64 = 10;
    pub const INVALID_TOPIC: i64 = 17;
    pub const TOPIC_ALREADY_EXISTS: i64 = 36;
    pub const INVALID_PARTITIONS: i64 = 37;
    pub const INVALID_REPLICATION_FACTOR: i64 = 38;
    pub const INVALID_REPLICA_ASSIGNMENT: i64 = 39;
    pub const INVALID_CONFIG: i64 = 40;
    pub const INVALID_REQUEST: i64 = 42;
    pub const OUT_OF_ORDER_SEQUENCE: i64 = 45;
    pub const INVALID_RECORD: i64 = 87;
}

/// Now in milliseconds, rounded down to a second: record timestamps near now (a
/// timestamp from 1970 is past any retention, and a broker may delete it at once).
fn now_ms() -> i64 {
    chrono::Utc::now().timestamp() * 1000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_brokers_answer_topic_administration_alike() {
    let answer = same_on_both("topic administration", |broker: Broker| async move {
        let mut wire = Wire::connect(&broker.address).await;
        let name = broker.topic("admin");
        let created = ops::create_topic(&mut wire, &name, 2, 1, &[]).await;
        let again = ops::create_topic(&mut wire, &name, 2, 1, &[]).await;
        let zero = ops::create_topic(&mut wire, &broker.topic("zero"), 0, 1, &[]).await;
        let factor = ops::create_topic(&mut wire, &broker.topic("factor"), 1, 2, &[]).await;
        let bad_name = ops::create_topic(&mut wire, &broker.topic("bad name!"), 1, 1, &[]).await;
        let defaults = ops::create_topic(&mut wire, &broker.topic("defaults"), -1, -1, &[]).await;
        let default_partitions = ops::metadata(&mut wire, &broker.topic("defaults"), false)
            .await
            .partitions
            .len();
        let unknown = ops::metadata(&mut wire, &broker.topic("missing"), false).await;
        let unknown_config = ops::create_topic(&mut wire, &broker.topic("c1"), 1, 1, &[("retention.mss", "1")]).await;
        let bad_value = ops::create_topic(&mut wire, &broker.topic("c2"), 1, 1, &[("cleanup.policy", "shred")]).await;
        json!({
            "create": created,
            "create_existing": again,
            "create_zero_partitions": zero,
            "create_replication_factor_2_on_one_node": factor,
            "create_invalid_name": bad_name,
            "create_with_broker_defaults": defaults,
            "default_partitions": default_partitions,
            "metadata_unknown_without_auto_create": unknown.error_code,
            "create_with_an_unknown_config": unknown_config,
            "create_with_an_invalid_config_value": bad_value,
            "shrink": ops::create_partitions(&mut wire, &name, 1, false).await,
            "same_count": ops::create_partitions(&mut wire, &name, 2, false).await,
            "grow_unknown": ops::create_partitions(&mut wire, &broker.topic("missing"), 3, false).await,
            "grow_with_an_empty_assignment_list": ops::create_partitions(&mut wire, &name, 3, true).await,
            "grow": ops::create_partitions(&mut wire, &name, 3, false).await,
            "partitions_after_growing": ops::metadata(&mut wire, &name, false).await.partitions.len(),
        })
    })
    .await;
    assert_eq!(answer["create_existing"], code::TOPIC_ALREADY_EXISTS);
    assert_eq!(answer["create_zero_partitions"], code::INVALID_PARTITIONS);
    assert_eq!(
        answer["create_replication_factor_2_on_one_node"],
        code::INVALID_REPLICATION_FACTOR
    );
    assert_eq!(answer["create_invalid_name"], code::INVALID_TOPIC);
    assert_eq!(
        answer["metadata_unknown_without_auto_create"],
        code::UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(answer["shrink"], code::INVALID_PARTITIONS);
    assert_eq!(
        answer["create_with_an_unknown_config"],
        code::INVALID_CONFIG
    );
    assert_eq!(
        answer["grow_with_an_empty_assignment_list"],
        code::INVALID_REPLICA_ASSIGNMENT
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_brokers_answer_produce_and_fetch_errors_alike() {
    let answer = same_on_both("produce and fetch errors", |broker: Broker| async move {
        let mut wire = Wire::connect(&broker.address).await;
        let name = broker.topic("errors");
        assert_eq!(ops::create_topic(&mut wire, &name, 1, 1, &[]).await, 0);
        let three = batch(&[b"a", b"b", b"c"], Producer::NONE, now_ms());
        let stored = ops::produce(&mut wire, &name, 0, three.clone(), None).await;
        let no_partition = ops::produce(&mut wire, &name, 7, three.clone(), None).await;
        // One record of 1.1 MB: over the default max.message.bytes (1 MiB + 12).
        let two_batches = [batch(&[b"d"], Producer::NONE, now_ms()), batch(&[b"e"], Producer::NONE, now_ms())].concat();
        let large = vec![b'x'; 1_100_000];
        let too_large = ops::produce(&mut wire, &name, 0, batch(&[&large], Producer::NONE, now_ms()), None).await;
        let compacted = broker.topic("compacted");
        assert_eq!(ops::create_topic(&mut wire, &compacted, 1, 1, &[("cleanup.policy", "compact")]).await, 0);
        let mut unkeyed = kafka_protocol::records::Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: kafka_protocol::records::TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: now_ms(),
            key: None,
            value: Some(bytes::Bytes::from_static(b"no key")),
            headers: Default::default(),
        };
        let without_key = wire::encode(&[unkeyed.clone()]);
        unkeyed.key = Some(bytes::Bytes::from_static(b"k"));
        let with_key = wire::encode(&[unkeyed]);
        json!({
            "compacted_without_a_key": ops::produce(&mut wire, &compacted, 0, without_key, None).await,
            "compacted_with_a_key": ops::produce(&mut wire, &compacted, 0, with_key, None).await,
            "produce": stored,
            "produce_to_a_missing_partition": no_partition,
            "produce_too_large": too_large,
            "produce_two_batches_at_once": ops::produce(&mut wire, &name, 0, two_batches.into(), None).await,
            "fetch_past_the_end": ops::fetch(&mut wire, &name, 0, 100, 0).await,
            "fetch_before_the_start": ops::fetch(&mut wire, &name, 0, -5, 0).await,
            "fetch_at_the_end": ops::fetch(&mut wire, &name, 0, 3, 0).await,
            "fetch_a_missing_partition": ops::fetch(&mut wire, &name, 4, 0, 0).await,
            "fetch_from_the_middle": ops::fetch(&mut wire, &name, 0, 1, 0).await,
            "list_offsets_of_a_missing_partition": ops::list_offset(&mut wire, &name, 4, -1, 0).await,
        })
    })
    .await;
    assert_eq!(
        answer["produce_to_a_missing_partition"]["error"],
        code::UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        answer["produce_too_large"]["error"],
        code::MESSAGE_TOO_LARGE
    );
    assert_eq!(
        answer["fetch_past_the_end"]["error"],
        code::OFFSET_OUT_OF_RANGE
    );
    assert_eq!(
        answer["produce_two_batches_at_once"]["error"],
        code::INVALID_RECORD
    );
}

/// ListOffsets at `timestamp`, the answer's timestamp relative to `base`.
async fn relative(wire: &mut Wire, name: &str, timestamp: i64, base: i64) -> Value {
    let mut answer = ops::list_offset(wire, name, 0, timestamp, 0).await;
    if let Some(t) = answer["timestamp"].as_i64().filter(|t| *t >= 0) {
        answer["timestamp"] = json!(t - base);
    }
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_brokers_list_offsets_alike() {
    same_on_both(
        "ListOffsets: earliest, latest, by timestamp",
        |broker: Broker| async move {
            let mut wire = Wire::connect(&broker.address).await;
            let name = broker.topic("offsets");
            assert_eq!(ops::create_topic(&mut wire, &name, 1, 1, &[]).await, 0);
            let base = now_ms() - 60_000;
            // Offsets 0-2 at base, base+1, base+2; 3-4 at base+1000, base+1001.
            ops::produce(
                &mut wire,
                &name,
                0,
                batch(&[b"a", b"b", b"c"], Producer::NONE, base),
                None,
            )
            .await;
            ops::produce(
                &mut wire,
                &name,
                0,
                batch(&[b"d", b"e"], Producer::NONE, base + 1000),
                None,
            )
            .await;
            json!({
                "earliest": relative(&mut wire, &name, -2, base).await,
                "latest": relative(&mut wire, &name, -1, base).await,
                "max_timestamp": relative(&mut wire, &name, -3, base).await,
                "before_every_record": relative(&mut wire, &name, base - 5000, base).await,
                "first_record": relative(&mut wire, &name, base, base).await,
                "inside_the_first_batch": relative(&mut wire, &name, base + 2, base).await,
                "between_batches": relative(&mut wire, &name, base + 500, base).await,
                "last_record": relative(&mut wire, &name, base + 1001, base).await,
                "after_every_record": relative(&mut wire, &name, base + 5000, base).await,
                "read_committed_latest": ops::list_offset(&mut wire, &name, 0, -1, 1).await,
            })
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_brokers_check_idempotent_sequences_alike() {
    let answer = same_on_both(
        "idempotent producer sequences",
        |broker: Broker| async move {
            let mut wire = Wire::connect(&broker.address).await;
            let name = broker.topic("sequences");
            assert_eq!(ops::create_topic(&mut wire, &name, 1, 1, &[]).await, 0);
            let (error, id, epoch) = ops::init_producer_id(&mut wire, None).await;
            assert_eq!(error, 0, "InitProducerId on {}", broker.name);
            let (empty_transactional_id, _, _) = ops::init_producer_id(&mut wire, Some("")).await;
            let at = |sequence: i32| Producer {
                id,
                epoch,
                sequence,
                transactional: false,
            };
            let now = now_ms();
            let first = ops::produce(
                &mut wire,
                &name,
                0,
                batch(&[b"a", b"b", b"c"], at(0), now),
                None,
            )
            .await;
            let repeated = ops::produce(
                &mut wire,
                &name,
                0,
                batch(&[b"a", b"b", b"c"], at(0), now),
                None,
            )
            .await;
            let next = ops::produce(&mut wire, &name, 0, batch(&[b"d"], at(3), now), None).await;
            let gap = ops::produce(&mut wire, &name, 0, batch(&[b"e"], at(10), now), None).await;
            let behind = ops::produce(&mut wire, &name, 0, batch(&[b"c"], at(2), now), None).await;
            let next_after_errors =
                ops::produce(&mut wire, &name, 0, batch(&[b"e"], at(4), now), None).await;
            let stranger = Producer {
                id: id + 1_000_000,
                epoch: 0,
                sequence: 5,
                transactional: false,
            };
            let unknown_producer =
                ops::produce(&mut wire, &name, 0, batch(&[b"z"], stranger, now), None).await;
            json!({
                "first": first,
                "the_same_batch_again": repeated,
                "next": next,
                "a_gap": gap,
                "behind_but_not_the_last_batch": behind,
                "next_after_the_errors": next_after_errors,
                "an_unknown_producer_not_at_zero": unknown_producer,
                "init_with_an_empty_transactional_id": empty_transactional_id,
                "log": ops::read_all(&mut wire, &name, 0, 0).await,
            })
        },
    )
    .await;
    assert_eq!(answer["a_gap"]["error"], code::OUT_OF_ORDER_SEQUENCE);
    assert_eq!(
        answer["init_with_an_empty_transactional_id"],
        code::INVALID_REQUEST
    );
}

#[tokio::test]
async fn both_brokers_apply_kafkas_limits_alike() {
    let answer = same_on_both(
        "fetch.max.bytes and its first-batch rule, offset.metadata.max.bytes",
        |broker: Broker| async move {
            let mut wire = Wire::connect(&broker.address).await;
            let name = broker.topic("limits");
            assert_eq!(ops::create_topic(&mut wire, &name, 2, 1, &[]).await, 0);
            for partition in [0, 1] {
                let values: [&[u8]; 2] = [b"a", b"b"];
                for value in values {
                    let one = batch(&[value], Producer::NONE, now_ms());
                    ops::produce(&mut wire, &name, partition, one, None).await;
                }
            }
            let group = broker.topic("limits-group");
            json!({
                // One byte for the answer: the first partition still gets its first
                // batch whole, the second nothing.
                "fetch_one_byte": ops::fetch_sized(&mut wire, &name, &[0, 1], 1, 1 << 20).await,
                "fetch_one_byte_per_partition":
                    ops::fetch_sized(&mut wire, &name, &[0, 1], 1 << 20, 1).await,
                "fetch_plenty": ops::fetch_sized(&mut wire, &name, &[0, 1], i32::MAX, i32::MAX).await,
                "commit_4_kib_of_metadata": ops::commit_with_metadata(&mut wire, &group, &name, 4096).await,
                "commit_a_byte_more": ops::commit_with_metadata(&mut wire, &group, &name, 4097).await,
            })
        },
    )
    .await;
    assert_eq!(answer["commit_a_byte_more"], json!([[0, 0], [1, 12]]));
    assert_eq!(answer["fetch_one_byte"][1]["offsets"], json!([]));
}

#[tokio::test]
async fn both_brokers_close_a_connection_that_speaks_no_kafka() {
    same_on_both(
        "bytes that are no Kafka request",
        |broker: Broker| async move {
            let mut wire = Wire::connect(&broker.address).await;
            wire.send_raw(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .await;
            let answer = wire.read_frame().await;
            // The broker goes on serving everyone else.
            let mut other = Wire::connect(&broker.address).await;
            let name = broker.topic("after-http");
            json!({
                "answered": answer.is_some(),
                "then_creates_a_topic": ops::create_topic(&mut other, &name, 1, 1, &[]).await,
            })
        },
    )
    .await;
}

#[tokio::test]
async fn both_brokers_answer_a_newer_api_versions_request_in_v0() {
    use bytes::{Buf, BufMut, BytesMut};
    use kafka_protocol::messages::{
        ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader,
    };
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

    let answer = same_on_both(
        "ApiVersions in a version newer than the broker's",
        |broker: Broker| async move {
            // A client newer than both brokers asks in ApiVersions v9 (the body as v4, the
            // last the protocol crate knows: a broker that cannot read the version reads no
            // further than the header).
            let mut frame = BytesMut::new();
            frame.put_u32(0);
            RequestHeader::default()
                .with_request_api_key(ApiKey::ApiVersions as i16)
                .with_request_api_version(9)
                .with_correlation_id(42)
                .with_client_id(Some(StrBytes::from_static_str("future-client")))
                .encode(&mut frame, 2)
                .expect("header");
            ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("future-client"))
                .with_client_software_version(StrBytes::from_static_str("9.9"))
                .encode(&mut frame, 4)
                .expect("body");
            let mut wire = Wire::connect(&broker.address).await;
            let mut answer = wire.exchange(frame).await.expect("an answer");
            let correlation_id = answer.get_i32();
            let versions = ApiVersionsResponse::decode(&mut answer, 0).expect("a v0 answer");
            let spoken = |api: ApiKey| {
                versions
                    .api_keys
                    .iter()
                    .find(|k| k.api_key == api as i16)
                    .map(|k| k.min_version)
            };
            // What each broker speaks differs (README lists edm broker's versions); a client
            // needs the ones it asks for to be listed.
            json!({
                "correlation_id": correlation_id,
                "error": versions.error_code,
                "lists_api_versions_from_v0": spoken(ApiKey::ApiVersions),
                "lists_produce": spoken(ApiKey::Produce).is_some(),
                "lists_fetch": spoken(ApiKey::Fetch).is_some(),
            })
        },
    )
    .await;
    assert_eq!(answer["error"], 35, "UNSUPPORTED_VERSION");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_brokers_describe_the_topics_edm_creates_alike() {
    same_on_both(
        "configs of the topics edm creates",
        rdkafka_scenarios::topic_configs,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_brokers_keep_transactions_alike() {
    same_on_both(
        "transactions: commit, abort, read_committed, markers",
        rdkafka_scenarios::transactions,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_brokers_assign_partitions_to_a_group_alike() {
    same_on_both(
        "group assignments after joins, leaves and kills",
        rdkafka_scenarios::groups,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_brokers_keep_a_static_members_partitions_through_its_restart() {
    same_on_both(
        "static membership (group.instance.id)",
        rdkafka_scenarios::static_membership,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_brokers_keep_their_data_through_a_restart() {
    restart::same_after_restarts().await;
}

/// The Java client's scenarios (`conformance/java/Probe.java`), each on both brokers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_brokers_answer_the_java_client_alike() {
    let classes = java::compile();
    let mut failed = Vec::new();
    for scenario in java::SCENARIOS {
        let [edm, apache] = compare::both();
        let (edm_answer, apache_answer) = tokio::join!(
            java::run(&classes, &edm, scenario),
            java::run(&classes, &apache, scenario)
        );
        let outcome = std::panic::catch_unwind(|| {
            compare::assert_same(
                &format!("Java client: {scenario}"),
                &edm_answer,
                &apache_answer,
            )
        });
        if let Err(panic) = outcome {
            failed.push(
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_else(|| scenario.to_string()),
            );
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}
