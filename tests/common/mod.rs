//! A lab per test: its own MySQL database, DynamoDB table, topic prefix and consumer
//! groups on the real servers started by `scripts/test.sh`, with every `edm` service
//! running as a task of the test.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::time::{Duration, Instant};

use edm::config::{InventoryStoreArgs, KafkaArgs, OrderStoreArgs};
use edm::event::SagaEvent;
use edm::kafka::{EventProducer, Kafka};
use edm::setup;
use edm::store::inventory::InventoryStore;
use edm::store::orders::OrderStore;
use rdkafka::Message;
use rdkafka::consumer::Consumer;
use serde_json::{Map, Value, json};

/// Reads a variable set by `scripts/test-servers.sh env`.
pub fn server_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: these tests talk to real Kafka, DynamoDB and MySQL servers. \
             Run them with `scripts/test.sh`, which starts the servers and sets it"
        )
    })
}

/// Settings for one isolated lab on the test servers.
#[derive(Clone, Debug)]
pub struct LabConfig {
    /// Unique id of this lab.
    pub id: String,
    /// Kafka settings with a unique topic prefix.
    pub kafka: KafkaArgs,
    /// MySQL settings with a database of its own.
    pub mysql: InventoryStoreArgs,
    /// DynamoDB settings with a table of its own.
    pub dynamo: OrderStoreArgs,
}

impl LabConfig {
    /// Fresh names for everything.
    pub fn fresh() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        let mut kafka = KafkaArgs::new(server_env("EDM_TEST_BOOTSTRAP_SERVERS"));
        kafka.topic_prefix = format!("t{id}-");
        kafka.set_property("session.timeout.ms", "6000");
        kafka.set_property("heartbeat.interval.ms", "1000");
        let mysql = InventoryStoreArgs::new(format!(
            "{}/edm_{id}",
            server_env("EDM_TEST_MYSQL_URL").trim_end_matches('/')
        ));
        let mut dynamo = OrderStoreArgs::new(server_env("EDM_TEST_DYNAMODB_ENDPOINT"));
        dynamo.orders_table = format!("order_{id}");
        Self {
            id,
            kafka,
            mysql,
            dynamo,
        }
    }

    /// Runs `edm setup` and `edm create-topics` for this lab.
    pub async fn prepare(&self) {
        self.prepare_with_partitions(1).await;
    }

    /// The lab's order table, opened directly (a test playing an order service).
    pub async fn order_store(&self) -> OrderStore {
        OrderStore::connect(&self.dynamo)
            .await
            .expect("order store")
    }

    /// Runs `edm setup` and `edm create-topics --partitions N` for this lab.
    pub async fn prepare_with_partitions(&self, partitions: i32) {
        setup::run(&self.mysql, &self.dynamo)
            .await
            .expect("edm setup");
        let kafka = Kafka::new(&self.kafka);
        let names = kafka.topics.every_topic();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        kafka
            .ensure_topics(&names, Some(partitions), 1)
            .await
            .expect("create topics");
    }
}

mod lab;
#[allow(unused_imports)] // as dead_code above: not every test binary starts a lab
pub use lab::{Lab, Services};

/// Logs of the services under test, shown for failed tests (`RUST_LOG` to choose).
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rdkafka=warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// The course's order body.
pub fn order_body(user: &str, item: i64, quantity: i64) -> Value {
    json!({
        "order": {"user_id": user, "name": "Hong Gil Dong", "addr": "29, Hansil-ro, Jung-gu",
                  "tel": "01012341234", "email": "hong@gil.com"},
        "inventory": {"id": item, "quantity": quantity}
    })
}

/// The first dead letter of `topic` (its `.dlq`): the copied event and its `edm.error`.
pub async fn first_dead_letter(kafka: &Kafka, topic: &str) -> (Value, String) {
    let dead = read_topic(kafka, &edm::kafka::Topics::dead_letter(topic), 1).await;
    let (copied, headers) = dead.into_iter().next().expect("a dead letter");
    let error = headers
        .into_iter()
        .find(|(k, _)| k == "edm.error")
        .map(|(_, v)| v)
        .unwrap_or_default();
    (copied, error)
}

/// Reads `count` messages of `topic` from the beginning (fresh group), as JSON values, with
/// their headers.
pub async fn read_topic(
    kafka: &Kafka,
    topic: &str,
    count: usize,
) -> Vec<(Value, Vec<(String, String)>)> {
    let group = format!("reader-{}", uuid::Uuid::new_v4().simple());
    let consumer = kafka.consumer(&group).expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut out = Vec::new();
    let deadline = Duration::from_secs(60);
    while out.len() < count {
        let message = tokio::time::timeout(deadline, consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} messages on {topic}", out.len()))
            .expect("receive");
        let value = message
            .payload()
            .map(|p| {
                serde_json::from_slice(p)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(p).into_owned()))
            })
            .unwrap_or(Value::Null);
        let headers = message
            .headers()
            .map(|headers| {
                use rdkafka::message::Headers;
                headers
                    .iter()
                    .map(|h| {
                        (
                            h.key.to_string(),
                            h.value
                                .map(|v| String::from_utf8_lossy(v).into_owned())
                                .unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push((value, headers));
    }
    out
}

/// Sends an event exactly as given (raw JSON) to `topic`, keyed by `key` if any.
pub async fn send_json(producer: &EventProducer, topic: &str, key: Option<&str>, value: &Value) {
    producer
        .send_raw(topic, key, &serde_json::to_vec(value).unwrap(), &[])
        .await
        .expect("send");
}

/// The ORDER_CREATED event of saga `tx`, as the order service sends it.
pub fn order_created(tx: &str, user: &str, item: i64, quantity: i64) -> SagaEvent {
    let mut event = order_body(user, item, quantity);
    event["transaction_id"] = json!(tx);
    event["status"] = json!("ORDER_CREATED");
    parse(&event)
}

/// Parses an event the way `edm` does.
pub fn parse(value: &Value) -> SagaEvent {
    SagaEvent::from_payload(Some(&serde_json::to_vec(value).unwrap())).expect("saga event")
}

/// One order placed by a test, to check the books afterwards.
#[derive(Debug, Clone)]
pub struct Placed {
    /// Its transaction id.
    pub tx: String,
    /// Its user.
    pub user: String,
    /// The item.
    pub item: i64,
    /// Units.
    pub quantity: i64,
}

/// Waits until every placed order is final; returns their stored records, in order.
pub async fn wait_all_terminal(
    orders: &OrderStore,
    placed: &[Placed],
    timeout: Duration,
) -> Vec<Map<String, Value>> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut finished = Vec::new();
        let mut open = 0;
        for order in placed {
            match orders.get(&order.tx, &order.user).await {
                Ok(Some(stored))
                    if matches!(
                        stored["status"].as_str(),
                        Some("ORDER_COMPLETE" | "ORDER_CANCEL")
                    ) =>
                {
                    finished.push(stored)
                }
                _ => open += 1,
            }
        }
        if open == 0 {
            return finished;
        }
        assert!(
            Instant::now() < deadline,
            "{open} of {} orders still not final after {timeout:?}",
            placed.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Checks the books: every order final; for each item, stock = initial − units of
/// completed orders; per saga exactly one −q row if it completed, −q and +q if its payment
/// was declined, and none if it was rejected. Returns (completed, cancelled).
pub async fn check_invariants(
    stock: &InventoryStore,
    orders: &OrderStore,
    placed: &[Placed],
    initial: &std::collections::HashMap<i64, i32>,
) -> (usize, usize) {
    let finished = wait_all_terminal(orders, placed, Duration::from_secs(120)).await;
    let mut sold: std::collections::HashMap<i64, i64> = Default::default();
    let (mut completed, mut cancelled) = (0, 0);
    for (order, stored) in placed.iter().zip(&finished) {
        let rows: Vec<i64> = stock
            .history_of(&order.tx)
            .await
            .expect("history")
            .into_iter()
            .map(|row| i64::from(row.quantity))
            .collect();
        let q = order.quantity;
        let reason = stored.get("reason").and_then(Value::as_str);
        match (stored["status"].as_str(), reason) {
            (Some("ORDER_COMPLETE"), _) => {
                completed += 1;
                *sold.entry(order.item).or_default() += q;
                assert_eq!(rows, vec![-q], "history of completed {}", order.tx);
            }
            (Some("ORDER_CANCEL"), Some("OUT_OF_STOCK" | "UNKNOWN_ITEM")) => {
                cancelled += 1;
                assert!(
                    rows.is_empty(),
                    "rejected {} has history {rows:?}",
                    order.tx
                );
            }
            (Some("ORDER_CANCEL"), reason) => {
                cancelled += 1;
                assert_eq!(
                    rows,
                    vec![-q, q],
                    "history of cancelled {} ({reason:?})",
                    order.tx
                );
            }
            other => panic!("order {} ended as {other:?}", order.tx),
        }
    }
    for (item, before) in initial {
        let now = stock
            .item(*item)
            .await
            .expect("MySQL")
            .expect("item")
            .quantity;
        let expected = i64::from(*before) - sold.get(item).copied().unwrap_or(0);
        assert_eq!(i64::from(now), expected, "stock of item {item}");
        assert!(now >= 0, "stock of item {item} below zero");
    }
    (completed, cancelled)
}

/// The stock of every item, by id.
pub async fn stock_by_item(stock: &InventoryStore) -> std::collections::HashMap<i64, i32> {
    stock
        .items()
        .await
        .expect("MySQL")
        .into_iter()
        .map(|item| (i64::from(item.id), item.quantity))
        .collect()
}
pub mod process;
pub mod servers;

/// Places orders number `range` through the order service at `url` (`POST /v1/order`),
/// all at once: user `user-N` buys 1–3 of item 1–5.
pub async fn place_orders(
    http: &reqwest::Client,
    url: &str,
    range: std::ops::Range<usize>,
) -> Vec<Placed> {
    let requests = range.map(|n| {
        let (user, item, quantity) = (format!("user-{n}"), 1 + (n % 5) as i64, 1 + (n % 3) as i64);
        let request = http
            .post(url)
            .json(&order_body(&user, item, quantity))
            .send();
        async move {
            let answer: Value = request.await.expect("POST").json().await.expect("JSON");
            let tx = answer["transaction_id"].as_str().expect("tx").to_string();
            Placed {
                tx,
                user,
                item,
                quantity,
            }
        }
    });
    futures_util::future::join_all(requests).await
}
