//! The `edm` command line: parses, sets up logging, and hands each subcommand to the
//! module that runs it.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
use edm::services::cli as service;
use edm::tools::{create_topics, doctor, order_command, trace};
use edm::{broker, lab, setup, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        // The lab prints its own report; its services only log problems.
        Command::Lab(_) => telemetry::init_with_default("warn,rdkafka=error,librdkafka=error"),
        _ => telemetry::init(),
    }
    let outcome = match cli.command {
        Command::Broker(config) => broker::command(config).await,
        Command::CreateTopics(args) => create_topics::command(args).await,
        Command::Setup(args) => setup::command(args).await,
        Command::OrderService(args) => service::order_service(args).await,
        Command::OrderConsumer(args) => service::order_consumer(args).await,
        Command::Orchestrator(args) => service::orchestrator(args).await,
        Command::InventoryConsumer(args) => service::inventory_consumer(args).await,
        Command::InventoryService(args) => service::inventory_service(args).await,
        Command::PaymentConsumer(args) => service::payment_consumer(args).await,
        Command::Lab(args) => lab::command(args).await,
        Command::Order { command } => order_command::command(command).await,
        Command::Trace(args) => trace::command(args).await,
        Command::Doctor(targets) => doctor::command(targets).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
