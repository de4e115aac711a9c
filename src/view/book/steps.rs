//! What a saga's messages mean, style by style: the state they put it in, who sends and
//! who reads each, which undo a step, and what is still to come.

use super::State;
use crate::kafka::Topics;
use crate::orchestration::SagaStyle;
use crate::tools::trace::TracedEvent;

/// The state the messages so far put a saga in, and why it was cancelled.
pub(super) fn state_of(style: SagaStyle, events: &[TracedEvent]) -> (State, Option<String>) {
    let has = |name: &str| events.iter().find(|e| e.status == name);
    match style {
        SagaStyle::Choreography => {
            if has("PAYMENT_COMPLETE").is_some() {
                return (State::Complete, None);
            }
            // The inventory's ORDER_CANCEL to the order topic ends a cancelled saga.
            match events
                .iter()
                .find(|e| e.status == "ORDER_CANCEL" && e.sent_by == "inventory-consumer")
            {
                Some(cancel) => (State::Cancelled, cancel.reason.clone()),
                None => (State::InFlight, None),
            }
        }
        SagaStyle::Orchestration => {
            if let Some(rejected) = has("STOCK_REJECTED") {
                return (State::Cancelled, rejected.reason.clone());
            }
            // Once the orchestrator compensates, a payment approved late (a participant
            // back after the timeout) is refunded: it does not complete the saga.
            if let Some(release) = events.iter().position(|e| e.status == "RELEASE_STOCK") {
                if has("STOCK_RELEASED").is_none() {
                    return (State::InFlight, None);
                }
                // Commands carry no reason: the orchestrator compensates for a declined
                // payment, or else for a step that timed out.
                let declined = events[..release]
                    .iter()
                    .find(|e| e.status == "PAYMENT_DECLINED");
                // The orchestrator cancels for the decline's reason, if the reply gave one.
                let why = events[release]
                    .reason
                    .clone()
                    .unwrap_or_else(|| match declined {
                        Some(reply) => reply.reason.clone().unwrap_or(reply.status.clone()),
                        None => crate::orchestration::saga::TIMEOUT.into(),
                    });
                return (State::Cancelled, Some(why));
            }
            if has("PAYMENT_APPROVED").is_some() {
                return (State::Complete, None);
            }
            (State::InFlight, None)
        }
    }
}

/// The services drawn as lifelines, left to right.
pub(super) fn lifelines(style: SagaStyle) -> Vec<&'static str> {
    match style {
        SagaStyle::Choreography => vec![
            "order-service",
            "inventory-consumer",
            "payment-consumer",
            "order-consumer",
            "dead letter",
        ],
        SagaStyle::Orchestration => vec![
            "order-service",
            "orchestrator",
            "inventory-consumer",
            "payment-consumer",
            "dead letter",
        ],
    }
}

/// Who reads `topic`.
pub(super) fn receiver_of(topics: &Topics, topic: &str) -> &'static str {
    match topic {
        t if Topics::is_dead_letter(t) => "dead letter",
        t if t == topics.inventory || t == topics.inventory_commands => "inventory-consumer",
        t if t == topics.payment || t == topics.payment_commands => "payment-consumer",
        t if t == topics.order => "order-consumer",
        t if t == topics.saga_replies => "orchestrator",
        _ => "?",
    }
}

/// What kind of message `topic` carries.
pub(super) fn kind_of(topics: &Topics, topic: &str) -> &'static str {
    match topic {
        t if Topics::is_dead_letter(t) => "dead letter",
        t if t == topics.inventory_commands || t == topics.payment_commands => "command",
        t if t == topics.saga_replies => "reply",
        _ => "event",
    }
}

/// Whether a message undoes a step.
pub(super) fn is_compensation(name: &str, topic: &str, topics: &Topics) -> bool {
    matches!(
        name,
        "RELEASE_STOCK" | "STOCK_RELEASED" | "CANCEL_PAYMENT" | "PAYMENT_CANCELLED"
    ) || (name == "ORDER_CANCEL" && !Topics::is_dead_letter(topic) && topic != topics.order)
}

/// The steps an in-flight saga still has to take, from the furthest it reached.
pub(super) fn still_to_come(style: SagaStyle, events: &[TracedEvent]) -> Vec<&'static str> {
    let seen = |name: &str| events.iter().any(|e| e.status == name);
    match style {
        SagaStyle::Choreography => {
            if seen("ORDER_CANCEL") {
                vec![
                    "inventory-consumer gives the stock back and sends ORDER_CANCEL to the order consumer",
                ]
            } else if seen("INVENTORY_RESERVED") {
                vec![
                    "payment-consumer takes the payment: PAYMENT_COMPLETE to the order consumer, or ORDER_CANCEL to the inventory",
                ]
            } else {
                vec![
                    "inventory-consumer reserves the stock: INVENTORY_RESERVED to the payment consumer, or ORDER_CANCEL",
                    "payment-consumer takes the payment: PAYMENT_COMPLETE to the order consumer",
                ]
            }
        }
        SagaStyle::Orchestration => {
            if seen("RELEASE_STOCK") {
                vec!["inventory-consumer releases the stock: STOCK_RELEASED to the orchestrator"]
            } else if seen("TAKE_PAYMENT") {
                vec![
                    "payment-consumer answers TAKE_PAYMENT: PAYMENT_APPROVED or PAYMENT_DECLINED to the orchestrator",
                ]
            } else if seen("STOCK_RESERVED") {
                vec!["orchestrator sends TAKE_PAYMENT to the payment consumer"]
            } else {
                vec![
                    "inventory-consumer answers RESERVE_STOCK: STOCK_RESERVED or STOCK_REJECTED to the orchestrator",
                    "orchestrator sends TAKE_PAYMENT to the payment consumer",
                ]
            }
        }
    }
}
