//! The order saga as the orchestrator runs it: its states, and where each reply or timeout
//! takes it. Pure rules, no I/O: the orchestrator persists a [`Move`] (state and the next
//! commands in one conditional write: the outbox) and then sends its commands.
//!
//! ```text
//! RESERVING_STOCK ─STOCK_RESERVED──▶ TAKING_PAYMENT ─PAYMENT_APPROVED──▶ COMPLETE
//!        │                                 │
//!  STOCK_REJECTED                 PAYMENT_DECLINED, or
//!        │                        TIMEOUT (+ CANCEL_PAYMENT)
//!        ▼                                 ▼
//!    CANCELLED ◀──STOCK_RELEASED── RELEASING_STOCK ◀── TIMEOUT of RESERVING_STOCK
//! ```
//!
//! The timeout policy: a forward step with no reply within the step timeout gets its
//! commands once more (a command may have been lost with an orchestrator killed between
//! its write and its send; participants answer a repeated command with the answer already
//! given); a second timeout compensates, with reason TIMEOUT. A compensation is sent again
//! at every timeout until it is answered: it must complete.

use serde::{Deserialize, Serialize};

use super::messages::{Command, CommandKind, Reply, ReplyKind};
use crate::event::{SagaEvent, Status, reason};

/// Why a saga was cancelled when a step got no reply in time.
pub const TIMEOUT: &str = "TIMEOUT";

/// Timeouts a forward step may have before the saga is compensated: one retry.
const FORWARD_TIMEOUTS: u32 = 2;

/// Where an orchestrated saga stands (the `saga_state` of its order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SagaState {
    /// RESERVE_STOCK sent; waiting for the inventory.
    ReservingStock,
    /// TAKE_PAYMENT sent; waiting for the payment service.
    TakingPayment,
    /// Compensating: RELEASE_STOCK sent (after CANCEL_PAYMENT if the payment timed out).
    ReleasingStock,
    /// Final: the order is ORDER_COMPLETE.
    Complete,
    /// Final: the order is ORDER_CANCEL.
    Cancelled,
}

impl SagaState {
    /// The wire and store spelling, e.g. `RESERVING_STOCK`.
    pub fn as_str(self) -> &'static str {
        match self {
            SagaState::ReservingStock => "RESERVING_STOCK",
            SagaState::TakingPayment => "TAKING_PAYMENT",
            SagaState::ReleasingStock => "RELEASING_STOCK",
            SagaState::Complete => "COMPLETE",
            SagaState::Cancelled => "CANCELLED",
        }
    }

    /// The state spelled `text`, if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(text.to_string())).ok()
    }

    /// The order's status once the saga is here, if it is final.
    pub fn final_status(self) -> Option<Status> {
        match self {
            SagaState::Complete => Some(Status::OrderComplete),
            SagaState::Cancelled => Some(Status::OrderCancel),
            _ => None,
        }
    }

    /// Whether the step is a compensation (retried until answered, never given up).
    fn compensating(self) -> bool {
        self == SagaState::ReleasingStock
    }
}

/// An orchestrated saga as stored with its order.
#[derive(Debug, Clone, PartialEq)]
pub struct Saga {
    pub transaction_id: String,
    /// With the transaction id, the order's key.
    pub user_id: String,
    pub state: SagaState,
    /// The current step's commands: the outbox, sent when the step begins and again when
    /// it times out. Empty once the saga is final.
    pub commands: Vec<Command>,
    /// How often the current step has timed out.
    pub timeouts: u32,
    /// Why the saga is being (or was) cancelled.
    pub reason: Option<String>,
    /// When the saga last moved (the order's `updated`): the current step's start, and the
    /// version a conditional write expects.
    pub updated: String,
    /// Its state changes so far, as [`Move::history_entry`] wrote them.
    pub history: Vec<String>,
}

/// Where a saga goes next, and what it sends.
#[derive(Debug, Clone, PartialEq)]
pub struct Move {
    pub to: SagaState,
    /// Sent once the move is stored, and kept as the outbox until the next move.
    pub commands: Vec<Command>,
    /// The timeouts of the step the saga is in after the move.
    pub timeouts: u32,
    pub reason: Option<String>,
    /// What caused it: a reply's name or TIMEOUT (the saga's history and the logs).
    pub cause: String,
}

impl Move {
    /// The saga's history entry for this move made at `at` (an `updated` timestamp):
    /// `<at> <state> <cause>`, what `edm trace` shows as the orchestrator's state changes.
    pub fn history_entry(&self, at: &str) -> String {
        format!("{at} {} {}", self.to.as_str(), self.cause)
    }
}

/// One state change in a saga's history: when, to which state, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// An `updated` timestamp.
    pub at: String,
    pub state: String,
    pub cause: String,
}

impl HistoryEntry {
    /// The entry [`Move::history_entry`] wrote, if `text` is one.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.splitn(3, ' ');
        Some(Self {
            at: parts.next()?.to_string(),
            state: parts.next()?.to_string(),
            cause: parts.next()?.to_string(),
        })
    }
}

/// The saga of a new order: reserve its stock.
pub fn start(event: &SagaEvent) -> Move {
    Move {
        to: SagaState::ReservingStock,
        commands: vec![command(event, CommandKind::ReserveStock, None)],
        timeouts: 0,
        reason: None,
        cause: Status::OrderCreated.as_str().to_string(),
    }
}

fn command(event: &SagaEvent, kind: CommandKind, total_price: Option<i64>) -> Command {
    Command {
        command: kind,
        transaction_id: event.transaction_id.clone(),
        order: event.order.clone(),
        inventory: event.inventory.clone(),
        total_price,
    }
}

impl Saga {
    /// The next step's command of `kind`, about the same order as the current one.
    fn next_command(&self, kind: CommandKind, total_price: Option<i64>) -> Option<Command> {
        let current = self.commands.first()?;
        Some(Command {
            command: kind,
            total_price,
            ..current.clone()
        })
    }

    /// Where `reply` takes the saga; `None` if it does not fit where the saga stands (a
    /// redelivered or late reply — e.g. a payment approved after the step timed out):
    /// such a reply changes nothing.
    pub fn on_reply(&self, reply: &Reply) -> Option<Move> {
        let cause = reply.reply.as_str().to_string();
        let move_to = |to, commands: Vec<Command>, reason: Option<String>| Move {
            to,
            commands,
            timeouts: 0,
            reason,
            cause: cause.clone(),
        };
        match (self.state, reply.reply) {
            (SagaState::ReservingStock, ReplyKind::StockReserved) => {
                let take = self.next_command(CommandKind::TakePayment, reply.total_price)?;
                Some(move_to(SagaState::TakingPayment, vec![take], None))
            }
            (SagaState::ReservingStock, ReplyKind::StockRejected) => {
                let reason = reply
                    .reason
                    .clone()
                    .unwrap_or_else(|| reason::OUT_OF_STOCK.into());
                Some(move_to(SagaState::Cancelled, Vec::new(), Some(reason)))
            }
            (SagaState::TakingPayment, ReplyKind::PaymentApproved) => {
                Some(move_to(SagaState::Complete, Vec::new(), None))
            }
            (SagaState::TakingPayment, ReplyKind::PaymentDeclined) => {
                let release = self.next_command(CommandKind::ReleaseStock, None)?;
                let reason = reply
                    .reason
                    .clone()
                    .unwrap_or_else(|| reason::PAYMENT_DECLINED.into());
                Some(move_to(
                    SagaState::ReleasingStock,
                    vec![release],
                    Some(reason),
                ))
            }
            (SagaState::ReleasingStock, ReplyKind::StockReleased) => Some(move_to(
                SagaState::Cancelled,
                Vec::new(),
                self.reason.clone(),
            )),
            _ => None,
        }
    }

    /// What to do when the current step has had no reply in time (see the module's
    /// policy); `None` if the saga is final.
    pub fn on_timeout(&self) -> Option<Move> {
        if self.state.final_status().is_some() {
            return None;
        }
        let retry = || Move {
            to: self.state,
            commands: self.commands.clone(),
            timeouts: self.timeouts + 1,
            reason: self.reason.clone(),
            cause: TIMEOUT.to_string(),
        };
        if self.state.compensating() || self.timeouts + 1 < FORWARD_TIMEOUTS {
            return Some(retry());
        }
        // A step that timed out may have happened all the same (Temporal's lesson): a
        // payment is voided — or refunded — before the stock goes back; a reservation is
        // released (releasing what was never taken gives back nothing).
        let mut compensations = Vec::new();
        if self.state == SagaState::TakingPayment {
            compensations.extend(self.next_command(CommandKind::CancelPayment, None));
        }
        compensations.extend(self.next_command(CommandKind::ReleaseStock, None));
        Some(Move {
            to: SagaState::ReleasingStock,
            commands: compensations,
            timeouts: 0,
            reason: Some(TIMEOUT.to_string()),
            cause: TIMEOUT.to_string(),
        })
    }
}

#[cfg(test)]
mod tests;
