//! A running lab for one test: the five services (started by the lab's own code) over the
//! test's stores, with helpers to place orders and read them back.

use std::time::{Duration, Instant};

use edm::kafka::{EventProducer, Kafka, Record};
use edm::store::inventory::InventoryStore;
use edm::store::orders::OrderStore;
use serde_json::{Map, Value};

use super::{LabConfig, init_logs, order_body};

/// Which services a lab runs (the order and inventory services always run): the lab's
/// own selection, so tests start the services with the lab's code.
pub use edm::lab::Selection as Services;

/// A running lab.
pub struct Lab {
    /// Its settings.
    pub config: LabConfig,
    /// `http://127.0.0.1:PORT` of the order service.
    pub order_url: String,
    /// `http://127.0.0.1:PORT` of the inventory service.
    pub inventory_url: String,
    /// The stock, read directly.
    pub stock: InventoryStore,
    /// The orders, read directly.
    pub orders: OrderStore,
    /// The topics.
    pub kafka: Kafka,
    /// A producer for injecting events.
    pub producer: EventProducer,
    /// HTTP client.
    pub http: reqwest::Client,
    services: edm::lab::Services,
}

impl Lab {
    /// Prepares a fresh lab and starts the given services.
    pub async fn start(services: Services) -> Lab {
        Self::start_with(LabConfig::fresh(), services).await
    }

    /// Prepares the lab `config` and starts the given services.
    pub async fn start_with(config: LabConfig, services: Services) -> Lab {
        init_logs();
        config.prepare().await;
        let stock = InventoryStore::connect(&config.mysql).await.expect("MySQL");
        let orders = OrderStore::connect(&config.dynamo)
            .await
            .expect("order store");
        let kafka = Kafka::connect(&config.kafka).await.expect("Kafka");
        let producer = kafka.producer().expect("producer");
        let services = edm::lab::Services::start(&kafka, &stock, &orders, services, None)
            .await
            .expect("services");
        let (order_url, inventory_url) =
            (services.order_url.clone(), services.inventory_url.clone());
        let lab = Lab {
            config,
            order_url,
            inventory_url,
            stock,
            orders,
            kafka,
            producer,
            http: reqwest::Client::new(),
            services,
        };
        lab.wait_until_http_ready().await;
        lab
    }

    async fn wait_until_http_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for url in [&self.order_url, &self.inventory_url] {
            loop {
                if self
                    .http
                    .get(format!("{url}/health-probe"))
                    .send()
                    .await
                    .is_ok()
                {
                    break;
                }
                assert!(Instant::now() < deadline, "{url} did not start");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// POSTs `body` to `/v1/order`; returns status and JSON answer.
    pub async fn post_order(&self, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/v1/order", self.order_url))
            .json(body)
            .send()
            .await
            .expect("POST /v1/order");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Places an order that must be accepted; returns its transaction id.
    pub async fn place(&self, user: &str, item: i64, quantity: i64) -> String {
        let (status, answer) = self.post_order(&order_body(user, item, quantity)).await;
        assert_eq!(status, 200, "POST /v1/order answered {answer}");
        assert_eq!(answer["status"], "ORDER_CREATED");
        assert_eq!(answer["user_id"], user);
        answer["transaction_id"]
            .as_str()
            .expect("transaction_id")
            .to_string()
    }

    /// GET `/v1/order`; returns status and JSON answer.
    pub async fn get_order(&self, tx: &str, user: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}/v1/order", self.order_url))
            .query(&[("transaction_id", tx), ("user_id", user)])
            .send()
            .await
            .expect("GET /v1/order");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Waits until the order has a final status; returns the stored order.
    pub async fn wait_terminal(&self, tx: &str, user: &str) -> Map<String, Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let order = self.orders.get(tx, user).await.expect("DynamoDB get");
            if let Some(order) = order.filter(|o| {
                matches!(
                    o["status"].as_str(),
                    Some("ORDER_COMPLETE" | "ORDER_CANCEL")
                )
            }) {
                return order;
            }
            assert!(Instant::now() < deadline, "order {tx} never finished");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Units of `item` in stock.
    pub async fn stock_of(&self, item: i64) -> i32 {
        self.stock
            .item(item)
            .await
            .expect("MySQL")
            .expect("item")
            .quantity
    }

    /// Sends `records` pipelined (one batch for a consumer that is waiting) and asserts
    /// that the broker acknowledged every one.
    pub async fn send_all(&self, records: &[Record]) {
        let results = self.producer.send_all(records).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
    }

    /// History quantities of one saga, oldest first.
    pub async fn history_of(&self, tx: &str) -> Vec<i32> {
        self.stock
            .history_of(tx)
            .await
            .expect("MySQL")
            .into_iter()
            .map(|row| row.quantity)
            .collect()
    }

    /// Stops every service and checks that each one exited cleanly.
    pub async fn stop(self) {
        let failures = self.services.stop().await;
        assert!(failures.is_empty(), "services failed: {failures:?}");
        // Passed: drop this lab's database (a failed test leaves it for inspection).
        let drop = format!("DROP DATABASE IF EXISTS `edm_{}`", self.config.id);
        sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
            .execute(self.stock.pool())
            .await
            .expect("drop test database");
    }
}
