//! The course's services, one module each: two HTTP services and three saga consumers.

pub mod cli;
pub mod inventory_commands;
pub mod inventory_consumer;
pub mod inventory_service;
mod inventory_steps;
pub mod orchestrator;
pub mod order_consumer;
pub mod order_service;
pub mod outbox_relay;
pub mod payment_commands;
pub mod payment_consumer;
pub mod payment_decisions;
pub mod payment_gateway;
