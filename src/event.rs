//! The saga event: one JSON object, the same shape on every topic.
//!
//! The order service builds it from the HTTP body, the inventory consumer adds
//! `payment.total_price`, every step changes `status`. Fields this crate does not know are
//! kept in `extra` maps and written back unchanged, so services written in other languages
//! can add their own fields and still be mixed with `edm`.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Longest accepted transaction id: the `CHAR(36)` column of `inventory_history`.
pub const MAX_TRANSACTION_ID_LEN: usize = 36;

/// Longest `order.user_id`: DynamoDB's limit for a range key, checked on every event (not
/// only at HTTP), since another producer's event would otherwise be refused by the store.
pub const MAX_USER_ID_BYTES: usize = 1024;

/// Where a saga stands. The wire spelling is the course's (`ORDER_CREATED`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// The order is stored; the inventory must reserve stock (topic `inventory`).
    OrderCreated,
    /// Stock is reserved; the payment must be taken (topic `payment`).
    InventoryReserved,
    /// The payment went through; the order is complete (topic `order`).
    PaymentComplete,
    /// The saga is cancelled: compensate (topic `inventory`) or record it (topic `order`).
    OrderCancel,
    /// Final status of a stored order whose saga succeeded (never sent as an event).
    OrderComplete,
}

impl Status {
    /// The wire spelling, e.g. `ORDER_CREATED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::OrderCreated => "ORDER_CREATED",
            Status::InventoryReserved => "INVENTORY_RESERVED",
            Status::PaymentComplete => "PAYMENT_COMPLETE",
            Status::OrderCancel => "ORDER_CANCEL",
            Status::OrderComplete => "ORDER_COMPLETE",
        }
    }

    /// Whether a stored order's `status` is final: ORDER_COMPLETE or ORDER_CANCEL.
    pub fn is_final(status: &str) -> bool {
        status == Status::OrderComplete.as_str() || status == Status::OrderCancel.as_str()
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a saga was cancelled (the `reason` field of an ORDER_CANCEL event).
pub mod reason {
    /// The requested quantity exceeds the stock.
    pub const OUT_OF_STOCK: &str = "OUT_OF_STOCK";
    /// The item id is not in the inventory.
    pub const UNKNOWN_ITEM: &str = "UNKNOWN_ITEM";
    /// The payment gateway declined the payment.
    pub const PAYMENT_DECLINED: &str = "PAYMENT_DECLINED";
    /// The order service could not send ORDER_CREATED and cancelled the order.
    pub const EVENT_NOT_SENT: &str = "EVENT_NOT_SENT";
    /// The payment completed for an order that had already been cancelled.
    pub const ORDER_ALREADY_CANCELLED: &str = "ORDER_ALREADY_CANCELLED";
}

/// Who orders and where it goes (`order` in the event and in the HTTP body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderDetails {
    /// The customer's id; with `transaction_id` the key of the stored order.
    pub user_id: String,
    /// The customer's name.
    pub name: String,
    /// The delivery address.
    pub addr: String,
    /// The phone number.
    pub tel: String,
    /// The e-mail address.
    pub email: String,
    /// Fields added by other services, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Which item and how many (`inventory` in the event and in the HTTP body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemRequest {
    /// The `inventory.id` of the item.
    pub id: i64,
    /// How many units.
    pub quantity: i64,
    /// Fields added by other services, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What the payment is about (`payment` in the event; added by the inventory consumer).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Payment {
    /// Item price × quantity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_price: Option<i64>,
    /// Fields added by other services, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One saga event as it travels on every topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SagaEvent {
    /// Who orders.
    pub order: OrderDetails,
    /// What is ordered.
    pub inventory: ItemRequest,
    /// The saga's id, made by the order service and shared by every step.
    pub transaction_id: String,
    /// Where the saga stands.
    pub status: Status,
    /// The payment, once the inventory consumer has priced the order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<Payment>,
    /// Why the saga was cancelled, on ORDER_CANCEL events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Fields added by other services, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Why bytes from a topic or an HTTP body are not a usable saga event.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EventError {
    /// The message has no payload at all.
    #[error("empty message (no payload)")]
    Empty,
    /// Not JSON, or JSON of the wrong shape (missing field, wrong type, unknown status).
    #[error("not a saga event: {0}")]
    Malformed(String),
    /// Well-formed JSON whose values cannot be processed.
    #[error("invalid saga event: {0}")]
    Invalid(String),
}

impl SagaEvent {
    /// Parses and validates a message payload.
    pub fn from_payload(payload: Option<&[u8]>) -> Result<SagaEvent, EventError> {
        let bytes = payload.ok_or(EventError::Empty)?;
        let event: SagaEvent =
            serde_json::from_slice(bytes).map_err(|e| EventError::Malformed(e.to_string()))?;
        event.validate()?;
        Ok(event)
    }

    /// Serialises the event to its JSON wire form.
    pub fn to_payload(&self) -> Vec<u8> {
        self.to_json().into_bytes()
    }

    /// The event's JSON wire form as text (stored in the order outbox).
    pub fn to_json(&self) -> String {
        // A SagaEvent is a tree of strings, numbers and JSON values: serialising it cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Checks the values a saga step relies on.
    pub fn validate(&self) -> Result<(), EventError> {
        validate_transaction_id(&self.transaction_id)?;
        self.inventory.validate()?;
        validate_user_id(&self.order.user_id)
    }

    /// The same event with another status (every other field, known or not, unchanged).
    pub fn with_status(&self, status: Status) -> SagaEvent {
        SagaEvent {
            status,
            ..self.clone()
        }
    }

    /// The total price set by the inventory consumer, if any.
    pub fn total_price(&self) -> Option<i64> {
        self.payment
            .as_ref()
            .and_then(|payment| payment.total_price)
    }
}

impl ItemRequest {
    /// Checks that the item id and quantity are positive.
    pub fn validate(&self) -> Result<(), EventError> {
        if self.id <= 0 || self.id > i64::from(i32::MAX) {
            return Err(EventError::Invalid(format!(
                "inventory.id must be a positive item id, got {}",
                self.id
            )));
        }
        if self.quantity <= 0 || self.quantity > i64::from(i32::MAX) {
            return Err(EventError::Invalid(format!(
                "inventory.quantity must be a positive number of units, got {}",
                self.quantity
            )));
        }
        Ok(())
    }
}

/// Checks that a user id fits the order table's key (1 to [`MAX_USER_ID_BYTES`] bytes, not
/// only blanks).
pub fn validate_user_id(id: &str) -> Result<(), EventError> {
    if id.trim().is_empty() || id.len() > MAX_USER_ID_BYTES {
        return Err(EventError::Invalid(format!(
            "order.user_id must be 1 to {MAX_USER_ID_BYTES} bytes long (not only blanks), got {} bytes",
            id.len()
        )));
    }
    Ok(())
}

/// Checks that a transaction id fits the stores (non-empty, at most 36 characters).
pub fn validate_transaction_id(id: &str) -> Result<(), EventError> {
    if id.trim().is_empty() {
        return Err(EventError::Invalid("transaction_id is empty".into()));
    }
    if id.chars().count() > MAX_TRANSACTION_ID_LEN {
        return Err(EventError::Invalid(format!(
            "transaction_id is longer than {MAX_TRANSACTION_ID_LEN} characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn python_order_created() -> Value {
        // Exactly what the course's order_service.py sends to `inventory`.
        json!({
            "order": {"user_id": "user", "name": "Hong Gil Dong", "addr": "29, Hansil-ro",
                      "tel": "01012341234", "email": "hong@gil.com"},
            "inventory": {"id": 2, "quantity": 5},
            "transaction_id": "0b7e6a1c-6d3e-4a0c-9f3e-2b8f0c1d2e3f",
            "status": "ORDER_CREATED"
        })
    }

    #[test]
    fn a_user_id_the_order_table_cannot_key_is_refused_on_the_event() {
        let mut event = python_order_created();
        event["order"]["user_id"] = json!("u".repeat(MAX_USER_ID_BYTES));
        assert!(SagaEvent::from_payload(Some(event.to_string().as_bytes())).is_ok());
        for bad in [
            "u".repeat(MAX_USER_ID_BYTES + 1),
            "   ".into(),
            String::new(),
        ] {
            event["order"]["user_id"] = json!(bad);
            let error =
                SagaEvent::from_payload(Some(event.to_string().as_bytes())).expect_err("refused");
            assert!(error.to_string().contains("order.user_id"), "{error}");
        }
    }

    #[test]
    fn parses_the_original_event() {
        let bytes = serde_json::to_vec(&python_order_created()).unwrap();
        let event = SagaEvent::from_payload(Some(&bytes)).unwrap();
        assert_eq!(event.status, Status::OrderCreated);
        assert_eq!(event.inventory.id, 2);
        assert_eq!(event.inventory.quantity, 5);
        assert_eq!(event.order.name, "Hong Gil Dong");
        assert_eq!(event.payment, None);
        // Re-serialised without additions it is the same JSON.
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            python_order_created()
        );
    }

    #[test]
    fn unknown_fields_survive_at_every_level() {
        let mut raw = python_order_created();
        raw["trace"] = json!({"hops": ["python"]});
        raw["order"]["coupon"] = json!("WELCOME");
        raw["inventory"]["color"] = json!("red");
        raw["payment"] = json!({"total_price": 150000, "currency": "KRW"});
        let event = SagaEvent::from_payload(Some(&serde_json::to_vec(&raw).unwrap())).unwrap();
        let passed_on = serde_json::to_value(event.with_status(Status::PaymentComplete)).unwrap();
        let mut expected = raw.clone();
        expected["status"] = json!("PAYMENT_COMPLETE");
        assert_eq!(passed_on, expected);
    }

    #[test]
    fn rejects_malformed_and_invalid_events() {
        assert_eq!(SagaEvent::from_payload(None), Err(EventError::Empty));
        assert!(matches!(
            SagaEvent::from_payload(Some(b"{not json")),
            Err(EventError::Malformed(_))
        ));
        let mut unknown_status = python_order_created();
        unknown_status["status"] = json!("ORDER_SHIPPED");
        let bytes = serde_json::to_vec(&unknown_status).unwrap();
        assert!(matches!(
            SagaEvent::from_payload(Some(&bytes)),
            Err(EventError::Malformed(_))
        ));
        let mut missing = python_order_created();
        missing["order"].as_object_mut().unwrap().remove("email");
        let bytes = serde_json::to_vec(&missing).unwrap();
        assert!(matches!(
            SagaEvent::from_payload(Some(&bytes)),
            Err(EventError::Malformed(_))
        ));
        for quantity in [0, -3] {
            let mut bad = python_order_created();
            bad["inventory"]["quantity"] = json!(quantity);
            let bytes = serde_json::to_vec(&bad).unwrap();
            assert!(matches!(
                SagaEvent::from_payload(Some(&bytes)),
                Err(EventError::Invalid(_))
            ));
        }
        let mut long_id = python_order_created();
        long_id["transaction_id"] = json!("x".repeat(37));
        let bytes = serde_json::to_vec(&long_id).unwrap();
        assert!(matches!(
            SagaEvent::from_payload(Some(&bytes)),
            Err(EventError::Invalid(_))
        ));
    }

    #[test]
    fn statuses_travel_in_their_wire_spelling() {
        use Status::*;
        for status in [
            OrderCreated,
            InventoryReserved,
            PaymentComplete,
            OrderCancel,
            OrderComplete,
        ] {
            let wire = serde_json::to_value(status).unwrap();
            assert_eq!(wire, json!(status.as_str()));
            assert_eq!(serde_json::from_value::<Status>(wire).ok(), Some(status));
        }
        assert!(serde_json::from_value::<Status>(json!("order_created")).is_err());
    }
}
