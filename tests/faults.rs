//! Faults against the real servers: hostile input, oversell under concurrency, servers
//! that go away mid-run, and an order service that stopped between store and send.

mod common;

use std::time::{Duration, Instant};

use common::servers::{PrivateMysql, PrivateServer};
use common::{
    Lab, LabConfig, Placed, Services, check_invariants, order_body, order_created, stock_by_item,
};
use edm::config::DynamoArgs;
use edm::kafka::{Kafka, Topics};
use edm::services::order_service::OrderServiceOptions;
use edm::services::payment_consumer::Gateway;
use edm::store::inventory::{InventoryStore, Reservation};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_strings_are_stored_and_returned_verbatim() {
    let lab = Lab::start(Services::all(Gateway::Accept)).await;
    let hostile = [
        "Robert'); DROP TABLE inventory;--",
        "\"quoted\" and 'single' and `back` \\ slash",
        "홍길동 🚀 Ünïcødé \u{0} NUL",
        &"x".repeat(10 * 1024),
        "1' OR '1'='1",
    ];
    for (n, text) in hostile.iter().enumerate() {
        // user_id is DynamoDB's range key (at most 1 KiB): hostile, but not 10 kB.
        let user: String = format!("{n}-{text}").chars().take(200).collect();
        let mut body = order_body(&user, 1, 1);
        for field in ["name", "addr", "tel", "email"] {
            body["order"][field] = json!(text);
        }
        let (status, answer) = lab.post_order(&body).await;
        assert_eq!(status, 200, "{answer}");
        let tx = answer["transaction_id"].as_str().unwrap().to_string();
        assert_eq!(answer["user_id"], user.as_str());
        let stored = lab.wait_terminal(&tx, &user).await;
        assert_eq!(stored["status"], "ORDER_COMPLETE");
        let (status, got) = lab.get_order(&tx, &user).await;
        assert_eq!(status, 200);
        for field in ["name", "addr", "tel", "email"] {
            assert_eq!(got[field], *text, "{field} changed");
        }
        assert_eq!(got["user_id"], user.as_str());
    }
    // A user_id over DynamoDB's 1 KiB key limit is refused up front.
    let (status, answer) = lab.post_order(&order_body(&"u".repeat(1025), 1, 1)).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        lab.stock.items().await.unwrap().len(),
        5,
        "the inventory table survived"
    );
    assert_eq!(lab.stock_of(1).await, 100 - hostile.len() as i32);
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_orders_for_the_last_units_never_oversell() {
    let lab = Lab::start(Services::all(Gateway::Accept)).await;
    let initial = stock_by_item(&lab.stock).await;
    assert_eq!(initial[&5], 100);

    // 30 concurrent orders of 7 units for 100 units in stock: 14 can be served.
    let mut requests = Vec::new();
    for n in 0..30 {
        let http = lab.http.clone();
        let url = format!("{}/v1/order", lab.order_url);
        let body = order_body(&format!("buyer-{n}"), 5, 7);
        requests.push(tokio::spawn(async move {
            let answer: Value = http.post(url).json(&body).send().await?.json().await?;
            Ok::<_, reqwest::Error>(answer)
        }));
    }
    let mut placed = Vec::new();
    for (n, request) in requests.into_iter().enumerate() {
        let answer = request.await.unwrap().expect("POST");
        placed.push(Placed {
            tx: answer["transaction_id"].as_str().expect("tx").to_string(),
            user: format!("buyer-{n}"),
            item: 5,
            quantity: 7,
        });
    }
    let (completed, cancelled) = check_invariants(&lab.stock, &lab.orders, &placed, &initial).await;
    assert_eq!((completed, cancelled), (14, 16));
    assert_eq!(lab.stock_of(5).await, 2);
    for order in &placed {
        let stored = lab
            .orders
            .get(&order.tx, &order.user)
            .await
            .unwrap()
            .unwrap();
        if stored["status"] == "ORDER_CANCEL" {
            assert_eq!(stored["reason"], "OUT_OF_STOCK");
        }
    }
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_store_serialises_concurrent_reservations() {
    let config = LabConfig::fresh();
    config.prepare().await;
    let mut mysql = config.mysql.clone();
    mysql.mysql_pool_size = 10;
    let store = InventoryStore::connect(&mysql).await.unwrap();

    // 40 sagas of 3 units race for 100 units; and one saga's event delivered 10 times at once.
    let mut tasks = Vec::new();
    for n in 0..40 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.reserve(&format!("race-{n}"), 1, 3).await
        }));
    }
    for _ in 0..10 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.reserve("same-saga", 2, 4).await
        }));
    }
    let mut reserved = 0;
    let mut first_applications = 0;
    for (n, task) in tasks.into_iter().enumerate() {
        let applied = task.await.unwrap().expect("reserve");
        if n < 40 && matches!(applied.outcome, Reservation::Reserved { .. }) {
            reserved += 1;
        }
        if n >= 40 {
            assert_eq!(
                applied.outcome,
                Reservation::Reserved {
                    total_price: 120_000
                }
            );
            first_applications += usize::from(!applied.duplicate);
        }
    }
    assert_eq!(reserved, 33);
    assert_eq!(store.item(1).await.unwrap().unwrap().quantity, 1);
    assert_eq!(
        first_applications, 1,
        "exactly one delivery applied the step"
    );
    assert_eq!(store.item(2).await.unwrap().unwrap().quantity, 96);
    assert_eq!(store.history_of("same-saga").await.unwrap().len(), 1);
}

/// One batch with a redelivered event inside it, a shortage, a release and a rejection:
/// each step applied once, in order, in one transaction.
async fn check_one_batch(store: &InventoryStore) {
    use edm::store::inventory::{Release, StepOutcome, StockStep};
    let reserve = |transaction_id, quantity| StockStep::Reserve {
        transaction_id,
        item_id: 3,
        quantity,
    };
    let release = |transaction_id| StockStep::Release {
        transaction_id,
        item_id: 3,
        quantity: 0,
    };
    let batch = [
        reserve("b-1", 30),
        reserve("b-1", 30), // the same event again, in the same batch
        reserve("b-2", 60),
        reserve("b-3", 20), // 100 − 30 − 60 leaves 10: not enough
        release("b-1"),
        reserve("b-4", 35), // possible again after the release
        release("b-3"),     // rejected before: nothing to give back
    ];
    let outcomes = store.apply(&batch).await.expect("batch");
    let reserved = |total_price, duplicate| {
        StepOutcome::Reserve(edm::store::inventory::Applied {
            outcome: Reservation::Reserved { total_price },
            duplicate,
        })
    };
    assert_eq!(
        outcomes,
        [
            reserved(750_000, false),
            reserved(750_000, true),
            reserved(1_500_000, false),
            StepOutcome::Reserve(edm::store::inventory::Applied {
                outcome: Reservation::Rejected {
                    reason: "OUT_OF_STOCK"
                },
                duplicate: false,
            }),
            StepOutcome::Release(edm::store::inventory::Applied {
                outcome: Release::Released { quantity: 30 },
                duplicate: false,
            }),
            reserved(875_000, false),
            StepOutcome::Release(edm::store::inventory::Applied {
                outcome: Release::NothingReserved,
                duplicate: false,
            }),
        ]
    );
    assert_eq!(
        store.item(3).await.expect("item").expect("item 3").quantity,
        5
    );
    // The whole batch again (redelivered after a crash): nothing changes.
    let again = store.apply(&batch).await.expect("batch again");
    assert!(again.iter().all(|o| match o {
        StepOutcome::Reserve(a) => a.duplicate,
        StepOutcome::Release(a) => a.duplicate,
    }));
    assert_eq!(
        store.item(3).await.expect("item").expect("item 3").quantity,
        5
    );
    assert_eq!(store.history_of("b-1").await.expect("history").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_steps_applies_each_once_in_order_on_mysql_and_sqlite() {
    let config = LabConfig::fresh();
    config.prepare().await;
    check_one_batch(&InventoryStore::connect(&config.mysql).await.expect("mysql")).await;

    let dir = std::env::temp_dir().join(format!("edm-test-{}", config.id));
    std::fs::create_dir_all(&dir).expect("dir");
    let sqlite =
        edm::config::MysqlArgs::new(format!("sqlite://{}", dir.join("inventory.db").display()));
    let store = InventoryStore::connect_unchecked(&sqlite)
        .await
        .expect("sqlite");
    store.apply_schema().await.expect("schema");
    check_one_batch(&store).await;
    std::fs::remove_dir_all(&dir).ok();
}

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
    config.dynamo = DynamoArgs {
        orders_table: config.dynamo.orders_table.clone(),
        ..DynamoArgs::new(format!("http://127.0.0.1:{}", dynamodb.port))
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
async fn a_mysql_outage_mid_run_loses_and_doubles_nothing() {
    let mysql = PrivateMysql::start();
    let mut config = LabConfig::fresh();
    config.mysql.mysql_url = format!("{}/edm_{}", mysql.url(), config.id);
    let lab = Lab::start_with(config, Services::all(Gateway::DeclineRate(0.4))).await;
    let initial = stock_by_item(&lab.stock).await;

    let mut placed = Vec::new();
    for n in 0..60 {
        if n == 20 {
            mysql.stop();
            let response = lab
                .http
                .get(format!("{}/v1/inventory", lab.inventory_url))
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status().as_u16(),
                503,
                "inventory service while MySQL is down"
            );
        }
        if n == 40 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            mysql.start_again();
        }
        let (user, item, quantity) = (format!("u{n}"), 1 + n % 5, 1 + n % 3);
        let tx = lab.place(&user, item, quantity).await;
        placed.push(Placed {
            tx,
            user,
            item,
            quantity,
        });
    }
    let (completed, cancelled) = check_invariants(&lab.stock, &lab.orders, &placed, &initial).await;
    assert_eq!(completed + cancelled, 60);
    assert!(
        completed > 0 && cancelled > 0,
        "{completed} completed, {cancelled} cancelled"
    );
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
    let older_args = DynamoArgs {
        orders_table: format!("{}-older", config.dynamo.orders_table),
        ..config.dynamo.clone()
    };
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .behavior_version_latest()
            .endpoint_url(&config.dynamo.dynamodb_endpoint)
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
    use edm::services::order_service::send_pending;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_mysql_is_down_keeps_the_event_for_the_next_run() {
    use common::process::EdmProcess;
    use common::servers::{free_port, wait_port};

    let mysql = PrivateMysql::start();
    let mut config = LabConfig::fresh();
    config.mysql.mysql_url = format!("{}/edm_{}", mysql.url(), config.id);
    config.prepare().await;
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _services = [
        EdmProcess::spawn(&config, "order-service", &["--listen", &listen]),
        EdmProcess::spawn(&config, "payment-consumer", &["--pg-ok", "true"]),
        EdmProcess::spawn(&config, "order-consumer", &[]),
    ];
    let mut inventory = EdmProcess::spawn(&config, "inventory-consumer", &[]);
    wait_port(port, true, Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !inventory.output().contains("partitions assigned") {
        assert!(Instant::now() < deadline, "{}", inventory.output());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    mysql.stop();
    let client = edm::tools::order_client::OrderClient::new(&format!("http://{listen}"));
    let tx = client
        .place_raw(&order_body("patient", 2, 3))
        .await
        .expect("POST");
    let tx = tx["transaction_id"].as_str().unwrap().to_string();
    // The consumer has the event and retries against the dead MySQL...
    let deadline = Instant::now() + Duration::from_secs(30);
    while !inventory.output().contains("step failed, retrying") {
        assert!(Instant::now() < deadline, "{}", inventory.output());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // ...when it is asked to stop: it exits cleanly without committing that event.
    let status = inventory.terminate();
    assert!(status.success(), "exit {status}:\n{}", inventory.output());

    mysql.start_again();
    inventory.restart();
    let orders = edm::store::orders::OrderStore::connect(&config.dynamo)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stored = orders.get(&tx, "patient").await.unwrap().expect("order");
        if stored["status"] == "ORDER_COMPLETE" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the event was lost at shutdown: {stored:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stock = InventoryStore::connect(&config.mysql).await.unwrap();
    let history: Vec<i32> = stock
        .history_of(&tx)
        .await
        .unwrap()
        .iter()
        .map(|r| r.quantity)
        .collect();
    assert_eq!(history, vec![-3]);
}

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
    let pool = sqlx::MySqlPool::connect(&config.mysql.mysql_url)
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
    let before = lab
        .stock
        .item(1)
        .await
        .expect("item")
        .expect("item 1")
        .quantity;

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
    assert!(
        lab.producer
            .send_all(&records)
            .await
            .iter()
            .all(Result::is_ok)
    );

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
    let after = lab
        .stock
        .item(1)
        .await
        .expect("item")
        .expect("item 1")
        .quantity;
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
