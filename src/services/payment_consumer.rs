//! The payment consumer (group `payment_consumer_group`): takes INVENTORY_RESERVED from
//! `payment` and asks a simulated payment gateway. Accepted → PAYMENT_COMPLETE to `order`;
//! declined → ORDER_CANCEL (reason PAYMENT_DECLINED) to `inventory`, which starts the
//! compensation. Each answer is kept ([`super::payment_decisions`]): an event delivered
//! again gets the answer given the first time, also from an instance started with another
//! gateway setting.

use tokio_util::sync::CancellationToken;
use tracing::info;

use super::payment_commands::{COMMAND_GROUP, PaymentCommandStep};
use super::payment_decisions::Decisions;
pub use super::payment_gateway::Gateway;
use crate::config::KafkaArgs;
use crate::consumer::{self, Loop, SagaStep, StepError, StepResult};
use crate::event::{SagaEvent, Status, reason};
use crate::kafka::{Kafka, Record, Topics};

/// The original's consumer group name.
pub const GROUP: &str = "payment_consumer_group";

/// Step 3 of the saga: asks the (simulated) gateway once per transaction.
pub struct PaymentStep {
    /// Decides transactions not decided before.
    pub gateway: Gateway,
    /// Where the outcome goes: `order` when paid, `inventory` (compensation) when declined.
    pub topics: Topics,
    /// The answers already given, so a redelivery gets the same one whatever `gateway` says
    /// now.
    pub decisions: Decisions,
}

impl PaymentStep {
    /// The outcome of `event` for a decision, and the decision's record if it is new.
    fn answer(&self, event: &SagaEvent) -> StepResult {
        if event.status != Status::InventoryReserved {
            return Err(StepError::Poison(format!(
                "the payment consumer handles INVENTORY_RESERVED, not {}",
                event.status
            )));
        }
        let tx = &event.transaction_id;
        let total = event.total_price();
        let (accepted, decision) = self
            .decisions
            .decide(&self.gateway, tx, &event.order.user_id)
            .map_err(|unknowable| StepError::Poison(unknowable.to_string()))?;
        let mut outgoing: Vec<Record> = decision.into_iter().collect();
        if accepted {
            info!(%tx, total_price = total, "INVENTORY_RESERVED → payment accepted → PAYMENT_COMPLETE to `{}`", self.topics.order);
            outgoing.push(Record::event(
                &self.topics.order,
                &event.with_status(Status::PaymentComplete),
            ));
        } else {
            info!(%tx, total_price = total, "INVENTORY_RESERVED → payment DECLINED → ORDER_CANCEL to `{}` (compensation starts)", self.topics.inventory);
            let mut cancel = event.with_status(Status::OrderCancel);
            cancel.reason = Some(reason::PAYMENT_DECLINED.to_string());
            outgoing.push(Record::event(&self.topics.inventory, &cancel));
        }
        Ok(outgoing)
    }
}

impl SagaStep for PaymentStep {
    type Message = SagaEvent;

    async fn handle(&self, event: &SagaEvent) -> StepResult {
        consumer::only_result(self.handle_batch(&[event]).await)
    }

    /// Answers the batch in its order; first, if a transaction in it has no known answer,
    /// reads every decision made so far (another instance may just have made it).
    async fn handle_batch(&self, events: &[&SagaEvent]) -> Vec<StepResult> {
        let transactions = events.iter().map(|e| e.transaction_id.as_str());
        if let Err(error) = self.decisions.know(transactions).await {
            return events.iter().map(|_| Err(error.step_error())).collect();
        }
        events.iter().map(|event| self.answer(event)).collect()
    }
}

/// Runs the payment consumer until `shutdown` (`edm payment-consumer`).
pub async fn run(
    kafka: &KafkaArgs,
    gateway: Gateway,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    consume(&Kafka::connect(kafka).await?, gateway, shutdown).await
}

/// Runs the payment consumer on `kafka` until `shutdown`.
pub async fn consume(
    kafka: &Kafka,
    gateway: Gateway,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let decisions = Decisions::open(kafka, shutdown.clone()).await?;
    info!(
        ?gateway,
        known_decisions = decisions.len(),
        "payment consumer started"
    );
    let events = PaymentStep {
        gateway: gateway.clone(),
        topics: kafka.topics.clone(),
        decisions: decisions.clone(),
    };
    let commands = PaymentCommandStep {
        gateway,
        topics: kafka.topics.clone(),
        decisions,
    };
    let topics = &kafka.topics;
    let events = Loop {
        group: kafka.group(GROUP),
        topic: &topics.payment,
        step: events,
    };
    let commands = Loop {
        group: kafka.group(COMMAND_GROUP),
        topic: &topics.payment_commands,
        step: commands,
    };
    // One memory of answers for both loops (`decisions`, cloned).
    consumer::run_both(kafka, events, commands, shutdown).await?;
    Ok(())
}
