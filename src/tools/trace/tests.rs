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
