//! The saga's topic names: the course's three, the orchestrated saga's command and reply
//! topics, their dead-letter topics and the payment consumer's decisions, all behind an
//! optional prefix (so several labs share a broker).

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
    /// Orchestration: the orchestrator's commands to the inventory (RESERVE_STOCK,
    /// RELEASE_STOCK).
    pub inventory_commands: String,
    /// Orchestration: the orchestrator's commands to the payment service (TAKE_PAYMENT).
    pub payment_commands: String,
    /// Orchestration: every participant's replies, for the orchestrator.
    pub saga_replies: String,
}

impl Topics {
    /// Topic names under `prefix` (empty: `order`, `inventory`, `payment`).
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            order: format!("{prefix}order"),
            inventory: format!("{prefix}inventory"),
            payment: format!("{prefix}payment"),
            payment_decisions: format!("{prefix}payment.decisions"),
            inventory_commands: format!("{prefix}inventory.commands"),
            payment_commands: format!("{prefix}payment.commands"),
            saga_replies: format!("{prefix}order-saga.replies"),
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

    /// The topic a dead-letter topic's events came from (`topic` itself otherwise).
    pub fn origin(topic: &str) -> &str {
        topic.strip_suffix(DEAD_LETTER_SUFFIX).unwrap_or(topic)
    }

    /// Whether `topic` is a dead-letter topic.
    pub fn is_dead_letter(topic: &str) -> bool {
        topic.ends_with(DEAD_LETTER_SUFFIX)
    }

    /// The orchestrated saga's topics: commands to each participant, replies to the
    /// orchestrator.
    pub fn orchestration(&self) -> [&str; 3] {
        [
            &self.inventory_commands,
            &self.payment_commands,
            &self.saga_replies,
        ]
    }

    /// Every topic edm uses — the three, the orchestration's three, their dead-letter
    /// topics and the payment consumer's decisions: what `edm create-topics` creates, so
    /// that nothing waits for a topic on a broker that creates none by itself.
    pub fn every_topic(&self) -> Vec<String> {
        let consumed: Vec<&str> = self.all().into_iter().chain(self.orchestration()).collect();
        let mut names: Vec<String> = consumed.iter().map(|t| t.to_string()).collect();
        names.extend(consumed.iter().map(|t| Self::dead_letter(t)));
        names.push(self.payment_decisions.clone());
        names
    }

    /// The topic configs edm gives `topic` (what `edm create-topics` sets): the payment
    /// decisions are compacted (`cleanup.policy=compact`), so that the broker keeps the
    /// latest decision of every transaction for good, where its default policy would
    /// delete them after 7 days (`retention.ms`) and a payment consumer started later
    /// would decide again what it had already answered.
    pub fn configs_of(&self, topic: &str) -> Vec<(&'static str, &'static str)> {
        match topic == self.payment_decisions {
            true => vec![("cleanup.policy", "compact")],
            false => Vec::new(),
        }
    }
}
