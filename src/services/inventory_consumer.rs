//! The inventory consumer (group `inventory_consumer_group`): takes events from
//! `inventory`, changes stock in MySQL, and passes the saga on.
//!
//! - ORDER_CREATED: reserve stock → INVENTORY_RESERVED (with `payment.total_price`) to
//!   `payment`; not enough stock or an unknown item → ORDER_CANCEL (with `reason`) to `order`.
//! - ORDER_CANCEL (payment declined): give the stock back → ORDER_CANCEL to `order`.

use tokio_util::sync::CancellationToken;
use tracing::info;

use super::inventory_commands::{COMMAND_GROUP, InventoryCommandStep};
use super::inventory_steps::apply_in_order;
use crate::config::{InventoryStoreArgs, KafkaArgs};
use crate::consumer::{self, Loop, Outgoing, SagaStep, StepError, StepResult};
use crate::event::{SagaEvent, Status};
use crate::kafka::{Kafka, Record, Topics};
use crate::store::inventory::{
    Applied, InventoryStore, Release, Reservation, StepOutcome, StockStep,
};

/// The original's consumer group name.
pub const GROUP: &str = "inventory_consumer_group";

/// Step 2 of the saga (and its compensation): reserves or gives back stock, once per
/// saga step.
pub struct InventoryStep {
    /// Stock, history and the steps already applied, changed in one transaction per batch.
    pub store: InventoryStore,
    /// Where the outcome goes: `payment` when reserved, `order` when not or given back.
    pub topics: Topics,
}

impl InventoryStep {
    /// The stock change an event asks for, or why this consumer cannot handle it.
    fn stock_step(event: &SagaEvent) -> Result<StockStep<'_>, StepError> {
        let tx = &event.transaction_id;
        match event.status {
            Status::OrderCreated => Ok(StockStep::reserve(tx, &event.inventory)),
            Status::OrderCancel => Ok(StockStep::release(tx, &event.inventory)),
            other => Err(StepError::Poison(format!(
                "the inventory consumer handles ORDER_CREATED and ORDER_CANCEL, not {other}"
            ))),
        }
    }

    /// Logs what a step did and builds the event to pass on.
    fn pass_on(&self, event: &SagaEvent, outcome: StepOutcome) -> Outgoing {
        let tx = &event.transaction_id;
        let item = &event.inventory;
        let again = |duplicate: bool| match duplicate {
            true => " (already applied: redelivered event, stock unchanged)",
            false => "",
        };
        match outcome {
            StepOutcome::Reserve(Applied {
                outcome: Reservation::Reserved { total_price },
                duplicate,
            }) => {
                info!(%tx, item = item.id, quantity = item.quantity, total_price,
                      "ORDER_CREATED → stock reserved (−{}) → INVENTORY_RESERVED to `{}`{}",
                      item.quantity, self.topics.payment, again(duplicate));
                let mut reserved = event.with_status(Status::InventoryReserved);
                let mut payment = reserved.payment.take().unwrap_or_default();
                payment.total_price = Some(total_price);
                reserved.payment = Some(payment);
                Record::event(&self.topics.payment, &reserved)
            }
            StepOutcome::Reserve(Applied {
                outcome: Reservation::Rejected { reason },
                duplicate,
            }) => {
                info!(%tx, item = item.id, quantity = item.quantity, reason,
                      "ORDER_CREATED → not reserved ({reason}) → ORDER_CANCEL to `{}`{}",
                      self.topics.order, again(duplicate));
                let mut cancel = event.with_status(Status::OrderCancel);
                cancel.reason = Some(reason.to_string());
                Record::event(&self.topics.order, &cancel)
            }
            StepOutcome::Release(applied) => {
                match applied.outcome {
                    Release::Released { quantity } => info!(%tx, item = item.id, quantity,
                        "ORDER_CANCEL → stock given back (+{quantity}) → ORDER_CANCEL to `{}`{}",
                        self.topics.order, again(applied.duplicate)),
                    Release::NothingReserved => info!(%tx, item = item.id,
                        "ORDER_CANCEL → nothing was reserved, nothing to give back → ORDER_CANCEL to `{}`{}",
                        self.topics.order, again(applied.duplicate)),
                }
                Record::event(&self.topics.order, event)
            }
        }
    }
}

impl SagaStep for InventoryStep {
    type Message = SagaEvent;

    async fn handle(&self, event: &SagaEvent) -> StepResult {
        consumer::only_result(self.handle_batch(&[event]).await)
    }

    async fn handle_batch(&self, events: &[&SagaEvent]) -> Vec<StepResult> {
        let steps: Vec<Result<StockStep<'_>, StepError>> =
            events.iter().map(|e| Self::stock_step(e)).collect();
        let outcomes = apply_in_order(&self.store, steps).await;
        events
            .iter()
            .zip(outcomes)
            .map(|(event, outcome)| Ok(vec![self.pass_on(event, outcome?)]))
            .collect()
    }
}

/// Runs the inventory consumer until `shutdown`.
pub async fn run(
    kafka: &KafkaArgs,
    mysql: &InventoryStoreArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let store = InventoryStore::connect(mysql).await?;
    consume(&Kafka::connect(kafka).await?, store, shutdown).await
}

/// Runs the inventory consumer on `kafka` with an open `store` until `shutdown`.
pub async fn consume(
    kafka: &Kafka,
    store: InventoryStore,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let events = InventoryStep {
        store: store.clone(),
        topics: kafka.topics.clone(),
    };
    let commands = InventoryCommandStep {
        store,
        topics: kafka.topics.clone(),
    };
    info!("inventory consumer started (events and the orchestrator's commands)");
    let topics = &kafka.topics;
    let events = Loop {
        group: kafka.group(GROUP),
        topic: &topics.inventory,
        step: events,
    };
    let commands = Loop {
        group: kafka.group(COMMAND_GROUP),
        topic: &topics.inventory_commands,
        step: commands,
    };
    consumer::run_both(kafka, events, commands, shutdown).await?;
    Ok(())
}
