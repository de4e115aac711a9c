//! Faults against the real servers: hostile input, oversell under concurrency, MySQL going
//! away mid-run or under a stopping consumer. (The order service's outbox is in
//! `outbox.rs`, events that can never be processed in `dead_letters.rs`.)

mod common;

use std::time::{Duration, Instant};

use common::servers::PrivateMysql;
use common::{Lab, LabConfig, Placed, Services, check_invariants, order_body, stock_by_item};
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
    let sqlite = edm::config::InventoryStoreArgs::new(format!(
        "sqlite://{}",
        dir.join("inventory.db").display()
    ));
    let store = InventoryStore::connect_unchecked(&sqlite)
        .await
        .expect("sqlite");
    store.apply_schema().await.expect("schema");
    check_one_batch(&store).await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mysql_outage_mid_run_loses_and_doubles_nothing() {
    let mysql = PrivateMysql::start();
    let mut config = LabConfig::fresh();
    config.mysql.inventory_store = format!("{}/edm_{}", mysql.url(), config.id);
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
async fn sigterm_while_mysql_is_down_keeps_the_event_for_the_next_run() {
    use common::process::EdmProcess;
    use common::servers::{free_port, wait_port};

    let mysql = PrivateMysql::start();
    let mut config = LabConfig::fresh();
    config.mysql.inventory_store = format!("{}/edm_{}", mysql.url(), config.id);
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
    inventory
        .wait_for_output("partitions assigned", Duration::from_secs(30))
        .await;

    mysql.stop();
    let client = edm::tools::order_client::OrderClient::new(&format!("http://{listen}"));
    let tx = client
        .place_raw(&order_body("patient", 2, 3))
        .await
        .expect("POST");
    let tx = tx["transaction_id"].as_str().unwrap().to_string();
    // The consumer has the event and retries against the dead MySQL...
    inventory
        .wait_for_output("step failed, retrying", Duration::from_secs(30))
        .await;
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
