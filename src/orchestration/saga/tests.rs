//! The timeout policy and the reply rules of [`super`], state by state.

use super::*;

fn order() -> SagaEvent {
    serde_json::from_value(serde_json::json!({
        "order": {"user_id": "u", "name": "n", "addr": "a", "tel": "t", "email": "e"},
        "inventory": {"id": 2, "quantity": 5},
        "transaction_id": "t-1",
        "status": "ORDER_CREATED"
    }))
    .expect("event")
}

fn saga_after(step: &Move) -> Saga {
    Saga {
        transaction_id: "t-1".into(),
        user_id: "u".into(),
        state: step.to,
        commands: step.commands.clone(),
        timeouts: step.timeouts,
        reason: step.reason.clone(),
        updated: String::new(),
        history: Vec::new(),
    }
}

fn kinds(step: &Move) -> Vec<CommandKind> {
    step.commands.iter().map(|c| c.command).collect()
}

fn reply(kind: ReplyKind) -> Reply {
    Reply::to(kind, "t-1")
}

#[test]
fn the_happy_path_reserves_then_charges_the_reserved_price() {
    let started = start(&order());
    assert_eq!(kinds(&started), [CommandKind::ReserveStock]);
    let reserved = Reply {
        total_price: Some(150),
        ..reply(ReplyKind::StockReserved)
    };
    let paying = saga_after(&started).on_reply(&reserved).expect("moves");
    assert_eq!(paying.to, SagaState::TakingPayment);
    assert_eq!(kinds(&paying), [CommandKind::TakePayment]);
    assert_eq!(paying.commands[0].total_price, Some(150));
    assert_eq!(paying.commands[0].inventory, order().inventory);
    let done = saga_after(&paying)
        .on_reply(&reply(ReplyKind::PaymentApproved))
        .expect("moves");
    assert_eq!(done.to, SagaState::Complete);
    assert!(done.commands.is_empty());
    assert_eq!(done.to.final_status(), Some(Status::OrderComplete));
}

#[test]
fn a_declined_payment_releases_the_stock_then_cancels_with_its_reason() {
    let paying = saga_after(
        &saga_after(&start(&order()))
            .on_reply(&reply(ReplyKind::StockReserved))
            .expect("moves"),
    );
    let declined = Reply {
        reason: Some(reason::PAYMENT_DECLINED.into()),
        ..reply(ReplyKind::PaymentDeclined)
    };
    let releasing = paying.on_reply(&declined).expect("moves");
    assert_eq!(releasing.to, SagaState::ReleasingStock);
    assert_eq!(kinds(&releasing), [CommandKind::ReleaseStock]);
    let cancelled = saga_after(&releasing)
        .on_reply(&reply(ReplyKind::StockReleased))
        .expect("moves");
    assert_eq!(cancelled.to, SagaState::Cancelled);
    assert_eq!(cancelled.reason.as_deref(), Some(reason::PAYMENT_DECLINED));
}

#[test]
fn rejected_stock_cancels_at_once_with_nothing_to_compensate() {
    let rejected = Reply {
        reason: Some(reason::UNKNOWN_ITEM.into()),
        ..reply(ReplyKind::StockRejected)
    };
    let cancelled = saga_after(&start(&order()))
        .on_reply(&rejected)
        .expect("moves");
    assert_eq!(cancelled.to, SagaState::Cancelled);
    assert!(cancelled.commands.is_empty());
    assert_eq!(cancelled.reason.as_deref(), Some(reason::UNKNOWN_ITEM));
}

#[test]
fn replies_that_do_not_fit_the_state_change_nothing() {
    let reserving = saga_after(&start(&order()));
    assert_eq!(reserving.on_reply(&reply(ReplyKind::PaymentApproved)), None);
    assert_eq!(reserving.on_reply(&reply(ReplyKind::StockReleased)), None);
    let mut cancelled = reserving.clone();
    cancelled.state = SagaState::Cancelled;
    for late in [
        ReplyKind::StockReserved,
        ReplyKind::PaymentApproved,
        ReplyKind::PaymentCancelled,
    ] {
        assert_eq!(cancelled.on_reply(&reply(late)), None, "{late:?}");
    }
    assert_eq!(cancelled.on_timeout(), None);
}

#[test]
fn a_silent_payment_is_retried_once_then_voided_and_the_stock_released() {
    let paying = saga_after(
        &saga_after(&start(&order()))
            .on_reply(&reply(ReplyKind::StockReserved))
            .expect("moves"),
    );
    let retried = paying.on_timeout().expect("retries");
    assert_eq!(retried.to, SagaState::TakingPayment);
    assert_eq!(kinds(&retried), [CommandKind::TakePayment]);
    assert_eq!(retried.timeouts, 1);
    let compensating = saga_after(&retried).on_timeout().expect("compensates");
    assert_eq!(compensating.to, SagaState::ReleasingStock);
    // Reverse order: the payment (the last step) first, then the stock.
    assert_eq!(
        kinds(&compensating),
        [CommandKind::CancelPayment, CommandKind::ReleaseStock]
    );
    assert_eq!(compensating.reason.as_deref(), Some(TIMEOUT));
    // A compensation is never given up.
    let releasing = saga_after(&compensating);
    let again = releasing.on_timeout().expect("sent again");
    assert_eq!(again.to, SagaState::ReleasingStock);
    assert_eq!(saga_after(&again).on_timeout().map(|m| m.timeouts), Some(2));
}

#[test]
fn a_silent_inventory_is_compensated_by_a_release() {
    let reserving = saga_after(&start(&order()));
    let compensating = saga_after(&reserving.on_timeout().expect("retries"))
        .on_timeout()
        .expect("compensates");
    assert_eq!(compensating.to, SagaState::ReleasingStock);
    assert_eq!(kinds(&compensating), [CommandKind::ReleaseStock]);
}

#[test]
fn history_entries_read_back() {
    let entry = start(&order()).history_entry("2026-01-31T12:34:56.789012+0000");
    assert_eq!(
        HistoryEntry::parse(&entry),
        Some(HistoryEntry {
            at: "2026-01-31T12:34:56.789012+0000".into(),
            state: "RESERVING_STOCK".into(),
            cause: "ORDER_CREATED".into(),
        })
    );
}

#[test]
fn states_have_their_stored_spelling() {
    for state in [
        SagaState::ReservingStock,
        SagaState::TakingPayment,
        SagaState::ReleasingStock,
        SagaState::Complete,
        SagaState::Cancelled,
    ] {
        assert_eq!(SagaState::parse(state.as_str()), Some(state));
    }
    assert_eq!(SagaState::parse("NOPE"), None);
}
