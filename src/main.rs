//! The `edm` command line: one subcommand per step of the course exercise.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tracing::Instrument;

use edm::config::{DynamoArgs, KafkaArgs, MysqlArgs, parse_bool_flag, parse_rate, parse_seconds};
use edm::kafka::Kafka;
use edm::lab::{self, LabArgs};
use edm::services::order_service::OrderServiceOptions;
use edm::services::payment_consumer::Gateway;
use edm::services::{
    inventory_consumer, inventory_service, order_consumer, order_service, payment_consumer,
};
use edm::tools::order_client::{NewOrder, OrderClient, render_order};
use edm::tools::{doctor, trace};
use edm::{http, setup, shutdown, telemetry};
use serde_json::json;

/// Event-driven microservices with Kafka: the course's order / inventory / payment SAGA.
#[derive(Parser, Debug)]
#[command(name = "edm", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create the topics `order`, `inventory` and `payment` (existing ones are kept) and list them.
    CreateTopics {
        /// Partitions per topic.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
        partitions: i32,
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
        /// Seconds a POST waits for Kafka's acknowledgement before answering 503.
        #[arg(long, default_value = "5", value_parser = parse_seconds)]
        delivery_timeout: Duration,
        /// Seconds after which an order whose ORDER_CREATED was never sent (the service
        /// stopped in between) has it sent from the outbox.
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
enum OrderCommand {
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
struct OrderOutput {
    /// Base URL of the order service.
    #[arg(
        long,
        env = "EDM_ORDER_SERVICE_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        // The lab prints its own report; its services only log problems.
        Command::Lab(_) => telemetry::init_with_default("warn,rdkafka=error,librdkafka=error"),
        _ => telemetry::init(),
    }
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::CreateTopics {
            partitions,
            replication_factor,
            kafka,
        } => {
            let kafka = Kafka::new(&kafka);
            let names = kafka.topics.all();
            let created = kafka
                .create_topics(&names, partitions, replication_factor)
                .await?;
            for name in names {
                let state = if created.iter().any(|c| c == name) {
                    "created"
                } else {
                    "exists"
                };
                println!("{state:>8}  {name}");
            }
            println!("\ntopics on {}:", kafka.servers());
            for topic in kafka.check_reachable().await? {
                println!("  {:<30} {} partition(s)", topic.name, topic.partitions);
            }
            Ok(())
        }
        Command::Setup { mysql, dynamo } => {
            let report = setup::run(&mysql, &dynamo).await?;
            println!(
                "MySQL: database `{}` has tables inventory, inventory_history, inventory_saga_step and the 5 seed items",
                report.database
            );
            let table_state = if report.table_created {
                "created"
            } else {
                "already exists"
            };
            println!("DynamoDB: table `{}` {table_state}", dynamo.orders_table);
            Ok(())
        }
        Command::OrderService {
            listen,
            delivery_timeout,
            resend_after,
            kafka,
            dynamo,
        } => {
            let listener = http::bind(listen).await?;
            let options = OrderServiceOptions {
                delivery_timeout,
                resend_after,
            };
            order_service::run(listener, &kafka, &dynamo, options, shutdown::on_signal())
                .instrument(tracing::info_span!("order-service"))
                .await
        }
        Command::OrderConsumer { kafka, dynamo } => {
            order_consumer::run(&kafka, &dynamo, None, shutdown::on_signal())
                .instrument(tracing::info_span!("order-consumer"))
                .await
        }
        Command::InventoryConsumer { kafka, mysql } => {
            inventory_consumer::run(&kafka, &mysql, shutdown::on_signal())
                .instrument(tracing::info_span!("inventory-consumer"))
                .await
        }
        Command::InventoryService { listen, mysql } => {
            let listener = http::bind(listen).await?;
            inventory_service::run(listener, &mysql, shutdown::on_signal())
                .instrument(tracing::info_span!("inventory-service"))
                .await
        }
        Command::PaymentConsumer {
            pg_ok,
            decline_rate,
            kafka,
        } => {
            let gateway = match (pg_ok, decline_rate) {
                (_, Some(rate)) => Gateway::DeclineRate(rate),
                (Some(true), None) => Gateway::Accept,
                _ => Gateway::Decline,
            };
            payment_consumer::run(&kafka, gateway, shutdown::on_signal())
                .instrument(tracing::info_span!("payment-consumer"))
                .await
        }
        Command::Lab(args) => {
            let hold = match args.orders {
                Some(orders) => {
                    println!(
                        "edm lab load: {orders} orders, {} in flight, decline rate {:.2}",
                        args.concurrency, args.decline_rate
                    );
                    let report = lab::load::run_load(&args, orders).await?;
                    print!("{}", report.render());
                    report.books.hold()
                }
                None => lab::run_demo(&args).await?,
            };
            if !hold {
                anyhow::bail!("invariants broken (see above)");
            }
            Ok(())
        }
        Command::Order { command } => order(command).await,
        Command::Trace {
            transaction_id,
            kafka,
        } => {
            let kafka = Kafka::new(&kafka);
            let events = trace::trace(&kafka, &transaction_id).await?;
            if events.is_empty() {
                anyhow::bail!(
                    "no events of saga {transaction_id} on {}",
                    kafka.topics.all().join(", ")
                );
            }
            println!("saga {transaction_id}: {} events", events.len());
            print!("{}", trace::render_timeline(&events, None));
            Ok(())
        }
        Command::Doctor {
            kafka,
            mysql,
            dynamo,
            order_url,
            inventory_url,
        } => {
            let targets = doctor::Targets {
                kafka,
                mysql,
                dynamo,
                order_url,
                inventory_url,
            };
            let checks = doctor::run(&targets).await;
            print!("{}", doctor::render(&checks));
            let failed = checks.iter().filter(|c| !c.ok).count();
            if failed > 0 {
                anyhow::bail!("{failed} of {} checks failed", checks.len());
            }
            Ok(())
        }
    }
}

async fn order(command: OrderCommand) -> anyhow::Result<()> {
    const WAIT: Duration = Duration::from_secs(60);
    match command {
        OrderCommand::Place {
            user,
            item,
            quantity,
            name,
            addr,
            tel,
            email,
            wait,
            output,
        } => {
            let client = OrderClient::new(&output.url);
            let new = NewOrder {
                user_id: user.clone(),
                name,
                addr,
                tel,
                email,
                item,
                quantity,
            };
            let tx = client.place(&new).await?;
            if wait {
                let order = client.wait_final(&tx, &user, WAIT).await?;
                print_order(&order, output.json);
            } else if output.json {
                println!(
                    "{}",
                    json!({"status": "ORDER_CREATED", "transaction_id": tx, "user_id": user})
                );
            } else {
                println!("ORDER_CREATED  transaction_id={tx}  user_id={user}");
                println!(
                    "follow it with: edm order get {tx} --user {user} --wait   (or: edm trace {tx})"
                );
            }
        }
        OrderCommand::Get {
            transaction_id,
            user,
            wait,
            output,
        } => {
            let client = OrderClient::new(&output.url);
            let order = if wait {
                client.wait_final(&transaction_id, &user, WAIT).await?
            } else {
                client.get(&transaction_id, &user).await?
            };
            print_order(&order, output.json);
        }
    }
    Ok(())
}

fn print_order(order: &serde_json::Map<String, serde_json::Value>, json: bool) {
    if json {
        println!("{}", serde_json::Value::Object(order.clone()));
    } else {
        print!("{}", render_order(order));
    }
}
