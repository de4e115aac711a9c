//! The order consumer (group `order_consumer_group`): takes the saga's outcome from
//! `order` and records it on the stored order: PAYMENT_COMPLETE → ORDER_COMPLETE,
//! ORDER_CANCEL → ORDER_CANCEL (with the `reason`). Status only moves forward.

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{KafkaArgs, OrderStoreArgs};
use crate::consumer::{self, Outgoing, SagaStep, StepError};
use crate::event::{SagaEvent, Status, reason};
use crate::kafka::{Kafka, Record, Topics};
use crate::store::orders::{OrderStore, Transition};

/// The original's consumer group name.
pub const GROUP: &str = "order_consumer_group";

/// A saga that reached its final status (reported to an observer such as `edm lab`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Which saga: the observer matches it with the order it placed.
    pub transaction_id: String,
    /// ORDER_COMPLETE or ORDER_CANCEL.
    pub status: Status,
    /// Why it was cancelled, if it was.
    pub reason: Option<String>,
}

/// Where finished sagas are reported, if anywhere. A saga may be reported more than once
/// (a redelivered final event): observers keep the first report.
pub type FinishedSender = tokio::sync::mpsc::UnboundedSender<Finished>;

/// Step 4 of the saga: moves the stored order to its final status, once.
pub struct OrderStep {
    /// Where the order's status moves (conditionally: only forward, never twice).
    pub store: OrderStore,
    /// Where to send a late compensation.
    pub topics: Topics,
    /// Told about every order this step moves to its final status.
    pub observer: Option<FinishedSender>,
}

impl OrderStep {
    /// Tells the observer, if any, that the saga of `event` ended in `status`.
    fn report(&self, event: &SagaEvent, status: Status) {
        if let Some(observer) = &self.observer {
            let _ = observer.send(Finished {
                transaction_id: event.transaction_id.clone(),
                status,
                reason: event.reason.clone(),
            });
        }
    }
}

impl SagaStep for OrderStep {
    type Message = SagaEvent;

    async fn handle(&self, event: &SagaEvent) -> Result<Vec<Outgoing>, StepError> {
        let next = match event.status {
            Status::PaymentComplete => Status::OrderComplete,
            Status::OrderCancel => Status::OrderCancel,
            other => {
                return Err(StepError::Poison(format!(
                    "the order consumer handles PAYMENT_COMPLETE and ORDER_CANCEL, not {other}"
                )));
            }
        };
        let tx = &event.transaction_id;
        let user = &event.order.user_id;
        let reason = event.reason.as_deref();
        let transition = self
            .store
            .finish(tx, user, next, reason)
            .await
            .map_err(|error| match error {
                // The same write will always be refused: dead-letter it with the reason.
                _ if error.is_permanent() => StepError::Poison(error.to_string()),
                _ => StepError::Retry(error.to_string()),
            })?;
        match transition {
            Transition::Moved => {
                info!(%tx, user, reason, "{} → order is now {next}", event.status);
                self.report(event, next);
            }
            Transition::AlreadyThere => {
                // A redelivered event, or a retried write whose first answer was lost:
                // either way the saga is finished, so an observer hears of it (again).
                info!(%tx, user, "{} → order already {next} (redelivered event, nothing changed)", event.status);
                self.report(event, next);
            }
            Transition::Refused { current } if event.status == Status::PaymentComplete => {
                // The order was cancelled (e.g. its ORDER_CREATED was reported unsent, yet
                // reached the broker) while the saga went on: give the stock back.
                warn!(%tx, user, "PAYMENT_COMPLETE for an order that is already {current} → ORDER_CANCEL to `{}` to give the stock back", self.topics.inventory);
                let mut cancel = event.with_status(Status::OrderCancel);
                cancel.reason = Some(reason::ORDER_ALREADY_CANCELLED.to_string());
                return Ok(vec![Record::event(&self.topics.inventory, &cancel)]);
            }
            Transition::Refused { current } => {
                warn!(%tx, user, "{} → order stays {current}: a finished order never changes", event.status)
            }
            Transition::Missing => {
                return Err(StepError::Poison(format!(
                    "no order with transaction_id {tx} and user_id {user} in table `{}`",
                    self.store.table()
                )));
            }
        }
        Ok(Vec::new())
    }
}

/// Runs the order consumer until `shutdown` (`edm order-consumer`).
pub async fn run(
    kafka: &KafkaArgs,
    dynamo: &OrderStoreArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let store = OrderStore::connect(dynamo).await?;
    store.check_table().await?;
    let kafka = Kafka::connect(kafka).await?;
    consume(&kafka, store, None, shutdown).await
}

/// Runs the order consumer on `kafka` with an open `store` until `shutdown`, reporting
/// finished sagas to `observer` (how `edm lab` shares one store between the order service
/// and the order consumer, and learns when sagas end).
pub async fn consume(
    kafka: &Kafka,
    store: OrderStore,
    observer: Option<FinishedSender>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    store.check_table().await?;
    info!(table = store.table(), "order consumer started");
    let topic = kafka.topics.order.clone();
    consumer::run(
        kafka,
        &kafka.group(GROUP),
        &topic,
        OrderStep {
            store,
            topics: kafka.topics.clone(),
            observer,
        },
        shutdown,
    )
    .await?;
    Ok(())
}
