//! Events that can never be processed: copied to `<topic>.dlq` with the reason (a data
//! error of MySQL, a refusal of DynamoDB), the rest of their batch going on, and an ERROR
//! naming a dead-letter topic that does not exist.

mod common;

use std::time::{Duration, Instant};

use common::servers::PrivateServer;
use common::{Lab, LabConfig, Services, order_created, stock_by_item};
use edm::kafka::{Kafka, Topics};
use edm::services::payment_consumer::Gateway;
use edm::store::inventory::InventoryStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_dead_letter_topic_is_named_and_nothing_is_lost() {
    // A broker that creates no topic by itself, as production brokers usually are, and
    // the saga's topics without their dead-letter topics (created by hand, say).
    let broker =
        PrivateServer::broker_on(common::servers::free_port(), &["--no-auto-create-topics"]);
    let mut config = LabConfig::fresh();
    config.kafka.bootstrap_servers = format!("127.0.0.1:{}", broker.port);
    edm::setup::run(&config.mysql, &config.dynamo)
        .await
        .expect("setup");
    let kafka = Kafka::new(&config.kafka);
    kafka
        .ensure_topics(&kafka.topics.all(), None, 1)
        .await
        .expect("saga topics");
    let consumer = common::process::EdmProcess::spawn(&config, "inventory-consumer", &[]);
    let producer = kafka.producer().expect("producer");
    let topic = kafka.topics.inventory.clone();
    producer
        .send_raw(&topic, Some("poison"), b"not json at all", &[])
        .await
        .expect("poison sent");
    let valid = common::order_created("after-the-poison", "kim", 1, 1);
    producer.send(&topic, &valid).await.expect("event sent");

    // The consumer says what is missing and how to create it.
    let dead_letters = Topics::dead_letter(&topic);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !consumer.output().lines().any(|l| {
        l.contains("ERROR") && l.contains(&dead_letters) && l.contains("edm create-topics")
    }) {
        assert!(
            Instant::now() < deadline,
            "no error naming {dead_letters}:\n{}",
            consumer.output()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Once it exists, the dead letter is written and the next event handled.
    let names = kafka.topics.every_topic();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    kafka
        .ensure_topics(&names, None, 1)
        .await
        .expect("dead-letter topics");
    let stock = InventoryStore::connect(&config.mysql).await.expect("store");
    let deadline = Instant::now() + Duration::from_secs(60);
    while stock
        .history_of("after-the-poison")
        .await
        .expect("history")
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the event after the poison was never handled"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let dead = common::read_topic(&kafka, &dead_letters, 1).await;
    assert_eq!(
        dead[0].0,
        serde_json::Value::String("not json at all".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_mysql_refuses_for_good_is_dead_lettered_and_its_batch_goes_on() {
    use edm::kafka::Record;
    let config = LabConfig::fresh();
    config.prepare().await;
    // A database made with the course's older `CHARSET=utf8` (utf8mb3): a transaction id
    // with a 4-byte character fits the event but never the table.
    let pool = sqlx::MySqlPool::connect(&config.mysql.inventory_store)
        .await
        .expect("mysql");
    for statement in [
        "ALTER TABLE inventory_saga_step MODIFY transaction_id char(36) CHARACTER SET utf8mb3 NOT NULL",
        "ALTER TABLE inventory_history MODIFY transaction_id char(36) CHARACTER SET utf8mb3 NOT NULL",
    ] {
        sqlx::query(statement).execute(&pool).await.expect("alter");
    }
    pool.close().await;
    let lab = Lab::start_with(config, Services::all(Gateway::Accept)).await;
    let before = stock_by_item(&lab.stock).await[&1];

    let bad = format!("🚀{}", &uuid::Uuid::new_v4().to_string()[1..]);
    let mut events = Vec::new();
    for n in 0..6 {
        let tx = match n {
            3 => bad.clone(),
            _ => uuid::Uuid::new_v4().to_string(),
        };
        let event = order_created(&tx, &format!("batch-{n}"), 1, 1);
        lab.orders.create(&event).await.expect("stored");
        events.push(event);
    }
    // One pipelined send: the consumer takes them as one batch.
    let records: Vec<Record> = events
        .iter()
        .map(|e| Record::event(&lab.kafka.topics.inventory, e))
        .collect();
    lab.send_all(&records).await;

    for event in events.iter().filter(|e| e.transaction_id != bad) {
        let (tx, user) = (&event.transaction_id, &event.order.user_id);
        assert_eq!(
            lab.wait_terminal(tx, user).await["status"],
            "ORDER_COMPLETE"
        );
        assert_eq!(lab.history_of(tx).await, vec![-1]);
    }
    let (copied, error) = common::first_dead_letter(&lab.kafka, &lab.kafka.topics.inventory).await;
    assert_eq!(copied["transaction_id"], bad.as_str());
    assert!(error.contains("MySQL refuses"), "{error}");
    let after = stock_by_item(&lab.stock).await[&1];
    assert_eq!(before - after, 5, "only the five good orders took stock");
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_update_dynamodb_refuses_for_good_is_dead_lettered() {
    let lab = Lab::start(Services::all(Gateway::Accept)).await;
    let tx = uuid::Uuid::new_v4().to_string();
    lab.orders
        .create(&order_created(&tx, "huge", 1, 1))
        .await
        .expect("stored");
    // A cancel whose reason would make the item larger than DynamoDB's 400 KB.
    let mut cancel = order_created(&tx, "huge", 1, 1).with_status(edm::event::Status::OrderCancel);
    cancel.reason = Some("x".repeat(450 * 1024));
    lab.producer
        .send(&lab.kafka.topics.order, &cancel)
        .await
        .expect("sent");
    let (copied, error) = common::first_dead_letter(&lab.kafka, &lab.kafka.topics.order).await;
    assert_eq!(copied["transaction_id"], tx.as_str());
    assert!(error.contains("DynamoDB refused"), "{error}");
    // The consumer went on: a good order completes.
    let good = lab.place("after-huge", 1, 1).await;
    assert_eq!(
        lab.wait_terminal(&good, "after-huge").await["status"],
        "ORDER_COMPLETE"
    );
    lab.stop().await;
}
