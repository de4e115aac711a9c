//! `edm create-topics`: the course's `create_topic.py`, plus the dead-letter topics and the
//! payment consumer's decisions, so that nothing waits for a topic on a broker that
//! creates none by itself; prints what it did and what the broker now has.

use crate::config::KafkaArgs;
use crate::kafka::{Kafka, TopicChange};

/// `edm create-topics` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct CreateTopicsArgs {
    /// Partitions per topic: new topics get this many (default 1), existing ones with
    /// fewer are grown to it (a topic never shrinks).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=10_000))]
    pub partitions: Option<i32>,
    /// Replication factor of new topics (1 on a single broker).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
    pub replication_factor: i32,
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

/// Creates or grows every topic edm uses and lists the broker's topics.
pub async fn command(args: CreateTopicsArgs) -> anyhow::Result<()> {
    let kafka = Kafka::new(&args.kafka);
    let names = kafka.topics.every_topic();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let changes = kafka
        .ensure_topics(&names, args.partitions, args.replication_factor)
        .await?;
    for (name, change) in changes {
        match change {
            TopicChange::Created(n) => println!(" created  {name} ({n} partitions)"),
            TopicChange::Grown { from, to } => {
                println!("   grown  {name} from {from} to {to} partitions")
            }
            TopicChange::Kept(n) => println!("  exists  {name} ({n} partitions)"),
            TopicChange::Altered {
                partitions,
                configs,
                was,
            } => {
                let now: Vec<String> = configs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!(
                    " altered  {name} ({partitions} partitions): {} (was {})",
                    now.join(", "),
                    was.join(", ")
                )
            }
        }
    }
    println!("\ntopics on {}:", kafka.servers());
    for topic in kafka.check_reachable().await? {
        println!("  {:<30} {} partition(s)", topic.name, topic.partitions);
    }
    Ok(())
}
