//! The order service between its store and Kafka: what it answers when either is gone,
//! and the transactional outbox that sends what was stored but not acknowledged — from an
//! index of unsent orders, with relays side by side.

mod common;

use std::time::{Duration, Instant};

use common::servers::PrivateServer;
use common::{Lab, LabConfig, Services, order_body, order_created};
use edm::config::OrderStoreArgs;
use edm::kafka::Kafka;
use edm::services::order_service::OrderServiceOptions;
use edm::services::payment_consumer::Gateway;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_kafka_does_not_acknowledge_is_accepted_and_sent_once_kafka_is_back() {
    let data = std::env::temp_dir().join(format!("edm-faults-{}", uuid::Uuid::new_v4().simple()));
    let data_arg = data.display().to_string();
    let port = common::servers::free_port();
    let mut broker = PrivateServer::broker_on(port, &["--data-dir", &data_arg]);
    let mut config = LabConfig::fresh();
    config.kafka.bootstrap_servers = format!("127.0.0.1:{port}");
    let services = Services {
        order_options: OrderServiceOptions {
            delivery_timeout: Duration::from_secs(2),
            resend_after: Duration::from_secs(1),
            ..OrderServiceOptions::default()
        },
        ..Services::http_only()
    };
    let lab = Lab::start_with(config, services).await;
    lab.place("before", 1, 1).await;

    broker.kill();
    let started = Instant::now();
    let (status, answer) = lab.post_order(&order_body("during", 1, 1)).await;
    eprintln!(
        "answer after {:?} with Kafka down: {answer}",
        started.elapsed()
    );
    // Stored, so placed: not "503 not placed" for an order that goes on.
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["status"], "ORDER_CREATED", "{answer}");
    assert_eq!(answer["event"], "PENDING", "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .is_some_and(|d| d.contains("outbox")),
        "{answer}"
    );
    let tx = answer["transaction_id"].as_str().expect("transaction_id");
    let (status, stored) = lab.get_order(tx, "during").await;
    assert_eq!(status, 200, "{stored}");
    assert_eq!(stored["status"], "ORDER_CREATED", "{stored}");

    // Kafka comes back: the outbox relay sends the event, once, and clears the outbox.
    let _broker = PrivateServer::broker_on(port, &["--data-dir", &data_arg]);
    let events = common::read_topic(&lab.kafka, &lab.kafka.topics.inventory, 2).await;
    assert_eq!(events[1].0["transaction_id"], tx, "{:?}", events[1].0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lab
        .orders
        .pending_events(Duration::ZERO)
        .await
        .expect("outbox")
        .is_empty()
    {
        assert!(Instant::now() < deadline, "the outbox was never cleared");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    lab.stop().await;
    std::fs::remove_dir_all(&data).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_service_answers_503_when_dynamodb_is_gone() {
    let mut dynamodb = PrivateServer::moto();
    let mut config = LabConfig::fresh();
    config.dynamo = OrderStoreArgs {
        orders_table: config.dynamo.orders_table.clone(),
        ..OrderStoreArgs::new(format!("http://127.0.0.1:{}", dynamodb.port))
    };
    let lab = Lab::start_with(config, Services::http_only()).await;
    lab.place("before", 1, 1).await;
    dynamodb.kill();
    let (status, answer) = lab.post_order(&order_body("during", 1, 1)).await;
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("DynamoDB")),
        "{answer}"
    );
    let (status, _) = lab.get_order("any", "during").await;
    assert_eq!(status, 503);
    // No event went out for the refused order: only the first one is on `inventory`.
    let events = common::read_topic(&lab.kafka, &lab.kafka.topics.inventory, 1).await;
    assert_eq!(events[0].0["order"]["user_id"], "before");
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_stored_but_never_sent_is_sent_from_the_outbox() {
    let config = LabConfig::fresh();
    config.prepare().await;
    // A previous order service stored this order, then died before sending its event.
    let orders = config.order_store().await;
    let tx = uuid::Uuid::new_v4().to_string();
    let event = order_created(&tx, "crashed", 3, 2);
    orders.create(&event).await.unwrap();

    let services = Services {
        order_options: OrderServiceOptions {
            resend_after: Duration::from_millis(500),
            ..OrderServiceOptions::default()
        },
        ..Services::all(Gateway::Accept)
    };
    let lab = Lab::start_with(config, services).await;
    let stored = lab.wait_terminal(&tx, "crashed").await;
    assert_eq!(stored["status"], "ORDER_COMPLETE");
    assert_eq!(lab.history_of(&tx).await, vec![-2]);
    // Sent once: the outbox is empty now.
    assert!(
        lab.orders
            .pending_events(Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_relay_reads_an_index_of_unsent_orders_and_scans_older_tables() {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let config = LabConfig::fresh();
    config.prepare().await;
    let indexed = config.order_store().await;
    assert!(indexed.outbox_indexed().await.expect("describe"));

    // A table as an older `edm setup` made it: keys only, no index.
    let older_args = OrderStoreArgs {
        orders_table: format!("{}-older", config.dynamo.orders_table),
        ..config.dynamo.clone()
    };
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .behavior_version_latest()
            .endpoint_url(&config.dynamo.order_store)
            .region(aws_sdk_dynamodb::config::Region::new(
                config.dynamo.dynamodb_region.clone(),
            ))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .build(),
    );
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("key")
    };
    let string = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("attribute")
    };
    client
        .create_table()
        .table_name(&older_args.orders_table)
        .key_schema(key("transaction_id", KeyType::Hash))
        .key_schema(key("user_id", KeyType::Range))
        .attribute_definitions(string("transaction_id"))
        .attribute_definitions(string("user_id"))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("older table");
    let older = edm::store::orders::OrderStore::connect(&older_args)
        .await
        .expect("order store");
    assert!(!older.outbox_indexed().await.expect("describe"));

    // Both find what is unsent, and only that.
    for store in [&indexed, &older] {
        let (unsent, sent) = (
            uuid::Uuid::new_v4().to_string(),
            uuid::Uuid::new_v4().to_string(),
        );
        store
            .create(&order_created(&unsent, "u", 1, 1))
            .await
            .expect("stored");
        store
            .create(&order_created(&sent, "u", 1, 1))
            .await
            .expect("stored");
        store.mark_sent(&sent, "u").await.expect("sent");
        let pending = store.pending_events(Duration::ZERO).await.expect("outbox");
        let ids: Vec<&str> = pending.iter().map(|e| e.transaction_id.as_str()).collect();
        assert_eq!(ids, vec![unsent.as_str()], "table {}", store.table());
        // The outbox attributes stay out of the order as GET shows it.
        let shown = store.get(&unsent, "u").await.expect("get").expect("order");
        assert!(
            !shown.contains_key("outbox") && !shown.contains_key("pending_event"),
            "{shown:?}"
        );
    }
    older.delete_table().await.expect("drop older table");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_outbox_relays_side_by_side_send_twice_and_the_stock_moves_once() {
    use edm::services::outbox_relay::send_pending;

    let config = LabConfig::fresh();
    config.prepare().await;
    let orders = config.order_store().await;
    // Orders left in the outbox by order services that died before sending.
    let mut stuck = Vec::new();
    for n in 0..20 {
        let tx = uuid::Uuid::new_v4().to_string();
        orders
            .create(&order_created(&tx, &format!("stuck-{n}"), 1 + n % 3, 1))
            .await
            .expect("stored");
        stuck.push((tx, format!("stuck-{n}")));
    }
    // Two order services' relays find them at once, and both send every one.
    let kafka = Kafka::new(&config.kafka);
    let topics = kafka.topics.clone();
    let (first, second) = (
        kafka.producer().expect("producer"),
        kafka.producer().expect("producer"),
    );
    let (a, b) = tokio::join!(
        send_pending(&orders, &first, &topics, Duration::ZERO),
        send_pending(&orders, &second, &topics, Duration::ZERO),
    );
    let sent = a.expect("relay a") + b.expect("relay b");
    assert_eq!(sent, 40, "each relay sent each event");
    assert!(
        orders
            .pending_events(Duration::ZERO)
            .await
            .expect("outbox")
            .is_empty()
    );

    let lab = Lab::start_with(config, Services::all(Gateway::Accept)).await;
    for (tx, user) in &stuck {
        let stored = lab.wait_terminal(tx, user).await;
        assert_eq!(stored["status"], "ORDER_COMPLETE", "{stored:?}");
        assert_eq!(
            lab.history_of(tx).await,
            vec![-1],
            "stock of {tx} moved once"
        );
    }
    lab.stop().await;
}
