//! What travels in an orchestrated saga: commands from the orchestrator to a participant
//! (`inventory.commands`, `payment.commands`) and the participants' replies to it
//! (`order-saga.replies`), all keyed by `transaction_id` so a saga's messages stay in order.
//!
//! Commands carry the order as the choreography's events do (`order`, `inventory`), so a
//! participant needs nothing but the message; a reply carries only what the orchestrator
//! needs to take its next step.

use serde::{Deserialize, Serialize};

use crate::consumer::Incoming;
use crate::event::{ItemRequest, OrderDetails, validate_transaction_id, validate_user_id};
use crate::kafka::{Record, Topics};

/// What the orchestrator asks a participant to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CommandKind {
    /// Take the order's units from stock (`inventory.commands`).
    ReserveStock,
    /// Give back what the saga took, if anything (`inventory.commands`): the compensation.
    ReleaseStock,
    /// Charge the order's total price (`payment.commands`).
    TakePayment,
    /// Void the saga's payment, or refund it if it was taken (`payment.commands`): the
    /// compensation of a TAKE_PAYMENT that got no answer in time, since it may have
    /// happened all the same (or will, once the payment service is back).
    CancelPayment,
}

impl CommandKind {
    /// Its wire spelling, e.g. `RESERVE_STOCK`.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandKind::ReserveStock => "RESERVE_STOCK",
            CommandKind::ReleaseStock => "RELEASE_STOCK",
            CommandKind::TakePayment => "TAKE_PAYMENT",
            CommandKind::CancelPayment => "CANCEL_PAYMENT",
        }
    }
}

/// A command: what to do, for which saga, about which order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    pub command: CommandKind,
    pub transaction_id: String,
    pub order: OrderDetails,
    pub inventory: ItemRequest,
    /// What TAKE_PAYMENT charges (the price STOCK_RESERVED reported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_price: Option<i64>,
}

/// How a participant answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReplyKind {
    /// The units are taken; `total_price` says what to charge.
    StockReserved,
    /// Not taken (`reason`: OUT_OF_STOCK or UNKNOWN_ITEM): nothing to compensate.
    StockRejected,
    /// Given back (`released` units; 0 if nothing was reserved).
    StockReleased,
    /// Charged.
    PaymentApproved,
    /// Not charged (`reason`: PAYMENT_DECLINED).
    PaymentDeclined,
    /// The payment is void (`refunded`: whether it had been taken and is now given back).
    PaymentCancelled,
}

impl ReplyKind {
    /// Its wire spelling, e.g. `STOCK_RESERVED`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyKind::StockReserved => "STOCK_RESERVED",
            ReplyKind::StockRejected => "STOCK_REJECTED",
            ReplyKind::StockReleased => "STOCK_RELEASED",
            ReplyKind::PaymentApproved => "PAYMENT_APPROVED",
            ReplyKind::PaymentDeclined => "PAYMENT_DECLINED",
            ReplyKind::PaymentCancelled => "PAYMENT_CANCELLED",
        }
    }
}

/// A participant's answer to one command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub reply: ReplyKind,
    pub transaction_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_price: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refunded: Option<bool>,
}

impl Reply {
    /// A reply of `kind` to the saga `transaction_id`, with nothing else yet.
    pub fn to(kind: ReplyKind, transaction_id: &str) -> Self {
        Self {
            reply: kind,
            transaction_id: transaction_id.to_string(),
            reason: None,
            total_price: None,
            released: None,
            refunded: None,
        }
    }

    /// The reply as a record to the orchestrator's topic, keyed by its saga.
    pub fn record(&self, topics: &Topics) -> Record {
        Record {
            topic: topics.saga_replies.clone(),
            key: Some(self.transaction_id.clone()),
            payload: self.to_payload(),
            headers: Vec::new(),
        }
    }

    /// Its JSON wire form.
    pub fn to_payload(&self) -> Vec<u8> {
        // Strings and numbers only: serialising cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

impl Command {
    /// The command as a record to its participant's topic, keyed by its saga.
    pub fn record(&self, topics: &Topics) -> Record {
        let topic = match self.command {
            CommandKind::ReserveStock | CommandKind::ReleaseStock => &topics.inventory_commands,
            CommandKind::TakePayment | CommandKind::CancelPayment => &topics.payment_commands,
        };
        Record {
            topic: topic.clone(),
            key: Some(self.transaction_id.clone()),
            payload: self.to_payload(),
            headers: Vec::new(),
        }
    }

    /// Its JSON wire form.
    pub fn to_payload(&self) -> Vec<u8> {
        // Strings, numbers and JSON values only: serialising cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

impl Incoming for Command {
    /// The command in `payload`, with the same checks as an event: a command the stores
    /// could never take is poison, not a retry.
    fn parse(payload: Option<&[u8]>) -> Result<Self, String> {
        let bytes = payload.ok_or("empty message (no payload)")?;
        let command: Command =
            serde_json::from_slice(bytes).map_err(|e| format!("not a saga command: {e}"))?;
        validate_transaction_id(&command.transaction_id).map_err(|e| e.to_string())?;
        validate_user_id(&command.order.user_id).map_err(|e| e.to_string())?;
        command.inventory.validate().map_err(|e| e.to_string())?;
        Ok(command)
    }

    fn transaction_id(&self) -> &str {
        &self.transaction_id
    }
}

impl Incoming for Reply {
    fn parse(payload: Option<&[u8]>) -> Result<Self, String> {
        let bytes = payload.ok_or("empty message (no payload)")?;
        let reply: Reply =
            serde_json::from_slice(bytes).map_err(|e| format!("not a saga reply: {e}"))?;
        validate_transaction_id(&reply.transaction_id).map_err(|e| e.to_string())?;
        Ok(reply)
    }

    fn transaction_id(&self) -> &str {
        &self.transaction_id
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn commands_and_replies_have_their_documented_wire_shape() {
        let raw = json!({
            "command": "RESERVE_STOCK",
            "transaction_id": "3f1c7e2a-0000-4000-8000-000000000001",
            "order": {"user_id": "u", "name": "n", "addr": "a", "tel": "t", "email": "e"},
            "inventory": {"id": 2, "quantity": 5}
        });
        let command = Command::parse(Some(raw.to_string().as_bytes())).expect("command");
        assert_eq!(command.command, CommandKind::ReserveStock);
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&command.to_payload()).ok(),
            Some(raw)
        );

        let mut reply = Reply::to(ReplyKind::StockRejected, "t-1");
        reply.reason = Some("OUT_OF_STOCK".into());
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&reply.to_payload()).ok(),
            Some(
                json!({"reply": "STOCK_REJECTED", "transaction_id": "t-1", "reason": "OUT_OF_STOCK"})
            )
        );
        assert_eq!(Reply::parse(Some(&reply.to_payload())), Ok(reply));
    }

    #[test]
    fn a_command_the_stores_could_never_take_is_poison() {
        let command = |quantity: i64, user: &str| {
            json!({"command": "RESERVE_STOCK", "transaction_id": "t",
                   "order": {"user_id": user, "name": "", "addr": "", "tel": "", "email": ""},
                   "inventory": {"id": 1, "quantity": quantity}})
            .to_string()
        };
        assert!(Command::parse(Some(command(0, "u").as_bytes())).is_err());
        assert!(Command::parse(Some(command(1, "").as_bytes())).is_err());
        assert!(Command::parse(Some(b"{\"command\": \"SHIP_IT\"}")).is_err());
        assert!(Command::parse(None).is_err());
        assert!(Command::parse(Some(command(1, "u").as_bytes())).is_ok());
    }
}
