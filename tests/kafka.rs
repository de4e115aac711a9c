//! The producer against the real broker: pipelined (and batched) sends are all stored,
//! each saga's events in their order, and `edm trace` reads them all back.

mod common;

use common::{LabConfig, read_topic};
use edm::event::{SagaEvent, Status};
use edm::kafka::{Kafka, Record};

/// Events of `sagas` sagas, `steps` events each, interleaved as a consumer batch would send
/// them (saga 0 step 0, saga 1 step 0, …, saga 0 step 1, …).
fn interleaved(topic: &str, sagas: usize, steps: usize) -> Vec<Record> {
    let mut records = Vec::new();
    for step in 0..steps {
        for saga in 0..sagas {
            let mut event: SagaEvent = serde_json::from_value(serde_json::json!({
                "order": {"user_id": format!("user-{saga}"), "name": "n", "addr": "a",
                          "tel": "t", "email": "e"},
                "inventory": {"id": 1, "quantity": 1},
                "transaction_id": format!("tx-{saga}"),
                "status": "ORDER_CREATED",
            }))
            .expect("event");
            event.status = Status::OrderCreated;
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
