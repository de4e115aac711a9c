//! The `edm` command line's shape: one subcommand per step of the course exercise, each
//! with its flags defined next to the code that runs it.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use edm::lab::LabArgs;
use edm::services::cli::{
    InventoryConsumerArgs, InventoryServiceArgs, OrchestratorArgs, OrderConsumerArgs,
    OrderServiceArgs, PaymentConsumerArgs,
};
use edm::setup::SetupArgs;
use edm::tools::create_topics::CreateTopicsArgs;
use edm::tools::doctor::Targets;
use edm::tools::order_command::OrderCommand;
use edm::tools::trace::TraceArgs;
use edm::view::UiArgs;
use edm_broker::BrokerConfig;

/// Event-driven microservices with Kafka: the course's order / inventory / payment SAGA.
#[derive(Parser, Debug)]
#[command(name = "edm", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run edm's own Kafka-protocol broker, in memory: Kafka for the walkthrough without
    /// Docker (the services' default --bootstrap-servers is its default address).
    Broker(BrokerConfig),
    /// Create the topics `order`, `inventory` and `payment` and their dead-letter topics
    /// (existing ones are kept, or grown with --partitions) and list them.
    CreateTopics(CreateTopicsArgs),
    /// Create the MySQL tables with the five seed items and the DynamoDB table `order`.
    Setup(SetupArgs),
    /// HTTP order service: POST /v1/order, GET /v1/order?transaction_id=…&user_id=…
    OrderService(OrderServiceArgs),
    /// Orchestration (`order-service --saga orchestration`): drives each saga by commands
    /// and replies, compensates, ends stuck sagas after --step-timeout.
    Orchestrator(OrchestratorArgs),
    /// Saga step 4: records PAYMENT_COMPLETE / ORDER_CANCEL on the stored order.
    OrderConsumer(OrderConsumerArgs),
    /// Saga step 2: reserves stock on ORDER_CREATED, gives it back on ORDER_CANCEL (and
    /// answers the orchestrator's RESERVE_STOCK / RELEASE_STOCK).
    InventoryConsumer(InventoryConsumerArgs),
    /// HTTP inventory service (read-only): GET /v1/inventory, GET /v1/inventory_history
    InventoryService(InventoryServiceArgs),
    /// Saga step 3: a simulated payment gateway that accepts (true) or declines (false)
    /// (and answers the orchestrator's TAKE_PAYMENT / CANCEL_PAYMENT).
    PaymentConsumer(PaymentConsumerArgs),
    /// The whole exercise in one process: a successful and a declined saga, their
    /// timelines, the final rows and the invariant checks; `--orders N` for a load run.
    Lab(LabArgs),
    /// Place or show an order through the order service (replaces the curl steps).
    Order {
        #[command(subcommand)]
        command: OrderCommand,
    },
    /// Print one saga's events from the topics, in order.
    Trace(TraceArgs),
    /// Check which servers and services answer, and say how to start the others.
    Doctor(Targets),
    /// Serve the live web view of the sagas on Kafka (both styles; what `edm trace` reads).
    Ui(UiArgs),
}

impl Cli {
    /// The command line, parsed; `--help` and mistakes print and exit as clap does.
    pub fn from_env() -> Self {
        let matches = help_without_env_values(Cli::command()).get_matches();
        Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
    }
}

/// Help names each flag's environment variable without its value: clap shows an unset one
/// as `[env: EDM_BOOTSTRAP_SERVERS=]`, which reads as "set, to nothing".
fn help_without_env_values(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| arg.hide_env_values(true))
        .mut_subcommands(help_without_env_values)
}

#[cfg(test)]
mod tests {
    /// clap's own checks of every subcommand (two flags with one name, a default that does
    /// not parse…), which otherwise run only when that subcommand is used.
    #[test]
    fn every_subcommand_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
