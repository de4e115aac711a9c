//! `edm`: the Kafka course's event-driven microservices exercise — a choreography-based
//! SAGA between an order, an inventory and a payment service — as one Rust binary,
//! wire-compatible with the original Python/Node services.
//!
//! - [`event`]: the saga event that travels on every topic.
//! - [`kafka`], [`consumer`]: topics, producer, and the consume → apply → produce → commit loop.
//! - [`store`]: stock in MySQL, orders in DynamoDB.
//! - [`services`]: one module per service of the course.
//! - [`setup`], [`config`], [`http`], [`shutdown`], [`telemetry`]: around them.
//! - [`tools`]: `edm order`, `edm trace`, `edm doctor`.
//! - [`lab`]: `edm lab`, the exercise in one process, and its load mode (the benchmark).

pub mod broker;
pub mod config;
pub mod consumer;
pub mod event;
pub mod http;
pub mod kafka;
pub mod lab;
pub mod orchestration;
pub mod services;
pub mod setup;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod tools;
pub mod view;
