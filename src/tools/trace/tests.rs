//! Who sent what in a saga, and an orchestrated saga's state changes as timeline rows.

use super::*;

#[test]
fn senders_follow_the_saga() {
    let topics = Topics::with_prefix("");
    assert_eq!(
        sender_of(&topics, "inventory", "ORDER_CREATED", None),
        "order-service"
    );
    assert_eq!(
        sender_of(&topics, "payment", "INVENTORY_RESERVED", None),
        "inventory-consumer"
    );
    assert_eq!(
        sender_of(&topics, "order", "PAYMENT_COMPLETE", None),
        "payment-consumer"
    );
    assert_eq!(
        sender_of(
            &topics,
            "inventory",
            "ORDER_CANCEL",
            Some("PAYMENT_DECLINED")
        ),
        "payment-consumer"
    );
    assert_eq!(
        sender_of(&topics, "order", "ORDER_CANCEL", Some("OUT_OF_STOCK")),
        "inventory-consumer"
    );
    assert_eq!(
        sender_of(&topics, "inventory.dlq", "?", None),
        "dead letter"
    );
    assert_eq!(
        sender_of(&topics, "inventory.commands", "RESERVE_STOCK", None),
        "order-service"
    );
    assert_eq!(
        sender_of(&topics, "payment.commands", "CANCEL_PAYMENT", None),
        "orchestrator"
    );
    assert_eq!(
        sender_of(&topics, "order-saga.replies", "STOCK_RELEASED", None),
        "inventory-consumer"
    );
    assert_eq!(
        sender_of(&topics, "order-saga.replies", "PAYMENT_DECLINED", None),
        "payment-consumer"
    );
}

#[test]
fn a_sagas_first_state_is_the_order_services_and_the_rest_the_orchestrators() {
    let saga = Saga {
        transaction_id: "t-1".into(),
        user_id: "u".into(),
        state: crate::orchestration::saga::SagaState::Complete,
        commands: Vec::new(),
        timeouts: 0,
        reason: None,
        updated: String::new(),
        history: vec![
            "2026-11-30T12:00:00.001000+0000 RESERVING_STOCK ORDER_CREATED".into(),
            "2026-11-30T12:00:00.002000+0000 TAKING_PAYMENT STOCK_RESERVED".into(),
            "2026-11-30T12:00:00.003000+0000 COMPLETE PAYMENT_APPROVED".into(),
        ],
    };
    let rows: Vec<(String, Option<String>, &str)> = saga_states(&saga)
        .into_iter()
        .map(|row| (row.status, row.reason, row.sent_by))
        .collect();
    assert_eq!(
        rows,
        [
            ("saga RESERVING_STOCK".into(), None, "order-service"),
            (
                "saga TAKING_PAYMENT".into(),
                Some("STOCK_RESERVED".into()),
                "orchestrator"
            ),
            (
                "saga COMPLETE".into(),
                Some("PAYMENT_APPROVED".into()),
                "orchestrator"
            ),
        ]
    );
}

fn row(topic: &str, status: &str, sent_by: &'static str, at: i64, offset: i64) -> TracedEvent {
    TracedEvent {
        topic: topic.into(),
        position: (topic != ORDER_STORE).then_some((0, offset)),
        timestamp_ms: Some(at),
        status: status.into(),
        reason: None,
        total_price: None,
        sent_by,
    }
}

fn order_of(events: Vec<TracedEvent>) -> Vec<String> {
    sorted(events).into_iter().map(|e| e.status).collect()
}

#[test]
fn within_one_millisecond_a_cause_comes_before_its_effect() {
    // A declined payment: the compensation's ORDER_CANCEL to `order` has the lower offset
    // (its topic's own), and every row the same millisecond.
    let choreography = vec![
        row("order", "ORDER_CANCEL", "inventory-consumer", 7, 1),
        row("inventory", "ORDER_CANCEL", "payment-consumer", 7, 2),
        row("payment", "INVENTORY_RESERVED", "inventory-consumer", 7, 1),
        row("inventory", "ORDER_CREATED", "order-service", 7, 1),
    ];
    assert_eq!(
        order_of(choreography),
        [
            "ORDER_CREATED",
            "INVENTORY_RESERVED",
            "ORDER_CANCEL",
            "ORDER_CANCEL"
        ]
    );
    let orchestration = vec![
        row(ORDER_STORE, "saga CANCELLED", "orchestrator", 3, 0),
        row(
            "order-saga.replies",
            "STOCK_RELEASED",
            "inventory-consumer",
            3,
            4,
        ),
        row("inventory.commands", "RELEASE_STOCK", "orchestrator", 3, 2),
        row(ORDER_STORE, "saga RELEASING_STOCK", "orchestrator", 3, 0),
        row(
            "order-saga.replies",
            "PAYMENT_DECLINED",
            "payment-consumer",
            3,
            3,
        ),
        row("payment.commands", "TAKE_PAYMENT", "orchestrator", 3, 1),
        row(ORDER_STORE, "saga TAKING_PAYMENT", "orchestrator", 3, 0),
        row(
            "order-saga.replies",
            "STOCK_RESERVED",
            "inventory-consumer",
            3,
            1,
        ),
        row("inventory.commands", "RESERVE_STOCK", "order-service", 3, 1),
        row(ORDER_STORE, "saga RESERVING_STOCK", "order-service", 3, 0),
    ];
    assert_eq!(
        order_of(orchestration),
        [
            "saga RESERVING_STOCK",
            "RESERVE_STOCK",
            "STOCK_RESERVED",
            "saga TAKING_PAYMENT",
            "TAKE_PAYMENT",
            "PAYMENT_DECLINED",
            "saga RELEASING_STOCK",
            "RELEASE_STOCK",
            "STOCK_RELEASED",
            "saga CANCELLED"
        ]
    );
    // Time still comes first: a later millisecond is later, whatever the step.
    let retried = vec![
        row("inventory.commands", "RESERVE_STOCK", "orchestrator", 9, 2),
        row(
            "order-saga.replies",
            "STOCK_RESERVED",
            "inventory-consumer",
            5,
            1,
        ),
    ];
    assert_eq!(order_of(retried), ["STOCK_RESERVED", "RESERVE_STOCK"]);
}
