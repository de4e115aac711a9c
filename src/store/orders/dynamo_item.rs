//! An order as a DynamoDB item, both ways, through serde_dynamo: the course's item shape
//! (`transaction_id`, `user_id`, `name`, `addr`, `tel`, `email`, `status`, `updated`) plus
//! the outbox's attributes, which the order as shown to callers leaves out.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde_json::{Map, Value};

use super::updated_now;
use super::{OrderStoreError, StoreKind};
use crate::event::{SagaEvent, Status};

/// The outbox attribute: the ORDER_CREATED event until the broker has it.
pub(super) const PENDING_EVENT: &str = "pending_event";

/// Set (to [`OUTBOX_PENDING`]) while `pending_event` is: the hash key of the sparse index
/// [`OUTBOX_INDEX`], which holds only the orders whose event is not sent yet, so that the
/// outbox relay queries a handful of items instead of scanning the table.
pub(super) const OUTBOX: &str = "outbox";
pub(super) const OUTBOX_PENDING: &str = "pending";
/// The `outbox` of an orchestrated saga in flight (its commands are in `saga_commands`):
/// the orchestrator finds the sagas whose step timed out through the same sparse index.
pub(super) const OUTBOX_SAGA: &str = "saga";
/// The sparse index of unsent orders: hash key `outbox`, range key `updated`.
pub(super) const OUTBOX_INDEX: &str = "outbox_pending";

/// A new order: ORDER_CREATED, with its event in the outbox.
#[derive(Serialize)]
struct NewOrder<'a> {
    transaction_id: &'a str,
    user_id: &'a str,
    name: &'a str,
    addr: &'a str,
    tel: &'a str,
    email: &'a str,
    status: &'static str,
    updated: String,
    /// The ORDER_CREATED event as sent, until the broker has it.
    pending_event: String,
    /// The sparse index's key while `pending_event` is set.
    outbox: &'static str,
}

/// The item of a new order for `event`.
pub(super) fn new_order(
    event: &SagaEvent,
) -> Result<HashMap<String, AttributeValue>, OrderStoreError> {
    let order = &event.order;
    let item = NewOrder {
        transaction_id: &event.transaction_id,
        user_id: &order.user_id,
        name: &order.name,
        addr: &order.addr,
        tel: &order.tel,
        email: &order.email,
        status: Status::OrderCreated.as_str(),
        updated: updated_now(),
        pending_event: event.to_json(),
        outbox: OUTBOX_PENDING,
    };
    serde_dynamo::to_item(item).map_err(|e| OrderStoreError::Rejected {
        store: StoreKind::DynamoDb,
        detail: e.to_string(),
    })
}

/// An order as the course's item shape shows it (plain JSON), without the outboxes'
/// attributes (an orchestrated order shows its `saga_state` and `saga_history`).
pub(super) fn shown(
    mut item: HashMap<String, AttributeValue>,
) -> Result<Map<String, Value>, OrderStoreError> {
    item.remove(PENDING_EVENT);
    item.remove(OUTBOX);
    item.remove("saga_commands");
    serde_dynamo::from_item(item).map_err(|e| OrderStoreError::Rejected {
        store: StoreKind::DynamoDb,
        detail: format!("an order item that is not plain JSON: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_order_shows_as_the_course_item_without_its_outbox() {
        let event: SagaEvent = serde_json::from_value(serde_json::json!({
            "order": {"user_id": "u", "name": "n", "addr": "a", "tel": "t", "email": "e"},
            "inventory": {"id": 1, "quantity": 2},
            "transaction_id": "tx",
            "status": "ORDER_CREATED"
        }))
        .expect("event");
        let item = new_order(&event).expect("item");
        assert_eq!(
            item.get(OUTBOX),
            Some(&AttributeValue::S(OUTBOX_PENDING.into()))
        );
        assert!(
            matches!(item.get(PENDING_EVENT), Some(AttributeValue::S(raw)) if raw.contains("\"tx\""))
        );
        let mut shown = shown(item).expect("shown");
        assert!(shown.remove("updated").is_some());
        assert_eq!(
            Value::Object(shown),
            serde_json::json!({"transaction_id": "tx", "user_id": "u", "name": "n", "addr": "a",
                               "tel": "t", "email": "e", "status": "ORDER_CREATED"})
        );
        let mut numbers = HashMap::new();
        numbers.insert("count".to_string(), AttributeValue::N("3".into()));
        assert_eq!(super::shown(numbers).expect("shown")["count"], 3);
    }
}
