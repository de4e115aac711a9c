//! The course walkthrough as README and examples.txt give it, every step a process of its
//! own — `edm setup`, `edm create-topics`, the five services, an order that completes,
//! one declined after the payment consumer is restarted with `--pg-ok false` and rolled
//! back, `edm trace` — twice: on the compose stack's kind of servers (Apache Kafka,
//! MySQL, DynamoDB) and without Docker (`edm broker`, SQLite files).

mod common;

use std::time::Duration;

use common::LabConfig;
use common::process::{EdmProcess, edm_command};
use common::servers::{PrivateApacheKafka, PrivateServer, free_port, wait_port};
use edm::config::{InventoryStoreArgs, OrderStoreArgs};
use serde_json::Value;

/// Places an order of 5 × item 2 through the order service at `url`, waits until its saga
/// ends and returns the stored order.
fn place_and_wait(config: &LabConfig, url: &str) -> Value {
    let placed = edm(
        config,
        &[
            "order",
            "place",
            "--item",
            "2",
            "--quantity",
            "5",
            "--url",
            url,
            "--wait",
            "--json",
        ],
    );
    serde_json::from_str(placed.trim()).expect("JSON order")
}

/// Runs `edm <args>` to the end; returns its stdout (the test fails if it fails).
fn edm(config: &LabConfig, args: &[&str]) -> String {
    let output = edm_command(config).args(args).output().expect("run edm");
    assert!(
        output.status.success(),
        "edm {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_walkthrough_runs_with_edm_broker_and_sqlite_files() {
    let broker = PrivateServer::broker();
    let dir =
        std::env::temp_dir().join(format!("edm-walkthrough-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut config = LabConfig::fresh();
    // The course's names: a broker of this test's own.
    config.kafka.bootstrap_servers = format!("127.0.0.1:{}", broker.port);
    config.kafka.topic_prefix = String::new();
    config.mysql =
        InventoryStoreArgs::new(format!("sqlite://{}", dir.join("inventory.db").display()));
    config.dynamo = OrderStoreArgs::new(format!("sqlite://{}", dir.join("orders.db").display()));
    walkthrough(&config).await;

    // Then `edm lab` in the same shell (the exports still set): it must leave the
    // student's files as they are and create nothing outside its own directory.
    let before = books(&config).await;
    let files_before = listing(&dir);
    let scratch = dir.join("tmp");
    std::fs::create_dir_all(&scratch).expect("scratch");
    for saga in ["choreography", "both"] {
        let output = common::process::edm_command(&config)
            .args(["lab", "--saga", saga])
            .env("TMPDIR", &scratch)
            .output()
            .expect("edm lab");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "edm lab --saga {saga}: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout.contains("the lab leaves it alone") && !stdout.contains("stock in MySQL sqlite"),
            "{stdout}"
        );
    }
    assert_eq!(
        books(&config).await,
        before,
        "the walkthrough's books changed"
    );
    let mut files_after = listing(&dir);
    files_after.retain(|f| f != "tmp");
    assert_eq!(
        files_after, files_before,
        "files appeared beside the student's"
    );
    let left: Vec<_> = listing(&scratch);
    assert!(left.is_empty(), "the lab left {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The student's books: stock, history and orders, as the walkthrough left them.
async fn books(config: &LabConfig) -> (String, String, usize) {
    let stock = edm::store::inventory::InventoryStore::connect(&config.mysql)
        .await
        .expect("inventory store");
    let items = format!("{:?}", stock.items().await.expect("items"));
    let history = format!("{:?}", stock.history().await.expect("history"));
    let orders = edm::store::orders::OrderStore::connect(&config.dynamo)
        .await
        .expect("order store")
        .all_orders()
        .await
        .expect("orders")
        .len();
    (items, history, orders)
}

/// The names in `dir` (SQLite's -wal and -shm files aside: they come and go).
fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with("-wal") && !n.ends_with("-shm"))
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_walkthrough_runs_on_apache_kafka_mysql_and_dynamodb() {
    // The compose stack's servers: Apache Kafka of this test's own (the course's topic
    // names), and a database and table of its own on the MySQL and DynamoDB servers.
    let kafka = PrivateApacheKafka::start();
    let mut config = LabConfig::fresh();
    config.kafka.bootstrap_servers = format!("127.0.0.1:{}", kafka.port);
    config.kafka.topic_prefix = String::new();
    walkthrough(&config).await;
}

/// The walkthrough's steps on `config`'s servers.
async fn walkthrough(config: &LabConfig) {
    let config = config.clone();
    edm(&config, &["setup"]);
    edm(&config, &["create-topics"]);
    let order_port = free_port();
    let order_url = format!("http://127.0.0.1:{order_port}");
    let listen = format!("127.0.0.1:{order_port}");
    let inventory_port = free_port();
    let inventory_listen = format!("127.0.0.1:{inventory_port}");
    let mut services = vec![
        EdmProcess::spawn(&config, "order-service", &["--listen", &listen]),
        EdmProcess::spawn(
            &config,
            "inventory-service",
            &["--listen", &inventory_listen],
        ),
        EdmProcess::spawn(&config, "inventory-consumer", &[]),
        EdmProcess::spawn(&config, "payment-consumer", &["--pg-ok", "true"]),
        EdmProcess::spawn(&config, "order-consumer", &[]),
    ];
    wait_port(order_port, true, Duration::from_secs(30));

    let order = place_and_wait(&config, &order_url);
    assert_eq!(order["status"], "ORDER_COMPLETE", "{order}");

    // Rollback: the payment consumer stopped with Ctrl-C, started again declining.
    let status = services[3].terminate();
    assert!(status.success(), "payment consumer exit: {status:?}");
    services[3] = EdmProcess::spawn(&config, "payment-consumer", &["--pg-ok", "false"]);
    let order = place_and_wait(&config, &order_url);
    assert_eq!(order["status"], "ORDER_CANCEL", "{order}");
    assert_eq!(order["reason"], "PAYMENT_DECLINED");
    let tx = order["transaction_id"].as_str().expect("tx");
    let trace = edm(&config, &["trace", tx]);
    assert_eq!(trace.matches(" ms  ").count(), 4, "four events:\n{trace}");

    // Stock: 100 − 5 for the completed order; the declined one's −5 was given back. As
    // the inventory service shows it (examples.txt's curl), and in the store.
    let shown: Value = reqwest::get(format!("http://127.0.0.1:{inventory_port}/v1/inventory"))
        .await
        .expect("GET /v1/inventory")
        .json()
        .await
        .expect("JSON");
    let shown_cap = shown
        .as_array()
        .and_then(|items| items.iter().find(|i| i["id"] == 2))
        .map(|i| i["quantity"].clone());
    assert_eq!(shown_cap, Some(Value::from(95)), "{shown}");
    // examples.txt tells the student the same figures, after step 5 and after step 6.
    let examples = include_str!("../examples.txt");
    for said in ["(stock of item 2 is now 95,", "(stock back to 95;"] {
        assert!(examples.contains(said), "examples.txt says {said:?}");
    }
    let stock = edm::store::inventory::InventoryStore::connect(&config.mysql)
        .await
        .expect("inventory store");
    let cap = stock.item(2).await.expect("read").expect("item 2");
    assert_eq!(cap.quantity, 95);
    let history: Vec<i32> = stock
        .history_of(tx)
        .await
        .expect("history")
        .into_iter()
        .map(|row| row.quantity)
        .collect();
    assert_eq!(history, [-5, 5]);

    // The order service's first line says which saga the orders start.
    let order_service = services[0].output();
    assert!(
        order_service.contains("choreography: each order sends ORDER_CREATED"),
        "{order_service}"
    );
    // Ctrl-C in each terminal: every service stops cleanly.
    for mut service in services {
        let status = service.terminate();
        assert!(status.success(), "{} exit: {status:?}", service.name);
    }
}
