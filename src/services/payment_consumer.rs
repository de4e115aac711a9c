//! The payment consumer (group `payment_consumer_group`): takes INVENTORY_RESERVED from
//! `payment` and asks a simulated payment gateway. Accepted → PAYMENT_COMPLETE to `order`;
//! declined → ORDER_CANCEL (reason PAYMENT_DECLINED) to `inventory`, which starts the
//! compensation. Each answer is kept ([`super::payment_decisions`]): an event delivered
//! again gets the answer given the first time, also from an instance started with another
//! gateway setting.

use tokio_util::sync::CancellationToken;
use tracing::info;

use super::payment_decisions::Decisions;
use crate::config::KafkaArgs;
use crate::consumer::{self, SagaStep, StepError, StepResult};
use crate::event::{SagaEvent, Status, reason};
use crate::kafka::{Kafka, Record, Topics};

/// The original's consumer group name.
pub const GROUP: &str = "payment_consumer_group";

/// The simulated payment gateway.
#[derive(Debug, Clone, PartialEq)]
pub enum Gateway {
    /// Accepts every payment (`--pg-ok true`).
    Accept,
    /// Declines every payment (`--pg-ok false`).
    Decline,
    /// Declines this fraction of transactions (`--decline-rate 0.3`), chosen by a hash of
    /// the transaction id, so the same transaction always gets the same answer.
    DeclineRate(f64),
    /// Declines the payments of one customer (`edm lab` shows a rollback this way).
    DeclineUser(String),
}

impl Gateway {
    /// Whether the gateway accepts the payment of saga `transaction_id` by `user_id`.
    pub fn accepts(&self, transaction_id: &str, user_id: &str) -> bool {
        match self {
            Gateway::Accept => true,
            Gateway::Decline => false,
            Gateway::DeclineRate(rate) => unit_hash(transaction_id) >= *rate,
            Gateway::DeclineUser(declined) => user_id != declined,
        }
    }
}

/// A stable hash of `text` mapped to [0, 1) (64-bit FNV-1a).
fn unit_hash(text: &str) -> f64 {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

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
        let mut outgoing = Vec::with_capacity(2);
        let accepted = match self.decisions.answer(tx) {
            Some(given) => {
                let now = self.gateway.accepts(tx, &event.order.user_id);
                if now != given {
                    info!(%tx, "INVENTORY_RESERVED again: the gateway would now say {}, but this transaction was {} before — the first answer stands",
                          verdict(now), verdict(given));
                }
                given
            }
            None => {
                let accepted = self.gateway.accepts(tx, &event.order.user_id);
                outgoing.push(self.decisions.remember(tx, accepted));
                accepted
            }
        };
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

fn verdict(accepted: bool) -> &'static str {
    if accepted { "accepted" } else { "declined" }
}

impl SagaStep for PaymentStep {
    type Message = SagaEvent;

    async fn handle(&self, event: &SagaEvent) -> StepResult {
        consumer::only_result(self.handle_batch(&[event]).await)
    }

    /// Answers the batch in its order; first, if a transaction in it has no known answer,
    /// reads every decision made so far (another instance may just have made it).
    async fn handle_batch(&self, events: &[&SagaEvent]) -> Vec<StepResult> {
        if events
            .iter()
            .any(|e| self.decisions.answer(&e.transaction_id).is_none())
            && let Err(error) = self.decisions.catch_up().await
        {
            return events
                .iter()
                .map(|_| Err(StepError::Retry(error.to_string())))
                .collect();
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
    let step = PaymentStep {
        gateway,
        topics: kafka.topics.clone(),
        decisions,
    };
    let topic = kafka.topics.payment.clone();
    consumer::run(kafka, &kafka.group(GROUP), &topic, step, shutdown).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decline_rate_is_stable_and_about_right() {
        let gateway = Gateway::DeclineRate(0.3);
        let ids: Vec<String> = (0..10_000).map(|i| format!("tx-{i}")).collect();
        let declined = ids.iter().filter(|id| !gateway.accepts(id, "u")).count();
        assert!(
            (2_700..3_300).contains(&declined),
            "{declined} of 10000 declined"
        );
        for id in &ids[..100] {
            assert_eq!(gateway.accepts(id, "u"), gateway.accepts(id, "v"));
        }
        assert!(ids.iter().all(|id| Gateway::Accept.accepts(id, "u")));
        assert!(ids.iter().all(|id| !Gateway::Decline.accepts(id, "u")));
        assert!(
            ids.iter()
                .all(|id| Gateway::DeclineRate(0.0).accepts(id, "u"))
        );
        assert!(
            ids.iter()
                .all(|id| !Gateway::DeclineRate(1.0).accepts(id, "u"))
        );
        let bob = Gateway::DeclineUser("bob".into());
        assert!(bob.accepts("t", "alice") && !bob.accepts("t", "bob"));
    }
}
