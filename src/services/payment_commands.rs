//! The payment consumer as a participant of an orchestrated saga: TAKE_PAYMENT from
//! `payment.commands`, answered PAYMENT_APPROVED or PAYMENT_DECLINED on
//! `order-saga.replies`, and its compensation CANCEL_PAYMENT, answered PAYMENT_CANCELLED. The answer comes from the same memory of decisions as the events'
//! ([`Decisions`]), so a redelivered command — or one for a transaction an event already
//! decided — gets the answer given the first time.

use tracing::info;

use super::payment_decisions::{Decisions, Unknowable};
use super::payment_gateway::Gateway;
use crate::consumer::{self, SagaStep, StepError, StepResult};
use crate::event::reason;
use crate::kafka::{Record, Topics};
use crate::orchestration::messages::{Command, CommandKind, Reply, ReplyKind};

/// The consumer group of the payment's command loop (beside the course's
/// `payment_consumer_group`, which reads the events).
pub const COMMAND_GROUP: &str = "payment_command_group";

/// Answers the orchestrator's payment commands.
pub struct PaymentCommandStep {
    /// Decides transactions not decided before.
    pub gateway: Gateway,
    /// Where replies go (`order-saga.replies`).
    pub topics: Topics,
    /// Shared with the event loop: one answer per transaction, whichever style asked.
    pub decisions: Decisions,
}

impl PaymentCommandStep {
    /// TAKE_PAYMENT: the gateway's answer, or the one given before.
    fn take(&self, command: &Command) -> Result<(Reply, Option<Record>), Unknowable> {
        let tx = &command.transaction_id;
        let (accepted, decision) =
            self.decisions
                .decide(&self.gateway, tx, &command.order.user_id)?;
        let reply = match accepted {
            true => {
                info!(%tx, total_price = command.total_price, "TAKE_PAYMENT → payment accepted → PAYMENT_APPROVED");
                Reply::to(ReplyKind::PaymentApproved, tx)
            }
            false => {
                info!(%tx, total_price = command.total_price, "TAKE_PAYMENT → payment DECLINED → PAYMENT_DECLINED");
                Reply {
                    reason: Some(reason::PAYMENT_DECLINED.to_string()),
                    ..Reply::to(ReplyKind::PaymentDeclined, tx)
                }
            }
        };
        Ok((reply, decision))
    }

    /// CANCEL_PAYMENT: a payment taken is refunded; one not decided yet is decided
    /// "declined" now, so that a TAKE_PAYMENT still on its way is declined too. The reply
    /// follows from the decision, so a redelivered cancel gets the same one.
    fn cancel(&self, command: &Command) -> Result<(Reply, Option<Record>), Unknowable> {
        let tx = &command.transaction_id;
        let (refunded, decision) = match self.decisions.answer(tx)? {
            Some(accepted) => (accepted, None),
            None => (false, Some(self.decisions.remember(tx, false))),
        };
        match refunded {
            true => {
                info!(%tx, "CANCEL_PAYMENT → the payment taken is refunded → PAYMENT_CANCELLED")
            }
            false => info!(%tx, "CANCEL_PAYMENT → no payment taken (now void) → PAYMENT_CANCELLED"),
        }
        let reply = Reply {
            refunded: Some(refunded),
            ..Reply::to(ReplyKind::PaymentCancelled, tx)
        };
        Ok((reply, decision))
    }

    fn answer(&self, command: &Command) -> StepResult {
        let answered = match command.command {
            CommandKind::TakePayment => self.take(command),
            CommandKind::CancelPayment => self.cancel(command),
            other => {
                return Err(StepError::Poison(format!(
                    "the payment consumer answers TAKE_PAYMENT and CANCEL_PAYMENT, not {}",
                    other.as_str()
                )));
            }
        };
        let (reply, decision) =
            answered.map_err(|unknowable| StepError::Poison(unknowable.to_string()))?;
        let mut outgoing: Vec<Record> = decision.into_iter().collect();
        outgoing.push(reply.record(&self.topics));
        Ok(outgoing)
    }
}

impl SagaStep for PaymentCommandStep {
    type Message = Command;

    async fn handle(&self, command: &Command) -> StepResult {
        consumer::only_result(self.handle_batch(&[command]).await)
    }

    /// Answers the batch in its order, knowing every decision made so far first.
    async fn handle_batch(&self, commands: &[&Command]) -> Vec<StepResult> {
        let transactions = commands.iter().map(|c| c.transaction_id.as_str());
        if let Err(error) = self.decisions.know(transactions).await {
            return commands.iter().map(|_| Err(error.step_error())).collect();
        }
        commands.iter().map(|c| self.answer(c)).collect()
    }
}
