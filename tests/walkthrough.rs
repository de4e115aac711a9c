//! The course walkthrough without Docker, as README and examples.txt give it: `edm broker`
//! for Kafka, SQLite files for MySQL and DynamoDB, every service a process of its own —
//! an order completes, and one declined after the payment consumer is restarted with
//! `--pg-ok false` is rolled back.

mod common;

use std::time::Duration;

use common::LabConfig;
use common::process::{EdmProcess, edm_command};
use common::servers::{PrivateServer, free_port, wait_port};
use edm::config::{DynamoArgs, MysqlArgs};
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
    config.mysql = MysqlArgs::new(format!("sqlite://{}", dir.join("inventory.db").display()));
    config.dynamo = DynamoArgs::new(format!("sqlite://{}", dir.join("orders.db").display()));

    edm(&config, &["setup"]);
    edm(&config, &["create-topics"]);
    let order_port = free_port();
    let order_url = format!("http://127.0.0.1:{order_port}");
    let listen = format!("127.0.0.1:{order_port}");
    let mut services = vec![
        EdmProcess::spawn(&config, "order-service", &["--listen", &listen]),
        EdmProcess::spawn(&config, "inventory-consumer", &[]),
        EdmProcess::spawn(&config, "payment-consumer", &["--pg-ok", "true"]),
        EdmProcess::spawn(&config, "order-consumer", &[]),
    ];
    wait_port(order_port, true, Duration::from_secs(30));

    let order = place_and_wait(&config, &order_url);
    assert_eq!(order["status"], "ORDER_COMPLETE", "{order}");

    // Rollback: the payment consumer stopped with Ctrl-C, started again declining.
    let status = services[2].terminate();
    assert!(status.success(), "payment consumer exit: {status:?}");
    services[2] = EdmProcess::spawn(&config, "payment-consumer", &["--pg-ok", "false"]);
    let order = place_and_wait(&config, &order_url);
    assert_eq!(order["status"], "ORDER_CANCEL", "{order}");
    assert_eq!(order["reason"], "PAYMENT_DECLINED");
    let tx = order["transaction_id"].as_str().expect("tx");
    let trace = edm(&config, &["trace", tx]);
    assert_eq!(trace.matches(" ms  ").count(), 4, "four events:\n{trace}");

    // Stock: 100 − 5 for the completed order; the declined one's −5 was given back.
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

    // Ctrl-C in each terminal: every service stops cleanly.
    for mut service in services {
        let status = service.terminate();
        assert!(status.success(), "{} exit: {status:?}", service.name);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
