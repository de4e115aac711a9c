//! Errors are never swallowed: what a service cannot read it neither skips nor takes for
//! "nothing there" — a payment decision or an orchestrated saga that cannot be read is
//! dead-lettered with the reason (or, when it could be any transaction's, stops the
//! service with the offset), never decided again or taken for absent.

mod common;

use std::time::{Duration, Instant};

use common::process::EdmProcess;
use common::{Lab, LabConfig, Services, first_dead_letter, order_body, read_topic, send_json};
use edm::config::OrderStoreArgs;
use edm::kafka::Kafka;
use edm::orchestration::SagaStyle;
use edm::orchestration::messages::{Reply, ReplyKind};
use edm::services::payment_consumer::Gateway;
use serde_json::{Value, json};

/// An INVENTORY_RESERVED event of saga `tx`, as the inventory consumer sends it.
fn inventory_reserved(tx: &str) -> Value {
    let mut event = order_body("lee", 2, 1);
    event["transaction_id"] = json!(tx);
    event["status"] = json!("INVENTORY_RESERVED");
    event["payment"] = json!({"total_price": 30000});
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_that_cannot_be_read_is_not_made_again() {
    let config = LabConfig::fresh();
    config.prepare().await;
    let kafka = Kafka::new(&config.kafka);
    let producer = kafka.producer().expect("producer");
    let poisoned = format!("{}-poisoned", config.id);
    // A decision for `poisoned` that is no decision (written by hand, or by a buggy
    // tool): the payment consumer cannot know what it answered.
    producer
        .send_raw(
            &kafka.topics.payment_decisions,
            Some(&poisoned),
            b"{\"accepted\": maybe",
            &[],
        )
        .await
        .expect("sent");
    let payment = EdmProcess::spawn(&config, "payment-consumer", &["--pg-ok", "true"]);
    let fine = format!("{}-fine", config.id);
    send_json(
        &producer,
        &kafka.topics.payment,
        Some(&poisoned),
        &inventory_reserved(&poisoned),
    )
    .await;
    send_json(
        &producer,
        &kafka.topics.payment,
        Some(&fine),
        &inventory_reserved(&fine),
    )
    .await;

    // The poisoned transaction is dead-lettered with the reason and where the decision is…
    let (copied, error) = first_dead_letter(&kafka, &kafka.topics.payment).await;
    assert_eq!(copied["transaction_id"], json!(poisoned));
    let at = format!("{} 0@0", kafka.topics.payment_decisions);
    assert!(
        error.contains("cannot be read") && error.contains(&at),
        "{error}\n{}",
        payment.output()
    );
    // …and not decided: the first outcome on `order` is the next transaction's.
    let (outcome, _) = read_topic(&kafka, &kafka.topics.order, 1).await.remove(0);
    assert_eq!(outcome["transaction_id"], json!(fine), "{outcome}");
    assert_eq!(outcome["status"], json!("PAYMENT_COMPLETE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_without_a_key_that_cannot_be_read_stops_the_payment_consumer() {
    let config = LabConfig::fresh();
    config.prepare().await;
    let kafka = Kafka::new(&config.kafka);
    // A decisions topic of an older edm (not compacted, so records without a key are
    // taken), holding a record that is no decision and names no transaction.
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &config.kafka.bootstrap_servers)
            .create()
            .expect("admin");
    let decisions = rdkafka::admin::ResourceSpecifier::Topic(&kafka.topics.payment_decisions);
    let plain = rdkafka::admin::AlterConfig::new(decisions).set("cleanup.policy", "delete");
    let altered = admin
        .alter_configs([&plain], &rdkafka::admin::AdminOptions::new())
        .await
        .expect("AlterConfigs");
    assert!(altered.iter().all(Result::is_ok), "{altered:?}");
    let producer = kafka.producer().expect("producer");
    producer
        .send_raw(&kafka.topics.payment_decisions, None, b"garbage", &[])
        .await
        .expect("sent");
    let mut payment = EdmProcess::spawn(&config, "payment-consumer", &["--pg-ok", "true"]);
    let status = payment
        .wait_exit(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("still deciding after 60 s:\n{}", payment.output()));
    let output = payment.output();
    assert_eq!(status.code(), Some(1), "{output}");
    let at = format!("{} 0@0", kafka.topics.payment_decisions);
    assert!(
        output.contains("has no key") && output.contains(&at),
        "{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saga_that_cannot_be_read_is_dead_lettered_not_taken_for_none() {
    // Orders in a SQLite file, so that the test can damage one by hand.
    let dir = std::env::temp_dir().join(format!("edm-errors-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let url = format!("sqlite://{}", dir.join("orders.db").display());
    let mut config = LabConfig::fresh();
    config.dynamo = OrderStoreArgs::new(url.clone());
    let lab = Lab::start_with(
        config,
        Services {
            payment: None,
            ..Services::all(Gateway::Accept).with_saga(SagaStyle::Orchestration)
        },
    )
    .await;
    let tx = lab.place("park", 1, 1).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while lab
        .orders
        .saga(&tx)
        .await
        .expect("store")
        .is_none_or(|saga| saga.state.as_str() != "TAKING_PAYMENT")
    {
        assert!(
            Instant::now() < deadline,
            "the saga never waited for its payment"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pool = sqlx::SqlitePool::connect(&url).await.expect("SQLite");
    sqlx::query("UPDATE orders SET saga_commands = 'not json' WHERE transaction_id = ?")
        .bind(&tx)
        .execute(&pool)
        .await
        .expect("damaged");

    let reply = Reply::to(ReplyKind::PaymentApproved, &tx).record(&lab.kafka.topics);
    lab.producer.send_record(&reply).await.expect("reply sent");
    let (copied, error) = first_dead_letter(&lab.kafka, &lab.kafka.topics.saga_replies).await;
    assert_eq!(copied["transaction_id"], json!(tx));
    assert!(
        error.contains("cannot be read") && error.contains("saga_commands"),
        "{error}"
    );
    lab.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
