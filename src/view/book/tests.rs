use serde_json::json;

use super::*;

fn book() -> Book {
    Book::new(Topics::with_prefix(""), 10_000)
}

fn take(book: &mut Book, topic: &str, offset: i64, at: i64, body: serde_json::Value) {
    let payload = body.to_string();
    book.take(topic, (0, offset), Some(at), None, Some(payload.as_bytes()));
}

#[test]
fn a_declined_payment_is_drawn_with_its_compensation_and_cancelled() {
    let mut book = book();
    let order = json!({"user_id": "<script>x</script>"});
    take(
        &mut book,
        "inventory",
        0,
        1_000,
        json!({"transaction_id": "t1", "status": "ORDER_CREATED", "order": order}),
    );
    take(
        &mut book,
        "payment",
        0,
        1_010,
        json!({"transaction_id": "t1", "status": "INVENTORY_RESERVED"}),
    );
    let (list, _) = book.list("", 10, 1_020);
    assert_eq!(list[0].state, State::InFlight);
    take(
        &mut book,
        "inventory",
        1,
        1_020,
        json!({"transaction_id": "t1", "status": "ORDER_CANCEL", "reason": "PAYMENT_DECLINED"}),
    );
    take(
        &mut book,
        "order",
        0,
        1_030,
        json!({"transaction_id": "t1", "status": "ORDER_CANCEL", "reason": "PAYMENT_DECLINED"}),
    );

    let detail = book.detail("t1", 1_040).expect("saga");
    assert_eq!(detail.summary.state, State::Cancelled);
    assert_eq!(detail.summary.reason.as_deref(), Some("PAYMENT_DECLINED"));
    assert_eq!(
        detail.summary.user_id.as_deref(),
        Some("<script>x</script>")
    );
    assert_eq!(detail.summary.latency_ms, Some(30));
    let names: Vec<(&str, &str, &str, bool)> = detail
        .arrows
        .iter()
        .map(|a| (a.name.as_str(), a.from, a.to, a.compensation))
        .collect();
    assert_eq!(
        names,
        [
            (
                "ORDER_CREATED",
                "order-service",
                "inventory-consumer",
                false
            ),
            (
                "INVENTORY_RESERVED",
                "inventory-consumer",
                "payment-consumer",
                false
            ),
            (
                "ORDER_CANCEL",
                "payment-consumer",
                "inventory-consumer",
                true
            ),
            (
                "ORDER_CANCEL",
                "inventory-consumer",
                "order-consumer",
                false
            ),
        ]
    );
    assert!(detail.to_come.is_empty());
}

#[test]
fn an_orchestrated_saga_completes_and_commands_differ_from_replies() {
    let mut book = book();
    take(
        &mut book,
        "inventory.commands",
        0,
        1,
        json!({"transaction_id": "t2", "command": "RESERVE_STOCK", "order": {"user_id": "u"}}),
    );
    take(
        &mut book,
        "order-saga.replies",
        0,
        2,
        json!({"transaction_id": "t2", "reply": "STOCK_RESERVED"}),
    );
    let detail = book.detail("t2", 3).expect("saga");
    assert_eq!(detail.summary.style, "orchestration");
    assert_eq!(detail.arrows[0].kind, "command");
    assert_eq!(detail.arrows[1].kind, "reply");
    assert_eq!(detail.arrows[1].to, "orchestrator");
    assert_eq!(
        detail.to_come,
        ["orchestrator sends TAKE_PAYMENT to the payment consumer"]
    );
    take(
        &mut book,
        "payment.commands",
        0,
        3,
        json!({"transaction_id": "t2", "command": "TAKE_PAYMENT"}),
    );
    take(
        &mut book,
        "order-saga.replies",
        1,
        4,
        json!({"transaction_id": "t2", "reply": "PAYMENT_APPROVED"}),
    );
    assert_eq!(
        book.detail("t2", 5).expect("saga").summary.state,
        State::Complete
    );
}

#[test]
fn stuck_sagas_come_first_and_are_reported_once_when_they_become_stuck() {
    let mut book = book();
    take(
        &mut book,
        "inventory",
        0,
        1_000,
        json!({"transaction_id": "old", "status": "ORDER_CREATED"}),
    );
    take(
        &mut book,
        "inventory",
        1,
        5_000,
        json!({"transaction_id": "done", "status": "ORDER_CREATED"}),
    );
    take(
        &mut book,
        "order",
        0,
        5_100,
        json!({"transaction_id": "done", "status": "PAYMENT_COMPLETE"}),
    );
    assert_eq!(book.take_changed(5_200, 0).len(), 2);
    assert!(book.take_changed(10_000, 5_200).is_empty());
    let stuck = book.take_changed(11_500, 10_000);
    assert_eq!(stuck.len(), 1);
    assert_eq!(
        (stuck[0].transaction_id.as_str(), stuck[0].state),
        ("old", State::Stuck)
    );
    assert!(book.take_changed(12_000, 11_500).is_empty());
    let (list, matched) = book.list("", 10, 12_000);
    assert_eq!(matched, 2);
    assert_eq!(list[0].transaction_id, "old");
    assert_eq!(book.list("don", 10, 12_000).0.len(), 1);
}

#[test]
fn a_message_naming_no_transaction_is_left_out() {
    let mut book = book();
    book.take("inventory", (0, 0), Some(1), None, Some(b"not json"));
    take(
        &mut book,
        "inventory",
        1,
        1,
        json!({"status": "ORDER_CREATED"}),
    );
    assert!(book.is_empty());
    // A dead letter keyed by its transaction counts for that saga.
    book.take(
        "inventory.dlq",
        (0, 0),
        Some(2),
        Some(b"t3"),
        Some(b"garbage"),
    );
    let detail = book.detail("t3", 3).expect("saga");
    assert_eq!(
        (detail.arrows[0].kind, detail.arrows[0].to),
        ("dead letter", "dead letter")
    );
}

#[test]
fn a_payment_approved_after_a_timeout_leaves_the_saga_cancelled() {
    // The payment consumer was away: TAKE_PAYMENT timed out twice, the orchestrator
    // compensated; back, the consumer approved the late command, then refunded it.
    let mut book = book();
    let steps = [
        (
            "inventory.commands",
            json!({"command": "RESERVE_STOCK", "order": {"user_id": "u"}}),
        ),
        ("order-saga.replies", json!({"reply": "STOCK_RESERVED"})),
        ("payment.commands", json!({"command": "TAKE_PAYMENT"})),
        ("payment.commands", json!({"command": "TAKE_PAYMENT"})),
        ("payment.commands", json!({"command": "CANCEL_PAYMENT"})),
        ("inventory.commands", json!({"command": "RELEASE_STOCK"})),
        ("order-saga.replies", json!({"reply": "STOCK_RELEASED"})),
        ("order-saga.replies", json!({"reply": "PAYMENT_APPROVED"})),
        ("order-saga.replies", json!({"reply": "PAYMENT_CANCELLED"})),
    ];
    for (offset, (topic, mut body)) in steps.into_iter().enumerate() {
        body["transaction_id"] = json!("t9");
        take(&mut book, topic, offset as i64, offset as i64, body);
    }
    let summary = book.detail("t9", 10).expect("saga").summary;
    assert_eq!(summary.state, State::Cancelled);
    assert_eq!(summary.reason.as_deref(), Some("TIMEOUT"));
}
