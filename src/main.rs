//! The `edm` command line: parses, sets up logging, and hands each subcommand to the
//! module that runs it.

mod cli;

use std::process::ExitCode;

use cli::{Cli, Command};
use edm::services::cli as service;
use edm::tools::{create_topics, doctor, order_command, trace};
use edm::{broker, lab, setup, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    quiet_on_a_closed_pipe();
    let cli = Cli::from_env();
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
        Command::Ui(args) => edm::view::command(args).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `edm create-topics | head -3`: when the reader of stdout goes away, end quietly as Unix
/// tools do (SIGPIPE's default action) rather than panic on the failed write, which is
/// what Rust's runtime makes of it by ignoring the signal.
fn quiet_on_a_closed_pipe() {
    // SAFETY: called first thing in main, before any thread is started; restores the
    // signal's default disposition and touches nothing else.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
