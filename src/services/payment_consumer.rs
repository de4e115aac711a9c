//! The payment consumer (group `payment_consumer_group`): takes INVENTORY_RESERVED from
//! `payment` and asks a simulated payment gateway. Gateway OK → PAYMENT_COMPLETE to `order`;
//! declined → ORDER_CANCEL (reason PAYMENT_DECLINED) to `inventory`, which starts the
//! compensation. It keeps no store: a redelivered event gets the same answer again.

use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::KafkaArgs;
use crate::consumer::{self, Outgoing, SagaStep, StepError};
use crate::event::{SagaEvent, Status, reason};
use crate::kafka::{Kafka, Topics};

/// The original's consumer group name.
pub const GROUP: &str = "payment_consumer_group";

/// The payment step with a gateway that always accepts or always declines.
pub struct PaymentStep {
    /// Whether the simulated payment gateway accepts payments.
    pub gateway_ok: bool,
    /// Where to send the outcome.
    pub topics: Topics,
}

impl SagaStep for PaymentStep {
    async fn handle(&self, event: &SagaEvent) -> Result<Vec<Outgoing>, StepError> {
        if event.status != Status::InventoryReserved {
            return Err(StepError::Poison(format!(
                "the payment consumer handles INVENTORY_RESERVED, not {}",
                event.status
            )));
        }
        let tx = &event.transaction_id;
        let total = event.total_price();
        if self.gateway_ok {
            info!(%tx, total_price = total, "INVENTORY_RESERVED → payment accepted → PAYMENT_COMPLETE to `{}`", self.topics.order);
            Ok(vec![Outgoing {
                topic: self.topics.order.clone(),
                event: event.with_status(Status::PaymentComplete),
            }])
        } else {
            info!(%tx, total_price = total, "INVENTORY_RESERVED → payment DECLINED → ORDER_CANCEL to `{}` (compensation starts)", self.topics.inventory);
            let mut cancel = event.with_status(Status::OrderCancel);
            cancel.reason = Some(reason::PAYMENT_DECLINED.to_string());
            Ok(vec![Outgoing {
                topic: self.topics.inventory.clone(),
                event: cancel,
            }])
        }
    }
}

/// Runs the payment consumer until `shutdown`.
pub async fn run(
    kafka: &KafkaArgs,
    gateway_ok: bool,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let kafka = Kafka::new(kafka);
    kafka.check_reachable().await?;
    let step = PaymentStep {
        gateway_ok,
        topics: kafka.topics.clone(),
    };
    info!(gateway_ok, "payment consumer started");
    let topic = kafka.topics.payment.clone();
    consumer::run(&kafka, &kafka.group(GROUP), &topic, step, shutdown).await?;
    Ok(())
}
