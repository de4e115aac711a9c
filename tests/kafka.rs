//! The producer against the real broker: pipelined (and batched) sends are all stored,
//! each saga's events in their order, and `edm trace` reads them all back; a consumer
//! that meets a hole in a partition reads again from it.

mod common;

use std::time::Duration;

use common::{LabConfig, order_created, read_topic};
use edm::kafka::gaps::GapGuard;
use edm::kafka::{Kafka, Record, SagaConsumer};
use rdkafka::consumer::Consumer;
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};

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

    // Every acknowledged record is in the log, read back in full (not counted with
    // ListOffsets: Tansu 0.6 answers it wrongly once a batch holds several records).
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

/// The next message of `consumer`, or a failed test after 30 s.
async fn next_message(consumer: &SagaConsumer) -> BorrowedMessage<'_> {
    tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .expect("a message within 30 s")
        .expect("receive")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_meets_a_hole_reads_again_from_it() {
    let config = LabConfig::fresh();
    config.prepare().await;
    let kafka = Kafka::new(&config.kafka);
    let topic = kafka.topics.payment.clone();
    let producer = kafka.producer().expect("producer");
    let results = producer.send_all(&interleaved(&topic, 20, 1)).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    // Offsets 0..=4 were read; the broker then shows offset 10, as Tansu does when a later
    // batch lands before an earlier one.
    let group = format!("hole-{}", uuid::Uuid::new_v4().simple());
    let consumer = kafka.consumer(&group).expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(&topic, 0, Offset::Offset(10))
        .expect("partition");
    consumer.assign(&assignment).expect("assign");
    let mut guard = GapGuard::new(Duration::from_secs(30));
    guard.accept(&topic, 0, 4);
    let ahead = next_message(&consumer).await;
    assert_eq!(ahead.offset(), 10);
    assert!(
        guard.without_holes(&consumer, vec![ahead]).is_empty(),
        "a message after a hole is not handled"
    );

    // The consumer reads again from the hole, in order.
    let mut handled = Vec::new();
    while handled.len() < 15 {
        let message = next_message(&consumer).await;
        let kept = guard.without_holes(&consumer, vec![message]);
        handled.extend(kept.iter().map(|m| m.offset()));
    }
    assert_eq!(handled, (5..20).collect::<Vec<i64>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_tells_when_it_has_its_producer_id() {
    let config = LabConfig::fresh();
    config.prepare().await;
    let kafka = Kafka::new(&config.kafka);
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
    silent
        .properties
        .push(("statistics.interval.ms".into(), "0".into()));
    let producer = Kafka::new(&silent).producer().expect("producer");
    assert!(!producer.wait_ready(Duration::from_secs(2)).await);
}
