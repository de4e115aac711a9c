//! Scenarios with librdkafka, the client edm's services use: the configs of the topics
//! `edm create-topics` makes, transactions, and consumer groups (joins, leaves, kills,
//! static members).

use std::time::{Duration, Instant};

use edm::config::KafkaArgs;
use edm::kafka::Kafka;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde_json::{Value, json};

use super::compare::Broker;
use super::ops;
use super::wire::Wire;

/// The configs compared, with what each says: cleanup and retention (what a broker
/// deletes), the record size limit. Left out: `min.insync.replicas`, which Apache Kafka
/// 4 reports as a dynamic broker default of 1 that it writes at format time (a detail of
/// one installation, not of the protocol); `retention.bytes`, whose default differs on
/// purpose (README, "edm broker and Apache Kafka": edm bounds its in-memory partitions).
const CONFIGS: &[&str] = &[
    "cleanup.policy",
    "retention.ms",
    "max.message.bytes",
    "min.cleanable.dirty.ratio",
    "delete.retention.ms",
    "message.timestamp.type",
];

/// Creates every topic as `edm create-topics` does — the decisions' topic already there
/// with the broker's default policy, as an older edm created it — then describes their
/// configs.
pub async fn topic_configs(broker: Broker) -> Value {
    let mut args = KafkaArgs::new(broker.address.clone());
    args.topic_prefix = broker.prefix.clone();
    let kafka = Kafka::new(&args);
    let mut wire = Wire::connect(&broker.address).await;
    let decisions = kafka.topics.payment_decisions.clone();
    assert_eq!(ops::create_topic(&mut wire, &decisions, 1, 1, &[]).await, 0);
    let names = kafka.topics.every_topic();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let changes = kafka
        .ensure_topics(&names, None, 1)
        .await
        .expect("edm create-topics");
    let changes: Vec<String> = changes
        .iter()
        .map(|(name, change)| {
            format!(
                "{} {change:?}",
                name.strip_prefix(&broker.prefix).unwrap_or(name)
            )
        })
        .collect();
    let after_a_second_run = kafka
        .configs_differing(&names)
        .await
        .expect("DescribeConfigs");
    for name in &names {
        ops::wait_for_leaders(&mut wire, name).await;
    }
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .create()
        .expect("admin client");
    let resources: Vec<ResourceSpecifier<'_>> =
        names.iter().map(|n| ResourceSpecifier::Topic(n)).collect();
    let described = admin
        .describe_configs(&resources, &AdminOptions::new())
        .await
        .expect("DescribeConfigs");
    let mut topics = serde_json::Map::new();
    for (name, result) in names.iter().zip(described) {
        let shown = match result {
            Ok(resource) => {
                let mut configs = serde_json::Map::new();
                for key in CONFIGS {
                    let entry = resource.get(key).map(|e| {
                        json!({"value": e.value, "default": e.is_default, "source": format!("{:?}", e.source)})
                    });
                    configs.insert(key.to_string(), entry.unwrap_or(Value::Null));
                }
                Value::Object(configs)
            }
            Err(error) => json!({"error": error.to_string()}),
        };
        let short = name.strip_prefix(&broker.prefix).unwrap_or(name);
        topics.insert(short.to_string(), shown);
    }
    json!({
        "create_topics": changes,
        "differing_after_it": after_a_second_run.len(),
        "configs": topics,
    })
}

fn producer(
    broker: &Broker,
    transactional_id: Option<&str>,
) -> ThreadedProducer<DefaultProducerContext> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &broker.address)
        .set("enable.idempotence", "true")
        .set("linger.ms", "0");
    if let Some(id) = transactional_id {
        config.set("transactional.id", id);
    }
    config.create().expect("producer")
}

/// Waits (blocking) until partition 0 of `topic` ends at `at_least` or beyond: until
/// the transaction markers before it are written.
pub fn wait_for_high_watermark(address: &str, topic: &str, at_least: i64, timeout: Duration) {
    let watcher: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", address)
        .create()
        .expect("watermark reader");
    let deadline = Instant::now() + timeout;
    while watcher
        .fetch_watermarks(topic, 0, timeout)
        .map(|(_, high)| high)
        .unwrap_or(0)
        < at_least
    {
        assert!(
            Instant::now() < deadline,
            "{topic} never reached {at_least}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn send(producer: &ThreadedProducer<DefaultProducerContext>, topic: &str, value: &str) {
    producer
        .send(BaseRecord::to(topic).key("k").payload(value))
        .expect("queued");
    producer.flush(Duration::from_secs(10)).expect("delivered");
}

/// Waits until read_committed readers may read everything (Apache Kafka writes a
/// transaction's markers just after it answers EndTxn).
async fn wait_stable(wire: &mut Wire, topic: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stable = ops::list_offset(wire, topic, 0, -1, 1).await;
        let end = ops::list_offset(wire, topic, 0, -1, 0).await;
        if stable["offset"] == end["offset"] {
            return;
        }
        assert!(Instant::now() < deadline, "{topic} not stable after 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Commit, abort and plain records interleaved; what read_committed and read_uncommitted
/// readers see (offsets, control markers, aborted transactions); an open transaction
/// holding back the last stable offset.
pub async fn transactions(broker: Broker) -> Value {
    let mut wire = Wire::connect(&broker.address).await;
    let topic = broker.topic("tx");
    assert_eq!(ops::create_topic(&mut wire, &topic, 1, 1, &[]).await, 0);
    let timeout = Duration::from_secs(10);
    let (for_writer, writes_to) = (broker.clone(), topic.clone());
    let writer = tokio::task::spawn_blocking(move || {
        let writer = producer(&for_writer, Some(&for_writer.topic("writer")));
        let plain = producer(&for_writer, None);
        writer.init_transactions(timeout).expect("init");
        writer.begin_transaction().expect("begin");
        for value in ["a1", "a2", "a3"] {
            send(&writer, &writes_to, value);
        }
        writer.commit_transaction(timeout).expect("commit");
        writer.begin_transaction().expect("begin");
        for value in ["b1", "b2"] {
            send(&writer, &writes_to, value);
        }
        writer.abort_transaction(timeout).expect("abort");
        // Apache Kafka answers EndTxn before it writes the markers (edm broker after): the
        // plain record waits for the abort marker (offset 6), so both logs hold one order.
        wait_for_high_watermark(&for_writer.address, &writes_to, 7, timeout);
        send(&plain, &writes_to, "p1");
        writer.begin_transaction().expect("begin");
        send(&writer, &writes_to, "c1");
        writer.commit_transaction(timeout).expect("commit");
        writer
    })
    .await
    .expect("writer");
    wait_stable(&mut wire, &topic).await;
    let committed = ops::read_all(&mut wire, &topic, 0, 1).await;
    let everything = ops::read_all(&mut wire, &topic, 0, 0).await;

    // A transaction left open holds read_committed readers back.
    let writes_to = topic.clone();
    let writer = tokio::task::spawn_blocking(move || {
        writer.begin_transaction().expect("begin");
        send(&writer, &writes_to, "d1");
        writer
    })
    .await
    .expect("writer");
    let end = ops::list_offset(&mut wire, &topic, 0, -1, 0).await["offset"]
        .as_i64()
        .expect("an end offset");
    let open = json!({
        "latest": end,
        "latest_read_committed": ops::list_offset(&mut wire, &topic, 0, -1, 1).await,
        "fetch_read_committed_at_the_open_transaction": ops::fetch(&mut wire, &topic, 0, end - 1, 1).await,
    });
    tokio::task::spawn_blocking(move || writer.abort_transaction(timeout).expect("abort"))
        .await
        .expect("writer");
    wait_stable(&mut wire, &topic).await;
    json!({
        "read_committed": committed,
        "read_uncommitted": everything,
        "with_a_transaction_open": open,
        "after_it_aborted": ops::read_all(&mut wire, &topic, 0, 1).await,
    })
}

/// A consumer in `group` (range assignor, 6 s session, the least Apache Kafka allows),
/// static when `instance` is given, counting its rebalances.
fn member(broker: &Broker, group: &str, instance: Option<&str>) -> BaseConsumer<Counting> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &broker.address)
        .set("group.id", group)
        .set("partition.assignment.strategy", "range")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("enable.auto.commit", "false");
    if let Some(instance) = instance {
        config.set("group.instance.id", instance);
    }
    config
        .create_with_context(Counting::default())
        .expect("consumer")
}

/// Counts a consumer's rebalances (each assignment and each revocation).
#[derive(Default)]
pub struct Counting(std::sync::atomic::AtomicUsize);

impl rdkafka::ClientContext for Counting {}

impl rdkafka::consumer::ConsumerContext for Counting {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, _: &rdkafka::consumer::Rebalance<'_>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Counting {
    fn rebalances(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

fn assigned(consumer: &BaseConsumer<Counting>) -> Vec<i32> {
    let mut partitions: Vec<i32> = consumer
        .assignment()
        .expect("assignment")
        .elements()
        .iter()
        .map(|e| e.partition())
        .collect();
    partitions.sort_unstable();
    partitions
}

/// Polls `members` (a poll each, in turn, as their owners would) until `done` says so
/// or 30 s pass; how long it took, as "at once" (under 3 s) or "after a session timeout".
fn poll_until(members: &[&BaseConsumer<Counting>], done: impl Fn() -> bool) -> &'static str {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not settled in 30 s"
        );
        for member in members {
            if let Some(Err(error)) = member.poll(Duration::from_millis(20)) {
                eprintln!("poll: {error}");
            }
        }
    }
    match started.elapsed() < Duration::from_secs(3) {
        true => "at once",
        false => "after a session timeout",
    }
}

/// The group as DescribeGroups shows it: its state and each member's partitions.
fn describe(consumer: &BaseConsumer<Counting>, group: &str) -> Value {
    use kafka_protocol::messages::ConsumerProtocolAssignment;
    use kafka_protocol::protocol::Decodable;
    let list = consumer
        .fetch_group_list(Some(group), Duration::from_secs(10))
        .expect("DescribeGroups");
    let info = &list.groups()[0];
    let mut members: Vec<Vec<i32>> = info
        .members()
        .iter()
        .map(|m| {
            let mut bytes = bytes::Bytes::copy_from_slice(m.assignment().unwrap_or_default());
            if bytes.len() < 2 {
                return Vec::new();
            }
            let version = i16::from_be_bytes([bytes[0], bytes[1]]).min(3);
            let _ = bytes::Buf::get_i16(&mut bytes);
            let assignment =
                ConsumerProtocolAssignment::decode(&mut bytes, version).expect("an assignment");
            let mut partitions: Vec<i32> = assignment
                .assigned_partitions
                .iter()
                .flat_map(|t| t.partitions.clone())
                .collect();
            partitions.sort_unstable();
            partitions
        })
        .collect();
    members.sort();
    json!({"state": info.state(), "protocol": info.protocol(), "members": members})
}

/// Joins and a leave of dynamic members, then a member killed (a process, `kill -9`):
/// who has which partitions after each, and whether it took a session timeout.
pub async fn groups(broker: Broker) -> Value {
    // The saga's topics with 4 partitions, as `edm create-topics --partitions 4`: the
    // killed member is an `edm payment-consumer`.
    let mut args = KafkaArgs::new(broker.address.clone());
    args.topic_prefix = broker.prefix.clone();
    let kafka = Kafka::new(&args);
    let names = kafka.topics.every_topic();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    kafka
        .ensure_topics(&names, Some(4), 1)
        .await
        .expect("edm create-topics");
    let mut wire = Wire::connect(&broker.address).await;
    for name in &names {
        ops::wait_for_leaders(&mut wire, name).await;
    }
    let topic = kafka.topics.payment.clone();
    let group = kafka.group(edm::services::payment_consumer::GROUP);
    let (first_steps, a) = tokio::task::spawn_blocking({
        let (broker, topic, group) = (broker.clone(), topic.clone(), group.clone());
        move || {
            let a = member(&broker, &group, None);
            a.subscribe(&[&topic]).expect("subscribe");
            let took = poll_until(&[&a], || assigned(&a).len() == 4);
            let one = json!({"took": took, "group": describe(&a, &group)});
            let b = member(&broker, &group, None);
            b.subscribe(&[&topic]).expect("subscribe");
            poll_until(&[&a, &b], || {
                assigned(&a).len() == 2 && assigned(&b).len() == 2
            });
            let two = describe(&a, &group);
            drop(b); // closes: LeaveGroup
            let took = poll_until(&[&a], || assigned(&a).len() == 4);
            let left = json!({"took": took, "group": describe(&a, &group)});
            (
                json!({"one_member": one, "two_members": two, "one_left": left}),
                a,
            )
        }
    })
    .await
    .expect("members");

    // A member that is a process, killed: its partitions come back after its session.
    let mut config = crate::common::LabConfig::fresh();
    config.kafka.bootstrap_servers = broker.address.clone();
    config.kafka.topic_prefix = broker.prefix.clone();
    let mut process = crate::common::process::EdmProcess::spawn(
        &config,
        "payment-consumer",
        &["--pg-ok", "true"],
    );
    let (killed, a) = tokio::task::spawn_blocking({
        let group = group.clone();
        move || {
            poll_until(&[&a], || assigned(&a).len() == 2);
            let two = describe(&a, &group);
            (two, a)
        }
    })
    .await
    .expect("member");
    process.kill9();
    let after_kill = tokio::task::spawn_blocking(move || {
        let took = poll_until(&[&a], || assigned(&a).len() == 4);
        json!({"took": took, "group": describe(&a, &group)})
    })
    .await
    .expect("member");
    json!({
        "dynamic": first_steps,
        "with_a_process": killed,
        "process_killed": after_kill,
    })
}

/// Two static members (`group.instance.id`); one stops without leaving (as a crash or a
/// static member's close does) and a new one with its instance id takes its place.
pub async fn static_membership(broker: Broker) -> Value {
    let mut wire = Wire::connect(&broker.address).await;
    let topic = broker.topic("static");
    assert_eq!(ops::create_topic(&mut wire, &topic, 4, 1, &[]).await, 0);
    let group = broker.topic("static-group");
    tokio::task::spawn_blocking(move || {
        let first = member(&broker, &group, Some("member-1"));
        let second = member(&broker, &group, Some("member-2"));
        first.subscribe(&[&topic]).expect("subscribe");
        second.subscribe(&[&topic]).expect("subscribe");
        poll_until(&[&first, &second], || {
            assigned(&first).len() + assigned(&second).len() == 4
                && !assigned(&first).is_empty()
                && !assigned(&second).is_empty()
        });
        let before = json!({
            "member-1": assigned(&first),
            "member-2": assigned(&second),
            "group": describe(&second, &group),
        });
        let rebalances = second.context().rebalances();
        drop(first); // a static member's close sends no LeaveGroup
        let again = member(&broker, &group, Some("member-1"));
        again.subscribe(&[&topic]).expect("subscribe");
        let took = poll_until(&[&again, &second], || !assigned(&again).is_empty());
        json!({
            "before": before,
            "replaced": {
                "took": took,
                "member-1": assigned(&again),
                "member-2": assigned(&second),
                "member-2_rebalanced": second.context().rebalances() != rebalances,
                "group": describe(&second, &group),
            },
        })
    })
    .await
    .expect("members")
}
