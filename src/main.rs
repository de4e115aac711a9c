//! The `edm` command line: one subcommand per step of the course exercise.

mod cli;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tracing::Instrument;

use cli::{Cli, Command, OrderCommand};
use edm::broker::{self, BrokerConfig};
use edm::kafka::{Kafka, TopicChange};
use edm::lab;
use edm::services::order_service::OrderServiceOptions;
use edm::services::payment_consumer::Gateway;
use edm::services::{
    inventory_consumer, inventory_service, order_consumer, order_service, payment_consumer,
};
use edm::tools::order_client::{NewOrder, OrderClient, render_order};
use edm::tools::{doctor, trace};
use edm::{http, setup, shutdown, telemetry};
use serde_json::json;

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
        Command::Broker {
            listen,
            advertised_host,
            default_partitions,
            no_auto_create_topics,
            data_dir,
        } => {
            let config = BrokerConfig {
                listen,
                advertised_host,
                auto_create_topics: !no_auto_create_topics,
                default_partitions,
                data_dir,
            };
            broker::run(&config, shutdown::on_signal()).await
        }
        Command::CreateTopics {
            partitions,
            replication_factor,
            kafka,
        } => {
            let kafka = Kafka::new(&kafka);
            let names = kafka.topics.every_topic();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let changes = kafka
                .ensure_topics(&names, partitions, replication_factor)
                .await?;
            for (name, change) in changes {
                match change {
                    TopicChange::Created(n) => println!(" created  {name} ({n} partitions)"),
                    TopicChange::Grown { from, to } => {
                        println!("   grown  {name} from {from} to {to} partitions")
                    }
                    TopicChange::Kept(n) => println!("  exists  {name} ({n} partitions)"),
                }
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
            order_consumer::run(&kafka, &dynamo, shutdown::on_signal())
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
                    let pace = match args.rate {
                        Some(rate) => format!("offered at {rate} orders/s"),
                        None => "as fast as they are accepted".to_string(),
                    };
                    println!(
                        "edm lab load: {orders} orders {pace}, at most {} being placed at once, \
                         decline rate {:.2}",
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
            let placed = client.place(&new).await?;
            let tx = placed.transaction_id;
            if let Some(pending) = &placed.pending {
                eprintln!("note: {pending}");
            }
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
