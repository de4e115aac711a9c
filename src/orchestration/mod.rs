//! Orchestration, the course's second SAGA style: an orchestrator owns each saga, sends
//! the participants commands and moves on by their replies (see the README's
//! "Orchestration" section for the topics and messages). Choreography — events, each
//! service reacting to the last — stays the default and the course's.
//!
//! Landed so far: the messages, and the inventory consumer as a participant (it answers
//! RESERVE_STOCK and RELEASE_STOCK with the same store, idempotency and books as the
//! events). The payment participant, the orchestrator and its timeouts come next.

pub mod messages;
