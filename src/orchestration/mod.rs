//! Orchestration, the course's second SAGA style: an orchestrator owns each saga, sends
//! the participants commands and moves on by their replies (see the README's
//! "Orchestration" section for the topics and messages). Choreography — events, each
//! service reacting to the last — stays the default and the course's.
//!
//! Here: the messages ([`messages`]) and the saga's states and rules ([`saga`]). The
//! services that use them: `services::orchestrator`, and the participants'
//! `inventory_commands` and `payment_commands`, which answer commands with the same stores,
//! idempotency and books as the events.

pub mod messages;
pub mod saga;

/// Which SAGA style the order service starts (`--saga`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SagaStyle {
    /// Events: ORDER_CREATED to `inventory`, each service reacting to the last (the
    /// course's exercise).
    #[default]
    Choreography,
    /// Commands: the order and its saga stored together, RESERVE_STOCK to
    /// `inventory.commands`; `edm orchestrator` takes it from there.
    Orchestration,
}

impl SagaStyle {
    /// Its name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            SagaStyle::Choreography => "choreography",
            SagaStyle::Orchestration => "orchestration",
        }
    }
}
