//! How each service is started from the command line (`edm order-service`, …): its flags,
//! and a run under a span named after the service, stopped by Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use tracing::Instrument;

use super::order_service::OrderServiceOptions;
use super::payment_consumer::Gateway;
use super::{
    inventory_consumer, inventory_service, orchestrator, order_consumer, order_service,
    payment_consumer,
};
use crate::config::{
    InventoryStoreArgs, KafkaArgs, OrderStoreArgs, parse_bool_flag, parse_rate, parse_seconds,
};
use crate::orchestration::SagaStyle;
use crate::{http, shutdown};

/// `edm order-service` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct OrderServiceArgs {
    /// Address to listen on.
    #[arg(
        long,
        env = "EDM_ORDER_SERVICE_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: SocketAddr,
    /// Seconds a POST waits for Kafka's acknowledgement before answering 202 (order
    /// stored; its event goes out from the outbox once Kafka answers).
    #[arg(long, default_value = "5", value_parser = parse_seconds)]
    pub delivery_timeout: Duration,
    /// Seconds after which an order whose ORDER_CREATED was never acknowledged (Kafka was
    /// down, or the service stopped in between) has it sent from the outbox.
    #[arg(long, default_value = "30", value_parser = parse_seconds)]
    pub resend_after: Duration,
    /// The SAGA style of new orders: events (the course's) or commands from
    /// `edm orchestrator`.
    #[arg(long, value_enum, env = "EDM_SAGA", default_value_t = SagaStyle::Choreography)]
    pub saga: SagaStyle,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub dynamo: OrderStoreArgs,
}

/// `edm order-service`.
pub async fn order_service(args: OrderServiceArgs) -> anyhow::Result<()> {
    let listener = http::bind(args.listen).await?;
    let options = OrderServiceOptions {
        delivery_timeout: args.delivery_timeout,
        resend_after: args.resend_after,
        saga: args.saga,
    };
    order_service::run(
        listener,
        &args.kafka,
        &args.dynamo,
        options,
        shutdown::on_signal(),
    )
    .instrument(tracing::info_span!("order-service"))
    .await
}

/// `edm orchestrator` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct OrchestratorArgs {
    /// Seconds a saga step may wait for its reply; then its command is sent once more, and
    /// after a second wait the saga is compensated (reason TIMEOUT).
    #[arg(long, default_value = "5", value_parser = parse_seconds)]
    pub step_timeout: Duration,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub dynamo: OrderStoreArgs,
}

/// `edm orchestrator`.
pub async fn orchestrator(args: OrchestratorArgs) -> anyhow::Result<()> {
    orchestrator::run(
        &args.kafka,
        &args.dynamo,
        args.step_timeout,
        shutdown::on_signal(),
    )
    .instrument(tracing::info_span!("orchestrator"))
    .await
}

/// `edm order-consumer` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct OrderConsumerArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub dynamo: OrderStoreArgs,
}

/// `edm order-consumer`.
pub async fn order_consumer(args: OrderConsumerArgs) -> anyhow::Result<()> {
    order_consumer::run(&args.kafka, &args.dynamo, shutdown::on_signal())
        .instrument(tracing::info_span!("order-consumer"))
        .await
}

/// `edm inventory-consumer` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct InventoryConsumerArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub mysql: InventoryStoreArgs,
}

/// `edm inventory-consumer`.
pub async fn inventory_consumer(args: InventoryConsumerArgs) -> anyhow::Result<()> {
    inventory_consumer::run(&args.kafka, &args.mysql, shutdown::on_signal())
        .instrument(tracing::info_span!("inventory-consumer"))
        .await
}

/// `edm inventory-service` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct InventoryServiceArgs {
    /// Address to listen on.
    #[arg(
        long,
        env = "EDM_INVENTORY_SERVICE_LISTEN",
        default_value = "127.0.0.1:8090"
    )]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub mysql: InventoryStoreArgs,
}

/// `edm inventory-service`.
pub async fn inventory_service(args: InventoryServiceArgs) -> anyhow::Result<()> {
    let listener = http::bind(args.listen).await?;
    inventory_service::run(listener, &args.mysql, shutdown::on_signal())
        .instrument(tracing::info_span!("inventory-service"))
        .await
}

/// `edm payment-consumer` flags: `--pg-ok` as in the course, or a decline rate.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("gateway").required(true).args(["pg_ok", "decline_rate"])))]
pub struct PaymentConsumerArgs {
    /// Whether the payment gateway accepts payments (the course's True/False argument).
    #[arg(long, value_name = "true|false", value_parser = parse_bool_flag,
          action = clap::ArgAction::Set)]
    pub pg_ok: Option<bool>,
    /// Decline this fraction of payments instead (0.0–1.0), chosen by transaction id.
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub decline_rate: Option<f64>,
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

/// `edm payment-consumer`.
pub async fn payment_consumer(args: PaymentConsumerArgs) -> anyhow::Result<()> {
    let gateway = match (args.pg_ok, args.decline_rate) {
        (_, Some(rate)) => Gateway::DeclineRate(rate),
        (Some(true), None) => Gateway::Accept,
        _ => Gateway::Decline,
    };
    payment_consumer::run(&args.kafka, gateway, shutdown::on_signal())
        .instrument(tracing::info_span!("payment-consumer"))
        .await
}
