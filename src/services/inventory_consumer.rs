//! The inventory consumer (group `inventory_consumer_group`): takes events from
//! `inventory`, changes stock in MySQL, and passes the saga on.
//!
//! - ORDER_CREATED: reserve stock → INVENTORY_RESERVED (with `payment.total_price`) to
//!   `payment`; not enough stock or an unknown item → ORDER_CANCEL (with `reason`) to `order`.
//! - ORDER_CANCEL (payment declined): give the stock back → ORDER_CANCEL to `order`.

use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::{KafkaArgs, MysqlArgs};
use crate::consumer::{self, Outgoing, SagaStep, StepError};
use crate::event::{SagaEvent, Status};
use crate::kafka::{Kafka, Topics};
use crate::store::inventory::{InventoryStore, Release, Reservation};

/// The original's consumer group name.
pub const GROUP: &str = "inventory_consumer_group";

/// The inventory step.
pub struct InventoryStep {
    /// The stock.
    pub store: InventoryStore,
    /// Where to send the outcome.
    pub topics: Topics,
}

impl InventoryStep {
    async fn reserve(&self, event: &SagaEvent) -> Result<Vec<Outgoing>, StepError> {
        let tx = &event.transaction_id;
        let item = &event.inventory;
        let applied = self
            .store
            .reserve(tx, item.id, item.quantity)
            .await
            .map_err(|e| StepError::Retry(e.to_string()))?;
        let again = if applied.duplicate {
            " (already applied: redelivered event, stock unchanged)"
        } else {
            ""
        };
        match applied.outcome {
            Reservation::Reserved { total_price } => {
                info!(%tx, item = item.id, quantity = item.quantity, total_price,
                      "ORDER_CREATED → stock reserved (−{}) → INVENTORY_RESERVED to `{}`{again}",
                      item.quantity, self.topics.payment);
                let mut reserved = event.with_status(Status::InventoryReserved);
                let mut payment = reserved.payment.take().unwrap_or_default();
                payment.total_price = Some(total_price);
                reserved.payment = Some(payment);
                Ok(vec![Outgoing {
                    topic: self.topics.payment.clone(),
                    event: reserved,
                }])
            }
            Reservation::Rejected { reason } => {
                info!(%tx, item = item.id, quantity = item.quantity, reason,
                      "ORDER_CREATED → not reserved ({reason}) → ORDER_CANCEL to `{}`{again}",
                      self.topics.order);
                let mut cancel = event.with_status(Status::OrderCancel);
                cancel.reason = Some(reason.to_string());
                Ok(vec![Outgoing {
                    topic: self.topics.order.clone(),
                    event: cancel,
                }])
            }
        }
    }

    async fn release(&self, event: &SagaEvent) -> Result<Vec<Outgoing>, StepError> {
        let tx = &event.transaction_id;
        let item = &event.inventory;
        let applied = self
            .store
            .release(tx, item.id, item.quantity)
            .await
            .map_err(|e| StepError::Retry(e.to_string()))?;
        let again = if applied.duplicate {
            " (already applied: redelivered event, stock unchanged)"
        } else {
            ""
        };
        match applied.outcome {
            Release::Released { quantity } => info!(%tx, item = item.id, quantity,
                "ORDER_CANCEL → stock given back (+{quantity}) → ORDER_CANCEL to `{}`{again}", self.topics.order),
            Release::NothingReserved => info!(%tx, item = item.id,
                "ORDER_CANCEL → nothing was reserved, nothing to give back → ORDER_CANCEL to `{}`{again}", self.topics.order),
        }
        Ok(vec![Outgoing {
            topic: self.topics.order.clone(),
            event: event.clone(),
        }])
    }
}

impl SagaStep for InventoryStep {
    async fn handle(&self, event: &SagaEvent) -> Result<Vec<Outgoing>, StepError> {
        match event.status {
            Status::OrderCreated => self.reserve(event).await,
            Status::OrderCancel => self.release(event).await,
            other => Err(StepError::Poison(format!(
                "the inventory consumer handles ORDER_CREATED and ORDER_CANCEL, not {other}"
            ))),
        }
    }
}

/// Runs the inventory consumer until `shutdown`.
pub async fn run(
    kafka: &KafkaArgs,
    mysql: &MysqlArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let kafka = Kafka::new(kafka);
    let store = InventoryStore::connect(mysql).await?;
    kafka.check_reachable().await?;
    let step = InventoryStep {
        store,
        topics: kafka.topics.clone(),
    };
    info!("inventory consumer started");
    let topic = kafka.topics.inventory.clone();
    consumer::run(&kafka, &kafka.group(GROUP), &topic, step, shutdown).await?;
    Ok(())
}
