//! Tools around the services for students and engineers: an order client that replaces
//! the walkthrough's curl steps, a saga tracer, and a health check of the whole stack.

pub mod create_topics;
pub mod doctor;
pub mod order_client;
pub mod order_command;
pub mod trace;
