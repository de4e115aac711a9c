//! Orchestration, the course's second SAGA style: an orchestrator owns each saga, sends
//! the participants commands and moves on by their replies (see the README's
//! "Orchestration" section for the topics and messages). Choreography — events, each
//! service reacting to the last — stays the default and the course's.
//!
//! Landed so far: the messages, and both participants, which answer commands with the
//! same stores, idempotency and books as the events: the inventory (RESERVE_STOCK,
//! RELEASE_STOCK) and the payment service (TAKE_PAYMENT). The orchestrator and its
//! timeouts come next.

pub mod messages;
