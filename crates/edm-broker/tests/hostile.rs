//! What no client can do to `edm broker` (issue 18): requests that lie about their sizes,
//! frames of random bytes, a thousand idle connections, a Metadata request naming 100,000
//! topics, a fetch asking for 2 GiB. After each, the broker must still take a produce and
//! answer a fetch with it, and its memory must stay within a bound.
//!
//! The bound was measured (`eprintln!` of the growth, `--test-threads 1`, debug build, on
//! this repository's two-core test machine): the process holds 8–23 MiB before a scenario,
//! and the scenarios add 0–1 MiB each, except the Metadata one, 37 MiB (10,000 topics
//! created); before the fix, the first request aborted the process. A scenario may add at
//! most [`MAX_GROWTH_MIB`], about seven times the largest measured. The tests take turns
//! ([`one_at_a_time`]) so that one's memory is not counted against another.

#[allow(dead_code)]
mod wire;

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use edm_broker::{Broker, BrokerConfig, Limits};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiVersionsRequest, BrokerId, FetchRequest, MetadataRequest, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::net::TcpStream;
use wire::{Producer, Wire, batch};

/// Most a scenario may add to the process's resident memory (see the module's comment).
const MAX_GROWTH_MIB: u64 = 256;

/// One scenario at a time: each measures the memory of the whole process.
async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

async fn start(limits: Limits) -> Broker {
    let mut config = BrokerConfig::new("127.0.0.1:0".parse().expect("address"));
    config.limits = limits;
    Broker::start(&config).await.expect("broker started")
}

/// The process's resident memory (`VmRSS`), in MiB.
fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib / 1024
}

fn topic(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// Creates `name` (one partition) as clients do: by asking for its metadata.
async fn create(wire: &mut Wire, name: &str) {
    let request = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic(name))),
        ]))
        .with_allow_auto_topic_creation(true);
    assert_eq!(
        wire.ask(&request, 12).await.topics[0].error_code,
        0,
        "{name} created"
    );
}

/// Produces one record to a new topic and fetches it back, on a new connection.
async fn still_serves(broker: &Broker) {
    let mut wire = Wire::connect(broker.bootstrap_servers()).await;
    let name = format!("alive-{}", uuid_like());
    create(&mut wire, &name).await;
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(topic(&name))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch(&[b"alive"], Producer::NONE, 0))),
                ]),
        ]);
    let answer = wire.ask(&produce, 7).await;
    let stored = &answer.responses[0].partition_responses[0];
    assert_eq!((stored.error_code, stored.base_offset), (0, 0), "produce");
    let fetched = fetch(&mut wire, &name, 1 << 20, 1 << 20).await;
    assert_eq!(
        wire::records(fetched.as_ref()),
        [(0, "alive".to_string())],
        "fetch"
    );
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Fetch v11 of partition 0 from offset 0: the records answered.
async fn fetch(wire: &mut Wire, name: &str, max_bytes: i32, partition_max: i32) -> Option<Bytes> {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(max_bytes)
        .with_session_epoch(-1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(topic(name))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(partition_max),
                ]),
        ]);
    let answer = wire.ask(&request, 11).await;
    let data = &answer.responses[0].partitions[0];
    assert_eq!(data.error_code, 0, "fetch error");
    data.records.clone()
}

/// A request frame: header v1 (`client_id` null) for `api` `version`, then `body`.
fn frame(api: i16, version: i16, flexible: bool, body: &[u8]) -> BytesMut {
    let mut frame = BytesMut::new();
    frame.put_u32(0);
    frame.put_i16(api);
    frame.put_i16(version);
    frame.put_i32(1);
    frame.put_i16(-1);
    if flexible {
        frame.put_u8(0); // no tagged fields
    }
    frame.put_slice(body);
    frame
}

const HUGE: [u8; 4] = [0x7f, 0xff, 0xff, 0xff];
/// 2^32 − 1 as an unsigned varint: a compact array of 2^32 − 2 elements.
const HUGE_COMPACT: [u8; 5] = [0xff, 0xff, 0xff, 0xff, 0x0f];

#[tokio::test]
async fn requests_that_claim_two_billion_elements_are_refused() {
    let _turn = one_at_a_time().await;
    let broker = start(Limits::default()).await;
    let before = rss_mib();
    let string = |s: &str| [&(s.len() as i16).to_be_bytes()[..], s.as_bytes()].concat();
    let cases: Vec<(&str, BytesMut)> = vec![
        // The 14 bytes of the issue: Metadata v0, a topic array of 2^31 − 1.
        ("Metadata v0", frame(3, 0, false, &HUGE)),
        ("Metadata v12", frame(3, 12, true, &HUGE_COMPACT)),
        (
            "Produce v3",
            frame(
                0,
                3,
                false,
                &[&[0xff, 0xff, 0, 1, 0, 0, 3, 0xe8][..], &HUGE].concat(),
            ),
        ),
        (
            "Fetch v4",
            frame(
                1,
                4,
                false,
                &[&[0xff; 4][..], &[0; 12], &[0], &HUGE].concat(),
            ),
        ),
        (
            "ListOffsets v1",
            frame(2, 1, false, &[&[0xff; 4][..], &HUGE].concat()),
        ),
        (
            "OffsetFetch v1",
            frame(9, 1, false, &[&string("g")[..], &HUGE].concat()),
        ),
        ("CreateTopics v2", frame(19, 2, false, &HUGE)),
        ("DescribeConfigs v1", frame(32, 1, false, &HUGE)),
        (
            "JoinGroup v0",
            frame(
                11,
                0,
                false,
                &[
                    &string("g")[..],
                    &[0, 0, 0x75, 0x30],
                    &string(""),
                    &string("consumer"),
                    &HUGE,
                ]
                .concat(),
            ),
        ),
        (
            "SyncGroup v0, assignment bytes of 2 GiB",
            frame(
                14,
                0,
                false,
                &[
                    &string("g")[..],
                    &[0, 0, 0, 1],
                    &string("m"),
                    &[0, 0, 0, 1],
                    &string("m"),
                    &HUGE,
                ]
                .concat(),
            ),
        ),
    ];
    for (name, request) in cases {
        let mut wire = Wire::connect(broker.bootstrap_servers()).await;
        let answer = wire.exchange(request).await;
        assert!(answer.is_none(), "{name}: the connection is closed");
    }
    still_serves(&broker).await;
    assert!(rss_mib() < before + MAX_GROWTH_MIB, "memory");
    broker.stop().await;
}

#[tokio::test]
async fn a_batch_that_claims_two_billion_records_is_refused() {
    let _turn = one_at_a_time().await;
    let broker = start(Limits::default()).await;
    let mut forged = BytesMut::from(&batch(&[b"x"], Producer::NONE, 0)[..]);
    forged[57..61].copy_from_slice(&HUGE); // the record count
    let crc = crc32c::crc32c(&forged[21..]);
    forged[17..21].copy_from_slice(&crc.to_be_bytes());
    let mut wire = Wire::connect(broker.bootstrap_servers()).await;
    create(&mut wire, "forged").await;
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(topic("forged"))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(forged.freeze())),
                ]),
        ]);
    let answer = wire.ask(&produce, 7).await;
    let code = answer.responses[0].partition_responses[0].error_code;
    assert_eq!(code, 87, "INVALID_RECORD");
    still_serves(&broker).await;
    broker.stop().await;
}

#[tokio::test]
async fn a_frame_announcing_two_gibibytes_closes_its_connection() {
    let _turn = one_at_a_time().await;
    let broker = start(Limits::default()).await;
    let before = rss_mib();
    let mut wire = Wire::connect(broker.bootstrap_servers()).await;
    wire.send_raw(&0x8000_0000u32.to_be_bytes()).await;
    assert!(wire.read_frame().await.is_none(), "closed");
    // One announcing the most a request may be, then silent: the broker holds its share
    // of the request budget, not the memory.
    let mut silent = Wire::connect(broker.bootstrap_servers()).await;
    silent.send_raw(&(100u32 << 20).to_be_bytes()).await;
    still_serves(&broker).await;
    assert!(rss_mib() < before + MAX_GROWTH_MIB, "memory");
    drop(silent);
    broker.stop().await;
}

/// xorshift64*: random enough for bytes, and the same run after run.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[tokio::test]
async fn ten_thousand_frames_of_random_bytes_break_nothing() {
    let _turn = one_at_a_time().await;
    let broker = start(Limits::default()).await;
    let before = rss_mib();
    let mut wire = Wire::connect(broker.bootstrap_servers()).await;
    let versions = wire
        .ask(&ApiVersionsRequest::default(), 0)
        .await
        .api_keys
        .iter()
        .map(|a| (a.api_key, a.min_version, a.max_version))
        .collect::<Vec<_>>();
    let address = broker.bootstrap_servers().to_string();
    let mut senders = Vec::new();
    for sender in 0..50u64 {
        let (address, versions) = (address.clone(), versions.clone());
        senders.push(tokio::spawn(async move {
            let mut random = Random(0x9e37_79b9_7f4a_7c15 ^ (sender + 1));
            for _ in 0..200 {
                // Half aimed at a real API and version (so that the body reaches its
                // decoder and handler), half anything at all.
                let (api, version) = if random.below(2) == 0 {
                    let (api, min, max) = versions[random.below(versions.len() as u64) as usize];
                    (api, min + random.below((max - min + 1) as u64) as i16)
                } else {
                    (random.below(80) as i16, random.below(20) as i16)
                };
                let mut body = vec![0u8; random.below(96) as usize];
                body.iter_mut().for_each(|b| *b = random.next() as u8);
                let mut request = frame(api, version, false, &[]);
                request.truncate(12);
                request.put_slice(&body);
                let length = (request.len() - 4) as u32;
                request[..4].copy_from_slice(&length.to_be_bytes());
                // A request the broker holds (a fetch waiting for data, a join waiting
                // for a rebalance) is dropped when the connection closes.
                let Ok(mut stream) = TcpStream::connect(&address).await else {
                    panic!("the broker stopped accepting connections");
                };
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                if stream.write_all(&request).await.is_ok() {
                    let mut answer = [0u8; 4];
                    let _ = tokio::time::timeout(
                        Duration::from_millis(50),
                        stream.read_exact(&mut answer),
                    )
                    .await;
                }
            }
        }));
    }
    for sender in senders {
        sender.await.expect("sender");
    }
    still_serves(&broker).await;
    assert!(rss_mib() < before + MAX_GROWTH_MIB, "memory");
    broker.stop().await;
}

#[tokio::test]
async fn a_thousand_idle_connections_leave_room_for_a_client() {
    let _turn = one_at_a_time().await;
    let broker = start(Limits::default()).await;
    let before = rss_mib();
    let mut idle = Vec::new();
    for _ in 0..1000 {
        idle.push(
            TcpStream::connect(broker.bootstrap_servers())
                .await
                .expect("connected"),
        );
    }
    still_serves(&broker).await;
    assert!(rss_mib() < before + MAX_GROWTH_MIB, "memory");
    drop(idle);
    broker.stop().await;
}

#[tokio::test]
async fn a_metadata_request_naming_a_hundred_thousand_topics_creates_up_to_the_limit() {
    let _turn = one_at_a_time().await;
    let broker = start(Limits::default()).await;
    let before = rss_mib();
    let mut wire = Wire::connect(broker.bootstrap_servers()).await;
    let names: Vec<MetadataRequestTopic> = (0..100_000)
        .map(|n| MetadataRequestTopic::default().with_name(Some(topic(&format!("t-{n}")))))
        .collect();
    let request = MetadataRequest::default()
        .with_topics(Some(names))
        .with_allow_auto_topic_creation(true);
    let answer = wire.ask(&request, 12).await;
    let created = answer.topics.iter().filter(|t| t.error_code == 0).count();
    let refused = answer.topics.iter().filter(|t| t.error_code == 44).count();
    let limit = Limits::default().max_topics as usize;
    assert_eq!(
        (created, refused),
        (limit, 100_000 - limit),
        "POLICY_VIOLATION past --max-topics"
    );
    assert!(rss_mib() < before + MAX_GROWTH_MIB, "memory");
    broker.stop().await;
    // A fresh broker for the produce: this one holds all the topics it may.
    let broker = start(Limits::default()).await;
    still_serves(&broker).await;
    broker.stop().await;
}

#[tokio::test]
async fn a_fetch_asking_for_two_gibibytes_gets_fetch_max_bytes() {
    let _turn = one_at_a_time().await;
    let limits = Limits {
        fetch_max_bytes: 8 << 20,
        ..Limits::default()
    };
    let broker = start(limits.clone()).await;
    let mut wire = Wire::connect(broker.bootstrap_servers()).await;
    create(&mut wire, "large").await;
    let value = vec![b'v'; 900 * 1024];
    for _ in 0..20 {
        let produce = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5_000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(topic("large"))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(batch(&[&value], Producer::NONE, 0))),
                    ]),
            ]);
        let answer = wire.ask(&produce, 7).await;
        assert_eq!(answer.responses[0].partition_responses[0].error_code, 0);
    }
    let answered = fetch(&mut wire, "large", i32::MAX, i32::MAX)
        .await
        .map_or(0, |r| r.len() as u64);
    assert!(
        answered <= limits.fetch_max_bytes && answered + (1 << 20) > limits.fetch_max_bytes,
        "{answered} bytes answered, fetch.max.bytes {}",
        limits.fetch_max_bytes
    );
    // The first batch is answered whole even when it is larger than asked for.
    let first = fetch(&mut wire, "large", 1, 1).await.map_or(0, |r| r.len());
    assert!(first > 900 * 1024, "{first} bytes: the first batch");
    broker.stop().await;
}

#[tokio::test]
async fn stop_returns_once_every_connection_has_ended() {
    let _turn = one_at_a_time().await;
    let broker = start(Limits::default()).await;
    still_serves(&broker).await;
    let mut idle = Wire::connect(broker.bootstrap_servers()).await;
    idle.ask(&ApiVersionsRequest::default(), 0).await;
    // A fetch that waits for data that never comes.
    let mut waiting = Wire::connect(broker.bootstrap_servers()).await;
    create(&mut waiting, "empty").await;
    let mut request = BytesMut::new();
    request.put_u32(0);
    let fetch = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(30_000)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(topic("empty"))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    wire_request(&mut request, &fetch, 11);
    let pending = tokio::spawn(async move { waiting.exchange(request).await });
    tokio::time::timeout(edm_broker::STOP_WAIT, broker.stop())
        .await
        .expect("stopped within STOP_WAIT");
    assert!(
        idle.read_frame().await.is_none(),
        "the idle connection is closed"
    );
    let answer = pending.await.expect("fetch task");
    assert!(answer.is_none(), "the waiting fetch's connection is closed");
}

/// Appends header and body of `request` to `frame`.
fn wire_request<R: kafka_protocol::protocol::Request>(
    frame: &mut BytesMut,
    request: &R,
    version: i16,
) {
    use kafka_protocol::messages::RequestHeader;
    use kafka_protocol::protocol::Encodable;
    RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .encode(frame, R::header_version(version))
        .expect("header");
    request.encode(frame, version).expect("body");
}
