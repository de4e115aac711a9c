//! The producer against the real broker: pipelined (and batched) sends are all stored,
//! each saga's events in their order, and `edm trace` reads them all back; producers wait
//! for their id only where edm can tell (its own broker).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{LabConfig, order_created, read_topic};
use edm::kafka::{BrokerKind, Kafka, Record};
use rdkafka::Message;
use rdkafka::consumer::Consumer;

/// Held by every test here: one of them measures its producer's CPU, and a producer made by
/// another test at the same moment would be counted with it.
static MEASURING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Events of `sagas` sagas, `steps` events each, interleaved as a consumer batch would send
/// them (saga 0 step 0, saga 1 step 0, …, saga 0 step 1, …).
fn interleaved(topic: &str, sagas: usize, steps: usize) -> Vec<Record> {
    let mut records = Vec::new();
    for step in 0..steps {
        for saga in 0..sagas {
            let mut event = order_created(&format!("tx-{saga}"), &format!("user-{saga}"), 1, 1);
            event
                .extra
                .insert("step".into(), serde_json::Value::from(step));
            records.push(Record::event(topic, &event));
        }
    }
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_sends_are_all_stored_in_order_per_saga() {
    let _alone = MEASURING.lock().await;
    let config = LabConfig::fresh();
    config.prepare().await;
    let kafka = Kafka::new(&config.kafka);
    let producer = kafka.producer().expect("producer");
    let topic = kafka.topics.inventory.clone();
    let (sagas, steps) = (50, 4);

    // Two rounds, so the second goes to a partition that already holds records.
    for _ in 0..2 {
        let results = producer.send_all(&interleaved(&topic, sagas, steps)).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
    }

    // Every acknowledged record is in the log, read back in full.
    let expected = 2 * sagas * steps;

    // `edm trace` finds all of the last saga's events, the last one sent included, though
    // they came in multi-record batches.
    let last = format!("tx-{}", sagas - 1);
    let traced = edm::tools::trace::trace(&kafka, &last)
        .await
        .expect("trace");
    assert_eq!(traced.len(), 2 * steps, "{traced:?}");
    assert!(traced.iter().all(|e| e.topic == topic));

    // Each saga's events come back in the order they were sent.
    let read = read_topic(&kafka, &topic, expected).await;
    let mut next_step = vec![0u64; sagas];
    for (value, _) in read {
        let saga: usize = value["transaction_id"]
            .as_str()
            .and_then(|tx| tx.strip_prefix("tx-"))
            .and_then(|n| n.parse().ok())
            .expect("tx id");
        let step = value["step"].as_u64().expect("step");
        assert_eq!(
            step,
            next_step[saga] % steps as u64,
            "saga {saga} out of order"
        );
        next_step[saga] += 1;
    }
    assert!(next_step.iter().all(|&n| n == 2 * steps as u64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_tells_when_it_has_its_producer_id_on_edms_broker() {
    let _alone = MEASURING.lock().await;
    // On an edm broker of its own, whichever broker the suite runs on.
    let broker = common::servers::PrivateServer::broker();
    let mut config = LabConfig::fresh();
    config.kafka.bootstrap_servers = format!("127.0.0.1:{}", broker.port);
    config.prepare().await;
    let kafka = Kafka::connect(&config.kafka).await.expect("broker answers");
    assert_eq!(kafka.broker(), BrokerKind::Edm, "edm's own broker");
    let producer = kafka.producer().expect("producer");
    assert!(
        producer.wait_ready(Duration::from_secs(10)).await,
        "no producer id within 10 s"
    );
    let results = producer
        .send_all(&interleaved(&kafka.topics.payment, 1, 1))
        .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    // Statistics are how it knows: without them it never tells.
    let mut silent = config.kafka.clone();
    silent.set_property("statistics.interval.ms", "0");
    let producer = Kafka::connect(&silent)
        .await
        .expect("broker answers")
        .producer()
        .expect("producer");
    assert!(!producer.wait_ready(Duration::from_secs(2)).await);

    // A broker edm does not know gets librdkafka's defaults: no statistics, so nothing to
    // wait for, and a service starts at once.
    let producer = Kafka::new(&config.kafka).producer().expect("producer");
    let started = std::time::Instant::now();
    producer.wait_for_id().await;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(!producer.wait_ready(Duration::from_millis(10)).await);
}

/// CPU time (ns) per thread of this process whose name starts with `prefix`, by thread id,
/// from /proc/self/task/*/schedstat (exact, unlike the clock ticks of /proc/*/stat). By id,
/// because threads of other producers come and go while a test measures.
fn cpu_of_threads(prefix: &str) -> HashMap<String, u64> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return HashMap::new();
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| name.starts_with(prefix))
        })
        .filter_map(|task| {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            let ns = stat.split_whitespace().next()?.parse::<u64>().ok()?;
            Some((task.file_name().to_string_lossy().into_owned(), ns))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_producer_costs_no_cpu() {
    // The other tests here run producers too; their threads must not be counted.
    let _alone = MEASURING.lock().await;
    let config = LabConfig::fresh();
    let others = cpu_of_threads("producer");
    let producer = Kafka::new(&config.kafka).producer().expect("producer");
    let results = producer
        .send_all(&interleaved(
            &format!("{}idle", config.kafka.topic_prefix),
            1,
            1,
        ))
        .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let mut before = cpu_of_threads("producer");
    before.retain(|thread, _| !others.contains_key(thread));
    assert!(!before.is_empty(), "the producer has an event thread");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = cpu_of_threads("producer");
    let used: u64 = before
        .iter()
        .map(|(thread, ns)| after.get(thread).map_or(0, |now| now.saturating_sub(*ns)))
        .sum();
    // rust-rdkafka's own polling thread spun ~16 ms in 2 s here; a thread that sleeps until
    // librdkafka has an event uses next to nothing.
    assert!(
        used < 3_000_000,
        "the producer's event thread used {used} ns in 2 s idle"
    );
    drop(producer);
}

/// The orchestrator places each saga's replies by computing librdkafka's partitioner
/// (`edm::kafka::Partitioner`): it must agree with where librdkafka puts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_computed_partition_of_a_key_is_where_librdkafka_puts_it() {
    let _alone = MEASURING.lock().await;
    for partitioner in ["consistent_random", "murmur2_random", "fnv1a"] {
        let mut config = LabConfig::fresh();
        config.kafka.set_property("partitioner", partitioner);
        let kafka = Kafka::new(&config.kafka);
        let topic = format!("{}placed", config.kafka.topic_prefix);
        kafka
            .ensure_topics(&[&topic], Some(7), 1)
            .await
            .expect("topic");
        let records: Vec<Record> = (0..100)
            .map(|n| Record {
                topic: topic.clone(),
                key: Some(uuid::Uuid::new_v4().to_string()),
                payload: format!("{n}").into_bytes(),
                headers: Vec::new(),
            })
            .collect();
        let producer = kafka.producer().expect("producer");
        assert!(producer.send_all(&records).await.iter().all(Result::is_ok));
        let computed = kafka.partitioner().expect("a partitioner edm computes");
        let consumer = kafka
            .consumer(&format!("{topic}-reader"))
            .expect("consumer");
        consumer.subscribe(&[&topic]).expect("subscribe");
        for _ in 0..records.len() {
            let message = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
                .await
                .expect("a record")
                .expect("receive");
            let key = message.key().expect("keyed");
            assert_eq!(
                message.partition(),
                computed.partition(key, 7),
                "{partitioner}: key {}",
                String::from_utf8_lossy(key)
            );
        }
    }
}
