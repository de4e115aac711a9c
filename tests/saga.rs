//! The saga end to end against the real servers: success, rollback, business failures,
//! redelivered events, poison messages and interoperability with the original services.

mod common;

use common::{Lab, Services, order_body, parse, read_topic, send_json};
use edm::services::payment_consumer::Gateway;
use futures_util::future::join_all;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn successful_payment_completes_the_order() {
    let lab = Lab::start(Services::all(Gateway::Accept)).await;
    let before = lab.stock_of(2).await;

    let tx = lab.place("user", 2, 5).await;
    let order = lab.wait_terminal(&tx, "user").await;

    assert_eq!(order["status"], "ORDER_COMPLETE");
    assert_eq!(lab.stock_of(2).await, before - 5);
    assert_eq!(lab.history_of(&tx).await, vec![-5]);

    // GET /v1/order returns the stored attributes, in the course's item shape.
    let (status, stored) = lab.get_order(&tx, "user").await;
    assert_eq!(status, 200);
    assert_eq!(stored["status"], "ORDER_COMPLETE");
    assert_eq!(stored["transaction_id"], tx.as_str());
    assert_eq!(stored["user_id"], "user");
    assert_eq!(stored["name"], "Hong Gil Dong");
    assert_eq!(stored["email"], "hong@gil.com");
    let updated = stored["updated"].as_str().expect("updated");
    assert!(
        chrono::DateTime::parse_from_str(updated, "%Y-%m-%dT%H:%M:%S%.6f%z").is_ok()
            && updated.ends_with("+0000"),
        "updated = {updated}"
    );

    // The inventory service shows the same stock and history.
    let items: Value = lab
        .http
        .get(format!("{}/v1/inventory", lab.inventory_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cap = items
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["id"] == 2)
        .expect("item 2");
    assert_eq!(cap["name"], "cap");
    assert_eq!(cap["price"], 30000);
    assert_eq!(cap["quantity"], before - 5);
    let history: Value = lab
        .http
        .get(format!("{}/v1/inventory_history", lab.inventory_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        history,
        json!([{"id": 1, "transaction_id": tx, "inventory_id": 2, "quantity": -5}])
    );
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_payment_is_compensated_in_reverse_order() {
    let lab = Lab::start(Services::all(Gateway::Decline)).await;
    let before = lab.stock_of(2).await;

    let tx = lab.place("user", 2, 5).await;
    let order = lab.wait_terminal(&tx, "user").await;

    assert_eq!(order["status"], "ORDER_CANCEL");
    assert_eq!(order["reason"], "PAYMENT_DECLINED");
    assert_eq!(lab.stock_of(2).await, before);
    assert_eq!(lab.history_of(&tx).await, vec![-5, 5]);

    // The compensation ran in reverse: payment → inventory → order.
    let to_inventory = read_topic(&lab.kafka, &lab.kafka.topics.inventory, 2).await;
    assert_eq!(to_inventory[0].0["status"], "ORDER_CREATED");
    assert_eq!(to_inventory[1].0["status"], "ORDER_CANCEL");
    assert_eq!(to_inventory[1].0["reason"], "PAYMENT_DECLINED");
    let to_order = read_topic(&lab.kafka, &lab.kafka.topics.order, 1).await;
    assert_eq!(to_order[0].0["status"], "ORDER_CANCEL");
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_stock_and_unknown_items_cancel_without_touching_stock() {
    let lab = Lab::start(Services::all(Gateway::Accept)).await;
    let before = lab.stock_of(4).await;

    let too_many = lab.place("greedy", 4, i64::from(before) + 1).await;
    let unknown = lab.place("lost", 99, 1).await;

    let order = lab.wait_terminal(&too_many, "greedy").await;
    assert_eq!(order["status"], "ORDER_CANCEL");
    assert_eq!(order["reason"], "OUT_OF_STOCK");
    let order = lab.wait_terminal(&unknown, "lost").await;
    assert_eq!(order["status"], "ORDER_CANCEL");
    assert_eq!(order["reason"], "UNKNOWN_ITEM");

    assert_eq!(lab.stock_of(4).await, before);
    assert!(lab.history_of(&too_many).await.is_empty());
    assert!(lab.history_of(&unknown).await.is_empty());

    // Exactly the last units can still be bought.
    let all = lab.place("exact", 4, i64::from(before)).await;
    assert_eq!(
        lab.wait_terminal(&all, "exact").await["status"],
        "ORDER_COMPLETE"
    );
    assert_eq!(lab.stock_of(4).await, 0);
    lab.stop().await;
}

/// The event exactly as the course's `order_service.py` writes it (no key, no extra
/// fields of edm's), plus unknown fields that another service might add.
fn python_event(tx: &str) -> Value {
    json!({
        "order": {"user_id": "py-user", "name": "Hong Gil Dong", "addr": "29, Hansil-ro",
                  "tel": "01012341234", "email": "hong@gil.com", "coupon": "WELCOME10"},
        "inventory": {"id": 2, "quantity": 5},
        "transaction_id": tx,
        "status": "ORDER_CREATED",
        "trace": {"origin": "order_service.py", "hops": 1}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_from_the_python_order_service_runs_through_edm_with_unknown_fields_kept() {
    let lab = Lab::start(Services::all(Gateway::Accept)).await;
    let before = lab.stock_of(2).await;
    let tx = uuid::Uuid::new_v4().to_string();
    let event = python_event(&tx);

    // The Python service stores the order, then sends the event without a key.
    lab.orders
        .create(&parse(&event))
        .await
        .expect("store order");
    send_json(&lab.producer, &lab.kafka.topics.inventory, None, &event).await;

    let order = lab.wait_terminal(&tx, "py-user").await;
    assert_eq!(order["status"], "ORDER_COMPLETE");
    assert_eq!(lab.stock_of(2).await, before - 5);
    assert_eq!(lab.history_of(&tx).await, vec![-5]);

    let to_payment = read_topic(&lab.kafka, &lab.kafka.topics.payment, 1).await;
    let to_order = read_topic(&lab.kafka, &lab.kafka.topics.order, 1).await;
    let reserved = &to_payment[0].0;
    let complete = &to_order[0].0;
    assert_eq!(reserved["status"], "INVENTORY_RESERVED");
    assert_eq!(reserved["payment"]["total_price"], 150000);
    assert_eq!(complete["status"], "PAYMENT_COMPLETE");
    for hop in [reserved, complete] {
        assert_eq!(
            hop["trace"], event["trace"],
            "unknown top-level field lost: {hop}"
        );
        assert_eq!(
            hop["order"], event["order"],
            "unknown order field lost: {hop}"
        );
        assert_eq!(hop["inventory"], event["inventory"]);
        assert_eq!(hop["transaction_id"], tx.as_str());
    }
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_events_change_stock_and_history_once() {
    let lab = Lab::start(Services::all(Gateway::Decline)).await;
    let before = lab.stock_of(3).await;
    let tx = uuid::Uuid::new_v4().to_string();
    let mut event = python_event(&tx);
    event["inventory"]["id"] = json!(3);
    lab.orders
        .create(&parse(&event))
        .await
        .expect("store order");

    // The same ORDER_CREATED delivered twice.
    for _ in 0..2 {
        send_json(
            &lab.producer,
            &lab.kafka.topics.inventory,
            Some(&tx),
            &event,
        )
        .await;
    }
    // Each copy runs the whole (declined) saga again: wait for both to reach `order`.
    let to_order = read_topic(&lab.kafka, &lab.kafka.topics.order, 2).await;
    assert!(to_order.iter().all(|(e, _)| e["status"] == "ORDER_CANCEL"));
    assert_eq!(
        lab.wait_terminal(&tx, "py-user").await["status"],
        "ORDER_CANCEL"
    );
    assert_eq!(lab.stock_of(3).await, before);
    assert_eq!(lab.history_of(&tx).await, vec![-5, 5]);

    // And the same ORDER_CANCEL once more, long after.
    let mut cancel = event.clone();
    cancel["status"] = json!("ORDER_CANCEL");
    send_json(
        &lab.producer,
        &lab.kafka.topics.inventory,
        Some(&tx),
        &cancel,
    )
    .await;
    read_topic(&lab.kafka, &lab.kafka.topics.order, 3).await;
    assert_eq!(lab.stock_of(3).await, before);
    assert_eq!(lab.history_of(&tx).await, vec![-5, 5]);
    assert_eq!(
        lab.wait_terminal(&tx, "py-user").await["status"],
        "ORDER_CANCEL"
    );
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_go_to_dead_letter_topics_and_the_saga_goes_on() {
    let lab = Lab::start(Services::all(Gateway::Accept)).await;
    let topics = lab.kafka.topics.clone();
    let poison: [(&str, Value); 3] = [
        (&topics.inventory, Value::String("{not json".into())),
        (&topics.payment, json!({"status": "INVENTORY_RESERVED"})),
        (&topics.order, {
            let mut e = python_event("0b7e6a1c-0000-0000-0000-000000000000");
            e["status"] = json!("ORDER_SHIPPED");
            e
        }),
    ];
    for (topic, payload) in &poison {
        match payload {
            Value::String(raw) => lab
                .producer
                .send_raw(topic, Some("bad"), raw.as_bytes(), &[])
                .await
                .expect("send"),
            other => send_json(&lab.producer, topic, Some("bad"), other).await,
        }
    }

    // A good order placed after the poison still goes through every consumer.
    let tx = lab.place("user", 1, 1).await;
    assert_eq!(
        lab.wait_terminal(&tx, "user").await["status"],
        "ORDER_COMPLETE"
    );

    for (topic, payload) in &poison {
        let dead = read_topic(&lab.kafka, &edm::kafka::Topics::dead_letter(topic), 1).await;
        let (copied, headers) = &dead[0];
        assert_eq!(
            copied, payload,
            "dead letter of {topic} is not the original bytes"
        );
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("dead letter of {topic} lacks header {name}"))
        };
        assert_eq!(header("edm.source.topic"), *topic);
        assert_eq!(header("edm.source.offset"), "0");
        assert!(!header("edm.error").is_empty());
    }
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_errors_are_json_with_the_right_status() {
    let lab = Lab::start(Services::http_only()).await;
    let post_raw = |body: String| {
        lab.http
            .post(format!("{}/v1/order", lab.order_url))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let mut missing_email = order_body("user", 2, 1);
    missing_email["order"]
        .as_object_mut()
        .unwrap()
        .remove("email");
    let cases: Vec<(String, u16)> = vec![
        ("{not json".into(), 400),
        (json!({"order": {}}).to_string(), 400),
        (missing_email.to_string(), 400),
        (order_body("user", 2, 0).to_string(), 400),
        (order_body("user", 2, -1).to_string(), 400),
        (order_body("user", 0, 1).to_string(), 400),
        (order_body("", 2, 1).to_string(), 400),
        (json!({"order": order_body("u", 1, 1)["order"], "inventory": {"id": "two", "quantity": 1}}).to_string(), 400),
        ("x".repeat(200 * 1024), 413),
    ];
    for (body, expected) in cases {
        let shown: String = body.chars().take(80).collect();
        let response = post_raw(body).await.expect("POST");
        assert_eq!(response.status().as_u16(), expected, "body {shown}");
        let answer: Value = response.json().await.expect("JSON error body");
        assert!(
            answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{answer}"
        );
    }

    let (status, answer) = lab.get_order("no-such-transaction", "user").await;
    assert_eq!(status, 404);
    assert!(answer["error"].as_str().is_some());
    // A key the order table cannot hold (over DynamoDB's 1 KiB range-key limit) is the
    // caller's fault: 400, not "unavailable".
    let (status, answer) = lab.get_order("any", &"u".repeat(2048)).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("user_id")),
        "{answer}"
    );
    let response = lab
        .http
        .get(format!("{}/v1/order?user_id=user", lab.order_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let response = lab
        .http
        .get(format!("{}/v2/nothing", lab.order_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inventory_service_answers_many_requests_in_a_row() {
    let lab = Lab::start(Services::http_only()).await;
    for round in 0..300 {
        let path = if round % 2 == 0 {
            "inventory"
        } else {
            "inventory_history"
        };
        let response = lab
            .http
            .get(format!("{}/v1/{path}", lab.inventory_url))
            .send()
            .await
            .unwrap_or_else(|e| panic!("request {round} failed: {e}"));
        assert_eq!(response.status().as_u16(), 200, "request {round}");
        let rows: Value = response.json().await.unwrap();
        if path == "inventory" {
            assert_eq!(rows.as_array().map(Vec::len), Some(5), "request {round}");
        }
    }
    // And concurrently, more requests than the pool has connections.
    let requests = (0..50).map(|_| {
        lab.http
            .get(format!("{}/v1/inventory", lab.inventory_url))
            .send()
    });
    for response in join_all(requests).await {
        assert_eq!(response.expect("request").status().as_u16(), 200);
    }
    lab.stop().await;
}
