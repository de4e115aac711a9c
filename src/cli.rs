//! The `edm` command line's shape: subcommands, their flags and help texts.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand};

use edm::config::{DynamoArgs, KafkaArgs, MysqlArgs, parse_bool_flag, parse_rate, parse_seconds};
use edm::lab::LabArgs;

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
    Broker {
        /// Address to listen on.
        #[arg(long, env = "EDM_BROKER_LISTEN", default_value = "127.0.0.1:19092")]
        listen: SocketAddr,
        /// Host that clients are told to connect to (default: the listen address, or
        /// 127.0.0.1 when listening on 0.0.0.0).
        #[arg(long)]
        advertised_host: Option<String>,
        /// Partitions of a topic created on first use.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=10_000))]
        default_partitions: i32,
        /// Refuse to create topics on first use, as production brokers usually do
        /// (Kafka's auto.create.topics.enable=false).
        #[arg(long)]
        no_auto_create_topics: bool,
        /// Keep topics, events and committed offsets in this directory, so that they
        /// survive a restart (default: in memory, gone when the broker stops).
        #[arg(long, env = "EDM_BROKER_DATA_DIR")]
        data_dir: Option<std::path::PathBuf>,
    },
    /// Create the topics `order`, `inventory` and `payment` and their dead-letter topics
    /// (existing ones are kept, or grown with --partitions) and list them.
    CreateTopics {
        /// Partitions per topic: new topics get this many (default 1), existing ones with
        /// fewer are grown to it (a topic never shrinks).
        #[arg(long, value_parser = clap::value_parser!(i32).range(1..=10_000))]
        partitions: Option<i32>,
        /// Replication factor per topic.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
        replication_factor: i32,
        #[command(flatten)]
        kafka: KafkaArgs,
    },
    /// Create the MySQL tables with the five seed items and the DynamoDB table `order`.
    Setup {
        #[command(flatten)]
        mysql: MysqlArgs,
        #[command(flatten)]
        dynamo: DynamoArgs,
    },
    /// HTTP order service: POST /v1/order, GET /v1/order?transaction_id=…&user_id=…
    OrderService {
        /// Address to listen on.
        #[arg(
            long,
            env = "EDM_ORDER_SERVICE_LISTEN",
            default_value = "127.0.0.1:8080"
        )]
        listen: SocketAddr,
        /// Seconds a POST waits for Kafka's acknowledgement before answering 202 (order
        /// stored; its event goes out from the outbox once Kafka answers).
        #[arg(long, default_value = "5", value_parser = parse_seconds)]
        delivery_timeout: Duration,
        /// Seconds after which an order whose ORDER_CREATED was never acknowledged (Kafka
        /// was down, or the service stopped in between) has it sent from the outbox.
        #[arg(long, default_value = "30", value_parser = parse_seconds)]
        resend_after: Duration,
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        dynamo: DynamoArgs,
    },
    /// Saga step 4: records PAYMENT_COMPLETE / ORDER_CANCEL on the stored order.
    OrderConsumer {
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        dynamo: DynamoArgs,
    },
    /// Saga step 2: reserves stock on ORDER_CREATED, gives it back on ORDER_CANCEL.
    InventoryConsumer {
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        mysql: MysqlArgs,
    },
    /// HTTP inventory service (read-only): GET /v1/inventory, GET /v1/inventory_history
    InventoryService {
        /// Address to listen on.
        #[arg(
            long,
            env = "EDM_INVENTORY_SERVICE_LISTEN",
            default_value = "127.0.0.1:8090"
        )]
        listen: SocketAddr,
        #[command(flatten)]
        mysql: MysqlArgs,
    },
    /// Saga step 3: a simulated payment gateway that accepts (true) or declines (false).
    #[command(group(clap::ArgGroup::new("gateway").required(true).args(["pg_ok", "decline_rate"])))]
    PaymentConsumer {
        /// Whether the payment gateway accepts payments (the course's True/False argument).
        #[arg(long, value_name = "true|false", value_parser = parse_bool_flag,
              action = clap::ArgAction::Set)]
        pg_ok: Option<bool>,
        /// Decline this fraction of payments instead (0.0–1.0), chosen by transaction id.
        #[arg(long, value_name = "RATE", value_parser = parse_rate)]
        decline_rate: Option<f64>,
        #[command(flatten)]
        kafka: KafkaArgs,
    },
    /// The whole exercise in one process: a successful and a declined saga, their
    /// timelines, the final rows and the invariant checks; `--orders N` for a load run.
    Lab(LabArgs),
    /// Place or show an order through the order service (replaces the curl steps).
    Order {
        #[command(subcommand)]
        command: OrderCommand,
    },
    /// Print one saga's events from the topics, in order.
    Trace {
        /// The saga's transaction id.
        transaction_id: String,
        #[command(flatten)]
        kafka: KafkaArgs,
    },
    /// Check which servers and services answer, and say how to start the others.
    Doctor {
        #[command(flatten)]
        kafka: KafkaArgs,
        #[command(flatten)]
        mysql: MysqlArgs,
        #[command(flatten)]
        dynamo: DynamoArgs,
        /// Base URL of the order service.
        #[arg(
            long,
            env = "EDM_ORDER_SERVICE_URL",
            default_value = "http://127.0.0.1:8080"
        )]
        order_url: String,
        /// Base URL of the inventory service.
        #[arg(
            long,
            env = "EDM_INVENTORY_SERVICE_URL",
            default_value = "http://127.0.0.1:8090"
        )]
        inventory_url: String,
    },
}

/// `edm order …`: the walkthrough's curl steps.
#[derive(Subcommand, Debug)]
pub enum OrderCommand {
    /// Place an order (POST /v1/order) and print its transaction id.
    Place {
        /// Customer id.
        #[arg(long, default_value = "user")]
        user: String,
        /// Item id (1 cloth, 2 cap, 3 sunglasses, 4 necklace, 5 earring).
        #[arg(long, default_value_t = 2)]
        item: i64,
        /// Units.
        #[arg(long, default_value_t = 5)]
        quantity: i64,
        /// Customer name.
        #[arg(long, default_value = "Hong Gil Dong")]
        name: String,
        /// Delivery address.
        #[arg(long, default_value = "29, Hansil-ro, Jung-gu, Seoul")]
        addr: String,
        /// Phone number.
        #[arg(long, default_value = "01012341234")]
        tel: String,
        /// E-mail address.
        #[arg(long, default_value = "hong@gil.com")]
        email: String,
        /// Wait until the saga has finished and print the order.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        output: OrderOutput,
    },
    /// Show an order (GET /v1/order).
    Get {
        /// The transaction id printed by `edm order place`.
        transaction_id: String,
        /// Customer id.
        #[arg(long, default_value = "user")]
        user: String,
        /// Wait until the saga has finished.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        output: OrderOutput,
    },
}

/// Where the order service is and how to print.
#[derive(clap::Args, Debug)]
pub struct OrderOutput {
    /// Base URL of the order service.
    #[arg(
        long,
        env = "EDM_ORDER_SERVICE_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}
