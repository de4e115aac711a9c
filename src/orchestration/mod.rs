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

    /// Where the style keeps a saga's state, who moves it on, how it is undone, and what
    /// happens when a participant is silent: the facts of this implementation, as the
    /// lab's comparison and the web view put them side by side.
    pub fn traits(self) -> [(&'static str, &'static str); 4] {
        match self {
            SagaStyle::Choreography => [
                (
                    "saga state lives in",
                    "the last event; each service's own rows",
                ),
                ("next step decided by", "each service, on the event before"),
                ("compensation", "payment emits ORDER_CANCEL; stock back"),
                ("a silent participant", "the saga waits until it is back"),
            ],
            SagaStyle::Orchestration => [
                (
                    "saga state lives in",
                    "the order: saga_state, history, outbox",
                ),
                ("next step decided by", "the orchestrator, on each reply"),
                ("compensation", "orchestrator sends RELEASE_STOCK"),
                ("a silent participant", "retry, then compensate (TIMEOUT)"),
            ],
        }
    }
}
