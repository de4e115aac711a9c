//! `edm lab`'s flags: where the servers are (each defaulting to an embedded one), the
//! topics' partitions, and the load run's shape.

use std::time::Duration;

use clap::Args;

use crate::config::{
    PropertyList, parse_orders_per_second, parse_properties, parse_rate, parse_seconds,
};
use crate::orchestration::SagaStyle;

/// Which SAGA styles a lab run shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LabSagas {
    Choreography,
    Orchestration,
    /// Each style in turn, with the same orders, then the two side by side.
    Both,
}

impl LabSagas {
    /// The styles to run, in order.
    pub fn styles(self) -> Vec<SagaStyle> {
        match self {
            LabSagas::Choreography => vec![SagaStyle::Choreography],
            LabSagas::Orchestration => vec![SagaStyle::Orchestration],
            LabSagas::Both => vec![SagaStyle::Choreography, SagaStyle::Orchestration],
        }
    }
}

/// `edm lab` flags.
#[derive(Args, Debug, Clone)]
pub struct LabArgs {
    /// Kafka bootstrap servers (default: a broker embedded in this process).
    #[arg(long, env = "EDM_BOOTSTRAP_SERVERS")]
    pub bootstrap_servers: Option<String>,
    /// Extra librdkafka property, `key=value` (repeatable; a value may hold commas).
    #[arg(short = 'X', long = "kafka-property", env = "EDM_KAFKA_PROPERTIES",
          value_parser = parse_properties)]
    pub properties: Vec<PropertyList>,
    /// MySQL server, e.g. mysql://root:inventorypw@127.0.0.1:3306/inventory; the lab uses a
    /// database of its own on it (`edm_lab_<id>`). Default: an embedded SQLite file.
    #[arg(long = "mysql-url", value_name = "URL", env = "EDM_MYSQL_URL")]
    pub inventory_store: Option<String>,
    /// DynamoDB endpoint (`aws` for real AWS); the lab uses a table of its own.
    /// Default: an embedded SQLite file.
    #[arg(
        long = "dynamodb-endpoint",
        value_name = "URL",
        env = "EDM_DYNAMODB_ENDPOINT"
    )]
    pub order_store: Option<String>,
    /// AWS region.
    #[arg(long, env = "EDM_DYNAMODB_REGION", default_value = "us-east-2")]
    pub dynamodb_region: String,
    /// Partitions of the lab's topics.
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    /// Load mode: place this many orders through the HTTP API and measure.
    #[arg(long)]
    pub orders: Option<usize>,
    /// Load mode: most orders being placed at once (HTTP requests in flight).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Load mode: offer this many orders per second (open loop; latency then counts from
    /// each order's scheduled time, so a service that falls behind shows it). Default: as
    /// fast as `--concurrency` allows.
    #[arg(long, value_parser = parse_orders_per_second)]
    pub rate: Option<f64>,
    /// Load mode: share of payments the gateway declines.
    #[arg(long, default_value_t = 0.2, value_parser = parse_rate)]
    pub decline_rate: f64,
    /// The SAGA style: choreography (events, the course's), orchestration (commands from
    /// an orchestrator), or both — the same orders through each, side by side.
    #[arg(long, value_enum, default_value_t = LabSagas::Choreography)]
    pub saga: LabSagas,
    /// Seconds an orchestrated saga's step may wait for its reply (see `edm orchestrator`).
    #[arg(long, default_value = "5", value_parser = parse_seconds)]
    pub step_timeout: Duration,
    /// Keep the lab's database and table afterwards (to look at them).
    #[arg(long)]
    pub keep: bool,
    /// After the demo, run this failure drill (repeatable): decline-payment,
    /// poison-message, duplicate-event, stop-payment, crash-inventory, crash-orchestrator
    /// (orchestration only). Each says what should happen, shows what did and ends with
    /// the invariant checks.
    #[arg(long = "drill", value_enum, conflicts_with = "orders")]
    pub drills: Vec<super::drills::Drill>,
    /// Serve a live web view of the lab's sagas: after the demo, the lab keeps running
    /// (place more orders through its order API); with --orders, the view follows the load
    /// and stays after its report. Ctrl-C ends it.
    #[arg(long)]
    pub ui: bool,
    /// Where the web view listens (with --ui).
    #[arg(
        long,
        value_name = "ADDRESS",
        default_value = "127.0.0.1:8888",
        requires = "ui"
    )]
    pub listen: std::net::SocketAddr,
}
