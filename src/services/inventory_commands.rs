//! The inventory consumer as a participant of an orchestrated saga: RESERVE_STOCK and
//! RELEASE_STOCK from `inventory.commands`, answered on `order-saga.replies`. The stock
//! steps are the events' own ([`apply_in_order`]), so a redelivered command changes
//! nothing and gets the reply it got the first time, and the books are the same whichever
//! style placed the order.

use tracing::info;

use super::inventory_steps::apply_in_order;
use crate::consumer::{self, SagaStep, StepError, StepResult};
use crate::kafka::{Record, Topics};
use crate::orchestration::messages::{Command, CommandKind, Reply, ReplyKind};
use crate::store::inventory::{
    Applied, InventoryStore, Release, Reservation, StepOutcome, StockStep,
};

/// The consumer group of the inventory's command loop (beside the course's
/// `inventory_consumer_group`, which reads the events).
pub const COMMAND_GROUP: &str = "inventory_command_group";

/// Answers the orchestrator's stock commands.
pub struct InventoryCommandStep {
    /// The same store as the event step's: one stock, one history, one idempotency table.
    pub store: InventoryStore,
    /// Where replies go (`order-saga.replies`).
    pub topics: Topics,
}

impl InventoryCommandStep {
    /// The stock change a command asks for, or why the inventory cannot take it.
    fn stock_step(command: &Command) -> Result<StockStep<'_>, StepError> {
        let tx = &command.transaction_id;
        match command.command {
            CommandKind::ReserveStock => Ok(StockStep::reserve(tx, &command.inventory)),
            CommandKind::ReleaseStock => Ok(StockStep::release(tx, &command.inventory)),
            other => Err(StepError::Poison(format!(
                "the inventory answers RESERVE_STOCK and RELEASE_STOCK, not {}",
                other.as_str()
            ))),
        }
    }

    /// The reply to `command`, from what its step did (the first time, or now).
    fn reply(&self, command: &Command, outcome: StepOutcome) -> Record {
        let tx = &command.transaction_id;
        let again = |duplicate: bool| match duplicate {
            true => " (already applied: redelivered command, stock unchanged)",
            false => "",
        };
        let reply = match outcome {
            StepOutcome::Reserve(Applied {
                outcome: Reservation::Reserved { total_price },
                duplicate,
            }) => {
                info!(%tx, item = command.inventory.id, quantity = command.inventory.quantity,
                      "RESERVE_STOCK → stock reserved (−{}) → STOCK_RESERVED{}",
                      command.inventory.quantity, again(duplicate));
                Reply {
                    total_price: Some(total_price),
                    ..Reply::to(ReplyKind::StockReserved, tx)
                }
            }
            StepOutcome::Reserve(Applied {
                outcome: Reservation::Rejected { reason },
                duplicate,
            }) => {
                info!(%tx, reason, "RESERVE_STOCK → not reserved → STOCK_REJECTED{}", again(duplicate));
                Reply {
                    reason: Some(reason.to_string()),
                    ..Reply::to(ReplyKind::StockRejected, tx)
                }
            }
            StepOutcome::Release(applied) => {
                let released = match applied.outcome {
                    Release::Released { quantity } => quantity,
                    Release::NothingReserved => 0,
                };
                info!(%tx, released, "RELEASE_STOCK → stock given back (+{released}) → STOCK_RELEASED{}",
                      again(applied.duplicate));
                Reply {
                    released: Some(released),
                    ..Reply::to(ReplyKind::StockReleased, tx)
                }
            }
        };
        reply.record(&self.topics)
    }
}

impl SagaStep for InventoryCommandStep {
    type Message = Command;

    async fn handle(&self, command: &Command) -> StepResult {
        consumer::only_result(self.handle_batch(&[command]).await)
    }

    async fn handle_batch(&self, commands: &[&Command]) -> Vec<StepResult> {
        let steps = commands.iter().map(|c| Self::stock_step(c)).collect();
        let outcomes = apply_in_order(&self.store, steps).await;
        commands
            .iter()
            .zip(outcomes)
            .map(|(command, outcome)| Ok(vec![self.reply(command, outcome?)]))
            .collect()
    }
}
