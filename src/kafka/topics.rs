//! The saga's topic names: the course's three, their dead-letter topics and the payment
//! consumer's decisions, all behind an optional prefix (so several labs share a broker).

/// What a dead-letter topic's name ends with.
const DEAD_LETTER_SUFFIX: &str = ".dlq";

/// The saga's topic names (the course's names, behind an optional prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    /// Events for the order consumer: PAYMENT_COMPLETE, ORDER_CANCEL.
    pub order: String,
    /// Events for the inventory consumer: ORDER_CREATED, ORDER_CANCEL.
    pub inventory: String,
    /// Events for the payment consumer: INVENTORY_RESERVED.
    pub payment: String,
    /// The payment consumer's answers, by transaction id (compacted: the latest per key).
    pub payment_decisions: String,
}

impl Topics {
    /// Topic names under `prefix` (empty: `order`, `inventory`, `payment`).
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            order: format!("{prefix}order"),
            inventory: format!("{prefix}inventory"),
            payment: format!("{prefix}payment"),
            payment_decisions: format!("{prefix}payment.decisions"),
        }
    }

    /// The three topics, in the order the saga first uses them.
    pub fn all(&self) -> [&str; 3] {
        [&self.inventory, &self.payment, &self.order]
    }

    /// The dead-letter topic for events from `topic` that cannot be processed.
    pub fn dead_letter(topic: &str) -> String {
        format!("{topic}{DEAD_LETTER_SUFFIX}")
    }

    /// Whether `topic` is a dead-letter topic.
    pub fn is_dead_letter(topic: &str) -> bool {
        topic.ends_with(DEAD_LETTER_SUFFIX)
    }

    /// Every topic edm uses — the three, their dead-letter topics and the payment
    /// consumer's decisions: what `edm create-topics` creates, so that nothing waits for a
    /// topic on a broker that creates none by itself.
    pub fn every_topic(&self) -> Vec<String> {
        let mut names: Vec<String> = self.all().iter().map(|t| t.to_string()).collect();
        names.extend(self.all().iter().map(|t| Self::dead_letter(t)));
        names.push(self.payment_decisions.clone());
        names
    }

    /// Whether `topic` keeps only the latest record of each key (Kafka's
    /// `cleanup.policy=compact`): a topic of decisions, not of events.
    pub fn is_compacted(&self, topic: &str) -> bool {
        topic == self.payment_decisions
    }
}
